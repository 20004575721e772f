"""Quota-aware, resumable Marketo historical backfill through Bulk Extract.

The backfill is planned as 31-day windows per object and kept in ops_bulk_job: each window's
export id is recorded before the job is queued, so a crash resumes the same export (already paid
for in export quota) instead of creating another. When the day's export quota is used up, the
backfill stops without burning calls and says when to resume: the next midnight in Marketo's time
zone (US Central), read from the instance's own clock.
"""

from __future__ import annotations

import logging
import math
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from b2b_cdp import warehouse
from b2b_cdp.ingest import bulk_windows, iso_utc, land, marketo_source

log = logging.getLogger(__name__)

QUOTA_TIMEZONE = ZoneInfo("America/Chicago")   # Marketo's daily limits reset at midnight Central
RESUME_MARGIN = timedelta(minutes=1)
# Windows queued ahead of the one landing: Marketo builds 2 exports at a time (10 may queue), so
# two ahead keep both of its slots busy while a file lands.
LOOK_AHEAD = 2
# Windows landing at once in one task: while one file's download waits on the source, another's
# COPY keeps the warehouse busy.
LANDING_SLOTS = 2


class QuotaExhausted(Exception):
    """The day's export quota is used: resume after `resume_in` (source-clock seconds)."""

    def __init__(self, source_id: str, resume_in: timedelta, used: int, quota: int):
        super().__init__(f"{source_id}: daily export quota used ({used:,} of {quota:,} bytes); "
                         f"resuming in {resume_in}")
        self.resume_in = resume_in


@dataclass
class BackfillResult:
    windows_total: int
    windows_done: int
    rows: int
    bytes: int


def quota_day(source_now: datetime):
    return source_now.astimezone(QUOTA_TIMEZONE).date()


def until_quota_reset(source_now: datetime) -> timedelta:
    local = source_now.astimezone(QUOTA_TIMEZONE)
    midnight = datetime.combine(local.date() + timedelta(days=1), datetime.min.time(), QUOTA_TIMEZONE)
    return midnight - local + RESUME_MARGIN


def predict_days(remaining_bytes: int, left_today: int, daily_quota: int) -> int:
    """Quota days a backfill of `remaining_bytes` needs, counting today (with `left_today` unused)."""
    if remaining_bytes <= max(left_today, 0):
        return 1
    return 1 + math.ceil((remaining_bytes - max(left_today, 0)) / daily_quota)


def _bulk_body(obj: str, start: datetime, end: datetime, fields: list[str] | None) -> dict:
    body: dict = {"format": "CSV", "filter": {"createdAt": {"startAt": iso_utc(start), "endAt": iso_utc(end)}}}
    if fields:
        body["fields"] = fields
    return body


def backfill_object(source_id: str, obj: str, until: datetime, *, client=None) -> BackfillResult:
    """Bring every window of `obj` up to `until` into the lake; raises QuotaExhausted to pause."""
    from b2b_cdp.sources.marketo import MarketoError

    cfg, source, client = marketo_source(source_id, client)
    sandbox = cfg.sandboxes_fed_by(source_id)[0]   # ops state lives with the first sandbox fed
    quota = source.daily_export_quota_mb * 1_000_000
    keys = {"source_id": source_id, "object": obj}
    start = (source.activities_backfill_start if obj == "activities" else None) or source.backfill_start
    windows = bulk_windows(start, until)
    with warehouse.connect(sandbox) as conn:
        warehouse.run(conn, "backfill/plan_windows", {
            **keys, "starts": [w[0] for w in windows], "ends": [w[1] for w in windows]}).close()
        planned = warehouse.fetch_all(conn, "backfill/windows", {**keys, "until": until})

    fields = None
    if obj == "leads":
        # Every field the instance exposes, so a new custom field lands without a code change.
        fields = client.describe_fields("leads")
    key_field = "id" if obj == "leads" else "marketoGUID"

    def save(conn_sql: str, params: dict) -> None:
        with warehouse.connect(sandbox) as conn:
            warehouse.run(conn, conn_sql, {**keys, **params}).close()

    def submit(start: datetime, end: datetime, export_id: str | None) -> str:
        """The window's export, created (recorded before queueing) and queued; returns its id."""
        window = {"window_start": start}
        job = client.export_status(obj, export_id) if export_id else None
        if job is None or job["status"] in ("Failed", "Canceled"):
            used = _bytes_used(sandbox, source_id, client.server_now())
            if used >= quota:
                raise QuotaExhausted(source_id, until_quota_reset(client.server_now()), used, quota)
            try:
                export_id = client.create_export(obj, _bulk_body(obj, start, end, fields))
            except MarketoError as exc:
                _pause_if_quota(exc, sandbox, source_id, client, quota)
                raise
            # Recorded before queueing: from here on a crash resumes this export.
            save("backfill/update_job", {**window, "export_id": export_id, "status": "Created",
                                         "file_size": None, "created_at": client.server_now()})
            job = {"status": "Created"}
        if job["status"] == "Created":
            try:
                client.enqueue_export(obj, export_id)
            except MarketoError as exc:
                _pause_if_quota(exc, sandbox, source_id, client, quota)
                raise
        return export_id

    def collect(start: datetime, export_id: str, status: str | None, batch_id: str) -> None:
        """Wait for the window's export, charge it to the day's quota once, land it."""
        window = {"window_start": start}
        job = client.wait_for_export(obj, export_id)
        if job["status"] != "Completed":
            save("backfill/update_job", {**window, "export_id": export_id, "status": job["status"],
                                         "file_size": None, "created_at": None})
            raise MarketoError("bulk", f"export {export_id} ended {job['status']}; the next run retries "
                                       "this window", f"/bulk/v1/{obj}")
        file_size = int(job.get("fileSize") or 0)
        if status != "Completed":
            # Marketo charges the export quota when a job completes, by its file size.
            with warehouse.connect(sandbox) as conn:
                warehouse.run(conn, "backfill/update_job", {**keys, **window, "export_id": export_id,
                              "status": "Completed", "file_size": file_size, "created_at": None}).close()
                warehouse.run(conn, "backfill/add_export_bytes", {
                    "source_id": source_id, "quota_day": quota_day(client.server_now()),
                    "bytes": file_size}).close()
        loaded = _land_export(cfg, source_id, obj, batch_id, until, client, export_id, key_field)
        save("backfill/mark_loaded", {**window, "rows": loaded, "file_size": file_size})
        _report_progress(sandbox, source_id, obj, until, quota, client.server_now())

    # While windows' files land (LANDING_SLOTS at once, each in its own transaction), Marketo
    # already builds the next ones' (it runs 2 jobs at a time): the source's export time overlaps
    # our landing instead of adding to it, and one file's download waits overlap another's COPY.
    pending = [row for row in planned if row[3] != "loaded"]
    submitted: dict[datetime, str] = {}
    # Leaving this block, by an error too, waits for the windows still landing.
    with ThreadPoolExecutor(LANDING_SLOTS, thread_name_prefix=f"backfill-{obj}") as landing:
        running: set[Future] = set()
        for index, (start, end, export_id, status, batch_id) in enumerate(pending):
            if start not in submitted:
                submitted[start] = submit(start, end, export_id)
            for ahead in pending[index + 1:index + 1 + LOOK_AHEAD]:
                if ahead[0] in submitted:
                    continue
                try:
                    submitted[ahead[0]] = submit(ahead[0], ahead[1], ahead[2])
                except QuotaExhausted:
                    break   # the windows queued still land; the next turn pauses the backfill
            running.add(landing.submit(collect, start, submitted[start], status, batch_id))
            if len(running) >= LANDING_SLOTS:
                finished, running = wait(running, return_when=FIRST_COMPLETED)
                for future in finished:
                    future.result()     # a failed window stops the run; the next run retries it
        for future in wait(running).done:
            future.result()
    return _report_progress(sandbox, source_id, obj, until, quota, client.server_now())


