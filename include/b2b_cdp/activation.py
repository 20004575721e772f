"""Activation to Marketo static lists: send only the difference from what the list already holds.

Members are matched to Marketo leads by email. The state table records what each list holds as we
sent it; every API batch is recorded right after its answer, so a run that dies midway resumes
from what really happened instead of repeating or losing work.
"""

from __future__ import annotations

import hashlib
import logging
from datetime import datetime, timezone
from typing import Any

from b2b_cdp import warehouse
from b2b_cdp.config import CdpConfig, MarketoDestination, StaticListAudience, load_config
from b2b_cdp.sources.marketo import MarketoClient, chunks

log = logging.getLogger(__name__)

NO_LEAD = "no Marketo lead has this email (people must exist in Marketo to join a list)"


def _payload_hash(email: str, lead_id: str) -> str:
    return hashlib.sha256(f"{email}|{lead_id}".encode()).hexdigest()[:16]


def _utcnow() -> datetime:
    # Operational timestamps (when a call happened), never used for evaluation.
    return datetime.now(timezone.utc)


def match_leads(client: MarketoClient, emails: list[str]) -> dict[str, int]:
    """email -> lead id; when several leads share an email the most recently updated wins."""
    best: dict[str, tuple[str, int]] = {}
    for lead in client.query("leads", "email", emails, fields=["id", "email", "updatedAt"]):
        email = (lead.get("email") or "").strip().lower()
        candidate = (lead.get("updatedAt") or "", int(lead["id"]))
        if email and (email not in best or candidate > best[email]):
            best[email] = candidate
    return {email: lead_id for email, (_, lead_id) in best.items()}


def store_plan(sandbox, keys: dict, run_id: str, to_add: list[str], to_remove: list[str],
               audience_size: int) -> dict[str, Any]:
    """A dry run: the plan (who would be added and removed) is printed and stored in
    activation_plan; nobody is called."""
    with warehouse.connect(sandbox) as conn:
        for action, people in (("add", to_add), ("remove", to_remove)):
            warehouse.run(conn, "activation/record_plan", {
                **keys, "run_id": run_id, "person_ids": list(people), "action": action}).close()
        warehouse.run(conn, "activation/finish_dry_run", {**keys, "run_id": run_id,
                                                          "finished_at": _utcnow()}).close()
    shown = 20
    log.info("DRY RUN %s %s: would add %d (%s%s), remove %d (%s%s); nothing sent", keys["destination_id"],
             keys["audience_key"], len(to_add), ", ".join(to_add[:shown]), ", ..." if len(to_add) > shown else "",
             len(to_remove), ", ".join(to_remove[:shown]), ", ..." if len(to_remove) > shown else "")
    return {"dry_run": True, "audience_size": audience_size, "planned_add": len(to_add),
            "planned_remove": len(to_remove), "api_calls": 0}


def sync_static_list(cfg: CdpConfig, destination: MarketoDestination, audience: StaticListAudience,
                     client: MarketoClient, run_id: str, dry_run: bool = False) -> dict[str, int]:
    sandbox = cfg.sandbox_of(destination)
    keys = {"destination_id": destination.id, "audience_key": str(audience.static_list_id)}
    with warehouse.connect(sandbox) as conn:
        desired = dict(warehouse.fetch_all(conn, "segments/current_member_emails",
                                           {"segment_id": audience.segment}))
        held = dict(warehouse.fetch_all(conn, "activation/held_members", keys))
        to_add = sorted(set(desired) - set(held))
        to_remove = sorted(set(held) - set(desired))
        warehouse.run(conn, "activation/start_sync", {
            **keys, "run_id": run_id, "segment_id": audience.segment, "audience_size": len(desired),
            "planned_add": len(to_add), "planned_remove": len(to_remove), "started_at": _utcnow()}).close()
    log.info("%s list %s: %d members wanted, %d held; plan +%d -%d", destination.id,
             audience.static_list_id, len(desired), len(held), len(to_add), len(to_remove))
    if dry_run:
        return store_plan(sandbox, keys, run_id, to_add, to_remove, len(desired))
    calls_before = client.api_calls
    added = removed = skipped = 0

    def record(statements: list[tuple[str, dict]]) -> None:
        with warehouse.connect(sandbox) as conn:
            for name, params in statements:
                warehouse.run(conn, name, {**keys, "run_id": run_id, **params}).close()

    if to_add:
        leads = match_leads(client, [desired[p] for p in to_add if desired[p]])
        unmatched = [p for p in to_add if (desired[p] or "").lower() not in leads]
        record([("activation/record_status", {"person_id": p, "action": "add", "status": "skipped",
                                              "reason": NO_LEAD}) for p in unmatched])
        skipped += len(unmatched)
        matched = [p for p in to_add if (desired[p] or "").lower() in leads]
        for batch in chunks(matched):
            ids = [leads[desired[p].lower()] for p in batch]
            results = client.change_list(audience.static_list_id, ids)
            statements = []
            for person_id, lead_id, result in zip(batch, ids, results):
                if result.get("status") == "added":
                    added += 1
                    statements.append(("activation/record_added", {
                        "person_id": person_id, "member_key": str(lead_id), "synced_at": _utcnow(),
                        "payload_hash": _payload_hash(desired[person_id], str(lead_id))}))
                    statements.append(("activation/record_status", {
                        "person_id": person_id, "action": "add", "status": "added", "reason": None}))
                else:
                    skipped += 1
                    reason = "; ".join(f"{r.get('code')} {r.get('message')}" for r in result.get("reasons", []))
                    statements.append(("activation/record_status", {
                        "person_id": person_id, "action": "add", "status": "skipped", "reason": reason}))
            record(statements)
    for batch in chunks(to_remove):
        results = client.change_list(audience.static_list_id, [int(held[p]) for p in batch], remove=True)
        statements = []
        for person_id, result in zip(batch, results):
            # "skipped: not in list" means the lead is already gone: the goal is met either way.
            removed += result.get("status") == "removed"
            statements.append(("activation/record_removed", {"person_id": person_id}))
            statements.append(("activation/record_status", {
                "person_id": person_id, "action": "remove", "status": result.get("status", "unknown"),
                "reason": None}))
        record(statements)
    outcome = {"audience_size": len(desired), "added": added, "removed": removed, "skipped": skipped,
               "api_calls": client.api_calls - calls_before}
    record([("activation/finish_sync", {"added": added, "removed": removed, "skipped": skipped,
                                        "api_calls": outcome["api_calls"], "finished_at": _utcnow()})])
    log.info("%s list %s: %s", destination.id, audience.static_list_id, outcome)
    return outcome


def activate_destination(destination_id: str, run_id: str, dry_run: bool = False) -> dict[str, dict]:
    """Bring a destination in step with its segments; with dry_run, store and print the plan only."""
    cfg = load_config()
    destination = cfg.destination(destination_id)
    if destination.type == "cloud_storage":
        from b2b_cdp import cloud_storage

        return cloud_storage.activate_destination(cfg, destination, run_id, dry_run)
    if destination.type == "linkedin":
        from b2b_cdp import linkedin

        return linkedin.activate_destination(cfg, destination, run_id, dry_run)
    client = MarketoClient.from_connection(destination.conn_id)
    return {str(aud.static_list_id): sync_static_list(cfg, destination, aud, client, run_id, dry_run)
            for aud in destination.audiences}


def list_member_emails(conn_id: str, list_id: int) -> list[str]:
    """What a static list really holds, read back through the Marketo API."""
    client = MarketoClient.from_connection(conn_id)
    return sorted((m.get("email") or "").lower() for m in client.list_members(list_id, ["id", "email"]))
