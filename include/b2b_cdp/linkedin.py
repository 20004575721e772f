"""Activation to LinkedIn Matched Audiences: one USER DMP segment per audience, kept in step by diff.

Members go as SHA-256 (lower-case hex) of the trimmed, lower-cased email. The DMP segment is created
on first use (its id comes back in the `x-restli-id` header) and recorded at once in
activation_remote_audience; right after creation LinkedIn answers 404 "Could not find DMP segment"
for a few seconds, which the client waits out. Users are added and removed with BATCH_CREATE calls
whose answer carries one status per element: each element's outcome is recorded right after the
call (activation_state, activation_record_status), so a run that dies midway resumes from what
really happened. A run with no change makes no API call. 429s are retried after Retry-After through
the shared HTTP policy.
"""

from __future__ import annotations

import hashlib
import logging
from datetime import datetime, timezone
from typing import Any

import requests

from b2b_cdp import warehouse
from b2b_cdp.config import CdpConfig, LinkedInAudience, LinkedInDestination
from b2b_cdp.connections import ApiCredentials, api_credentials
from b2b_cdp.http import HttpPolicy, RetryableError

log = logging.getLogger(__name__)

API_VERSION = "202505"            # LinkedIn-Version (YYYYMM), as Segment's destination sends
BATCH_SIZE = 5000                 # elements per BATCH_CREATE (the figure usually quoted; unverified)
MIN_AUDIENCE = 300                # LinkedIn serves no campaign to a smaller audience
SEGMENT_READY_WAIT = 5.0          # seconds to wait when a new segment is not found yet
SOURCE_PLATFORM = "b2b_cdp"
NO_EMAIL = "no email: LinkedIn matches users by hashed email"


class LinkedInError(RuntimeError):
    def __init__(self, status: int, message: str, path: str):
        super().__init__(f"LinkedIn HTTP {status} on {path}: {message}")
        self.status = status


def hash_email(email: str) -> str:
    return hashlib.sha256(email.strip().lower().encode("utf-8")).hexdigest()


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


