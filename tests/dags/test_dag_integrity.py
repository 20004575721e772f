"""Every DAG imports cleanly, is owned, tagged, retried and documented; parsing stays fast."""

import time

import pytest

EXPECTED = {
    "ingest_backfill__marketo_111_aaa_111", "ingest_backfill__marketo_222_bbb_222",
    "ingest_backfill__salesforce_crm1", "ingest_backfill__salesforce_crm2", "ingest_backfill__mdm",
    "ingest_incremental__marketo_111_aaa_111", "ingest_incremental__marketo_222_bbb_222",
    "ingest_incremental__salesforce_crm1", "ingest_incremental__salesforce_crm2",
    "ingest_incremental__web_events",
    "identity_stitching", "segmentation_daily",
    "activate__marketo_111_aaa_111", "activate__marketo_222_bbb_222",
}


@pytest.fixture(scope="module")
def dagbag():
    import os

    import airflow.sdk  # noqa: F401  (imported first: the parse timing below excludes Airflow itself)
    from airflow.dag_processing.dagbag import DagBag

    os.environ["CDP_DEADLINE_ALERTS"] = "on"   # as deployed (tests that run DAGs switch them off)
    started = time.perf_counter()
    bag = DagBag(dag_folder="dags")
    bag.parse_seconds = time.perf_counter() - started
    return bag


def test_no_import_errors(dagbag):
    assert dagbag.import_errors == {}


def test_the_pipeline_dags_exist(dagbag):
    assert set(dagbag.dag_ids) == EXPECTED


def test_every_dag_is_tagged_owned_retried_and_documented(dagbag):
    for dag_id, dag in dagbag.dags.items():
        assert dag.tags, dag_id
        assert dag.default_args.get("owner") == "cdp", dag_id
        assert dag.default_args.get("retries", 0) >= 2, dag_id
        assert dag.doc_md and len(dag.doc_md) > 40, dag_id


def test_parsing_the_dag_folder_takes_under_two_seconds(dagbag):
    assert dagbag.parse_seconds < 2.0, f"parsing took {dagbag.parse_seconds:.2f}s"


def test_stages_are_chained_with_assets(dagbag):
    identity = dagbag.dags["identity_stitching"]
    activation = dagbag.dags["activate__marketo_111_aaa_111"]
    consumed = {a.name for a in identity.timetable.asset_condition.iter_assets().values()} \
        if hasattr(identity.timetable.asset_condition, "iter_assets") else set()
    assert "cdp.core.marketo_111_aaa_111" in str(identity.timetable.asset_condition) or consumed
    assert "cdp.audience.high_value_new_product_visitors" in str(activation.timetable.asset_condition)
    ingest = dagbag.dags["ingest_backfill__marketo_111_aaa_111"]
    outlets = {o.name for t in ingest.tasks for o in t.outlets}
    assert outlets == {"cdp.core.marketo_111_aaa_111"}


def test_guardrails_run_before_any_data_moves(dagbag):
    for dag_id, dag in dagbag.dags.items():
        gate = dag.get_task("check_guardrails")
        for task in dag.tasks:
            if task.task_id != "check_guardrails":
                assert gate.task_id in task.get_flat_relative_ids(upstream=True), (dag_id, task.task_id)


def test_incremental_syncs_carry_a_deadline_alert_for_the_profile_window(dagbag):
    for dag_id, dag in dagbag.dags.items():
        if dag_id.startswith("ingest_incremental__"):
            (alert,) = dag.deadline
            assert alert.interval.total_seconds() == 600, dag_id


def test_every_task_calling_marketo_runs_in_that_instance_pool(dagbag):
    from b2b_cdp.orchestration import required_pools

    pools = required_pools()
    assert set(pools) == {"marketo_111_aaa_111", "marketo_222_bbb_222"}
    for dag_id, dag in dagbag.dags.items():
        for task in dag.tasks:
            assert task.pool in set(pools) | {"default_pool"}, (dag_id, task.task_id, task.pool)
    activate = dagbag.dags["activate__marketo_111_aaa_111"].get_task("sync_static_lists")
    backfill = dagbag.dags["ingest_backfill__marketo_111_aaa_111"].get_task("land_leads")
    sync = dagbag.dags["ingest_incremental__marketo_111_aaa_111"].get_task("sync_activities")
    assert activate.pool == backfill.pool == sync.pool == "marketo_111_aaa_111"


def test_a_streaming_segment_gets_the_streaming_dag(tmp_path, monkeypatch):
    import yaml
    from airflow.dag_processing.dagbag import DagBag

    from b2b_cdp.config import DEFAULT_CONFIG_PATH

    raw = yaml.safe_load(DEFAULT_CONFIG_PATH.read_text())
    raw["segments"].append({"id": "recent_visitors", "name": "Recent visitors", "platform_instance": "bodea",
                            "sandbox": "prod", "mode": "streaming",
                            "where": {"event": {"type": "Visit Webpage", "within": {"hours": 1}}}})
    (tmp_path / "cdp.yaml").write_text(yaml.safe_dump(raw))
    monkeypatch.setenv("CDP_CONFIG", str(tmp_path / "cdp.yaml"))
    bag = DagBag(dag_folder="dags")
    assert bag.import_errors == {}
    streaming = bag.dags["segmentation_streaming"]
    assert streaming.timetable.summary == "Asset or * * * * *"
    assert {t.task_id for t in streaming.tasks} == {"check_guardrails", "evaluate_streaming__cdp_bodea_prod"}


def test_incremental_syncs_follow_their_configured_period(tmp_path, monkeypatch):
    import yaml
    from airflow.dag_processing.dagbag import DagBag

    from b2b_cdp.config import DEFAULT_CONFIG_PATH

    raw = yaml.safe_load(DEFAULT_CONFIG_PATH.read_text())
    next(s for s in raw["sources"] if s["id"] == "salesforce_crm2")["sync_every_minutes"] = 10
    (tmp_path / "cdp.yaml").write_text(yaml.safe_dump(raw))
    monkeypatch.setenv("CDP_CONFIG", str(tmp_path / "cdp.yaml"))
    bag = DagBag(dag_folder="dags")
    assert bag.import_errors == {}
    schedules = {dag_id: dag.timetable.expression for dag_id, dag in bag.dags.items()
                 if dag_id.startswith("ingest_incremental__")}
    assert schedules.pop("ingest_incremental__salesforce_crm2") == "*/10 * * * *"
    assert set(schedules.values()) == {"* * * * *"}
    assert "Every 10 minutes" in bag.dags["ingest_incremental__salesforce_crm2"].doc_md
    for dag_id in schedules:
        assert bag.dags[dag_id].max_active_runs == 1, dag_id


def test_one_stitching_run_at_a_time(dagbag):
    # Syncs every minute announce often; two stitching runs of one sandbox must not interleave.
    assert dagbag.dags["identity_stitching"].max_active_runs == 1
