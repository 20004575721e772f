"""Activation to LinkedIn Matched Audiences: one DMP segment per audience, kept in step by diff.

Person audiences (segments) become USER segments: members go as SHA-256 (lower-case hex) of the
trimmed, lower-cased email. Account audiences (a solution interest's accounts) become COMPANY
segments: each account goes as its name, its website's bare domain and, when known
(activation_organization_urn), its LinkedIn organization URN. The DMP segment is created on first
use (its id comes back in the `x-restli-id` header) and recorded at once in
activation_remote_audience; right after creation LinkedIn answers 404 "Could not find DMP segment"
for a few seconds, which the client waits out. Users are added and removed with BATCH_CREATE calls
(companies: the same on `/companies`) whose answer carries one status per element: each element's
outcome is recorded right after the call (activation_state, activation_record_status), so a run that
dies midway resumes from what really happened. A run with no change makes no API call. 429s are
retried after Retry-After through the shared HTTP policy.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import requests

from b2b_cdp import warehouse
from b2b_cdp.activation import record_outcomes, released, store_plan
from b2b_cdp.config import CdpConfig, LinkedInDestination
from b2b_cdp.connections import ApiCredentials, api_credentials
from b2b_cdp.http import HttpPolicy, RetryableError

log = logging.getLogger(__name__)

API_VERSION = "202505"            # LinkedIn-Version (YYYYMM), as Segment's destination sends
BATCH_SIZE = 5000                 # elements per BATCH_CREATE (the figure usually quoted; unverified)
MIN_AUDIENCE = 300                # LinkedIn serves no campaign to a smaller audience
SEGMENT_READY_WAIT = 5.0          # seconds to wait when a new segment is not found yet
SOURCE_PLATFORM = "b2b_cdp"
NO_EMAIL = "no email: LinkedIn matches users by hashed email"
NO_COMPANY_KEY = "no name, website or organization URN: LinkedIn cannot match the company"
COMPANY_FIELDS = ("companyName", "companyWebsiteDomain", "organizationUrn")
EXPIRED_TOKEN = ("the connection's access token is expired or revoked: authorise the app again and store the "
                 "new token as the connection's password; the next run sends what this one could not")
SHARED_MEMBER = "another member has the same email (or company): kept on LinkedIn for them"
COMPANY_NAME_MAX = 100          # characters LinkedIn reads of a company name (longer ones are cut)


class LinkedInError(RuntimeError):
    def __init__(self, status: int, message: str, path: str):
        super().__init__(f"LinkedIn HTTP {status} on {path}: {message}")
        self.status = status


def hash_email(email: str) -> str:
    return hashlib.sha256(email.strip().lower().encode("utf-8")).hexdigest()


def website_domain(website: str | None) -> str | None:
    """A website as LinkedIn's companyWebsiteDomain wants it: the bare host, lower-cased, without
    scheme, `www.`, port or path ("https://www.Townsend.com/about" -> "townsend.com")."""
    host = re.sub(r"^[a-z][a-z0-9+.-]*://", "", (website or "").strip().lower())
    host = re.split(r"[/?#:]", host, maxsplit=1)[0].removeprefix("www.").strip(".")
    return host or None


def company_member(name: str | None, website: str | None, organization_urn: str | None) -> str | None:
    """The company element's identifying fields, as canonical JSON (what activation_state holds, so
    a later REMOVE sends exactly what was added); None when nothing identifies the company."""
    fields = {"companyName": (name or "").strip()[:COMPANY_NAME_MAX] or None,
              "companyWebsiteDomain": website_domain(website), "organizationUrn": organization_urn or None}
    fields = {k: v for k, v in fields.items() if v}
    return json.dumps(fields, sort_keys=True, separators=(",", ":")) if fields else None


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


def _message(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    message = str(body.get("message", response.text[:200]))
    if body.get("serviceErrorCode") is not None:
        message += f" (serviceErrorCode {body['serviceErrorCode']})"
    if response.status_code == 401:
        # No refresh is possible: the connection holds an access token only (a 3-legged token lasts 60
        # days and is renewed by authorising the app again). Retrying cannot help; say what will.
        message += f": {EXPIRED_TOKEN}"
    return message


class LinkedInClient:
    """Connection: host = API base URL (https://api.linkedin.com), password = OAuth access token
    (login: the app's client id); extra: linkedin_version, segment_ready_wait, backoff_base."""

    def __init__(self, creds: ApiCredentials, policy: HttpPolicy | None = None):
        self._creds = creds
        self.base = creds.base_url.rstrip("/") + "/rest"
        self.version = str(creds.extra.get("linkedin_version", API_VERSION))
        self.segment_ready_wait = float(creds.extra.get("segment_ready_wait", SEGMENT_READY_WAIT))
        self.policy = policy or HttpPolicy(backoff_base=float(creds.extra.get("backoff_base", 1.0)))

    @classmethod
    def from_connection(cls, conn_id: str) -> "LinkedInClient":
        return cls(api_credentials(conn_id))

    @property
    def api_calls(self) -> int:
        return self.policy.calls

    def _headers(self, **more: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._creds.client_secret}", "LinkedIn-Version": self.version,
                "X-Restli-Protocol-Version": "2.0.0", **more}

    def create_segment(self, name: str, ad_account_id: int, source_segment_id: str,
                       segment_type: str = "USER") -> str:
        def check(response: requests.Response) -> str:
            if response.status_code != 201 or not response.headers.get("x-restli-id"):
                raise LinkedInError(response.status_code, _message(response), "/rest/dmpSegments")
            return response.headers["x-restli-id"]

        return self.policy.request("POST", f"{self.base}/dmpSegments", check=check, headers=self._headers(), json={
            "name": name, "account": f"urn:li:sponsoredAccount:{ad_account_id}", "accessPolicy": "PRIVATE",
            "type": segment_type, "sourcePlatform": SOURCE_PLATFORM, "sourceSegmentId": source_segment_id,
            "destinations": [{"destination": "LINKEDIN"}]})

    def find_segment(self, ad_account_id: int, source_segment_id: str) -> str | None:
        def check(response: requests.Response) -> list[dict]:
            if response.status_code != 200:
                raise LinkedInError(response.status_code, _message(response), "/rest/dmpSegments")
            return response.json().get("elements", [])

        found = self.policy.request("GET", f"{self.base}/dmpSegments", check=check, headers=self._headers(), params={
            "q": "account", "account": f"urn:li:sponsoredAccount:{ad_account_id}",
            "sourceSegmentId": source_segment_id, "sourcePlatform": SOURCE_PLATFORM})
        return str(found[0]["id"]) if found else None

    def change_members(self, segment_id: str, segment_type: str, elements: list[tuple[str, str]]) -> list[dict]:
        """(ADD|REMOVE, member) pairs -> one status entry per element, in order. A USER member is a
        SHA-256 email hash, a COMPANY member the canonical JSON of its identifying fields."""
        resource = "users" if segment_type == "USER" else "companies"
        path = f"/rest/dmpSegments/{segment_id}/{resource}"

        def check(response: requests.Response) -> list[dict]:
            if response.status_code == 404:
                # A segment is not visible to the members API for a few seconds after creation.
                raise RetryableError(f"DMP segment {segment_id} not found yet", retry_after=self.segment_ready_wait)
            if response.status_code != 200:
                raise LinkedInError(response.status_code, _message(response), path)
            results = response.json().get("elements", [])
            if len(results) != len(elements):
                raise LinkedInError(200, f"{len(results)} statuses for {len(elements)} elements", path)
            return results

        def element(action: str, member: str) -> dict:
            if segment_type == "USER":
                return {"action": action, "userIds": [{"idType": "SHA256_EMAIL", "idValue": member}]}
            return {"action": action, **json.loads(member)}

        return self.policy.request(
            "POST", f"{self.base}/dmpSegments/{segment_id}/{resource}", check=check,
            headers=self._headers(**{"X-RestLi-Method": "BATCH_CREATE"}),
            json={"elements": [element(action, member) for action, member in elements]})


@dataclass(frozen=True)
class _Audience:
    key: str                      # activation_state.audience_key: the segment, or accounts__<interest>
    segment_type: str             # USER | COMPANY
    name: str                     # the DMP segment's name
    segment_id: str | None
    solution_interest: str | None


def _audiences(destination: LinkedInDestination) -> list[_Audience]:
    return ([_Audience(a.segment, "USER", a.name or a.segment, a.segment, None) for a in destination.audiences]
            + [_Audience(a.key, "COMPANY", a.name or a.segment or f"{a.solution_interest} accounts",
                         a.segment, a.solution_interest) for a in destination.account_audiences])


def _members(conn, audience: _Audience) -> tuple[dict[str, str], list[tuple[str, str]]]:
    """member id (person or account) -> what LinkedIn matches on, and the members skipped, with why."""
    if audience.segment_type == "USER":
        rows = warehouse.fetch_all(conn, "segments/current_member_emails", {"segment_id": audience.segment_id})
        desired = {person_id: hash_email(email) for person_id, email in rows if email and email.strip()}
        return desired, [(person_id, NO_EMAIL) for person_id, _ in rows if person_id not in desired]
    rows = warehouse.fetch_all(conn, "activation/export_account_rows", {
        "segment_id": audience.segment_id, "solution_interest": audience.solution_interest})
    desired = {account_id: member for account_id, _, name, website, _, _, urn in rows
               if (member := company_member(name, website, urn))}
    return desired, [(account_id, NO_COMPANY_KEY) for account_id, *_ in rows if account_id not in desired]


def _remote_segment(cfg: CdpConfig, destination: LinkedInDestination, audience: _Audience,
                    client: LinkedInClient) -> str:
    """The DMP segment of this audience: recorded, found (created by a run that died before
    recording it), or created now and recorded at once."""
    sandbox = cfg.sandbox_of(destination)
    keys = {"destination_id": destination.id, "audience_key": audience.key}
    with warehouse.connect(sandbox) as conn:
        rows = warehouse.fetch_all(conn, "activation/remote_audience", keys)
    if rows:
        return rows[0][0]
    source_segment_id = f"{destination.id}.{audience.key}"
    remote_id = client.find_segment(destination.ad_account_id, source_segment_id)
    if remote_id is None:
        remote_id = client.create_segment(audience.name, destination.ad_account_id, source_segment_id,
                                          audience.segment_type)
        log.info("%s: created %s DMP segment %s for %s", destination.id, audience.segment_type, remote_id,
                 audience.key)
    with warehouse.connect(sandbox) as conn:
        warehouse.run(conn, "activation/record_remote_audience", {
            **keys, "remote_id": remote_id, "created_at": _utcnow()}).close()
    return remote_id


def sync_audience(cfg: CdpConfig, destination: LinkedInDestination, audience: _Audience,
                  client: LinkedInClient, run_id: str, batch_size: int = BATCH_SIZE,
                  dry_run: bool = False) -> dict[str, int]:
    sandbox = cfg.sandbox_of(destination)
    keys = {"destination_id": destination.id, "audience_key": audience.key}
    with warehouse.connect(sandbox) as conn:
        desired, unusable = _members(conn, audience)
        held = dict(warehouse.fetch_all(conn, "activation/held_members", keys))
    # A changed email (or company name, website, URN) is the old member out and the new one in.
    to_remove = [(p, held[p]) for p in sorted(held) if desired.get(p) != held[p]]
    to_add = [(p, desired[p]) for p in sorted(desired) if held.get(p) != desired[p]]
    with warehouse.connect(sandbox) as conn:
        warehouse.run(conn, "activation/start_sync", {
            **keys, "run_id": run_id, "segment_id": audience.segment_id or audience.solution_interest,
            "audience_size": len(desired), "planned_add": len(to_add), "planned_remove": len(to_remove),
            "started_at": _utcnow()}).close()
    record_outcomes(sandbox, keys, run_id, [("activation/record_status", {
        "person_id": member_id, "action": "add", "status": "skipped", "reason": reason})
        for member_id, reason in unusable])
    if dry_run:
        return store_plan(sandbox, keys, run_id, [p for p, _ in to_add], [p for p, _ in to_remove], len(desired))
    # LinkedIn holds a member (a hash, a company) once, whoever it was sent for, and people can share
    # an email (a shared mailbox never links two people): a member another one still wants is not
    # removed, only no longer held for this one.
    wanted = set(desired.values())
    kept = [(p, m) for p, m in to_remove if m in wanted]
    to_remove = [(p, m) for p, m in to_remove if m not in wanted]
    record_outcomes(sandbox, keys, run_id, released([p for p, _ in kept], SHARED_MEMBER))
    if len(desired) < MIN_AUDIENCE:
        log.warning("%s: %s audience %s has %d members LinkedIn can match, under LinkedIn's minimum of %d: "
                    "campaigns will not serve to it until it grows", destination.id, audience.segment_type,
                    audience.key, len(desired), MIN_AUDIENCE)
    calls_before = client.api_calls
    added = removed = skipped = 0
    if to_add or to_remove:
        remote_id = _remote_segment(cfg, destination, audience, client)
        work = [("REMOVE", p, m) for p, m in to_remove] + [("ADD", p, m) for p, m in to_add]
        for start in range(0, len(work), batch_size):
            batch = work[start:start + batch_size]
            results = client.change_members(remote_id, audience.segment_type,
                                            [(action, member) for action, _, member in batch])
            statements: list[tuple[str, dict]] = []
            for (action, member_id, member), result in zip(batch, results):
                ok = result.get("status") in (200, 201)
                verb = "add" if action == "ADD" else "remove"
                if ok and action == "ADD":
                    added += 1
                    statements.append(("activation/record_added", {
                        "person_id": member_id, "member_key": member,
                        "payload_hash": hashlib.sha256(member.encode()).hexdigest()[:16], "synced_at": _utcnow()}))
                elif ok:
                    removed += 1
                    statements.append(("activation/record_removed", {"person_id": member_id}))
                else:
                    skipped += 1
                statements.append(("activation/record_status", {
                    "person_id": member_id, "action": verb, "status": ("added" if verb == "add" else "removed")
                    if ok else "skipped", "reason": None if ok else f"{result.get('status')} {result.get('message')}"}))
            record_outcomes(sandbox, keys, run_id, statements)
    outcome = {"audience_size": len(desired), "added": added, "removed": removed,
               "skipped": skipped + len(unusable), "api_calls": client.api_calls - calls_before}
    with warehouse.connect(sandbox) as conn:
        warehouse.run(conn, "activation/finish_sync", {**keys, "run_id": run_id, "added": added, "removed": removed,
                                                       "skipped": outcome["skipped"], "api_calls": outcome["api_calls"],
                                                       "finished_at": _utcnow()}).close()
    log.info("%s %s: %s", destination.id, audience.key, outcome)
    return outcome


def activate_destination(cfg: CdpConfig, destination: LinkedInDestination, run_id: str,
                         dry_run: bool = False) -> dict[str, Any]:
    client = LinkedInClient.from_connection(destination.conn_id)
    return {audience.key: sync_audience(cfg, destination, audience, client, run_id, dry_run=dry_run)
            for audience in _audiences(destination)}