def _message(response: requests.Response) -> str:
    try:
        return str(response.json().get("message", response.text[:200]))
    except ValueError:
        return response.text[:200]


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

    def create_segment(self, name: str, ad_account_id: int, source_segment_id: str) -> str:
        def check(response: requests.Response) -> str:
            if response.status_code != 201 or not response.headers.get("x-restli-id"):
                raise LinkedInError(response.status_code, _message(response), "/rest/dmpSegments")
            return response.headers["x-restli-id"]

        return self.policy.request("POST", f"{self.base}/dmpSegments", check=check, headers=self._headers(), json={
            "name": name, "account": f"urn:li:sponsoredAccount:{ad_account_id}", "accessPolicy": "PRIVATE",
            "type": "USER", "sourcePlatform": SOURCE_PLATFORM, "sourceSegmentId": source_segment_id,
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

    def change_users(self, segment_id: str, elements: list[tuple[str, str]]) -> list[dict]:
        """(ADD|REMOVE, sha256) pairs -> one status entry per element, in order."""
        path = f"/rest/dmpSegments/{segment_id}/users"

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

        return self.policy.request(
            "POST", f"{self.base}/dmpSegments/{segment_id}/users", check=check,
            headers=self._headers(**{"X-RestLi-Method": "BATCH_CREATE"}),
            json={"elements": [{"action": action, "userIds": [{"idType": "SHA256_EMAIL", "idValue": value}]}
                               for action, value in elements]})


def _remote_segment(cfg: CdpConfig, destination: LinkedInDestination, audience: LinkedInAudience,
                    client: LinkedInClient) -> str:
    """The DMP segment of this audience: recorded, found (created by a run that died before
    recording it), or created now and recorded at once."""
    sandbox = cfg.sandbox_of(destination)
    keys = {"destination_id": destination.id, "audience_key": audience.segment}
    with warehouse.connect(sandbox) as conn:
        rows = warehouse.fetch_all(conn, "activation/remote_audience", keys)
    if rows:
        return rows[0][0]
    source_segment_id = f"{destination.id}.{audience.segment}"
    remote_id = client.find_segment(destination.ad_account_id, source_segment_id)
    if remote_id is None:
        remote_id = client.create_segment(audience.name or audience.segment, destination.ad_account_id,
                                          source_segment_id)
        log.info("%s: created DMP segment %s for %s", destination.id, remote_id, audience.segment)
    with warehouse.connect(sandbox) as conn:
        warehouse.run(conn, "activation/record_remote_audience", {
            **keys, "remote_id": remote_id, "created_at": _utcnow()}).close()
    return remote_id


def sync_audience(cfg: CdpConfig, destination: LinkedInDestination, audience: LinkedInAudience,
                  client: LinkedInClient, run_id: str, batch_size: int = BATCH_SIZE,
                  dry_run: bool = False) -> dict[str, int]:
    sandbox = cfg.sandbox_of(destination)
    keys = {"destination_id": destination.id, "audience_key": audience.segment}
    with warehouse.connect(sandbox) as conn:
        members = warehouse.fetch_all(conn, "segments/current_member_emails", {"segment_id": audience.segment})
        held = dict(warehouse.fetch_all(conn, "activation/held_members", keys))
    desired = {person_id: hash_email(email) for person_id, email in members if email and email.strip()}
    no_email = [person_id for person_id, email in members if not (email and email.strip())]
    # A changed email is the old hash out and the new one in.
    to_remove = [(p, held[p]) for p in sorted(held) if desired.get(p) != held[p]]
    to_add = [(p, desired[p]) for p in sorted(desired) if held.get(p) != desired[p]]
    with warehouse.connect(sandbox) as conn:
        warehouse.run(conn, "activation/start_sync", {
            **keys, "run_id": run_id, "segment_id": audience.segment, "audience_size": len(desired),
            "planned_add": len(to_add), "planned_remove": len(to_remove), "started_at": _utcnow()}).close()
        for person_id in no_email:
            warehouse.run(conn, "activation/record_status", {
                **keys, "run_id": run_id, "person_id": person_id, "action": "add", "status": "skipped",
                "reason": NO_EMAIL}).close()
    if dry_run:
        from b2b_cdp.activation import store_plan

        return store_plan(sandbox, keys, run_id, [p for p, _ in to_add], [p for p, _ in to_remove], len(desired))
    if len(desired) < MIN_AUDIENCE:
        log.warning("%s: audience %s has %d members with an email, under LinkedIn's minimum of %d: "
                    "campaigns will not serve to it until it grows", destination.id, audience.segment,
                    len(desired), MIN_AUDIENCE)
    calls_before = client.api_calls
    added = removed = skipped = 0
    if to_add or to_remove:
        remote_id = _remote_segment(cfg, destination, audience, client)
        work = [("REMOVE", p, h) for p, h in to_remove] + [("ADD", p, h) for p, h in to_add]
        for start in range(0, len(work), batch_size):
            batch = work[start:start + batch_size]
            results = client.change_users(remote_id, [(action, value) for action, _, value in batch])
            statements: list[tuple[str, dict]] = []
            for (action, person_id, value), result in zip(batch, results):
                ok = result.get("status") in (200, 201)
                verb = "add" if action == "ADD" else "remove"
                if ok and action == "ADD":
                    added += 1
                    statements.append(("activation/record_added", {
                        "person_id": person_id, "member_key": value, "payload_hash": value[:16],
                        "synced_at": _utcnow()}))
                elif ok:
                    removed += 1
                    statements.append(("activation/record_removed", {"person_id": person_id}))
                else:
                    skipped += 1
                statements.append(("activation/record_status", {
                    "person_id": person_id, "action": verb, "status": ("added" if verb == "add" else "removed")
                    if ok else "skipped", "reason": None if ok else f"{result.get('status')} {result.get('message')}"}))
            with warehouse.connect(sandbox) as conn:
                for name, params in statements:
                    warehouse.run(conn, name, {**keys, "run_id": run_id, **params}).close()
    outcome = {"audience_size": len(desired), "added": added, "removed": removed, "skipped": skipped + len(no_email),
               "api_calls": client.api_calls - calls_before}
    with warehouse.connect(sandbox) as conn:
        warehouse.run(conn, "activation/finish_sync", {**keys, "run_id": run_id, "added": added, "removed": removed,
                                                       "skipped": outcome["skipped"], "api_calls": outcome["api_calls"],
                                                       "finished_at": _utcnow()}).close()
    log.info("%s %s: %s", destination.id, audience.segment, outcome)
    return outcome


def activate_destination(cfg: CdpConfig, destination: LinkedInDestination, run_id: str,
                         dry_run: bool = False) -> dict[str, Any]:
    client = LinkedInClient.from_connection(destination.conn_id)
    return {audience.segment: sync_audience(cfg, destination, audience, client, run_id, dry_run=dry_run)
            for audience in destination.audiences}
