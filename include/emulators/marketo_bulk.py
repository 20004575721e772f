"""Marketo Bulk Extract: export jobs for leads and activities, their shared queue and daily quota."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import shutil
import tempfile
import threading
import time
import uuid
import weakref
from array import array
from bisect import bisect_left
from datetime import datetime, timedelta, timezone
from itertools import islice
from json.encoder import encode_basestring_ascii
from pathlib import Path

from .faults import malform_csv_line
from .marketo_catalog import (
    ACTIVITY_COLUMNS, ACTIVITY_OPTIONAL_COLUMNS, DELETE_LEAD_TYPE, MarketoError,
)
from .persist import atomic_open
from .timeutil import central_day, format_marketo, parse_datetime, try_parse_datetime

MAX_PROCESSING = 2          # jobs exporting at once
MAX_IN_QUEUE = 10           # Queued + Processing, shared by leads and activities
DAILY_QUOTA_BYTES = 500 * 1024 * 1024
MAX_DATE_RANGE = timedelta(days=31)
JOB_VISIBILITY = timedelta(days=7)
STATUSES = ("Created", "Queued", "Processing", "Canceled", "Completed", "Failed")
DELIMITERS = {"CSV": ",", "TSV": "\t", "SSV": ";"}
CONTENT_TYPES = {"CSV": "text/csv", "TSV": "text/tab-separated-values", "SSV": "text/plain"}
LEAD_FILTERS = ("createdAt", "updatedAt", "staticListId", "staticListName", "smartListId", "smartListName")
ACTIVITY_FILTERS = ("createdAt", "activityTypeIds", "primaryAttributeValueIds", "primaryAttributeValues")
# Public job attributes, in the order Marketo writes them; unset ones are left out.
# A status call on a job whose file is still being built waits this long for it before answering
# Processing: a small export is Completed by the first poll, large ones build while the client works.
BUILD_WAIT_SECONDS = 2.0
STALL_CHECK_SECONDS = 0.05
JOB_FIELDS = ("exportId", "format", "status", "createdAt", "queuedAt", "startedAt", "finishedAt",
              "numberOfRecords", "fileSize", "fileChecksum")


class BulkExports:
    """Export jobs of one Marketo instance. Callers hold the instance lock.

    As in Marketo, the queue is worked whether or not anyone polls: a queued job starts Processing
    as soon as one of the MAX_PROCESSING slots is free, its file is built in the background while
    the instance goes on answering other calls, and the job is Completed the moment its file is
    written. A status call reports the state the job is in, so a poll can see Queued and then
    Completed, as Marketo's can."""

    def __init__(self, instance, export_dir: Path | None) -> None:
        self.instance = instance
        # Export files live on disk, in the state's export folder or else in a scratch folder
        # removed with this object (or by close()).
        self.export_dir = export_dir
        self._scratch: tuple[Path, weakref.finalize] | None = None
        self.jobs: dict[str, dict] = {}
        self.quota = {"day": None, "bytes": 0}
        self.daily_quota_bytes = DAILY_QUOTA_BYTES
        self._activity_dates = _DateIndex("activityDate")
        self._activity_cells = _RenderedColumns(json_field="attributes")
        self._lead_cells = _RenderedColumns()      # rendered afresh after any lead changes
        self._lead_dates = {key: _DateIndex(key) for key in ("createdAt", "updatedAt")}
        self._builds: dict[str, dict] = {}                  # export id -> its build in the background
        self._built = threading.Condition(instance.lock)    # notified when a build ends
        self._closed = False

    def close(self) -> None:
        """Remove the scratch folder, if files went there; the state's export folder stays."""
        self._closed = True                 # builds still running end without touching the state
        if self._scratch is not None:
            self._scratch[1]()
            self._scratch = None

    def build_indexes(self) -> None:
        """The date lookups of every record and the cells of activities and leads, built when the
        instance starts (as a database keeps its indexes and its records), so that an export of a
        large instance neither parses millions of dates under the instance lock nor renders records
        on the way. Leads changed later are rendered again by the next export that takes them."""
        self._activity_dates.catch_up(self.instance.activities)
        for index in self._lead_dates.values():
            index.catch_up(self.instance.leads)
        for field in ACTIVITY_COLUMNS:
            self._activity_cells.column(self.instance.activities, field, DELIMITERS["CSV"])
        for field in self.instance.lead_fields:
            self._lead_cells.column(self.instance.leads, field, DELIMITERS["CSV"])

    def leads_changed(self) -> None:
        """Leads were added, removed or changed in place: their date lookups start over."""
        for index in self._lead_dates.values():
            index.reset()
        self._lead_cells.reset()

    # ------------------------------------------------------------------------------- persistence

    def to_state(self) -> dict:
        return {"jobs": list(self.jobs.values()), "quota": dict(self.quota)}

    def load_state(self, state: dict) -> None:
        self.jobs = {job["exportId"]: job for job in state.get("jobs", [])}
        self.quota = dict(state.get("quota") or self.quota)

    # ------------------------------------------------------------------------------- operations

    def create(self, obj: str, body) -> dict:
        if not isinstance(body, dict):
            raise MarketoError("1003", "Request body must be a JSON object")
        self._check_quota()
        fmt = str(body.get("format") or "CSV").upper()
        if fmt not in DELIMITERS:
            raise MarketoError("1003", f"Invalid format '{body.get('format')}', expected one of CSV, TSV, SSV")
        headers = body.get("columnHeaderNames") or {}
        if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
            raise MarketoError("1003", "columnHeaderNames must map field names to header names")
        spec = (self._lead_spec if obj == "leads" else self._activity_spec)(body)
        spec["columnHeaderNames"] = {str(k): v for k, v in headers.items()}
        job = {
            "exportId": str(uuid.uuid4()), "object": obj, "format": fmt, "status": "Created",
            "createdAt": format_marketo(self.instance.now()), "spec": spec,
        }
        self.jobs[job["exportId"]] = job
        self.instance.save_state()
        return job

    def enqueue(self, obj: str, export_id: str) -> dict:
        job = self.job(obj, export_id)
        if job.get("queuedAt"):     # also once it ran: a retried enqueue finds its job done at once
            raise MarketoError("1029", "Job already queued")
        if job["status"] != "Created":
            raise MarketoError("1003", f"Job is {job['status']}, only a Created job can be enqueued")
        self._check_quota()
        if self._count("Queued", "Processing") >= MAX_IN_QUEUE:
            raise MarketoError("1029", "Too many jobs in queue")
        job["status"] = "Queued"
        job["queuedAt"] = format_marketo(self.instance.now())
        self.instance.save_state()
        answer = dict(job)              # the answer is the job as queued; the queue moves on from there
        self._work_queue()
        return answer

    def poll(self, obj: str, export_id: str) -> dict:
        """Status of a job. A job whose file is being built is waited for, up to BUILD_WAIT_SECONDS
        (the instance lock is released meanwhile), so that a small export is Completed by the
        first poll and tests need no sleeps."""
        job = self.job(obj, export_id)
        self._work_queue()          # after a restart, the queue goes on from its saved state
        build = self._builds.get(export_id)
        if job["status"] == "Processing" and build is not None and not self._stalled(obj):
            self._built.wait_for(lambda: build["done"], timeout=BUILD_WAIT_SECONDS)
        return job

    def _work_queue(self) -> None:
        """Start the builds Marketo would be running: a processing job's (after a restart its file
        is built again, as the job never completed), then queued jobs', oldest first, while fewer
        than MAX_PROCESSING jobs are processing."""
        processing = 0
        for job in self.jobs.values():
            if job["status"] == "Processing":
                processing += 1
                if job["exportId"] not in self._builds:
                    self._start_build(job)
        changed = False
        for job in self.jobs.values():
            if processing >= MAX_PROCESSING:
                break
            if job["status"] == "Queued":
                job["status"] = "Processing"
                job["startedAt"] = format_marketo(self.instance.now())
                self._start_build(job)
                processing += 1
                changed = True
        if changed:
            self.instance.save_state()

    def _stalled(self, obj: str) -> bool:
        return self.instance._fault("active", "export_stall", lambda p: p["object"] in (None, obj)) is not None

    def cancel(self, obj: str, export_id: str) -> dict:
        job = self.job(obj, export_id)
        if job["status"] in ("Created", "Queued", "Processing"):
            job["status"] = "Canceled"
            self._builds.pop(export_id, None)   # its file, if one is being built, is never served
            self.instance.save_state()
            self._work_queue()
        return job

    def file(self, obj: str, export_id: str) -> tuple[Path, str] | None:
        """(path on disk, content type) of a completed job's file, else None."""
        job = self.jobs.get(export_id)
        if job is None or job["object"] != obj or job["status"] != "Completed":
            return None
        path = self._path(job, create=False)
        if path is None or not path.is_file():
            return None
        return path, CONTENT_TYPES[job["format"]]

    def list(self, obj: str, statuses: list[str]) -> list[dict]:
        for status in statuses:
            if status not in STATUSES:
                raise MarketoError("1003", f"Invalid status '{status}', expected one of {', '.join(STATUSES)}")
        since = self.instance.now() - JOB_VISIBILITY
        return [job for job in self.jobs.values()
                if job["object"] == obj and (not statuses or job["status"] in statuses)
                and parse_datetime(job["createdAt"]) >= since]

    def job(self, obj: str, export_id: str) -> dict:
        job = self.jobs.get(export_id)
        if job is None or job["object"] != obj:
            raise MarketoError("1003", "Export id not found")
        return job

    @staticmethod
    def public(job: dict) -> dict:
        return {key: job[key] for key in JOB_FIELDS if job.get(key) is not None}

    # ------------------------------------------------------------------------------- validation

    def _lead_spec(self, body: dict) -> dict:
        fields = body.get("fields")
        if not isinstance(fields, list) or not fields or not all(isinstance(f, str) for f in fields):
            raise MarketoError("1003", "fields is required: a non-empty list of lead field names")
        resolved, unknown = [], []
        for name in fields:
            canonical = self.instance.lead_field(name)
            (resolved if canonical else unknown).append(canonical or name)
        if unknown:
            raise MarketoError("1003", f"Invalid field(s): {', '.join(unknown)}")
        flt = body.get("filter")
        if not isinstance(flt, dict) or not flt:
            raise MarketoError("1003", "filter is required")
        for key in flt:
            if key not in LEAD_FILTERS:
                raise MarketoError("1003", f"Invalid filter type '{key}'")
        if len(flt) != 1:
            raise MarketoError("1003", "Only one filter type may be given: createdAt, updatedAt, staticListId "
                                       "or staticListName, smartListId or smartListName")
        key, value = next(iter(flt.items()))
        if key in ("createdAt", "updatedAt"):
            _date_range(value, f"filter.{key}")
        elif key == "staticListId":
            self.instance.static_list(value)
        elif key == "staticListName":
            if self.instance.static_list_by_name(value) is None:
                raise MarketoError("1013", "Static list not found")
        else:
            # No smart lists exist in a scenario; Marketo answers 1035 when the filter is unavailable.
            raise MarketoError("1035", "Unsupported filter type for target subscription")
        return {"fields": resolved, "filter": flt}

    def _activity_spec(self, body: dict) -> dict:
        flt = body.get("filter")
        if not isinstance(flt, dict) or "createdAt" not in flt:
            raise MarketoError("1003", "filter.createdAt is required")
        for key in flt:
            if key not in ACTIVITY_FILTERS:
                raise MarketoError("1003", f"Invalid filter type '{key}'")
        _date_range(flt["createdAt"], "filter.createdAt")
        type_ids = flt.get("activityTypeIds")
        if type_ids is not None:
            if not isinstance(type_ids, list) or not all(isinstance(t, int) and not isinstance(t, bool)
                                                         for t in type_ids):
                raise MarketoError("1003", "activityTypeIds must be a list of integers")
            if DELETE_LEAD_TYPE in type_ids:
                raise MarketoError("1003", "Activity type 37 (Delete Lead) is not supported; use Get Deleted Leads")
        ids, values = flt.get("primaryAttributeValueIds"), flt.get("primaryAttributeValues")
        if ids is not None or values is not None:
            if ids is not None and values is not None:
                raise MarketoError("1003", "Use primaryAttributeValueIds or primaryAttributeValues, not both")
            if not type_ids:
                raise MarketoError("1003", "primaryAttributeValue filters require activityTypeIds")
            chosen = ids if ids is not None else values
            if not isinstance(chosen, list) or len(chosen) > 50:
                raise MarketoError("1003", "primaryAttributeValue filters take a list of at most 50 values")
        fields = body.get("fields")
        if fields is None:
            fields = list(ACTIVITY_COLUMNS)
        allowed = ACTIVITY_COLUMNS + ACTIVITY_OPTIONAL_COLUMNS
        if not isinstance(fields, list) or not fields or any(f not in allowed for f in fields):
            raise MarketoError("1003", f"Invalid field(s); activity exports accept: {', '.join(allowed)}")
        return {"fields": fields, "filter": flt}

    @property
    def bytes_exported_today(self) -> int:
        """Export bytes (by fileSize) counted against today's quota; the day is Central time."""
        self._roll_quota_day()
        return self.quota["bytes"]

    def _check_quota(self) -> None:
        self._roll_quota_day()
        if self.quota["bytes"] >= self.daily_quota_bytes:
            raise MarketoError("1029", "Export daily quota exceeded")

    def _roll_quota_day(self) -> None:
        today = central_day(self.instance.now())
        if self.quota.get("day") != today:
            self.quota = {"day": today, "bytes": 0}

    def _count(self, *statuses: str) -> int:
        return sum(1 for job in self.jobs.values() if job["status"] in statuses)

    # ------------------------------------------------------------------------------- file rendering

    def _start_build(self, job: dict) -> dict:
        """Start writing a processing job's file in the background (the file never changes once
        written, as in Marketo); the job is Completed (or Failed) when it is written, and the next
        queued job starts. The records are chosen now, under the instance lock; a lead changed
        while the file is written may show either version, as in a live export."""
        obj = job["object"]
        fields = job["spec"]["fields"]
        delimiter = DELIMITERS[job["format"]]
        if obj == "leads":
            records, positions = self._lead_records(job)
            if positions is None:
                count, blocks = len(records), _record_blocks(records, fields, delimiter)
            else:
                count, blocks = len(positions), self._lead_cells.blocks(records, fields, positions, delimiter)
        else:
            positions = self._activity_positions(job)
            count, blocks = len(positions), self._activity_cells.blocks(self.instance.activities, fields, positions,
                                                                        delimiter)
        headers = [job["spec"]["columnHeaderNames"].get(f, f) for f in fields]
        malformed = None
        if count:
            fault = self.instance._fault("take", "malformed_csv_row", lambda p: p["object"] in (None, obj))
            if fault:
                malformed = min(fault["row"], count), fault["kind"]
        path = self._path(job, create=True)
        build = {"done": False, "records": count, "size": None, "checksum": None, "error": None}

        def write() -> None:
            try:
                size, checksum = _write_export(path, headers, blocks, delimiter, malformed)
                outcome = {"size": size, "checksum": checksum}
            except Exception as exc:    # the job fails, as a Marketo job can; the emulator goes on
                outcome = {"error": f"{type(exc).__name__}: {exc}"}
            while self._stalled(obj) and not self._closed:
                time.sleep(STALL_CHECK_SECONDS)
            with self._built:
                build.update(outcome, done=True)
                # Not when the job was canceled meanwhile, or the instance has stopped.
                if self._builds.get(job["exportId"]) is build and not self._closed:
                    self._finish(job, build)
                    self.instance.save_state()
                    self._work_queue()
                self._built.notify_all()

        self._builds[job["exportId"]] = build
        threading.Thread(target=write, name=f"export-{job['exportId']}", daemon=True).start()
        return build

    def _finish(self, job: dict, build: dict) -> None:
        del self._builds[job["exportId"]]
        now = format_marketo(self.instance.now())
        if build["error"]:
            job.update({"status": "Failed", "finishedAt": now})
            return
        job.update({
            "status": "Completed",
            "finishedAt": now,
            "numberOfRecords": build["records"],
            "fileSize": build["size"],
            "fileChecksum": "sha256:" + build["checksum"],
        })
        # Marketo charges the export quota when a job completes, by its file size.
        self._roll_quota_day()
        self.quota["bytes"] += build["size"]

    def _path(self, job: dict, create: bool) -> Path | None:
        """Where a job's file is (or goes); None when it cannot exist."""
        name = f"{job['exportId']}.{job['format'].lower()}"
        if self.export_dir is not None:
            return self.export_dir / name
        if self._scratch is None:
            if not create:
                return None
            folder = Path(tempfile.mkdtemp(prefix=f"emulator-{self.instance.key.replace(':', '_')}-exports-"))
            self._scratch = folder, weakref.finalize(self, shutil.rmtree, folder, ignore_errors=True)
        return self._scratch[0] / name

    def _lead_records(self, job: dict) -> tuple[list[dict], list[int] | None]:
        """The job's leads: all leads and the positions of the job's among them (a date filter),
        or the job's leads themselves and None (a static list)."""
        key, value = next(iter(job["spec"]["filter"].items()))
        if key in ("createdAt", "updatedAt"):
            leads = self.instance.leads
            return leads, self._lead_dates[key].positions(leads, *_date_range(value, key))
        list_id = value if key == "staticListId" else self.instance.static_list_by_name(value)["id"]
        return [self.instance.leads_by_id[i] for i in self.instance.list_members(int(list_id))
                if i in self.instance.leads_by_id], None

    def _activity_positions(self, job: dict) -> list[int]:
        """Where the job's activities are in the activity log, in log order."""
        flt = job["spec"]["filter"]
        type_ids = set(flt.get("activityTypeIds") or [])
        value_ids = {str(v) for v in flt.get("primaryAttributeValueIds") or []}
        values = {str(v) for v in flt.get("primaryAttributeValues") or []}
        log = self.instance.activities
        window = self._activity_dates.positions(log, *_date_range(flt["createdAt"], "createdAt"))
        return [i for i in window
                if log[i].get("activityTypeId") != DELETE_LEAD_TYPE
                and (not type_ids or log[i].get("activityTypeId") in type_ids)
                and (not value_ids or str(log[i].get("primaryAttributeValueId")) in value_ids)
                and (not values or str(log[i].get("primaryAttributeValue")) in values)]


