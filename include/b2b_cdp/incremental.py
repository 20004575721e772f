"""Incremental syncs: what changed at each source since the last sync, inside its latency windows.

Marketo: activities through paging tokens (up to 10 activity types per stream), lead changes
(then the changed leads themselves, 300 ids per call) and deleted leads. Salesforce: every object
by SystemModstamp with a lookback, through queryAll so deletions arrive as IsDeleted rows; a
record the lookback re-reads with the Id and SystemModstamp an earlier sync landed is not landed
again (and normalisation keeps the newest extraction of each Id). Each page is landed in the same transaction as
the cursor that follows it, so a crash never skips nor repeats a page.

Freshness (source change -> lake) is measured per batch on the source's own clock and recorded in
ops_freshness against the lake window (60 minutes by default).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Callable, Iterable, Iterator

from b2b_cdp import warehouse
from b2b_cdp.config import SalesforceSource, load_config
from b2b_cdp.ingest import SALESFORCE_FIELDS, iso_utc, land, marketo_source
from b2b_cdp.ingest import batch_id as ingest_batch_id   # local names `batch_id` are the ids it makes

log = logging.getLogger(__name__)

DELETED_WINDOW = timedelta(days=15)      # how far back Salesforce's getDeleted reaches
LAKE_WINDOW = timedelta(minutes=60)      # source change -> data lake (seed 003)
PROFILE_WINDOW = timedelta(minutes=10)   # source change -> profile
SALESFORCE_TIME = "%Y-%m-%dT%H:%M:%S.%f%z"   # 2026-06-01T09:00:00.000+0000
MAX_TYPES_PER_CALL = 10                  # Get Lead Activities takes up to 10 activityTypeIds


class _Stream:
    """One cursor-driven stream of a source, with its landing table and freshness field."""

    def __init__(self, source_id: str, stream: str, run_id: str):
        self.cfg = load_config()
        self.source_id, self.stream, self.run_id = source_id, stream, run_id
        self.sandbox = self.cfg.sandboxes_fed_by(source_id)[0]
        self.rows = 0

    def cursor(self) -> str | None:
        with warehouse.connect(self.sandbox) as conn:
            found = warehouse.fetch_all(conn, "incremental/get_cursor",
                                        {"source_id": self.source_id, "stream": self.stream})
        return found[0][0] if found else None

    def land_page(self, table: str, obj: str, page: int, records: Iterable[dict],
                  next_cursor: str, change_field: str, source_now: Callable[[], datetime],
                  api_calls: Callable[[], int]) -> int:
        batch_id = ingest_batch_id(self.source_id, self.run_id, self.stream, str(page))

        def advance(conn, rows: int) -> None:
            warehouse.run(conn, "incremental/set_cursor", {
                "source_id": self.source_id, "stream": self.stream, "cursor": next_cursor}).close()
            if rows:
                self.record_freshness(conn, table, batch_id, change_field, source_now())

        rows = land(self.cfg, self.source_id, table, obj, batch_id, source_now(), records,
                    api_calls=api_calls, then=advance)
        self.rows += rows
        return rows

    def record_freshness(self, conn, table: str, batch_id: str, change_field: str, now: datetime) -> None:
        with warehouse.run(conn, "incremental/batch_lake_lag", {
                "source_now": now, "batch_id": batch_id},
                identifiers={"table": table, "change_field": change_field}) as cur:
            rows, newest, p50, p95, worst = cur.fetchone()
        warehouse.run(conn, "incremental/record_freshness", {
            "source_id": self.source_id, "stream": self.stream, "run_id": self.run_id, "rows": rows,
            "newest_change": newest, "p50": p50, "p95": p95, "max": worst,
            "window_s": int(LAKE_WINDOW.total_seconds())}).close()
        if worst is not None and worst > LAKE_WINDOW.total_seconds():
            log.warning("%s %s: a change took %.0f s to reach the lake (window %d s)", self.source_id,
                        self.stream, worst, LAKE_WINDOW.total_seconds())


# ---------------------------------------------------------------------------- Marketo


def _start_token(client, stream: _Stream, run_at: datetime) -> str:
    """A stream's saved paging token, or a new one from where the backfill stopped."""
    token = stream.cursor()
    if token:
        return token
    with warehouse.connect(stream.sandbox) as conn:
        since = warehouse.fetch_all(conn, "incremental/backfill_end", {"source_id": stream.source_id})[0][0]
    since = since or run_at
    return client.call("GET", "/rest/v1/activities/pagingtoken.json",
                       params={"sinceDatetime": iso_utc(since)})["nextPageToken"]


