"""Activation to Marketo static lists: send only the difference from what the list already holds.

New members are matched to Marketo leads through their identity graph first (a lead record of the
instance, ingested from it: no lookup call), then by email, then by ECID (a lead carrying one of
the person's ECIDs in its `ecids` field, as landed in the lake). With `lead_creation` configured, the
members still without a lead (never unsubscribed people) are created from the mapped attributes.
Each email is sent in at most one Sync Leads call per run, and every run looks leads up by email
before creating any: two upserts of one key never overlap, so Marketo's duplicate-lead hazard for
concurrent upserts is never met, and a lead created by a run that died before recording it is
found, not created again. The state table records what each list holds as we sent it; every API
batch is recorded right after its answer, so a run that dies midway resumes from what really
happened instead of repeating or losing work.
"""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import date, datetime, timedelta, timezone
from typing import Any

import requests

from b2b_cdp import warehouse
from b2b_cdp.config import LEAD_REQUIRED_FIELDS, CdpConfig, MarketoDestination, StaticListAudience, load_config
from b2b_cdp.http import RetryableError
from b2b_cdp.sources.marketo import MarketoClient, chunks

log = logging.getLogger(__name__)

NO_LEAD = "no Marketo lead has this email or ECID (people must exist in Marketo to join a list)"
UNSUBSCRIBED = "unsubscribed: never created as a Marketo lead"
SAME_EMAIL = "another member with this email is created in this run: one upsert per email per run"
SHARED_LEAD = "another member has the same lead: kept on the list for them"


class LeadCreationUnconfirmed(RuntimeError):
    """A Sync Leads call got no answer saying what it did."""


def _payload_hash(lead_id: str, attributes: dict | None = None) -> str:
    """What a member's lead was sent: its id and, once sent, its mapped attributes (None: not yet)."""
    return hashlib.sha256(json.dumps([lead_id, attributes], sort_keys=True).encode()).hexdigest()[:16]


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
               audience_size: int, to_update: list[str] = ()) -> dict[str, Any]:
    """A dry run: the plan (who would be added, removed and have their attributes updated) is
    printed and stored in activation_plan; nobody is called."""
    with warehouse.connect(sandbox) as conn:
        for action, people in (("add", to_add), ("remove", to_remove), ("update", to_update)):
            warehouse.run(conn, "activation/record_plan", {
                **keys, "run_id": run_id, "person_ids": list(people), "action": action}).close()
        warehouse.run(conn, "activation/finish_dry_run", {**keys, "run_id": run_id,
                                                          "finished_at": _utcnow()}).close()
    shown = 20
    log.info("DRY RUN %s %s: would %s; nothing sent", keys["destination_id"], keys["audience_key"], ", ".join(
        f"{action} {len(people)} ({', '.join(people[:shown])}{', ...' if len(people) > shown else ''})"
        for action, people in (("add", to_add), ("remove", to_remove), ("update", list(to_update)))
        if people or action != "update"))
    plan = {"dry_run": True, "audience_size": audience_size, "planned_add": len(to_add),
            "planned_remove": len(to_remove), "api_calls": 0}
    return plan | ({"planned_update": len(to_update)} if to_update else {})


def record_outcomes(sandbox, keys: dict, run_id: str, statements: list[tuple[str, dict]]) -> None:
    """Record a batch's outcomes in one transaction, each statement file sent once for all its rows
    (executemany, pipelined): a batch of 300 leads is a few round trips, not 600."""
    rows_by_statement: dict[str, list[dict]] = {}
    for name, params in statements:
        rows_by_statement.setdefault(name, []).append({**keys, "run_id": run_id, **params})
    if not rows_by_statement:
        return
    with warehouse.connect(sandbox) as conn, conn.cursor() as cur:
        for name, rows in rows_by_statement.items():
            cur.executemany(warehouse.sql_file(name), rows)


def released(member_ids: list[str], reason: str) -> list[tuple[str, dict]]:
    """State statements for members no longer held for themselves while the destination keeps
    their key (a lead, a hash) for another member who shares it: no call, only the record."""
    return [statement for member_id in member_ids for statement in (
        ("activation/record_removed", {"person_id": member_id}),
        ("activation/record_status", {"person_id": member_id, "action": "remove", "status": "removed",
                                      "reason": reason}))]