def _land_export(cfg, source_id: str, obj: str, batch_id: str, until: datetime, client, export_id: str,
                 key_field: str) -> int:
    """The export file straight into COPY (no per-row Python); a file COPY refuses (a malformed
    row) is downloaded again and landed row by row, the bad row flagged for the landing checkpoint."""
    table = f"raw_marketo_{obj}"

    def copy_file(conn, **batch) -> int:
        return warehouse.land_raw_csv(conn, table, chunks=client._export_bytes(obj, export_id),
                                      key_column=key_field, **batch)

    try:
        return land(cfg, source_id, table, obj, batch_id, until, loader=copy_file,
                    api_calls=lambda: client.api_calls)
    except warehouse.MalformedFile as exc:
        log.warning("Export %s: COPY refused the file (%s); landing it row by row", export_id, exc)
    return land(cfg, source_id, table, obj, batch_id, until, client.export_rows(obj, export_id),
                api_calls=lambda: client.api_calls)


def _pause_if_quota(exc, sandbox, source_id: str, client, quota: int) -> None:
    """Marketo refuses create and enqueue with 1029 once the day's export quota is spent
    (possibly by another client of the instance): pause until the reset rather than fail."""
    if exc.code == "1029" and "quota" in exc.message.lower():
        used = max(_bytes_used(sandbox, source_id, client.server_now()), quota)
        raise QuotaExhausted(source_id, until_quota_reset(client.server_now()), used, quota) from None


def _bytes_used(sandbox, source_id: str, source_now: datetime) -> int:
    with warehouse.connect(sandbox) as conn:
        return warehouse.fetch_all(conn, "backfill/export_bytes_used", {
            "source_id": source_id, "quota_day": quota_day(source_now)})[0][0]


def _report_progress(sandbox, source_id: str, obj: str, until: datetime, quota: int,
                     source_now: datetime) -> BackfillResult:
    with warehouse.connect(sandbox) as conn:
        total, done, rows, size = warehouse.fetch_all(conn, "backfill/totals", {
            "source_id": source_id, "object": obj, "until": until})[0]
        used = warehouse.fetch_all(conn, "backfill/export_bytes_used", {
            "source_id": source_id, "quota_day": quota_day(source_now)})[0][0]
        remaining = (size / done) * (total - done) if done else None
        days = predict_days(int(remaining), quota - used, quota) if remaining is not None else None
        finish = source_now + timedelta(days=days - 1) if days else None
        warehouse.run(conn, "backfill/record_progress", {
            "source_id": source_id, "object": obj, "windows_total": total, "windows_done": done,
            "rows": rows, "bytes": size, "quota_used_today": used, "predicted_days": days,
            "predicted_finish": finish}).close()
    log.info("Backfill %s %s: %d/%d windows, %d rows, %d bytes; export quota used today %d of %d; "
             "predicted %s quota day(s)", source_id, obj, done, total, rows, size, used, quota,
             days if days is not None else "?")
    return BackfillResult(total, done, rows, size)