def _paged_activities(client, stream: _Stream, path: str, params: dict, run_at: datetime,
                      table: str, obj: str, to_records, change_field: str = "activityDate") -> int:
    """Follow nextPageToken until moreResult is false, landing each page with its next token."""
    token, page = _start_token(client, stream, run_at), 0
    while True:
        body = client.call("GET", path, params={**params, "nextPageToken": token})
        results, token = body.get("result", []), body["nextPageToken"]
        page += 1
        stream.land_page(table, obj, page, to_records(results), token, change_field,
                         client.server_now, lambda: client.api_calls)
        if not body.get("moreResult"):
            return stream.rows


def sync_marketo_activities(source_id: str, run_id: str, run_at: datetime) -> int:
    cfg, source, client = marketo_source(source_id)
    with warehouse.connect(cfg.sandboxes_fed_by(source_id)[0]) as conn:
        type_ids = [row[0] for row in warehouse.fetch_all(
            conn, "incremental/activity_type_ids", {"instance": source.munchkin_id})]
    if not type_ids:
        type_ids = [t["id"] for t in client.activity_types()]
    total = 0
    for start in range(0, len(type_ids), MAX_TYPES_PER_CALL):
        group = type_ids[start:start + MAX_TYPES_PER_CALL]
        stream = _Stream(source_id, "activities:" + ",".join(map(str, group)), run_id)
        total += _paged_activities(
            client, stream, "/rest/v1/activities.json", {"activityTypeIds": ",".join(map(str, group))},
            run_at, "raw_marketo_activities", "activities", lambda results: results)
    log.info("%s: %d new activities", source_id, total)
    return total


def sync_marketo_leads(source_id: str, run_id: str, run_at: datetime) -> dict[str, int]:
    """Lead changes and new leads: the changed leads are read whole (every described field)."""
    cfg, source, client = marketo_source(source_id)
    fields = client.describe_fields("leads")
    stream = _Stream(source_id, "lead_changes", run_id)

    def changed_leads(results: list[dict]):
        ids = sorted({str(change["leadId"]) for change in results})
        return client.query("leads", "id", ids, fields=fields)

    changed = _paged_activities(client, stream, "/rest/v1/activities/leadchanges.json",
                                {"fields": ",".join(fields)}, run_at, "raw_marketo_leads", "leads",
                                changed_leads, change_field="updatedAt")
    deleted_stream = _Stream(source_id, "deleted_leads", run_id)
    deleted = _paged_activities(client, deleted_stream, "/rest/v1/activities/deletedleads.json", {},
                                run_at, "raw_marketo_deleted_leads", "deleted_leads",
                                lambda results: results)
    log.info("%s: %d changed leads landed, %d deletions", source_id, changed, deleted)
    return {"changed": changed, "deleted": deleted}


# ---------------------------------------------------------------------------- Salesforce


def sync_salesforce_object(source_id: str, obj: str, run_id: str, run_at: datetime) -> int:
    """Rows with SystemModstamp after the cursor minus the lookback (records can commit with a
    SystemModstamp earlier than one already seen); queryAll brings deletions as IsDeleted rows."""
    from b2b_cdp.sources.salesforce import SalesforceClient

    cfg = load_config()
    source: SalesforceSource = cfg.source(source_id)
    client = SalesforceClient.from_connection(source.conn_id, source.api_version)
    stream = _Stream(source_id, f"sobject:{obj}", run_id)
    cursor = stream.cursor()   # set by the backfill to the newest change it landed
    since = datetime.fromisoformat(cursor) - timedelta(seconds=source.lookback_seconds) if cursor else None
    where = f" WHERE SystemModstamp > {iso_utc(since)}" if since else ""
    soql = f"SELECT {', '.join(SALESFORCE_FIELDS[obj])} FROM {obj}{where} ORDER BY SystemModstamp"
    tracker = NewestChange(cursor)
    table = f"raw_salesforce_{obj.lower()}"
    batch_id = ingest_batch_id(source_id, run_id, stream.stream)
    keys = {"source_id": source_id, "stream": stream.stream}
    with warehouse.connect(stream.sandbox) as conn:
        recent = RecentRecords(warehouse.fetch_all(conn, "incremental/recent_records", keys))

    def advance(conn, rows: int) -> None:
        tracker.save(conn, source_id, stream.stream)
        if tracker.newest is not None:
            warehouse.run(conn, "incremental/remember_recent", {
                **keys, **recent.landed_arrays(),
                "keep_after": tracker.newest - timedelta(seconds=source.lookback_seconds)}).close()
        if rows:
            stream.record_freshness(conn, table, batch_id, "SystemModstamp", client.server_now())

    rows = land(cfg, source_id, table, obj, batch_id, run_at,
                recent.new_only(tracker.watch(client.query(soql, include_deleted=True))),
                api_calls=lambda: client.api_calls, then=advance)
    log.info("%s %s: %d changed rows since %s (%d re-read within the lookback, already landed)", source_id,
             obj, rows, since.isoformat() if since else "the start", recent.skipped)
    return rows + sweep_salesforce_deletions(source_id, obj, run_id, client)