class _DateIndex:
    """The records of a list ordered by one date field, so that a date window is found by bisection
    instead of parsing every record's date on every export.

    Records appended to the list are taken in on the next lookup; whoever changes records in place or
    removes them calls reset(). Records whose date does not parse are in no window."""

    def __init__(self, field: str) -> None:
        self.field = field
        self.reset()

    def reset(self) -> None:
        self._records: list[dict] | None = None
        self._seen = 0                           # records[:_seen] are indexed
        self._last: dict | None = None           # records[_seen - 1], to notice a list changed behind us
        self._times = array("q")                 # microseconds since the epoch, ascending
        self._positions = array("q")             # the list position of each time
        self._in_list_order = True               # positions ascending too (the list is in date order)

    def positions(self, records: list[dict], start: datetime, end: datetime) -> list[int]:
        """The list positions of the records dated in [start, end), ascending."""
        self.catch_up(records)
        lo, hi = bisect_left(self._times, _micros(start)), bisect_left(self._times, _micros(end))
        positions = self._positions[lo:hi]
        return positions.tolist() if self._in_list_order else sorted(positions)

    def catch_up(self, records: list[dict]) -> None:
        """Take in the records appended since the last lookup (all of them after a reset)."""
        if records is not self._records or len(records) < self._seen \
                or (self._seen and records[self._seen - 1] is not self._last):
            self.reset()
            self._records = records
        if len(records) == self._seen:
            return
        times, positions = array("q"), array("q")
        for position in range(self._seen, len(records)):
            moment = try_parse_datetime(records[position].get(self.field))
            if moment is not None:
                times.append(_micros(moment))
                positions.append(position)
        in_order = _ascending(times)
        if not in_order:
            times, positions = _sorted_by_time(times, positions)
        if self._times and times and times[0] < self._times[-1]:
            # Dated before what is indexed already (a clock set back): merge.
            self._times, self._positions = _sorted_by_time(self._times + times, self._positions + positions)
            self._in_list_order = False
        else:
            self._times.extend(times)
            self._positions.extend(positions)
            self._in_list_order = self._in_list_order and in_order
        self._seen, self._last = len(records), records[-1]


