"""Marketo Bulk Extract: export jobs for leads and activities, their shared queue and daily quota."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import uuid
from datetime import timedelta
from pathlib import Path

from .faults import malform_csv_line
from .marketo_catalog import (
    ACTIVITY_COLUMNS, ACTIVITY_OPTIONAL_COLUMNS, DELETE_LEAD_TYPE, MarketoError,
)
from .persist import atomic_write_bytes
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
JOB_FIELDS = ("exportId", "format", "status", "createdAt", "queuedAt", "startedAt", "finishedAt",
              "numberOfRecords", "fileSize", "fileChecksum")


class BulkExports:
    """Export jobs of one Marketo instance. Callers hold the instance lock."""

    def __init__(self, instance, export_dir: Path | None) -> None:
        self.instance = instance
        self.export_dir = export_dir
        self.jobs: dict[str, dict] = {}
        self.files: dict[str, bytes] = {}
        self.quota = {"day": None, "bytes": 0}
        self.daily_quota_bytes = DAILY_QUOTA_BYTES

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
        if job["status"] in ("Queued", "Processing"):
            raise MarketoError("1029", "Job already queued")
        if job["status"] != "Created":
            raise MarketoError("1003", f"Job is {job['status']}, only a Created job can be enqueued")
        self._check_quota()
        if self._count("Queued", "Processing") >= MAX_IN_QUEUE:
            raise MarketoError("1029", "Too many jobs in queue")
        job["status"] = "Queued"
        job["queuedAt"] = format_marketo(self.instance.now())
        self.instance.save_state()
        return job

    def poll(self, obj: str, export_id: str) -> dict:
        """Status of a job; each poll moves a queued job one step on (Queued -> Processing -> Completed)."""
        job = self.job(obj, export_id)
        if job["status"] == "Queued" and self._count("Processing") < MAX_PROCESSING:
            job["status"] = "Processing"
            job["startedAt"] = format_marketo(self.instance.now())
            self.instance.save_state()
        elif job["status"] == "Processing":
            self._complete(job)
            self.instance.save_state()
        return job

    def cancel(self, obj: str, export_id: str) -> dict:
        job = self.job(obj, export_id)
        if job["status"] in ("Created", "Queued", "Processing"):
            job["status"] = "Canceled"
            self.instance.save_state()
        return job

    def file(self, obj: str, export_id: str) -> tuple[bytes, str] | None:
        """(content, content type) of a completed job, else None."""
        job = self.jobs.get(export_id)
        if job is None or job["object"] != obj or job["status"] != "Completed":
            return None
        data = self.files.get(export_id)
        if data is None and self.export_dir is not None:
            try:
                data = (self.export_dir / f"{export_id}.{job['format'].lower()}").read_bytes()
            except FileNotFoundError:
                return None
            self.files[export_id] = data
        if data is None:
            return None
        return data, CONTENT_TYPES[job["format"]]

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

    def _complete(self, job: dict) -> None:
        # The file is written once, at completion, and never changes afterwards (as in Marketo).
        rows = self._lead_rows(job) if job["object"] == "leads" else self._activity_rows(job)
        fields = job["spec"]["fields"]
        headers = [job["spec"]["columnHeaderNames"].get(f, f) for f in fields]
        delimiter = DELIMITERS[job["format"]]
        lines = [_csv_line(headers, delimiter)] + [_csv_line([_cell(row.get(f)) for f in fields], delimiter)
                                                   for row in rows]
        if rows:
            fault = self.instance._fault("take", "malformed_csv_row",
                                         lambda p: p["object"] in (None, job["object"]))
            if fault:
                index = min(fault["row"], len(rows))
                lines[index] = malform_csv_line(lines[index], delimiter, fault["kind"])
        data = "".join(line + "\n" for line in lines).encode("utf-8")
        self.files[job["exportId"]] = data
        if self.export_dir is not None:
            atomic_write_bytes(self.export_dir / f"{job['exportId']}.{job['format'].lower()}", data)
        job.update({
            "status": "Completed",
            "finishedAt": format_marketo(self.instance.now()),
            "numberOfRecords": len(rows),
            "fileSize": len(data),
            "fileChecksum": "sha256:" + hashlib.sha256(data).hexdigest(),
        })
        self._roll_quota_day()
        self.quota["bytes"] += len(data)

    def _lead_rows(self, job: dict) -> list[dict]:
        key, value = next(iter(job["spec"]["filter"].items()))
        if key in ("createdAt", "updatedAt"):
            start, end = _date_range(value, key)
            return [lead for lead in self.instance.leads if _within(lead.get(key), start, end)]
        list_id = value if key == "staticListId" else self.instance.static_list_by_name(value)["id"]
        return [self.instance.leads_by_id[i] for i in self.instance.list_members(int(list_id))
                if i in self.instance.leads_by_id]

    def _activity_rows(self, job: dict) -> list[dict]:
        flt = job["spec"]["filter"]
        start, end = _date_range(flt["createdAt"], "createdAt")
        type_ids = set(flt.get("activityTypeIds") or [])
        value_ids = {str(v) for v in flt.get("primaryAttributeValueIds") or []}
        values = {str(v) for v in flt.get("primaryAttributeValues") or []}
        rows = []
        for activity in self.instance.activities:
            if not _within(activity.get("activityDate"), start, end):
                continue
            if activity.get("activityTypeId") == DELETE_LEAD_TYPE:
                continue
            if type_ids and activity.get("activityTypeId") not in type_ids:
                continue
            if value_ids and str(activity.get("primaryAttributeValueId")) not in value_ids:
                continue
            if values and str(activity.get("primaryAttributeValue")) not in values:
                continue
            row = dict(activity)
            row["attributes"] = _attributes_json(activity.get("attributes"))
            rows.append(row)
        return rows


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


def _within(value, start, end) -> bool:
    moment = try_parse_datetime(value)
    return moment is not None and start <= moment < end


def _attributes_json(attributes):
    if attributes is None:
        return None
    if isinstance(attributes, list):
        attributes = {a.get("name"): a.get("value") for a in attributes if isinstance(a, dict)}
    return json.dumps(attributes, separators=(",", ":"))


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
        return json.dumps(value, separators=(",", ":"))
    return str(value)
