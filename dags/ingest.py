"""Ingestion DAGs, a backfill and an incremental sync per source instance of the configuration.

Wiring only: the work is in b2b_cdp.ingest. Each DAG checks the guardrails, lands every object in
the raw lake, normalises it into core and announces the core asset the identity DAG listens to.
"""

from datetime import timedelta

from airflow.sdk import dag, task

from b2b_cdp.config import load_config
from b2b_cdp.operators import MarketoBulkBackfillOperator
from b2b_cdp.orchestration import (DEFAULT_ARGS, check_guardrails, core_asset, latency_deadline, marketo_pool,
                                   run_time, window_end_param)

PROFILE_WINDOW = timedelta(minutes=10)   # a source change should reach the profile within 10 minutes

DOC = """
### Historical backfill of `{source_id}` ({type})

Lands the source's records in the raw lake (one table per object, COPY, replaced per batch on
re-run), then normalises them into core. Marketo bulk exports run in 31-day windows tracked in
`ops_bulk_job`: a re-run resumes the same exports, and an exhausted daily export quota defers the
task until the quota resets (progress and the predicted finish are in `ops_backfill_progress`). Triggers `identity_stitching` through the asset
`cdp.core.{source_id}`. {coverage}
"""

MARKETO_COVERAGE = ("The `window_end` param (an optional date-time) is where the lead and activity bulk "
                    "exports stop; empty means the run's logical date.")
FULL_COVERAGE = ("The source is extracted in full as it stands when the run starts (it has no time bound, "
                 "hence no params).")


def check_landed_rows(source):
    """Landing checkpoint (GX): refused rows go to raw_quarantine, the good rows go on."""
    @task(task_id="check_landed_rows")
    def check(**context) -> dict:
        from b2b_cdp.landing_checks import check_landed
        return check_landed(source.id, context["run_id"], run_time(context)).as_dict()

    return check()


def normalize_to_core(source):
    """The source's raw records into core; announces the source's core asset to identity stitching,
    unless there was nothing new (a skipped task emits no asset event: no stitching run for nothing)."""
    @task(task_id="normalize_to_core", outlets=[core_asset(source.id)])
    def normalize_source() -> int:
        from airflow.sdk.exceptions import AirflowSkipException

        from b2b_cdp.ingest import normalize
        batches = normalize(source.id)
        if not batches:
            raise AirflowSkipException("no new batch: nothing to announce")
        return batches

    return normalize_source()


def marketo_backfill(source):
    @dag(dag_id=f"ingest_backfill__{source.id}", schedule=None, catchup=False, default_args=DEFAULT_ARGS,
         tags=["cdp", "ingest", "marketo"], params={"window_end": window_end_param()},
         doc_md=DOC.format(source_id=source.id, type="Marketo Engage", coverage=MARKETO_COVERAGE))
    def backfill():
        pool = marketo_pool(source.munchkin_id)

        @task(pool=pool)
        def land_activity_types(**context) -> int:
            from b2b_cdp.ingest import land_marketo_activity_types
            return land_marketo_activity_types(source.id, context["run_id"], run_time(context))

        @task(pool=pool)
        def land_companies_and_opportunities(**context) -> dict:
            from b2b_cdp.ingest import land_marketo_b2b_objects
            return land_marketo_b2b_objects(source.id, context["run_id"], run_time(context))

        # The bulk exports run up to backfill_until (window_end, else the logical date); activity
        # types and companies/opportunities are read as they stand.
        leads = MarketoBulkBackfillOperator(task_id="land_leads", source_id=source.id, obj="leads", pool=pool)
        activities = MarketoBulkBackfillOperator(task_id="land_activities", source_id=source.id,
                                                 obj="activities", pool=pool)
        types = land_activity_types()
        b2b_objects = land_companies_and_opportunities()  # queried by the account ids of the leads
        check_guardrails() >> [leads, activities, types]
        leads >> b2b_objects
        [b2b_objects, activities, types] >> check_landed_rows(source) >> normalize_to_core(source)

    return backfill()


def salesforce_backfill(source):
    @dag(dag_id=f"ingest_backfill__{source.id}", schedule=None, catchup=False, default_args=DEFAULT_ARGS,
         tags=["cdp", "ingest", "salesforce"],
         doc_md=DOC.format(source_id=source.id, type="Salesforce", coverage=FULL_COVERAGE))
    def backfill():
        @task
        def land_object(obj: str, **context) -> int:
            from b2b_cdp.ingest import land_salesforce_object
            return land_salesforce_object(source.id, obj, context["run_id"], run_time(context))

        (check_guardrails() >> land_object.expand(obj=list(source.objects)) >> check_landed_rows(source)
         >> normalize_to_core(source))

    return backfill()


