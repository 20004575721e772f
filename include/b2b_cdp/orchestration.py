"""What every DAG shares: default arguments, asset names, the guardrail gate, run timing, and the
Params of the trigger form (with the sandbox and segment selection they drive).

Kept free of heavy imports (GX, psycopg, requests load inside tasks) so that parsing the DAG folder
stays fast.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from airflow.sdk import Asset, AssetAlias, Param, task

from b2b_cdp.config import load_config

if TYPE_CHECKING:
    from b2b_cdp.config import CdpConfig, Sandbox

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


def streaming_changes_alias(schema: str) -> AssetAlias:
    """A sandbox's streaming pass adds an event to each segment asset whose membership changed."""
    return AssetAlias(name=f"cdp.streaming_changes.{schema}", group="cdp")


def buying_group_asset(solution_interest: str) -> Asset:
    """The buying groups of one solution interest (each checked formation emits an event with the
    counts of groups, complete groups, members, entered, exited and dissolved)."""
    return Asset(name=f"cdp.buying_groups.{solution_interest}", group="cdp")


def run_time(context: dict) -> datetime:
    """The run's point in time: its logical date, or when it was due for runs without one
    (asset-triggered and some manual runs). Never the wall clock."""
    return context.get("logical_date") or context["dag_run"].run_after


# ---------------------------------------------------------------------------- trigger-form Params

ALL_SANDBOXES = "all"


def sandbox_name(sandbox: Sandbox) -> str:
    """How a sandbox is named in the trigger form: `<platform_instance>/<name>`."""
    return f"{sandbox.platform_instance}/{sandbox.name}"


def sandbox_param(cfg: CdpConfig) -> Param:
    """`sandbox`: "all" (the default) or one configured sandbox, whose tasks alone do work."""
    return Param(ALL_SANDBOXES, type="string", enum=[ALL_SANDBOXES, *(sandbox_name(s) for s in cfg.sandboxes())],
                 title="Sandbox",
                 description="Run the tasks of this sandbox only (<platform_instance>/<name>); the others skip")


def segments_param(segment_ids: Iterable[str]) -> Param:
    """`segments`: the segment ids to evaluate; empty (the default) evaluates every segment."""
    return Param([], type="array", items={"type": "string"}, examples=sorted(segment_ids), title="Segments",
                 description="Evaluate these segments only (ids); empty evaluates every segment. "
                             "Buying groups are formed either way")


def window_end_param() -> Param:
    """`window_end`: the point in time a backfill covers up to; empty means the run's logical date."""
    return Param(None, type=["null", "string"], format="date-time", title="Window end",
                 description="Backfill everything up to this date-time (with a timezone); "
                             "empty means the run's logical date")


def _params(context: dict) -> Any:
    return context.get("params") or {}


def selected_sandbox(context: dict) -> str:
    """The sandbox chosen in the trigger form, or "all"."""
    return _params(context).get("sandbox") or ALL_SANDBOXES


def skip_unless_sandbox_selected(context: dict, sandbox: Sandbox) -> None:
    """Raise AirflowSkipException in a per-sandbox task whose sandbox the run did not select."""
    chosen = selected_sandbox(context)
    if chosen not in (ALL_SANDBOXES, sandbox_name(sandbox)):
        from airflow.sdk.exceptions import AirflowSkipException

        raise AirflowSkipException(f"sandbox {sandbox_name(sandbox)} not selected (this run: sandbox={chosen})")


def selected_segment_ids(context: dict, known: Iterable[str]) -> set[str] | None:
    """The segment ids chosen in the trigger form (None: every segment); unknown ids are refused,
    named in the error."""
    known = sorted(known)
    chosen = _params(context).get("segments") or []
    if isinstance(chosen, str):
        chosen = [chosen]
    unknown = sorted(set(chosen) - set(known))
    if unknown:
        raise ValueError(f"unknown segment id(s) in the `segments` param: {', '.join(unknown)} "
                         f"(known: {', '.join(known) or 'none'})")
    return set(chosen) or None


def parse_window_end(value: Any) -> datetime | None:
    """The `window_end` Param as a timezone-aware datetime (a naive one is taken as UTC), None when
    empty; anything else that is not an ISO 8601 date-time is refused."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, datetime):
        parsed = value
    else:
        try:
            parsed = datetime.fromisoformat(str(value).strip().replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"window_end {value!r} is not an ISO 8601 date-time "
                             "(e.g. 2026-01-31T00:00:00+00:00)") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def backfill_until(context: dict) -> datetime:
    """The point in time a backfill covers up to: the `window_end` Param when set, else the run's
    point in time (run_time). A window end after it is refused: later changes are the incremental
    sync's."""
    until = run_time(context)
    window_end = parse_window_end(_params(context).get("window_end"))
    if window_end is None:
        return until
    if window_end > until:
        raise ValueError(f"window_end {window_end.isoformat()} is after the run's point in time "
                         f"{until.isoformat()}")
    return window_end


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


def prepare_metadata() -> None:
    """Migrate (or create) the Airflow metadata database and create the Marketo pools."""
    from airflow.models.pool import Pool
    from airflow.utils import db

    db.initdb()   # quick when the database is current
    for pool, slots in required_pools().items():
        Pool.create_or_update_pool(pool, slots, "Marketo instance rate limit share", include_deferred=False)
