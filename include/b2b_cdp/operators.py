"""Operators for work that must wait without holding a worker slot."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from airflow.providers.standard.triggers.temporal import TimeDeltaTrigger
from airflow.sdk import BaseOperator

from b2b_cdp.orchestration import backfill_until


class MarketoBulkBackfillOperator(BaseOperator):
    """Backfill one Marketo object through Bulk Extract; when the day's export quota is used up,
    defer until it resets (a trigger waits, no worker slot is held and no call is spent). The
    exports cover everything up to backfill_until: the run's `window_end` Param, else its logical date."""

    ui_color = "#e8f0fe"

    def __init__(self, *, source_id: str, obj: str, **kwargs: Any):
        super().__init__(**kwargs)
        self.source_id = source_id
        self.obj = obj

    def execute(self, context: Any, event: Any = None) -> dict:
        from b2b_cdp.backfill import QuotaExhausted, backfill_object

        try:
            result = backfill_object(self.source_id, self.obj, backfill_until(context))
        except QuotaExhausted as exc:
            self.log.info("%s; deferring", exc)
            self.defer(trigger=TimeDeltaTrigger(exc.resume_in), method_name="execute")
        return asdict(result)
