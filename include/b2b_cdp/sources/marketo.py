"""Marketo Engage REST and Bulk Extract client.

Marketo reports most failures as HTTP 200 with success:false and a quoted code; this client maps
those codes onto the shared HTTP policy: token codes refresh the token once, throttling and
transient codes are retried with backoff, everything else is raised as MarketoError.
"""

from __future__ import annotations

import codecs
import csv
import logging
import time
from datetime import datetime
from typing import Any, Iterable, Iterator

import requests

from b2b_cdp.connections import ApiCredentials, api_credentials
from b2b_cdp.http import HttpPolicy, RetryableError, SlidingWindowLimiter, shared_limiter

log = logging.getLogger(__name__)

BATCH_SIZE = 300                    # lead database calls take at most 300 ids / values
TOKEN_CODES = {"601", "602"}        # invalid / expired access token
RETRY_CODES = {"502", "604", "606", "608", "611", "615", "713"}
REFUSED_CODES = {"606", "608", "615"}   # rate limit, API unavailable, concurrency: the call was not run
TOKEN_MARGIN_SECONDS = 60           # refresh a little before expiry, never mid-call
FINAL_JOB_STATES = {"Completed", "Failed", "Canceled"}
RATE_LIMIT_CALLS, RATE_LIMIT_SECONDS = 100, 20.0   # per instance; 606 beyond
POOL_SLOTS = 2   # Airflow pool slots per instance: each running task gets an equal share of the limit
DOWNLOAD_CHUNK = 1 << 20   # export bytes per read: fewer, larger writes into COPY
POLL_BACKOFF, POLL_BACKOFF_MAX_SECONDS = 1.5, 30.0   # polls of an unchanged export status slow down


class MarketoError(RuntimeError):
    def __init__(self, code: str, message: str, path: str):
        super().__init__(f"Marketo error {code} on {path}: {message}")
        self.code = code
        self.message = message


class _TokenRejected(Exception):
    pass