def leads_from_graph(sandbox, munchkin_id: str, person_ids: list[str]) -> dict[str, int]:
    """person id -> the live lead of the instance the person's identity graph holds (ingested)."""
    if not person_ids:
        return {}
    with warehouse.connect(sandbox) as conn:
        return dict(warehouse.fetch_all(conn, "activation/marketo_leads_from_graph",
                                        {"person_ids": person_ids, "instance": munchkin_id}))


def match_by_ecid(sandbox, munchkin_id: str, person_ids: list[str]) -> dict[str, int]:
    """person id -> lead id of the instance carrying one of the person's ECIDs (from the lake)."""
    if not person_ids:
        return {}
    with warehouse.connect(sandbox) as conn:
        if "ecids" not in warehouse.raw_columns(conn, "raw_marketo_leads"):
            return {}            # no lead of any instance has carried an ECID yet
        return dict(warehouse.fetch_all(conn, "activation/marketo_leads_by_ecid",
                                        {"person_ids": person_ids, "instance": munchkin_id}))


def _lead_value(value: Any) -> Any:
    return value.isoformat() if isinstance(value, (date, datetime)) else value


def lead_fields(destination: MarketoDestination, profile: dict) -> dict[str, Any]:
    """The Marketo fields a profile maps to; empty attributes are left out (never clear a field)."""
    return {m.target: _lead_value(profile[m.source]) for m in destination.mapping
            if profile[m.source] not in (None, "")}


def updatable(fields: dict[str, Any]) -> dict[str, Any]:
    """The fields an attribute update sends: email identifies the lead and is never rewritten (a
    lead matched by ECID keeps its own address; a CRM-synced lead takes it from the CRM)."""
    return {target: value for target, value in fields.items() if target != "email"}


def member_profiles(sandbox, person_ids: list[str]) -> list[dict]:
    if not person_ids:
        return []
    with warehouse.connect(sandbox) as conn:
        cursor = warehouse.run(conn, "activation/marketo_member_profiles", {"person_ids": person_ids})
        names = [c.name for c in cursor.description]
        return [dict(zip(names, row)) for row in cursor.fetchall()]


def lead_records(destination: MarketoDestination, profiles: list[dict]) -> tuple[dict[str, dict], dict[str, str]]:
    """person id -> the new lead's fields (mapped attributes), and person id -> why none is created.
    Unsubscribed people are never created; one record per email (the first member holding it)."""
    records: dict[str, dict] = {}
    refused: dict[str, str] = {}
    emails: set[str] = set()
    for profile in profiles:
        person_id = profile["person_id"]
        fields = lead_fields(destination, profile)
        missing = [f for f in LEAD_REQUIRED_FIELDS if not str(fields.get(f) or "").strip()]
        if profile["unsubscribed"]:
            refused[person_id] = UNSUBSCRIBED
        elif missing:
            refused[person_id] = f"cannot create a Marketo lead without {', '.join(missing)}"
        elif fields["email"].strip().lower() in emails:
            refused[person_id] = SAME_EMAIL
        else:
            emails.add(fields["email"].strip().lower())
            records[person_id] = fields
    return records, refused


def create_leads(client: MarketoClient, destination: MarketoDestination,
                 records: dict[str, dict]) -> tuple[dict[str, int], dict[str, str]]:
    """Sync Leads (the configured action, lookupField email), 300 per call, each email once:
    person id -> new (or, with createOrUpdate, updated) lead id, and person id -> why not."""
    created: dict[str, int] = {}
    refused: dict[str, str] = {}
    for batch in chunks(sorted(records)):
        try:
            body = client.call("POST", "/rest/v1/leads.json", idempotent=False, json={
                "action": destination.lead_creation.action, "lookupField": "email",
                "input": [records[p] for p in batch]})
        except (requests.RequestException, RetryableError) as exc:
            # Marketo may still run the call: sending it again would put two upserts of these emails
            # in flight (duplicate leads). The run stops; the next one looks them up before creating.
            raise LeadCreationUnconfirmed(
                f"Sync Leads for {len(batch)} members got no answer ({exc}); not sent again, since a second "
                "upsert of the same emails can create duplicate leads: the next run looks them up by email "
                "first and creates only those still missing") from exc
        for person_id, result in zip(batch, body.get("result", [])):
            if result.get("status") in ("created", "updated") and result.get("id") is not None:
                created[person_id] = int(result["id"])
            else:
                refused[person_id] = _reasons(result)
    return created, refused


