"""What every DAG shares: default arguments, asset names, the guardrail gate, run timing.

Kept free of heavy imports (GX, psycopg, requests load inside tasks) so that parsing the DAG folder
stays fast.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from airflow.sdk import Asset, task

from b2b_cdp.config import load_config

DEFAULT_ARGS: dict[str, Any] = {
    "owner": "cdp",
    "retries": 2,
    "retry_delay": timedelta(seconds=30),
    "retry_exponential_backoff": 2.0,
    "max_retry_delay": timedelta(minutes=10),
}


def core_asset(source_id: str) -> Asset:
    """Core records of one source instance, normalised in the warehouse."""
    return Asset(name=f"cdp.core.{source_id}", group="cdp")


def profile_asset(schema: str) -> Asset:
    """Stitched person and account profiles of one sandbox."""
    return Asset(name=f"cdp.profile.{schema}", group="cdp")


def segment_asset(segment_id: str) -> Asset:
    """The membership of one segment (each evaluation emits an event with entered/exited counts)."""
    return Asset(name=f"cdp.audience.{segment_id}", group="cdp")


def run_time(context: dict) -> datetime:
    """The run's point in time: its logical date, or when it was due for runs without one
    (asset-triggered and some manual runs). Never the wall clock."""
    return context.get("logical_date") or context["dag_run"].run_after


@task
def check_guardrails(**context) -> dict[str, bool]:
    """Run the configuration checkpoints (GX) before any data moves; record and enforce them. A lost
    worker is retried like any task; a violation fails at once (AirflowFailException)."""
    from airflow.sdk.exceptions import AirflowFailException

    from b2b_cdp import guardrails, warehouse
    from b2b_cdp.ops import record_checkpoints

    cfg = load_config()
    outcomes = guardrails.run_config_checkpoints(cfg)
    for sandbox in cfg.sandboxes():
        warehouse.migrate(sandbox)
        record_checkpoints(sandbox, context["run_id"], outcomes)
    try:
        guardrails.enforce(outcomes)
    except guardrails.GuardrailViolation as exc:
        # A configuration error: retrying cannot help.
        raise AirflowFailException(str(exc)) from None
    return {name: outcome.success for name, outcome in outcomes.items()}


def latency_deadline(window: str, interval: timedelta):
    """A deadline alert for a latency window, or None where alerts are switched off
    (CDP_DEADLINE_ALERTS=off: `airflow dags test` / dag.test() cannot finish a run with a deadline)."""
    import os

    if os.environ.get("CDP_DEADLINE_ALERTS", "on").lower() in ("off", "0", "false"):
        return None
    from airflow.sdk import AsyncCallback, DeadlineAlert, DeadlineReference

    from b2b_cdp.alerts import latency_window_missed

    return DeadlineAlert(reference=DeadlineReference.DAGRUN_QUEUED_AT, interval=interval,
                         callback=AsyncCallback(latency_window_missed, kwargs={
                             "window": window, "seconds": int(interval.total_seconds())}))


def marketo_pool(munchkin_id: str) -> str:
    """The Airflow pool every task calling one Marketo instance runs in (ingest and activation
    alike), so together they stay within the instance's rate and concurrency limits."""
    return "marketo_" + munchkin_id.lower().replace("-", "_")


def required_pools() -> dict[str, int]:
    """Pool name -> slots, for every Marketo instance the configuration touches."""
    from b2b_cdp.sources.marketo import POOL_SLOTS

    cfg = load_config()
    munchkins = {s.munchkin_id for s in cfg.sources if s.type == "marketo"}
    munchkins |= {d.munchkin_id for d in cfg.destinations if d.type == "marketo"}
    return {marketo_pool(m): POOL_SLOTS for m in sorted(munchkins)}