def _ascending(values) -> bool:
    return all(a <= b for a, b in zip(values, islice(values, 1, None)))


def _sorted_by_time(times: array, positions: array) -> tuple[array, array]:
    """Both arrays in time order; equal times keep their order (a stable sort)."""
    order = sorted(range(len(times)), key=times.__getitem__)
    return array("q", (times[i] for i in order)), array("q", (positions[i] for i in order))


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MICROSECOND = timedelta(microseconds=1)


def _micros(moment: datetime) -> int:
    return (moment - _EPOCH) // _MICROSECOND


def _date_range(value, path: str):
    if not isinstance(value, dict) or "startAt" not in value or "endAt" not in value:
        raise MarketoError("1003", f"{path} requires startAt and endAt")
    try:
        start, end = parse_datetime(value["startAt"]), parse_datetime(value["endAt"])
    except (TypeError, ValueError):
        raise MarketoError("1003", f"{path}: startAt and endAt must be ISO-8601 date-times") from None
    if end < start:
        raise MarketoError("1003", f"{path}: endAt is before startAt")
    if end - start > MAX_DATE_RANGE:
        raise MarketoError("1003", "Date range exceeds 31 days")
    return start, end


_JSON = json.JSONEncoder(separators=(",", ":"))    # what json.dumps(..., separators=(",", ":")) uses


