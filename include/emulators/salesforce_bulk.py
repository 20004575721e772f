"""Bulk API 2.0 query jobs of one Salesforce org: create, poll (one state per poll), CSV results paged
with Sforce-Locator, abort, delete. Callers hold the org lock."""

from __future__ import annotations

import base64
import re
import secrets
import string

from .faults import malform_csv_line
from .http import Request, Response, json_response
from .timeutil import format_salesforce, format_salesforce_bulk, try_parse_datetime

DEFAULT_MAX_RECORDS = 50_000
DELIMITERS = {"COMMA": ",", "BACKQUOTE": "`", "CARET": "^", "PIPE": "|", "SEMICOLON": ";", "TAB": "\t"}
LINE_ENDINGS = {"LF": "\n", "CRLF": "\r\n"}
TERMINAL = ("JobComplete", "Aborted", "Failed")
MIN_VERSION = 47.0
# What Bulk API 2.0 refuses (developer.salesforce.com, "Create a Query Job").
UNSUPPORTED = [
    (re.compile(r"\bGROUP\s+BY\b", re.I), "GROUP BY"),
    (re.compile(r"\bOFFSET\b", re.I), "OFFSET"),
    (re.compile(r"\bTYPEOF\b", re.I), "TYPEOF"),
    (re.compile(r"\b(COUNT|COUNT_DISTINCT|SUM|AVG|MIN|MAX)\s*\(", re.I), "Aggregate functions such as COUNT()"),
    (re.compile(r"\bFIELDS\s*\(", re.I), "FIELDS()"),
    (re.compile(r"\(\s*SELECT\b", re.I), "Parent-to-child relationship queries (subqueries)"),
]


def _error(status: int, code: str, message: str) -> Response:
    return json_response([{"errorCode": code, "message": message}], status)


def _locator(offset: int) -> str:
    # Salesforce's locators are opaque; these are base64 of the next row offset.
    return base64.b64encode(str(offset).encode()).decode().rstrip("=")


def _offset(locator: str) -> int | None:
    try:
        value = int(base64.b64decode(locator + "=" * (-len(locator) % 4)).decode())
    except (ValueError, UnicodeDecodeError):
        return None
    return value if value >= 0 else None


