"""The landing checkpoint: Great Expectations rules on freshly landed raw batches.

Rows a rule refuses move to raw_quarantine with the rule as their reason; the good rows of the
batch stay and go on to core. The checkpoint result is stored in ops_checkpoint_result.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from b2b_cdp import warehouse
from b2b_cdp.config import load_config
from b2b_cdp.guardrails import CheckpointOutcome, build_data_docs, gx_context

log = logging.getLogger(__name__)

FUTURE_TOLERANCE = timedelta(days=1)
EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
CHECKED_OBJECTS = {   # landing object -> (raw table, projection in sql/landing/)
    "leads": ("raw_marketo_leads", "marketo_leads"),
    "activities": ("raw_marketo_activities", "marketo_activities"),
    "opportunities": ("raw_marketo_opportunities", "marketo_opportunities"),
    "Contact": ("raw_salesforce_contact", "salesforce_contact"),
    "Opportunity": ("raw_salesforce_opportunity", "salesforce_opportunity"),
    "events": ("raw_web_events", "web_events"),
}
ECID_PATTERN = r"^\d{38}$"   # an Experience Cloud ID is exactly 38 digits


def _expectations(now: datetime):
    import great_expectations.expectations as gxe

    return [
        (gxe.ExpectColumnValuesToBeNull(column="parse_error"), "malformed row in the source file"),
        (gxe.ExpectColumnValuesToNotBeNull(column="record_id"), "record key missing"),
        (gxe.ExpectCompoundColumnsToBeUnique(column_list=["_batch_id", "record_id"]),
         "record key repeated within its batch"),
        (gxe.ExpectColumnValuesToMatchRegex(column="email", regex=EMAIL_PATTERN), "email not well-formed"),
        (gxe.ExpectColumnValuesToMatchRegex(column="ecid", regex=ECID_PATTERN), "ECID not 38 digits"),
        (gxe.ExpectColumnValuesToBeBetween(column="amount", min_value=0), "negative amount"),
        (gxe.ExpectColumnValuesToNotBeNull(column="changed_at"), "change timestamp missing or malformed"),
        (gxe.ExpectColumnValuesToBeBetween(column="changed_at", max_value=now + FUTURE_TOLERANCE),
         f"change timestamp more than {FUTURE_TOLERANCE} in the future"),
    ]


def check_landed(source_id: str, run_id: str, now: datetime) -> CheckpointOutcome:
    """Validate every batch of the source landed since the last check; quarantine refused rows."""
    import pandas as pd

    cfg = load_config()
    name = f"landing__{source_id}"
    outcome = CheckpointOutcome(name, True)
    for sandbox in cfg.sandboxes_fed_by(source_id):
        with warehouse.connect(sandbox) as conn:
            batches = warehouse.fetch_all(conn, "landing/unchecked_batches", {"source_id": source_id})
        by_object: dict[str, list[tuple[str, datetime]]] = {}
        for batch_id, obj, loaded_at in batches:
            by_object.setdefault(obj, []).append((batch_id, loaded_at))
        context = None
        for obj, entries in by_object.items():
            table, projection = CHECKED_OBJECTS.get(obj, (None, None))
            checked: dict[str, int] = {}
            moved: dict[str, int] = {}
            refused: dict[tuple[str, str], str] = {}
            if table:
                with warehouse.connect(sandbox) as conn:
                    with warehouse.run(conn, f"landing/{projection}",
                                       {"batch_ids": [b for b, _ in entries]}) as cur:
                        frame = pd.DataFrame(cur.fetchall(), columns=[c.name for c in cur.description])
                checked = frame["_batch_id"].value_counts().to_dict() if len(frame) else {}
                if len(frame):
                    frame["changed_at"] = pd.to_datetime(frame["changed_at"], utc=True)
                    frame["amount"] = pd.to_numeric(frame["amount"])
                    context = context or gx_context()
                    refused = _validate(context, f"{name}__{sandbox.schema}__{obj}", frame, now)
                    with warehouse.connect(sandbox) as conn:
                        for (source_key, batch_id), reason in refused.items():
                            with warehouse.run(conn, "landing/quarantine_row", {
                                    "batch_id": batch_id, "source_key": source_key, "raw_table": table,
                                    "reason": reason}, identifiers={"table": table, "rows": warehouse.rows_table(table)}) as cur:
                                moved[batch_id] = moved.get(batch_id, 0) + cur.rowcount
                    for (source_key, _), reason in sorted(refused.items(), key=str):
                        outcome.violations.append(f"{table} {source_key}: {reason} (quarantined)")
            with warehouse.connect(sandbox) as conn:
                for batch_id, loaded_at in entries:
                    warehouse.run(conn, "landing/mark_checked", {
                        "batch_id": batch_id, "loaded_at": loaded_at,
                        "rows_checked": int(checked.get(batch_id, 0)),
                        "rows_quarantined": moved.get(batch_id, 0)}).close()
            if refused:
                log.warning("%s %s: %d row(s) quarantined", source_id, obj, len(refused))
    outcome.success = not outcome.violations
    if context is not None:
        build_data_docs(context)
    from b2b_cdp.ops import record_checkpoints

    for sandbox in cfg.sandboxes_fed_by(source_id):
        record_checkpoints(sandbox, run_id, {name: outcome})
    return outcome


def _validate(context, name: str, frame, now: datetime) -> dict[tuple[str, str], str]:
    """(source key, batch id) -> the first rule each refused row broke."""
    import great_expectations as gx

    asset = context.data_sources.add_or_update_pandas("landing").add_dataframe_asset(name)
    batch = asset.add_batch_definition_whole_dataframe("whole")
    suite = context.suites.add(gx.ExpectationSuite(name=name))
    reasons = {}
    for expectation, reason in _expectations(now):
        added = suite.add_expectation(expectation)
        reasons[added.id] = reason
    definition = context.validation_definitions.add(gx.ValidationDefinition(name=name, data=batch, suite=suite))
    result = definition.run(batch_parameters={"dataframe": frame}, result_format={
        "result_format": "COMPLETE", "unexpected_index_column_names": ["_source_key", "_batch_id"]})
    refused: dict[tuple[str, str], str] = {}
    for check in result.results:
        if check.success:
            continue
        reason = reasons.get(check.expectation_config.id, check.expectation_config.type)
        for row in check.result.get("unexpected_index_list") or []:
            key = row["_source_key"] if isinstance(row["_source_key"], str) else None   # NaN: no key
            refused.setdefault((key, row["_batch_id"]), reason)
    return refused