def _attributes_json(attributes):
    if attributes is None:
        return None
    if isinstance(attributes, list):
        attributes = {a.get("name"): a.get("value") for a in attributes if isinstance(a, dict)}
    if isinstance(attributes, dict):
        try:
            # The common case, names and values all strings, spelled as the encoder would, faster.
            return "{" + ",".join([encode_basestring_ascii(k) + ":" + encode_basestring_ascii(v)
                                   for k, v in attributes.items()]) + "}"
        except TypeError:
            pass
    return _JSON.encode(attributes)


# Rows rendered per block: a block's lines are built column by column in Arrow's string kernels
# (a few Python operations per cell instead of a csv writer call per row), and a file of millions
# of rows never sits in memory whole.
RENDER_BLOCK_ROWS = 100_000


def _write_export(path: Path, headers: list[str], blocks, delimiter: str,
                  malformed: tuple[int, str] | None = None) -> tuple[int, str]:
    """Write an export file block by block, atomically: a reader never sees half of it. `blocks`
    yields the cells of consecutive rows, a list of Arrow string columns (one per field, quoted for
    the delimiter) at a time.
    `malformed` is (data row number from 1, kind) for the malformed_csv_row fault.
    Returns the file's size and sha256 hex digest."""
    bad_row, kind = malformed or (0, None)
    digest, size, first = hashlib.sha256(), 0, 0
    with atomic_open(path, "wb") as handle:
        def write(data) -> None:
            nonlocal size
            handle.write(data)
            digest.update(data)
            size += len(data)

        write((_csv_line(headers, delimiter) + "\n").encode("utf-8"))
        for columns in blocks:
            body, offsets = _render_block(columns, delimiter)
            rows = len(offsets) - 1
            if first < bad_row <= first + rows:
                at = bad_row - first - 1
                begin, end = int(offsets[at]), int(offsets[at + 1])
                line = bytes(body[begin:end]).decode("utf-8")[:-1]
                write(body[:begin])
                write((malform_csv_line(line, delimiter, kind) + "\n").encode("utf-8"))
                write(body[end:])
            else:
                write(body)
            first += rows
    return size, digest.hexdigest()