def _decode_lines(chunks: Iterable[bytes]) -> Iterator[str]:
    """Bytes to text lines with their line ends kept (csv needs them to read quoted cells that
    span lines); never holds more than one chunk."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    pending = ""
    for chunk in chunks:
        pending += decoder.decode(chunk)
        lines = pending.splitlines(keepends=True)
        pending = lines.pop() if lines and not lines[-1].endswith(("\n", "\r")) else ""
        yield from lines
    pending += decoder.decode(b"", final=True)
    if pending:
        yield pending


def chunks(items: list, size: int = BATCH_SIZE) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


class MarketoClient:
    def __init__(self, credentials: ApiCredentials, *, policy: HttpPolicy | None = None,
                 poll_seconds: float | None = None, limiter: SlidingWindowLimiter | None = None):
        self._creds = credentials
        # Tasks touching one instance run in its Airflow pool (POOL_SLOTS at once), so each
        # process keeps to its share of the instance's rate limit.
        self.limiter = limiter or shared_limiter(
            credentials.base_url,
            int(credentials.extra.get("rate_limit_calls", RATE_LIMIT_CALLS // POOL_SLOTS)),
            float(credentials.extra.get("rate_limit_seconds", RATE_LIMIT_SECONDS)))
        self.policy = policy or HttpPolicy()
        self.poll_seconds = float(poll_seconds if poll_seconds is not None
                                  else credentials.extra.get("bulk_poll_seconds", 60))
        self._token: str | None = None
        self._token_expires = 0.0
        self.api_calls = 0

    @classmethod
    def from_connection(cls, conn_id: str, **kwargs) -> "MarketoClient":
        return cls(api_credentials(conn_id), **kwargs)

    # ------------------------------------------------------------------ auth + envelope
    def _access_token(self) -> str:
        if self._token and time.monotonic() < self._token_expires - TOKEN_MARGIN_SECONDS:
            return self._token

        def check(response: requests.Response) -> dict:
            if response.status_code != 200:
                raise MarketoError(str(response.status_code), "identity service refused the client credentials",
                                   "/identity/oauth/token")
            return response.json()

        body = self.policy.request("GET", f"{self._creds.base_url}/identity/oauth/token", check=check, params={
            "grant_type": "client_credentials", "client_id": self._creds.client_id,
            "client_secret": self._creds.client_secret})
        self._token = body["access_token"]
        self._token_expires = time.monotonic() + float(body.get("expires_in", 0))
        return self._token

    def _check(self, path: str):
        def check(response: requests.Response) -> dict:
            if response.status_code != 200:
                raise MarketoError(str(response.status_code), response.text[:200], path)
            body = response.json()
            if body.get("success", False):
                return body
            error = (body.get("errors") or [{"code": "?", "message": "no error given"}])[0]
            code, message = str(error.get("code")), str(error.get("message"))
            if code in TOKEN_CODES:
                raise _TokenRejected(code)
            if code in RETRY_CODES:
                # 502, 604 (timed out), 611, 713: the call may have been partly run.
                raise RetryableError(f"Marketo {code}: {message}", retry_after=20.0 if code == "606" else None,
                                     may_have_applied=code not in REFUSED_CODES)
            raise MarketoError(code, message, path)
        return check

    def _check_file(self, path: str):
        """A file endpoint answers CSV, or plain text 404 before the file exists; refusals such
        as 606 come as Marketo's JSON envelope and must never be taken for file content."""
        envelope = self._check(path)

        def check(response: requests.Response) -> requests.Response:
            if "json" in response.headers.get("Content-Type", "").lower():
                with response:
                    envelope(response)   # raises for token, throttling and other errors
                raise MarketoError("json", "a JSON answer where a file was expected", path)
            return response
        return check

    def call(self, method: str, path: str, *, params: Any = None, json: Any = None,
             stream: bool = False, headers: dict | None = None, idempotent: bool = True) -> Any:
        """One REST/Bulk call; returns the JSON body, or the raw response when stream=True.
        `idempotent=False`: sent again only when surely not run (HttpPolicy.request)."""
        for attempt in (1, 2):
            headers = {**(headers or {}), "Authorization": f"Bearer {self._access_token()}"}
            self.api_calls += 1
            # Every attempt, retries included, waits its turn: Marketo counts a retried call too.
            limited = {"before_each_attempt": self.limiter.acquire}
            try:
                if stream:
                    return self.policy.request(method, f"{self._creds.base_url}{path}", params=params,
                                               headers=headers, stream=True, check=self._check_file(path), **limited)
                return self.policy.request(method, f"{self._creds.base_url}{path}", params=params,
                                           json=json, headers=headers, check=self._check(path),
                                           idempotent=idempotent, **limited)
            except _TokenRejected:
                self._token = None  # expired or revoked between calls: fetch a new one, once
                if attempt == 2:
                    raise MarketoError("601", "access token rejected twice", path) from None
        raise AssertionError("unreachable")

    def server_now(self) -> datetime:
        """The instance's clock (quota days are the source's days). Before any answer has told it,
        the token request does: this machine's clock may be days away from the instance's."""
        if not self.policy.knows_server_clock:
            self._access_token()
        return self.policy.server_now()

    # ------------------------------------------------------------------ reads
    def describe_fields(self, obj: str) -> list[str]:
        """Every field of a lead-database object: queries return only a few default fields
        unless asked for more, and asking for all picks up new custom fields on their own."""
        if obj == "leads":
            return [f["rest"]["name"] for f in self.call("GET", "/rest/v1/leads/describe.json")["result"]
                    if f.get("rest", {}).get("name")]
        described = self.call("GET", f"/rest/v1/{obj}/describe.json")["result"][0]
        return [f["name"] for f in described.get("fields", [])]

    def activity_types(self) -> list[dict]:
        return self.call("GET", "/rest/v1/activities/types.json").get("result", [])

    def query(self, obj: str, filter_type: str, values: Iterable[str], fields: list[str] | None = None
              ) -> Iterator[dict]:
        """Leads, companies or opportunities by a filter field, 300 values per call."""
        values = sorted({str(v) for v in values if v not in (None, "")})
        for batch in chunks(values):
            params = {"filterType": filter_type, "filterValues": ",".join(batch)}
            if fields:
                params["fields"] = ",".join(fields)
            yield from self._pages(f"/rest/v1/{obj}.json", params)

    def _pages(self, path: str, params: dict[str, Any]) -> Iterator[dict]:
        """Every result of a GET that pages with nextPageToken."""
        while True:
            body = self.call("GET", path, params=params)
            yield from body.get("result", [])
            token = body.get("nextPageToken")
            if not token or not body.get("result"):
                return
            params = {**params, "nextPageToken": token}

    # ------------------------------------------------------------------ bulk extract, step by step
    def create_export(self, obj: str, body: dict) -> str:
        return self.call("POST", f"/bulk/v1/{obj}/export/create.json", json=body)["result"][0]["exportId"]

    def enqueue_export(self, obj: str, export_id: str) -> None:
        """Queue a created job. 'Job already queued' counts as done; a full queue or an exhausted
        export quota raise MarketoError 1029 with Marketo's message."""
        try:
            self.call("POST", f"/bulk/v1/{obj}/export/{export_id}/enqueue.json")
        except MarketoError as exc:
            if not (exc.code == "1029" and "already queued" in exc.message.lower()):
                raise

    def export_status(self, obj: str, export_id: str) -> dict:
        return self.call("GET", f"/bulk/v1/{obj}/export/{export_id}/status.json")["result"][0]

    def wait_for_export(self, obj: str, export_id: str) -> dict:
        """Poll a job's status until it ends. Each answer that repeats the previous one stretches the
        pause by half (up to POLL_BACKOFF_MAX_SECONDS, or poll_seconds if longer): a job waiting in
        the queue behind others' does not spend the calls its task's other work needs."""
        pause, last = self.poll_seconds, None
        while True:
            status = self.export_status(obj, export_id)
            if status["status"] in FINAL_JOB_STATES:
                return status
            pause = (min(pause * POLL_BACKOFF, max(self.poll_seconds, POLL_BACKOFF_MAX_SECONDS))
                     if status["status"] == last else self.poll_seconds)
            last = status["status"]
            time.sleep(pause)

    def export_rows(self, obj: str, export_id: str) -> Iterator[dict[str, str | None]]:
        """Stream a completed job's CSV rows as dicts (`null` cells become None)."""
        reader = csv.DictReader(_decode_lines(self._export_bytes(obj, export_id)))
        for row in reader:
            record = {k: (None if v == "null" else v) for k, v in row.items() if k is not None}
            extra, short = row.get(None), None in row.values()
            if extra or short:
                # Kept, not dropped: the landing checkpoint quarantines it with this reason.
                record["_parse_error"] = (f"line {reader.line_num}: {'more' if extra else 'fewer'} cells "
                                          f"than the file's {len(reader.fieldnames)} columns")
            yield record

    def _export_bytes(self, obj: str, export_id: str) -> Iterator[bytes]:
        """The export file's bytes; a connection dropped mid-download resumes with a Range request
        from the last byte received instead of starting over."""
        path = f"/bulk/v1/{obj}/export/{export_id}/file.json"
        received, attempts = 0, 0
        while True:
            headers = {"Range": f"bytes={received}-"} if received else {}
            response = self.call("GET", path, stream=True, headers=headers)
            if response.status_code not in (200, 206):
                raise MarketoError(str(response.status_code), "export file not available", path)
            if received and response.status_code != 206:
                raise MarketoError("206", "the server ignored the Range request on resume", path)
            try:
                with response:
                    for chunk in response.iter_content(chunk_size=DOWNLOAD_CHUNK):
                        received += len(chunk)
                        yield chunk
                return
            except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError) as exc:
                attempts += 1
                if attempts > self.policy.max_attempts:
                    raise
                log.warning("Download of export %s broke after %d bytes (%s); resuming", export_id,
                            received, type(exc).__name__)

    def list_members(self, list_id: int, fields: list[str] | None = None) -> Iterator[dict]:
        params: dict[str, Any] = {"batchSize": BATCH_SIZE}
        if fields:
            params["fields"] = ",".join(fields)
        yield from self._pages(f"/rest/v1/lists/{list_id}/leads.json", params)

    # ------------------------------------------------------------------ writes
    def change_list(self, list_id: int, lead_ids: list[int], *, remove: bool = False) -> list[dict]:
        """Add (or remove) leads to a static list, 300 per call; per-lead results in input order."""
        results: list[dict] = []
        for batch in chunks(lead_ids):
            body = self.call("DELETE" if remove else "POST", f"/rest/v1/lists/{list_id}/leads.json",
                             json={"input": [{"id": int(i)} for i in batch]})
            results.extend(body.get("result", []))
        return results
