"""Ingest: land source records in the raw lake (COPY), then normalise them into core (set-based SQL).

Every landing is one batch with a deterministic id (DAG run + object + window), replaced as a whole
when the task is re-run, so retries never duplicate rows.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import re
from datetime import datetime, timedelta, timezone
from typing import Iterable, Iterator

from b2b_cdp import warehouse
from b2b_cdp.config import CdpConfig, MarketoSource, MdmSource, SalesforceSource, WebEventsSource, load_config

log = logging.getLogger(__name__)

BULK_WINDOW = timedelta(days=31)   # Marketo refuses bulk date filters spanning more than 31 days
# As activation_organization_urn's check (ASCII digits: \d would take any Unicode digit).
ORGANIZATION_URN = re.compile(r"urn:li:organization:[0-9]+")

SALESFORCE_FIELDS: dict[str, list[str]] = {
    "Account": ["Id", "Name", "Website", "Industry", "AnnualRevenue", "IsDeleted", "SystemModstamp"],
    "Contact": ["Id", "AccountId", "Email", "FirstName", "LastName", "Title", "IsDeleted", "SystemModstamp"],
    "Lead": ["Id", "Email", "Company", "IsConverted", "ConvertedAccountId", "ConvertedContactId",
             "IsDeleted", "SystemModstamp"],
    "Opportunity": ["Id", "AccountId", "Name", "Amount", "StageName", "IsClosed", "IsWon", "CloseDate",
                    "IsDeleted", "SystemModstamp"],
    "OpportunityContactRole": ["Id", "OpportunityId", "ContactId", "Role", "IsPrimary", "IsDeleted",
                               "SystemModstamp"],
}

# Which normalisation statements each source type runs, in order (types before activities).
NORMALIZE_STEPS = {
    "marketo": ["marketo_leads", "marketo_deleted_leads", "marketo_companies", "marketo_opportunities",
                "marketo_activities"],
    "salesforce": ["salesforce_account", "salesforce_contact", "salesforce_lead", "salesforce_opportunity",
                   "salesforce_opportunitycontactrole"],
    "mdm": ["mdm_crossref", "mdm_organization_urn"],
    "web_events": ["web_events"],
}


def batch_id(source_id: str, run_id: str, *parts: str) -> str:
    """A landing batch's id: it starts with the source, because DAGs scheduled at the same time share
    a run id and one source's batch must never replace another's rows."""
    return ":".join((source_id, run_id, *parts))


def bulk_windows(start: datetime, end: datetime, size: timedelta = BULK_WINDOW) -> list[tuple[datetime, datetime]]:
    """Consecutive [start, end) windows no longer than `size` covering the whole range."""
    windows, cursor = [], start
    while cursor < end:
        windows.append((cursor, min(cursor + size, end)))
        cursor += size
    return windows


def iso_utc(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def land(cfg: CdpConfig, source_id: str, table: str, obj: str, batch_id: str, extracted_at: datetime,
         records: Iterable[dict] | None = None, api_calls=lambda: 0, then=None,
         loader=None) -> int:
    """Land a batch in every sandbox the source feeds: streamed once, copied to the other sandboxes.
    The rows come from `records` (parsed source records) or from `loader(conn, **batch)`, which
    writes them itself (e.g. a whole CSV file through COPY). `then(conn, rows)` runs in the same
    transaction (e.g. to move a sync cursor with the rows)."""
    sandboxes = cfg.sandboxes_fed_by(source_id)
    first = sandboxes[0]
    calls_before = api_calls()  # the records are fetched while they stream into COPY
    batch = {"batch_id": batch_id, "instance": _instance(cfg, source_id)}
    with warehouse.connect(first) as conn:
        rows = (loader(conn, **batch) if loader is not None
                else warehouse.land_raw(conn, table, records=records, **batch))
        for other in sandboxes[1:]:
            warehouse.use_sandbox(conn, first)
            warehouse.replicate_batch(conn, table, source=first, target=other, **batch)
        # Every sandbox records the batch: its own landing checkpoint looks for it there.
        record = {"batch_id": batch_id, "source_id": source_id, "object": obj, "rows": rows,
                  "api_calls": api_calls() - calls_before, "extracted_at": extracted_at}
        for sandbox in reversed(sandboxes):   # ends on the first sandbox, where `then` works
            warehouse.use_sandbox(conn, sandbox)
            warehouse.run(conn, "ops/record_ingest_batch", record).close()
        if then is not None:
            then(conn, rows)
    log.info("Landed %d %s rows from %s in %s (batch %s)", rows, obj, source_id,
             ", ".join(s.schema for s in sandboxes), batch_id)
    return rows


def _instance(cfg: CdpConfig, source_id: str) -> str:
    source = cfg.source(source_id)
    if isinstance(source, MarketoSource):
        return source.munchkin_id
    if isinstance(source, SalesforceSource):
        return source.org_id
    return source.id


# ---------------------------------------------------------------------------- Marketo


def marketo_source(source_id: str, client=None):
    """The configuration, a Marketo source of it and a client on its connection."""
    from b2b_cdp.sources.marketo import MarketoClient

    cfg = load_config()
    source: MarketoSource = cfg.source(source_id)
    return cfg, source, client or MarketoClient.from_connection(source.conn_id)


def land_marketo_activity_types(source_id: str, run_id: str, extracted_at: datetime) -> int:
    cfg, source, client = marketo_source(source_id)
    return land(cfg, source_id, "raw_marketo_activity_types", "activity_types", batch_id(source_id, run_id, "activity_types"),
                extracted_at, client.activity_types(), api_calls=lambda: client.api_calls)


def land_marketo_b2b_objects(source_id: str, run_id: str, extracted_at: datetime) -> dict[str, int]:
    """Companies and opportunities of the accounts the landed leads belong to (the REST query
    needs filter values: on CRM-synced instances these are the CRM account ids)."""
    cfg, source, client = marketo_source(source_id)
    with warehouse.connect(cfg.sandboxes_fed_by(source_id)[0]) as conn:
        account_ids = [row[0] for row in warehouse.fetch_all(
            conn, "raw/marketo_lead_account_ids", {"instance": source.munchkin_id})]
    companies = client.query("companies", "externalCompanyId", account_ids,
                             fields=client.describe_fields("companies"))
    counts = {"companies": land(cfg, source_id, "raw_marketo_companies", "companies",
                                batch_id(source_id, run_id, "companies"), extracted_at, companies,
                                api_calls=lambda: client.api_calls)}
    opportunities = client.query("opportunities", "externalCompanyId", account_ids,
                                 fields=client.describe_fields("opportunities"))
    counts["opportunities"] = land(cfg, source_id, "raw_marketo_opportunities", "opportunities",
                                   batch_id(source_id, run_id, "opportunities"), extracted_at, opportunities,
                                   api_calls=lambda: client.api_calls)
    return counts


# ---------------------------------------------------------------------------- Salesforce


def land_salesforce_object(source_id: str, obj: str, run_id: str, extracted_at: datetime) -> int:
    """Backfill one object: a Bulk API 2.0 query streamed into COPY (or, with backfill_api: rest,
    REST query pages). Either way the newest SystemModstamp landed becomes the incremental cursor."""
    from b2b_cdp.incremental import NewestChange
    from b2b_cdp.sources.salesforce import SalesforceClient

    cfg = load_config()
    source: SalesforceSource = cfg.source(source_id)
    client = SalesforceClient.from_connection(source.conn_id, source.api_version)
    soql = f"SELECT {', '.join(SALESFORCE_FIELDS[obj])} FROM {obj}"
    table, landing_id, stream = f"raw_salesforce_{obj.lower()}", batch_id(source_id, run_id, obj), f"sobject:{obj}"
    if source.backfill_api == "rest":
        tracker = NewestChange()
        return land(cfg, source_id, table, obj, landing_id, extracted_at,
                    tracker.watch(client.query(soql)), api_calls=lambda: client.api_calls,
                    then=lambda conn, rows: tracker.save(conn, source_id, stream))

    poll = float(client.credentials_extra.get("bulk_poll_seconds", 2.0))

    def copy_results(conn, **batch) -> int:
        return warehouse.land_raw_csv(conn, table, chunks=client.bulk_query_csv(soql, poll_seconds=poll),
                                      key_column="Id", null_marker="", **batch)

    def save_cursor(conn, rows: int) -> None:
        warehouse.run(conn, "incremental/cursor_from_batch", {
            "source_id": source_id, "stream": stream, "batch_id": landing_id},
            identifiers={"table": table}).close()

    return land(cfg, source_id, table, obj, landing_id, extracted_at, loader=copy_results,
                api_calls=lambda: client.api_calls, then=save_cursor)


# ---------------------------------------------------------------------------- MDM file drop


def read_mdm_crossref(text_lines: Iterable[str]) -> Iterator[dict]:
    """The rows of a cross-reference file. A bad row raises while the rows stream into the landing
    transaction, so nothing of that drop lands and the earlier drops stay."""
    reader = csv.DictReader(text_lines)
    missing = {"mdm_id", "member_source_key"} - set(reader.fieldnames or [])
    if missing:
        raise ValueError(f"MDM cross-reference file lacks column(s) {sorted(missing)}")
    urns: dict[str, tuple[str, int]] = {}   # mdm_id -> its URN and the line that first gave it
    for line, row in enumerate(reader, start=2):
        if not row["mdm_id"] or not row["member_source_key"]:
            raise ValueError(f"MDM cross-reference line {line}: empty mdm_id or member_source_key")
        urn = row.get("linkedin_organization_urn")
        if urn:   # optional column; an empty cell says nothing
            if not ORGANIZATION_URN.fullmatch(urn):
                raise ValueError(f"MDM cross-reference line {line}: linkedin_organization_urn {urn!r} "
                                 "is not urn:li:organization:<digits>")
            known, first = urns.setdefault(row["mdm_id"], (urn, line))
            if known != urn:
                raise ValueError(f"MDM cross-reference line {line}: {row['mdm_id']!r} has linkedin_organization_urn "
                                 f"{urn!r}, but line {first} gave it {known!r}")
        yield row


def land_mdm(source_id: str, run_id: str, extracted_at: datetime) -> int:
    from airflow.sdk import ObjectStoragePath

    cfg = load_config()
    source: MdmSource = cfg.source(source_id)
    path = ObjectStoragePath(source.path.rstrip("/") + "/crossref.csv")
    if not path.exists():
        raise FileNotFoundError(f"no MDM cross-reference file at {path} (sources: {source_id}.path)")
    with path.open("rb") as handle:
        lines = io.TextIOWrapper(handle, encoding="utf-8", newline="")
        return land(cfg, source_id, "raw_mdm_crossref", "crossref", batch_id(source_id, run_id, "crossref"), extracted_at,
                    read_mdm_crossref(lines))


# ---------------------------------------------------------------------------- web events file drop


def read_web_events(lines: Iterable[str], name: str) -> Iterator[dict]:
    """JSON lines, one event each; a line that is not a JSON object lands flagged, not dropped."""
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            event = json.loads(line)
        except ValueError as exc:
            event = {"_parse_error": f"{name} line {number}: not JSON ({exc.msg})"}
        if not isinstance(event, dict):
            event = {"_parse_error": f"{name} line {number}: not a JSON object"}
        yield event


def land_web_events(source_id: str, run_id: str, extracted_at: datetime) -> int:
    """Land every new or grown *.jsonl file of the drop folder, one batch per file (a grown file
    replaces its earlier batch). A file's size is its cursor: unchanged files are not re-read."""
    from airflow.sdk import ObjectStoragePath

    cfg = load_config()
    source: WebEventsSource = cfg.source(source_id)
    folder = ObjectStoragePath(source.path.rstrip("/"))
    files = sorted(folder.glob("*.jsonl"), key=lambda p: p.name) if folder.exists() else []
    total = 0
    for path in files:
        size, stream = str(path.stat().st_size), f"file:{path.name}"
        with warehouse.connect(cfg.sandboxes_fed_by(source_id)[0]) as conn:
            seen = warehouse.fetch_all(conn, "incremental/get_cursor", {"source_id": source_id, "stream": stream})
        if seen and seen[0][0] == size:
            continue

        def remember(conn, rows: int, stream=stream, size=size) -> None:
            warehouse.run(conn, "incremental/set_cursor",
                          {"source_id": source_id, "stream": stream, "cursor": size}).close()

        with path.open("rb") as handle:
            lines = io.TextIOWrapper(handle, encoding="utf-8", newline="")
            total += land(cfg, source_id, "raw_web_events", "events", f"{source_id}:{path.name}", extracted_at,
                          read_web_events(lines, path.name), then=remember)
    log.info("%s: %d web events landed from %d file(s) in %s", source_id, total, len(files), folder)
    return total


