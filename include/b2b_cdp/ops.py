"""Operational records kept in each sandbox's ops tables."""

from __future__ import annotations

from psycopg.types.json import Jsonb

from b2b_cdp import warehouse
from b2b_cdp.config import Sandbox


def record_checkpoints(sandbox: Sandbox, run_id: str, outcomes: dict) -> None:
    with warehouse.connect(sandbox) as conn:
        for name, outcome in outcomes.items():
            warehouse.run(conn, "ops/record_checkpoint", {
                "checkpoint": name, "run_id": run_id, "success": outcome.success,
                "details": Jsonb(outcome.as_dict())}).close()


def latest_checkpoints(sandbox: Sandbox) -> dict[str, bool]:
    with warehouse.connect(sandbox) as conn:
        return dict(warehouse.fetch_all(conn, "ops/latest_checkpoints"))