def mdm_backfill(source):
    @dag(dag_id=f"ingest_backfill__{source.id}", schedule=None, catchup=False, default_args=DEFAULT_ARGS,
         tags=["cdp", "ingest", "mdm"],
         doc_md=DOC.format(source_id=source.id, type="MDM file drop", coverage=FULL_COVERAGE))
    def backfill():
        @task
        def land_crossref(**context) -> int:
            from b2b_cdp.ingest import land_mdm
            return land_mdm(source.id, context["run_id"], run_time(context))

        check_guardrails() >> land_crossref() >> normalize_to_core(source)

    return backfill()


FACTORIES = {"marketo": marketo_backfill, "salesforce": salesforce_backfill, "mdm": mdm_backfill}

for _source in load_config().sources:
    if _source.type in FACTORIES:   # web events have no history to backfill: their sync reads every file
        FACTORIES[_source.type](_source)


# ---------------------------------------------------------------------------- incremental syncs

INCREMENTAL_DOC = """
### Incremental sync of `{source_id}` ({type})

Every {every}: what changed at the source since the last sync ({what}), landed in the raw lake
with its cursor in the same transaction, normalised into core, then announced to
`identity_stitching` (a run that brought nothing new announces nothing: its last task skips). Freshness (source change -> lake) is recorded per batch in `ops_freshness`;
a run still going after 10 minutes (the profile window) raises a deadline alert.
"""


def incremental_dag(source, kind: str, what: str, tag: str):
    """On the source's sync period, one run at a time, with a deadline alert at the profile window."""
    every = "minute" if source.sync_every_minutes == 1 else f"{source.sync_every_minutes} minutes"
    return dag(dag_id=f"ingest_incremental__{source.id}", schedule=source.sync_schedule, catchup=False,
               max_active_runs=1, default_args=DEFAULT_ARGS, tags=["cdp", "ingest", "incremental", tag],
               deadline=latency_deadline("profile", PROFILE_WINDOW),
               doc_md=INCREMENTAL_DOC.format(source_id=source.id, type=kind, what=what, every=every))


def marketo_incremental(source):
    @incremental_dag(source, "Marketo Engage", "activities by paging token, lead changes, deleted leads",
                     tag="marketo")
    def incremental():
        pool = marketo_pool(source.munchkin_id)

        @task(pool=pool)
        def sync_activities(**context) -> int:
            from b2b_cdp.incremental import sync_marketo_activities
            return sync_marketo_activities(source.id, context["run_id"], run_time(context))

        @task(pool=pool)
        def sync_leads(**context) -> dict:
            from b2b_cdp.incremental import sync_marketo_leads
            return sync_marketo_leads(source.id, context["run_id"], run_time(context))

        (check_guardrails() >> [sync_activities(), sync_leads()] >> check_landed_rows(source)
         >> normalize_to_core(source))

    return incremental()


def salesforce_incremental(source):
    @incremental_dag(source, "Salesforce",
                     "SystemModstamp with a lookback, deletions through queryAll and getDeleted",
                     tag="salesforce")
    def incremental():
        @task
        def sync_object(obj: str, **context) -> int:
            from b2b_cdp.incremental import sync_salesforce_object
            return sync_salesforce_object(source.id, obj, context["run_id"], run_time(context))

        (check_guardrails() >> sync_object.expand(obj=list(source.objects)) >> check_landed_rows(source)
         >> normalize_to_core(source))

    return incremental()


def web_events_incremental(source):
    @incremental_dag(source, "web events file drop", "new or grown JSON-lines files", tag="web")
    def incremental():
        @task
        def land_new_files(**context) -> int:
            from b2b_cdp.ingest import land_web_events
            return land_web_events(source.id, context["run_id"], run_time(context))

        check_guardrails() >> land_new_files() >> check_landed_rows(source) >> normalize_to_core(source)

    return incremental()


INCREMENTAL = {"marketo": marketo_incremental, "salesforce": salesforce_incremental,
               "web_events": web_events_incremental}

for _source in load_config().sources:
    if _source.type in INCREMENTAL:
        INCREMENTAL[_source.type](_source)