def _csv_value(value, field_type: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if field_type == "datetime":
        moment = try_parse_datetime(value)
        if moment is not None:
            return format_salesforce_bulk(moment)
    return str(value)


def _csv_line(values: list, delimiter: str) -> str:
    # Every present value quoted (quotes doubled, RFC 4180); a null is an empty, unquoted field.
    return delimiter.join("" if v is None else '"' + v.replace('"', '""') + '"' for v in values)


class BulkQueryJobs:
    def __init__(self, org) -> None:
        self.org = org
        self.jobs: dict[str, dict] = {}

    # ------------------------------------------------------------------------------- endpoints

    def create(self, request: Request) -> Response:
        version = request.params["version"]
        if float(version) < MIN_VERSION:
            return _error(404, "NOT_FOUND", "The requested resource does not exist")
        try:
            body = request.json()
        except ValueError:
            return _error(400, "JSON_PARSER_ERROR", "The request body is not valid JSON")
        if not isinstance(body, dict):
            return _error(400, "JSON_PARSER_ERROR", "The request body must be a JSON object")
        operation = body.get("operation")
        if operation not in ("query", "queryAll"):
            return _error(400, "INVALIDJOB", f"Invalid operation: {operation!r}; a query job takes query or queryAll")
        text = body.get("query")
        if not isinstance(text, str) or not text.strip():
            return _error(400, "INVALIDJOB", "A query job needs a query")
        content_type = body.get("contentType", "CSV")
        if content_type != "CSV":
            return _error(400, "INVALIDJOB", f"Invalid contentType: {content_type}; only CSV is supported")
        delimiter = body.get("columnDelimiter", "COMMA")
        if delimiter not in DELIMITERS:
            return _error(400, "INVALIDJOB", f"Invalid columnDelimiter: {delimiter}")
        line_ending = body.get("lineEnding", "LF")
        if line_ending not in LINE_ENDINGS:
            return _error(400, "INVALIDJOB", f"Invalid lineEnding: {line_ending}")
        bare = re.sub(r"'(?:[^'\\]|\\.)*'", "''", text)      # keywords inside string literals don't count
        for pattern, what in UNSUPPORTED:
            if pattern.search(bare):
                return _error(400, "API_ERROR", f"{what} is not supported by Bulk API 2.0 query jobs")
        query = self.org.parse_query(text)          # SoqlError -> 400 MALFORMED_QUERY / INVALID_FIELD / ...
        now = format_salesforce(self.org.now())
        job_id = "750" + "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(15))
        job = {"id": job_id, "operation": operation, "object": self.org.object_name(query.object),
               "createdById": self.org.user_id, "createdDate": now, "systemModstamp": now,
               "state": "UploadComplete", "concurrencyMode": "Parallel", "contentType": "CSV",
               "apiVersion": float(version), "jobType": "V2Query", "lineEnding": line_ending,
               "columnDelimiter": delimiter, "numberRecordsProcessed": 0, "retries": 0,
               "totalProcessingTime": 0, "isPkChunkingSupported": True,
               "_query": text, "_lines": None, "_header": None}
        self.jobs[job_id] = job
        return json_response(self._public(job, created=True))

    def list(self, request: Request) -> Response:
        records = [self._public(job) for job in self.jobs.values()]
        return json_response({"done": True, "records": records, "nextRecordsUrl": None})

    def get(self, request: Request) -> Response:
        job = self.jobs.get(request.params["job_id"])
        if job is None:
            return _error(404, "NOT_FOUND", "The requested resource does not exist")
        # One state per poll, so a test never has to wait: UploadComplete -> InProgress -> JobComplete.
        if job["state"] == "UploadComplete":
            self._set_state(job, "InProgress")
        elif job["state"] == "InProgress":
            self._run(job)
            self._set_state(job, "JobComplete")
        return json_response(self._public(job))

    def patch(self, request: Request) -> Response:
        job = self.jobs.get(request.params["job_id"])
        if job is None:
            return _error(404, "NOT_FOUND", "The requested resource does not exist")
        try:
            body = request.json()
        except ValueError:
            return _error(400, "JSON_PARSER_ERROR", "The request body is not valid JSON")
        if not isinstance(body, dict) or body.get("state") != "Aborted":
            return _error(400, "INVALIDJOB", "A query job can only be changed to state Aborted")
        if job["state"] in TERMINAL:
            return _error(400, "INVALIDJOB", f"Job is already in a terminal state: {job['state']}")
        self._set_state(job, "Aborted")
        return json_response(self._public(job))

    def delete(self, request: Request) -> Response:
        job = self.jobs.get(request.params["job_id"])
        if job is None:
            return _error(404, "NOT_FOUND", "The requested resource does not exist")
        if job["state"] == "InProgress":
            return _error(400, "INVALIDJOB", "A job that is InProgress cannot be deleted; abort it first")
        del self.jobs[job["id"]]
        return Response(status=204, body=b"", content_type="text/plain")

    def results(self, request: Request) -> Response:
        job = self.jobs.get(request.params["job_id"])
        if job is None:
            return _error(404, "NOT_FOUND", "The requested resource does not exist")
        if float(request.params["version"]) != job["apiVersion"]:
            # "Use the same API version to get query results that you used to create the query.
            # Otherwise, the call returns a 409 error."
            return _error(409, "INVALIDJOB", f"Job {job['id']} was created with API version {job['apiVersion']}; "
                                             f"get its results with the same version")
        if job["state"] != "JobComplete":
            return _error(400, "INVALIDJOB", f"Job is not complete (state {job['state']}); results are available "
                                             "once the state is JobComplete")
        raw_max = request.arg("maxRecords")
        if raw_max in (None, ""):
            max_records = DEFAULT_MAX_RECORDS
        else:
            try:
                max_records = int(raw_max)
            except ValueError:
                max_records = 0
            if max_records < 1:
                return _error(400, "INVALIDJOB", f"maxRecords must be a positive integer, got {raw_max!r}")
        locator = request.arg("locator")
        offset = 0
        if locator not in (None, "", "null"):
            offset = _offset(locator)
            if offset is None or offset > len(job["_lines"]):
                return _error(400, "INVALIDJOB", f"Invalid locator: {locator}")
        lines = job["_lines"][offset:offset + max_records]
        end = offset + len(lines)
        eol = LINE_ENDINGS[job["lineEnding"]]
        body = "".join(line + eol for line in [job["_header"]] + lines).encode("utf-8")
        response = Response(body=body, content_type="text/csv", headers={
            "Sforce-Locator": _locator(end) if end < len(job["_lines"]) else "null",
            "Sforce-NumberOfRecords": str(len(lines))})
        cut = self.org.fault("take", "connection_reset")
        if cut:
            response.abort_after = len(body) // 2 if cut["after_bytes"] is None else cut["after_bytes"]
        return response

    # ------------------------------------------------------------------------------- internals

    def _set_state(self, job: dict, state: str) -> None:
        job["state"] = state
        job["systemModstamp"] = format_salesforce(self.org.now())

    def _run(self, job: dict) -> None:
        """The snapshot the results are served from, taken when the job completes."""
        name, fields, rows = self.org.select(job["_query"], include_deleted=job["operation"] == "queryAll")
        sobject = self.org.sobjects[name]
        delimiter = DELIMITERS[job["columnDelimiter"]]
        job["_header"] = _csv_line(fields, delimiter)
        job["_lines"] = [_csv_line([_csv_value(row.get(f), sobject.types.get(f, "string")) for f in fields],
                                   delimiter) for row in rows]
        if rows:
            fault = self.org.fault("take", "malformed_csv_row",
                                   lambda p: p["object"] is None or str(p["object"]).lower() == name.lower())
            if fault:
                index = min(fault["row"], len(rows)) - 1
                job["_lines"][index] = malform_csv_line(job["_lines"][index], delimiter, fault["kind"])
        job["numberRecordsProcessed"] = len(rows)
        job["totalProcessingTime"] = 1

    @staticmethod
    def _public(job: dict, created: bool = False) -> dict:
        keys = ["id", "operation", "object", "createdById", "createdDate", "systemModstamp", "state",
                "concurrencyMode", "contentType", "apiVersion"]
        if not created:
            keys.append("jobType")
        keys += ["lineEnding", "columnDelimiter"]
        if not created:
            keys += ["numberRecordsProcessed", "retries", "totalProcessingTime", "isPkChunkingSupported"]
        return {key: job[key] for key in keys}