# ---------------------------------------------------------------------------- raw -> core


def normalize(source_id: str) -> int:
    """Bring the source's raw batches not normalised yet into core, in every sandbox it feeds
    (set-based upserts; the batches are marked in the same transaction, so a failed run leaves
    them for the next). Returns how many of the batches normalised held rows, over every sandbox."""
    cfg = load_config()
    source = cfg.source(source_id)
    crm_org = source.crm.org_id if isinstance(source, MarketoSource) and source.crm else None
    normalized = 0
    for sandbox in cfg.sandboxes_fed_by(source_id):
        with warehouse.connect(sandbox) as conn:
            pending = warehouse.fetch_all(conn, "ops/pending_batches", {"source_id": source_id})
            batch_ids = [batch_id for batch_id, _rows in pending]
            if not batch_ids:
                log.info("%s: no new %s batch to normalise", sandbox.schema, source_id)
                continue
            params = {"source_id": source_id, "instance": _instance(cfg, source_id), "crm_org": crm_org,
                      "batch_ids": batch_ids}
            for step in NORMALIZE_STEPS[source.type]:
                with warehouse.run(conn, f"normalize/{step}", params) as cur:
                    log.info("%s: %s upserted %d core rows", sandbox.schema, step, cur.rowcount)
            warehouse.run(conn, "ops/mark_normalized", {"batch_ids": batch_ids}).close()
            log.info("%s: %d %s batch(es) normalised", sandbox.schema, len(batch_ids), source_id)
            normalized += sum(1 for _batch_id, rows in pending if rows)
    return normalized