def _field_cells(records: list[dict], field: str, attributes: bool = False):
    """One field's cells of `records`, as Arrow strings; `attributes` holds activity attributes."""
    return _column([record.get(field) for record in records], attributes)


def _record_blocks(records: list[dict], fields: list[str], delimiter: str):
    """The cells of `records` (leads of a static list: no kept cells), rendered block by block (a
    file of millions of rows never sits in memory whole)."""
    for first in range(0, len(records), RENDER_BLOCK_ROWS):
        block = records[first:first + RENDER_BLOCK_ROWS]
        yield [_quoted(_field_cells(block, field), delimiter) for field in fields]


class _RenderedColumns:
    """The cells of a list of records, rendered (and quoted for a delimiter) once per field as Arrow
    strings, so that an export takes its rows' cells instead of rendering every record again
    (Marketo's activity log is append-only; leads change, and whoever changes one calls reset()).
    Records appended since are rendered on the next use; a list replaced or shortened behind its
    back is rendered afresh. Export builds share it from their threads: one renders at a time."""

    def __init__(self, json_field: str | None = None) -> None:
        self.json_field = json_field
        self._lock = threading.Lock()
        self._reset(None)

    def reset(self) -> None:
        """Records were changed in place: render them afresh on the next use."""
        with self._lock:
            self._reset(None)

    def _reset(self, records: list[dict] | None) -> None:
        self._records = records
        # (field, delimiter) -> Arrow string arrays covering records[:count], and (count, records[count - 1])
        self._chunks: dict[tuple[str, str], list] = {}
        self._ends: dict[tuple[str, str], tuple[int, dict]] = {}

    def column(self, records: list[dict], field: str, delimiter: str):
        """Every record's cell of `field`, quoted for `delimiter`, as one Arrow array in list order."""
        import pyarrow as pa

        key = (field, delimiter)
        with self._lock:
            count, last = self._ends.get(key, (0, None))
            if records is not self._records or len(records) < count or (count and records[count - 1] is not last):
                self._reset(records)
                count = 0
            chunks = self._chunks.setdefault(key, [])
            total = len(records)
            for first in range(count, total, RENDER_BLOCK_ROWS):
                block = records[first:min(first + RENDER_BLOCK_ROWS, total)]
                chunks.append(_quoted(_field_cells(block, field, field == self.json_field), delimiter))
            if total > count:
                self._ends[key] = (total, records[total - 1])
                if len(chunks) > 1:
                    # One array: a take from an array of many chunks costs a pass over all of them.
                    try:
                        chunks[:] = [pa.concat_arrays(chunks)]
                    except pa.ArrowInvalid:   # over 2 GB of text in one column: chunks stay
                        pass
            return chunks[0] if len(chunks) == 1 else pa.chunked_array(chunks, pa.string())

    def blocks(self, records: list[dict], fields: list[str], positions: list[int], delimiter: str):
        """The cells of the records at `positions`, block by block, for _write_export."""
        import pyarrow as pa

        for first in range(0, len(positions), RENDER_BLOCK_ROWS):
            index = pa.array(positions[first:first + RENDER_BLOCK_ROWS], pa.int64())
            columns = [self.column(records, field, delimiter).take(index) for field in fields]
            yield [c.combine_chunks() if isinstance(c, pa.ChunkedArray) else c for c in columns]