def find_or_create_leads(sandbox, destination: MarketoDestination, client: MarketoClient,
                         emails: dict[str, str | None], settled: dict[str, str]
                         ) -> tuple[dict[str, int], dict[str, str], dict[str, tuple[int, dict]]]:
    """New members (person id -> email) -> their lead ids, the reasons of those left without one,
    and the leads created for them (person id -> lead id, fields). `settled` members (person id ->
    the reason of their last lookup) are matched through the warehouse only: no call, no creation."""
    # Members whose graph holds a lead of this instance need no lookup call: most members came from it.
    leads = leads_from_graph(sandbox, destination.munchkin_id, sorted(emails))
    if "email" in destination.match_on:
        unknown = {p: e for p, e in emails.items() if p not in leads and p not in settled and e and e.strip()}
        by_email = match_leads(client, sorted({e.strip().lower() for e in unknown.values()}))
        leads |= {p: by_email[e.strip().lower()] for p, e in unknown.items() if e.strip().lower() in by_email}
    if "ecid" in destination.match_on:
        leads |= match_by_ecid(sandbox, destination.munchkin_id, sorted(set(emails) - set(leads)))
    unmatched = sorted(set(emails) - set(leads) - set(settled))
    waiting = {p: reason for p, reason in settled.items() if p in emails and p not in leads}
    if destination.lead_creation is None or not unmatched:
        return leads, {p: NO_LEAD for p in unmatched} | waiting, {}
    records, refused = lead_records(destination, member_profiles(sandbox, unmatched))
    created, failed = create_leads(client, destination, records)
    log.info("%s: created %d Marketo leads (%s); %d not created", destination.id, len(created),
             destination.lead_creation.action, len(refused) + len(failed))
    return (leads | created, {p: NO_LEAD for p in unmatched if p not in created} | refused | failed | waiting,
            {p: (lead_id, records[p]) for p, lead_id in created.items()})


def stale_attributes(sandbox, destination: MarketoDestination, keys: dict,
                     members: set[str]) -> dict[str, tuple[int, dict]]:
    """Held members whose lead was last sent other attributes than their profile maps to now:
    person id -> (lead id, the fields to send)."""
    if not members:
        return {}
    with warehouse.connect(sandbox) as conn:
        held = {p: (key, sent) for p, key, sent in warehouse.fetch_all(conn, "activation/held_payloads", keys)
                if p in members}
    stale = {}
    for profile in member_profiles(sandbox, sorted(held)):
        lead_id, sent = held[profile["person_id"]]
        fields = updatable(lead_fields(destination, profile))
        if _payload_hash(lead_id, fields) != sent:
            stale[profile["person_id"]] = (int(lead_id), fields)
    return stale


def update_leads(client: MarketoClient, stale: dict[str, tuple[int, dict]],
                 record) -> tuple[int, int]:
    """Sync Leads updateOnly by lead id, 300 per call, each batch recorded right after its answer:
    (updated, skipped). A skipped member keeps its old hash, so the next run sends it again."""
    updated = skipped = 0
    for batch in chunks(sorted(stale)):
        body = client.call("POST", "/rest/v1/leads.json", json={
            "action": "updateOnly", "lookupField": "id",
            "input": [{"id": stale[p][0], **stale[p][1]} for p in batch]})
        statements = []
        for person_id, result in zip(batch, body.get("result", [])):
            lead_id, fields = stale[person_id]
            if result.get("status") == "updated":
                updated += 1
                statements.append(("activation/record_payload", {
                    "person_id": person_id, "payload_hash": _payload_hash(str(lead_id), fields),
                    "synced_at": _utcnow()}))
                status, reason = "updated", None
            else:
                skipped += 1
                status, reason = "skipped", _reasons(result)
            statements.append(("activation/record_status", {
                "person_id": person_id, "action": "update", "status": status, "reason": reason}))
        record(statements)
    return updated, skipped