class RecentRecords:
    """The (Id, SystemModstamp) pairs a stream's earlier syncs landed within the lookback: records
    streaming by that are among them are passed over; the others are noted as landed."""

    def __init__(self, landed_before: Iterable[tuple[str, datetime]]):
        self.before = set(landed_before)
        self.landed: list[tuple[str, datetime]] = []
        self.skipped = 0

    def new_only(self, records: Iterable[dict]) -> Iterator[dict]:
        for record in records:
            stamp = record.get("SystemModstamp")
            key = (record.get("Id"), datetime.strptime(stamp, SALESFORCE_TIME)) if stamp else None
            if key in self.before:
                self.skipped += 1
                continue
            if key is not None and key[0]:
                self.landed.append(key)
            yield record

    def landed_arrays(self) -> dict[str, list]:
        return {"record_ids": [k[0] for k in self.landed], "modstamps": [k[1] for k in self.landed]}


def sweep_salesforce_deletions(source_id: str, obj: str, run_id: str, client) -> int:
    """getDeleted since the last sweep (15 days at most): a record deleted and then purged from the
    recycle bin, which queryAll no longer returns, still leaves the profile. Each deletion lands
    as an IsDeleted row of its object."""
    cfg = load_config()
    stream = _Stream(source_id, f"deleted:{obj}", run_id)
    now = client.server_now()
    earliest = now - DELETED_WINDOW + timedelta(minutes=1)
    cursor = stream.cursor()
    start = max(datetime.fromisoformat(cursor), earliest) if cursor else earliest
    if now - start < timedelta(minutes=1):   # getDeleted counts in whole minutes
        return 0
    body = client.deleted(obj, iso_utc(start), iso_utc(now))
    covered = datetime.strptime(body["latestDateCovered"], SALESFORCE_TIME)
    records = [{"Id": d["id"], "IsDeleted": "true", "SystemModstamp": d["deletedDate"]}
               for d in body.get("deletedRecords", [])]

    def advance(conn, rows: int) -> None:
        warehouse.run(conn, "incremental/set_cursor", {
            "source_id": source_id, "stream": stream.stream, "cursor": covered.isoformat()}).close()

    rows = land(cfg, source_id, f"raw_salesforce_{obj.lower()}", obj,
                ingest_batch_id(source_id, run_id, stream.stream), now,
                records, api_calls=lambda: client.api_calls, then=advance)
    if rows:
        log.info("%s %s: %d deletion(s) from getDeleted up to %s", source_id, obj, rows, covered.isoformat())
    return rows


class NewestChange:
    """Follows the newest SystemModstamp of records streaming by; saved as the stream's cursor."""

    def __init__(self, cursor: str | None = None):
        self.newest = datetime.fromisoformat(cursor) if cursor else None

    def watch(self, records: Iterable[dict]) -> Iterator[dict]:
        for record in records:
            stamp = record.get("SystemModstamp")
            if stamp:
                moment = datetime.strptime(stamp, SALESFORCE_TIME)
                self.newest = moment if self.newest is None else max(self.newest, moment)
            yield record

    def save(self, conn, source_id: str, stream: str) -> None:
        if self.newest is not None:
            warehouse.run(conn, "incremental/set_cursor", {
                "source_id": source_id, "stream": stream, "cursor": self.newest.isoformat()}).close()
