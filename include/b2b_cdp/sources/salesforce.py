"""Salesforce REST client: OAuth client credentials and SOQL queries paged with nextRecordsUrl."""

from __future__ import annotations

from typing import Iterator
from urllib.parse import quote

import requests

from b2b_cdp.connections import ApiCredentials, api_credentials
from b2b_cdp.http import HttpPolicy


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

    def _get(self, path: str) -> dict:
        def check(response: requests.Response) -> dict:
            if response.status_code == 401:
                raise _SessionExpired()
            if response.status_code != 200:
                errors = response.json() if response.content else []
                detail = "; ".join(f"{e.get('errorCode')}: {e.get('message')}" for e in errors) or response.text
                raise SalesforceError(f"Salesforce answered HTTP {response.status_code} to {path.split('?')[0]}: {detail}")
            return response.json()

        for attempt in (1, 2):
            if self._token is None:
                self._authenticate()
            self.api_calls += 1
            try:
                return self.policy.request("GET", f"{self._instance_url}{path}", check=check,
                                           headers={"Authorization": f"Bearer {self._token}"})
            except _SessionExpired:
                self._token = None
                if attempt == 2:
                    raise SalesforceError("session rejected twice; check the connected app") from None
        raise AssertionError("unreachable")

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