def _reasons(result: dict) -> str:
    return "; ".join(f"{r.get('code')} {r.get('message')}" for r in result.get("reasons", [])) \
        or str(result.get("status"))


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
    # Attribute updates planned: held members staying whose mapped attributes changed.
    stale = (stale_attributes(sandbox, destination, keys, set(desired) & set(held))
             if destination.update_attributes else {})

    def record(statements: list[tuple[str, dict]]) -> None:
        record_outcomes(sandbox, keys, run_id, statements)

    if destination.update_attributes:
        record([("activation/record_updates", {"planned_update": len(stale), "updated": None})])
    log.info("%s list %s: %d members wanted, %d held; plan +%d -%d%s", destination.id,
             audience.static_list_id, len(desired), len(held), len(to_add), len(to_remove),
             f" ~{len(stale)}" if destination.update_attributes else "")
    if dry_run:
        return store_plan(sandbox, keys, run_id, to_add, to_remove, len(desired), sorted(stale))
    calls_before = client.api_calls
    added = removed = skipped = 0
    added_keys: set[str] = set()
    added_people: set[str] = set()

    if to_add:
        with warehouse.connect(sandbox) as conn:
            since = _utcnow() - timedelta(hours=destination.lookup_retry_hours)
            settled = dict(warehouse.fetch_all(conn, "activation/settled_unmatched", {**keys, "since": since}))
        leads, reasons, created = find_or_create_leads(sandbox, destination, client,
                                                       {p: desired[p] for p in to_add}, settled)
        waiting = sorted(p for p, reason in reasons.items() if reason in (NO_LEAD, UNSUBSCRIBED))
        looked_up_at = _utcnow()
        record([("activation/record_unmatched", {"person_id": p, "reason": reasons[p], "looked_up_at": looked_up_at})
                for p in waiting if p not in settled]
               + [("activation/forget_unmatched", {"waiting": waiting})])
        record([("activation/record_status", {"person_id": p, "action": "add", "status": "skipped",
                                              "reason": reason}) for p, reason in sorted(reasons.items())]
               + [("activation/record_status", {"person_id": p, "action": "create", "status": "created",
                                                "reason": f"lead {lead_id}"})
                  for p, (lead_id, _) in sorted(created.items())])
        skipped += len(reasons)
        matched = [p for p in to_add if p in leads]
        for batch in chunks(matched):
            ids = [leads[p] for p in batch]
            results = client.change_list(audience.static_list_id, ids)
            statements = []
            for person_id, lead_id, result in zip(batch, ids, results):
                if result.get("status") == "added":
                    added += 1
                    added_keys.add(str(lead_id))
                    added_people.add(person_id)
                    statements.append(("activation/record_added", {
                        "person_id": person_id, "member_key": str(lead_id), "synced_at": _utcnow(),
                        # A lead created from the mapped attributes holds them already.
                        "payload_hash": _payload_hash(str(lead_id), updatable(created[person_id][1])
                                                      if person_id in created else None)}))
                    statements.append(("activation/record_status", {
                        "person_id": person_id, "action": "add", "status": "added", "reason": None}))
                else:
                    skipped += 1
                    reason = _reasons(result)
                    statements.append(("activation/record_status", {
                        "person_id": person_id, "action": "add", "status": "skipped", "reason": reason}))
            record(statements)
    # A list holds a lead once, whoever it was added for, and people can share an email (a shared
    # mailbox never links two people): a lead another member is on the list for stays on it.
    on_list_for_others = {key for p, key in held.items() if p in desired} | added_keys
    record(released([p for p in to_remove if held[p] in on_list_for_others], SHARED_LEAD))
    to_remove = [p for p in to_remove if held[p] not in on_list_for_others]
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
    outcome = {"audience_size": len(desired), "added": added, "removed": removed, "skipped": skipped}
    if destination.update_attributes:
        # The planned ones and the members just added (a matched lead was sent no attributes). A
        # refused update is in activation_record_status (action update) and is sent again next run.
        stale |= stale_attributes(sandbox, destination, keys, added_people)
        updated, refused = update_leads(client, stale, record)
        record([("activation/record_updates", {"planned_update": None, "updated": updated})])
        outcome |= {"updated": updated, "update_refused": refused}
    outcome["api_calls"] = client.api_calls - calls_before
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