def _render_block(columns: list, delimiter: str) -> tuple[memoryview, object]:
    """The CSV lines of a block's cells, already quoted (each line ending in a newline), as one
    UTF-8 buffer, and the offset in it of each line's start (one more, the end, last; a numpy array)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    lines = pc.binary_join_element_wise(pc.binary_join_element_wise(*columns, delimiter), "", "\n")
    lines = lines.cast(pa.large_string())   # 64-bit offsets: one block's text may pass 2 GB
    offsets = np.frombuffer(lines.buffers()[1], dtype=np.int64)[lines.offset:lines.offset + len(lines) + 1]
    start = int(offsets[0])
    body = memoryview(lines.buffers()[2])[start:int(offsets[-1])]
    return body, offsets - start


def _column(values: list, attributes: bool = False):
    """One field's cells as Arrow strings, spelled as _cell spells them."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if attributes:
        values = [_attributes_json(v) for v in values]
    try:
        array = pa.array(values)
    except (pa.ArrowException, TypeError, ValueError, OverflowError):
        array = None
    if array is not None and (pa.types.is_string(array.type) or pa.types.is_integer(array.type)
                              or pa.types.is_boolean(array.type) or pa.types.is_null(array.type)):
        # Integers print as str() prints them, booleans as true/false; None and "" as null.
        text = array.cast(pa.string())
        if pa.types.is_string(array.type):
            text = pc.if_else(pc.equal(text, ""), None, text)
        return pc.fill_null(text, "null")
    # Mixed or other types (floats, dates, nested values): the slow, exact path.
    return pa.array([v if v.__class__ is str and v else _cell(v) for v in values], pa.string())


def _quoted(column, delimiter: str):
    """Cells holding the delimiter, a quote or a line break quoted, as a CSV writer quotes them."""
    import pyarrow.compute as pc

    text = column.buffers()[2]
    if text is None:
        return column
    # Most columns hold none of the four characters anywhere: one scan of the text says so.
    text = text.to_pybytes()
    if not any(char in text for char in (delimiter.encode(), b'"', b"\n", b"\r")):
        return column
    needs = pc.match_substring_regex(column, "[" + _REGEX_ESCAPED.get(delimiter, delimiter) + '"\r\n]')
    quoted = pc.binary_join_element_wise('"', pc.replace_substring(column, '"', '""'), '"', "")
    return pc.if_else(needs, quoted, column)


_REGEX_ESCAPED = {"\t": "\\t"}


def _csv_line(cells: list[str], delimiter: str) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=delimiter, lineterminator="").writerow(cells)
    return buffer.getvalue()


def _cell(value) -> str:
    """Marketo writes empty values as the bare word null and booleans as true/false."""
    if value is None or value == "":
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return _JSON.encode(value)
    return str(value)
