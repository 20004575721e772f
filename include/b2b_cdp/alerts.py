"""Alerts raised when a latency window is missed (deadline-alert callbacks run in the triggerer)."""

from __future__ import annotations

import asyncio
import logging

from psycopg.types.json import Jsonb

log = logging.getLogger(__name__)


def record_alert(alert: str, subject: str, details: dict) -> None:
    from b2b_cdp import warehouse
    from b2b_cdp.config import load_config

    for sandbox in load_config().sandboxes():
        with warehouse.connect(sandbox) as conn:
            warehouse.run(conn, "ops/record_alert", {"alert": alert, "subject": subject,
                                                     "details": Jsonb(details)}).close()


async def latency_window_missed(context: dict | None = None, *, window: str, seconds: int) -> None:
    """Deadline-alert callback: the run did not finish inside the source's latency window."""
    dag_run = (context or {}).get("dag_run", {})
    subject = dag_run.get("dag_id", "unknown DAG")
    log.error("%s: run %s missed the %s window (%d s)", subject, dag_run.get("run_id"), window, seconds)
    await asyncio.to_thread(record_alert, "latency_window_missed", subject,
                            {"run_id": dag_run.get("run_id"), "window": window, "seconds": seconds})
