"""Salesforce REST client: OAuth client credentials and SOQL queries paged with nextRecordsUrl."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Iterator
from urllib.parse import quote

import requests

from b2b_cdp.connections import ApiCredentials, api_credentials
from b2b_cdp.http import HttpPolicy


def _without_first_line(chunks: Iterator[bytes]) -> Iterator[bytes]:
    skipping = True
    for chunk in chunks:
        if skipping:
            if b"\n" not in chunk:
                continue
            chunk, skipping = chunk.split(b"\n", 1)[1], False
        if chunk:
            yield chunk


class SalesforceError(RuntimeError):
    pass


class _SessionExpired(Exception):
    pass


class SalesforceClient:
    def __init__(self, credentials: ApiCredentials, api_version: str = "v60.0", *,
                 policy: HttpPolicy | None = None):
        self._creds = credentials
        self.api_version = api_version
        self.policy = policy or HttpPolicy()
        self._token: str | None = None
        self._instance_url: str | None = None
        self.api_calls = 0

    @property
    def credentials_extra(self) -> dict:
        return self._creds.extra

    @classmethod
    def from_connection(cls, conn_id: str, api_version: str = "v60.0") -> "SalesforceClient":
        return cls(api_credentials(conn_id), api_version)

    def _authenticate(self) -> None:
        def check(response: requests.Response) -> dict:
            if response.status_code != 200:
                raise SalesforceError(f"OAuth token request refused (HTTP {response.status_code}): "
                                      f"{response.json().get('error', 'unknown error')}")
            return response.json()

        body = self.policy.request("POST", f"{self._creds.base_url}/services/oauth2/token", check=check, data={
            "grant_type": "client_credentials", "client_id": self._creds.client_id,
            "client_secret": self._creds.client_secret})
        self._token, self._instance_url = body["access_token"], body["instance_url"].rstrip("/")

    def server_now(self) -> datetime:
        """The org's clock (getDeleted windows and freshness are on it). Before any answer has told
        it, the token request does: this machine's clock may be days away from the org's."""
        if not self.policy.knows_server_clock:
            self._authenticate()
        return self.policy.server_now()

    def _call(self, method: str, path: str, *, json: dict | None = None, stream: bool = False):
        """One authenticated call; the JSON body, or the streamed response when stream=True."""
        def check(response: requests.Response):
            if response.status_code == 401:
                raise _SessionExpired()
            if response.status_code >= 300:
                errors = response.json() if response.content else []
                errors = errors if isinstance(errors, list) else [errors]
                detail = "; ".join(f"{e.get('errorCode')}: {e.get('message')}" for e in errors) or response.text
                raise SalesforceError(f"Salesforce answered HTTP {response.status_code} to "
                                      f"{path.split('?')[0]}: {detail}")
            return response if stream else response.json()

        for attempt in (1, 2):
            if self._token is None:
                self._authenticate()
            self.api_calls += 1
            try:
                return self.policy.request(method, f"{self._instance_url}{path}", check=check, json=json,
                                           stream=stream, headers={"Authorization": f"Bearer {self._token}"})
            except _SessionExpired:
                self._token = None
                if attempt == 2:
                    raise SalesforceError("session rejected twice; check the connected app") from None
        raise AssertionError("unreachable")

    def _get(self, path: str) -> dict:
        return self._call("GET", path)

    def bulk_query_csv(self, soql: str, *, include_deleted: bool = False, max_records: int = 100_000,
                       poll_seconds: float = 2.0) -> Iterator[bytes]:
        """A Bulk API 2.0 query's results as one CSV byte stream: the pages (followed with
        Sforce-Locator until it says "null") are joined under the first page's header."""
        base = f"/services/data/{self.api_version}/jobs/query"
        job = self._call("POST", base, json={"operation": "queryAll" if include_deleted else "query",
                                             "query": soql, "contentType": "CSV",
                                             "columnDelimiter": "COMMA", "lineEnding": "LF"})
        while job["state"] not in ("JobComplete", "Failed", "Aborted"):
            time.sleep(poll_seconds)
            job = self._call("GET", f"{base}/{job['id']}")
        if job["state"] != "JobComplete":
            raise SalesforceError(f"Bulk query job {job['id']} ended {job['state']}: {job.get('errorMessage')}")
        locator, first = None, True
        while True:
            query = f"?maxRecords={max_records}" + (f"&locator={locator}" if locator else "")
            response = self._call("GET", f"{base}/{job['id']}/results{query}", stream=True)
            with response:
                chunks = response.iter_content(chunk_size=1 << 16)
                if not first:
                    chunks = _without_first_line(chunks)   # every page repeats the header
                yield from chunks
            first = False
            locator = response.headers.get("Sforce-Locator")
            if not locator or locator == "null":
                return

    def deleted(self, obj: str, start: str, end: str) -> dict:
        """getDeleted: the records of `obj` deleted between start and end (ISO times, whole minutes,
        at most 15 days back), with latestDateCovered."""
        return self._get(f"/services/data/{self.api_version}/sobjects/{obj}/deleted/"
                         f"?start={quote(start)}&end={quote(end)}")

    def query(self, soql: str, *, include_deleted: bool = False) -> Iterator[dict]:
        """Every record of a SOQL query, page by page (never the whole result in memory)."""
        resource = "queryAll" if include_deleted else "query"
        body = self._get(f"/services/data/{self.api_version}/{resource}?q={quote(soql)}")
        while True:
            for record in body.get("records", []):
                record.pop("attributes", None)
                yield record
            if body.get("done", True) or not body.get("nextRecordsUrl"):
                return
            body = self._get(body["nextRecordsUrl"])
