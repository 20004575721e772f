"""Benchmark: identity stitching at scale, against scipy's connected components on the same links.

    python bench/identity.py [--persons 1000000] [--identities N] [--accounts N] [--seed 7]
                             [--report build/bench/identity.json]

1. Synthetic B2B core data goes straight into the core tables with COPY (generated with numpy, no
   Python loop per row): Marketo leads in two instances, most synced to a CRM contact (some to a
   CRM lead) in the matching Salesforce org, contacts and CRM leads in two orgs, leads of the same
   person in both instances, web visits carrying ECIDs (core_event, with the email when the visitor
   is known), shared role mailboxes (info@, sales@ ...), blocked values ('test@test.com', 'null',
   '' ...), accounts in both orgs and Marketo companies synced to them, MDM cross-references
   grouping accounts across orgs, opportunities (some reported by Marketo too) with contact roles.
   `--identities` counts the (record, identity) pairs the data carries: each person record's
   normalised email and CRM key, each ECID and the email seen with it; a record's own source key
   is not counted. Identities and accounts default to 3x and 1/5 of the persons.
2. A full `identity.stitch(sandbox, "bench-full")`, timed, with the time of each SQL file it runs.
   Each timed run starts on a quiet server (bench/_shared.py settle: VACUUM, then CHECKPOINT).
3. Baseline: the links the stitching used (identity_link WHERE joins; if that table has no rows,
   e.g. because the stitching failed, record -> identity pairs derived from core_person) through
   pandas.factorize + a scipy sparse matrix + scipy.sparse.csgraph.connected_components, each step
   timed. The component count is checked against the persons the stitching produced (reported,
   loudly, when they differ; the benchmark does not fail on it).
4. Incremental: 1% of person records change email (updated_at, extracted_at), 0.1% are deleted
   (is_deleted, as the pipeline's deletion sweeps do), 0.1% are added, and a few links merge two
   existing persons (a lead newly synced to another person's contact; a known visitor's ECID seen
   with another person's email); then `identity.stitch(sandbox, "bench-incremental")` is timed and
   its person count checked against connected components on its links.

Goals reported: full stitching within 3x of the scipy baseline (factorise + build + components),
as two ratios: stitching alone (graph, person and account ids) and stitching + profiles (the whole
run); incremental under 10% of the full run. Runs against the configured `cdp_warehouse` or an embedded
PostgreSQL (bench/_shared.py); the sandbox is recreated first.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import sys
import time
import traceback
from collections import defaultdict
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np

from _shared import ROOT, fresh_sandbox, machine, settle, workspace, write_report

S = np.dtypes.StringDType()
NULL = "\\N"                                   # NULL in COPY's text format
ORGS = np.array(["00D000000000001AAA", "00D000000000002AAA"], dtype=S)
ORG_CHAR = np.array(["A", "B"], dtype=S)
MUNCHKINS = np.array(["111-AAA-111", "222-BBB-222"], dtype=S)
WEB_INSTANCE = "web_events"
FIRST = ["James", "Mary", "Robert", "Patricia", "John", "Jennifer", "Michael", "Linda", "David",
         "Elizabeth", "William", "Barbara", "Richard", "Susan", "Joseph", "Jessica", "Thomas", "Sarah",
         "Carlos", "Karen", "Wei", "Priya", "Ahmed", "Fatima", "Kenji", "Yuki", "Olga", "Ivan", "Lucia",
         "Mateo", "Amara", "Chen", "Sofia", "Liam", "Noah", "Emma", "Olivia", "Ava", "Lars", "Ingrid"]
LAST = ["Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez",
        "Martinez", "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Thomas", "Taylor", "Moore",
        "Jackson", "Martin", "Lee", "Perez", "Thompson", "White", "Harris", "Sanchez", "Clark", "Lewis",
        "Nakamura", "Kim", "Patel", "Singh", "Muller", "Schmidt", "Rossi", "Dubois", "Novak", "Larsen"]
TITLES = ["Engineer", "Senior Engineer", "Engineering Manager", "VP Engineering", "CTO", "CIO",
          "IT Director", "Procurement Manager", "Analyst", "Marketing Manager", "CFO", "Operations Lead"]
INDUSTRIES = ["Manufacturing", "Software", "Finance", "Healthcare", "Retail", "Energy", "Logistics",
              "Education", "Telecommunications", "Public Sector"]
STAGES_OPEN = ["Prospecting", "Qualification", "Needs Analysis", "Proposal", "Negotiation"]
ROLES = ["Decision Maker", "Influencer", "Practitioner", "Executive Steering Committee", "Champion", "Other"]
ROLE_MAILBOXES = ["info", "sales", "marketing", "contact", "support", "office"]
# Values Identity Service blocks, and placeholders forms collect: in the data, never one person.
BLOCKED = ["test@test.com", "null", "N/A", "none", "", "noemail@example.com", "unknown", "anonymous"]
PAGES = ["", "pricing", "products/new-product", "products/robotics", "docs/getting-started", "blog/ai-in-b2b",
         "contact", "webinars/spring", "careers", "case-studies/acme"]

# Shares of the persons and records (see generate()).
NON_A_MIX = {"B": 0.35, "C": 0.45, "D": 0.20}   # lead only, contact only, lead + CRM lead
CROSS_INSTANCE = 0.05      # persons with a lead who also have one in the other Marketo instance
ANONYMOUS = 0.02           # persons who are only an ECID (never identified)
VISITORS = 0.10            # known persons seen on the website
SECOND_ECID = 0.15         # visitors seen on a second device
EMAIL_MISSING, EMAIL_BLOCKED, EMAIL_ROLE = 0.03, 0.003, 0.01
DELETED = 0.002            # records already deleted in the source

TABLES = ["core_person", "core_account", "core_account_xref", "core_opportunity", "core_opportunity_person",
          "core_event", "identity_link", "identity_rejected_link", "identity_person", "identity_person_lineage",
          "identity_record_person", "identity_account_key", "profile_person", "profile_account",
          "profile_opportunity", "profile_person_account"]

log = logging.getLogger("bench.identity")


# ---------------------------------------------------------------------------- vectorised text

def cat(*parts) -> np.ndarray:
    """Element-wise concatenation of string scalars and arrays (ints become their decimal text)."""
    out = None
    for part in parts:
        if not isinstance(part, str):
            part = np.asarray(part)
            if part.dtype != S:
                part = part.astype(S)
        out = part if out is None else np.strings.add(out, part)
    return out


def pad(numbers: np.ndarray, width: int) -> np.ndarray:
    return np.strings.zfill(np.asarray(numbers).astype(S), width)


def sf_key(prefix: str, org: np.ndarray, numbers: np.ndarray) -> np.ndarray:
    """18-character Salesforce ids as sourceKeys: <prefix><org char><11 digits>AAA@<orgId>.Salesforce."""
    return cat(prefix, ORG_CHAR[org], pad(numbers, 11), "AAA@", ORGS[org], ".Salesforce")


def timestamps(seconds: np.ndarray) -> np.ndarray:
    return np.datetime_as_string(np.asarray(seconds, dtype="int64").astype("datetime64[s]"),
                                 unit="s", timezone="UTC").astype(S)


def flags(mask: np.ndarray) -> np.ndarray:
    return np.where(mask, "t", "f").astype(S)


def nullable(values: np.ndarray, null: np.ndarray) -> np.ndarray:
    values = np.array(values, dtype=S, copy=True)
    values[null] = NULL
    return values


def copy_columns(conn, table: str, columns: dict, chunk: int = 200_000) -> int:
    """COPY column arrays (StringDType, NULL as \\N; a str is the same value on every row) into a
    table, a chunk of rows at a time, each chunk joined into text by numpy."""
    from psycopg import sql

    n = next(len(v) for v in columns.values() if not isinstance(v, str))
    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(table), sql.SQL(", ").join(sql.Identifier(c) for c in columns))
    with conn.cursor() as cur, cur.copy(statement) as copy:
        for start in range(0, n, chunk):
            row = None
            for value in columns.values():
                piece = value if isinstance(value, str) else value[start:start + chunk]
                row = cat(piece) if row is None else np.strings.add(np.strings.add(row, "\t"), piece)
            if isinstance(row, str):
                raise ValueError(f"{table}: the first column must be an array")
            copy.write("\n".join(row.tolist()) + "\n")
    return n


# ---------------------------------------------------------------------------- synthetic data

def _zipf_pick(rng, candidates: np.ndarray, size: int, exponent: float = 0.7) -> np.ndarray:
    """Pick among candidates with Zipf-like weights: a few large accounts, a long tail of small ones."""
    weights = (np.arange(len(candidates)) + 1.0) ** -exponent
    return candidates[rng.choice(len(candidates), size=size, p=weights / weights.sum())]


def _links_per_person(a: float, e: float = 0.965) -> float:
    """Expected (record, identity) pairs per known person when a share `a` has lead + contact."""
    per_kind = {"A": 2 * e + 2, "B": e, "C": e + 1, "D": 2 * e + 1}
    rest = sum(NON_A_MIX[k] * per_kind[k] for k in NON_A_MIX)
    lead_share = a + (1 - a) * (NON_A_MIX["B"] + NON_A_MIX["D"])
    web = VISITORS * (1 + SECOND_ECID) * 2
    return a * per_kind["A"] + (1 - a) * rest + CROSS_INSTANCE * lead_share * e + web


def generate(n_persons: int, n_identities: int, n_accounts: int, rng, base: datetime) -> dict:
    """Core tables as column arrays, plus what the incremental phase needs to pick its changes."""
    base_s = int(base.timestamp())
    extracted = timestamps(np.array([base_s]))[0]

    # Accounts: CRM accounts in two orgs (60/40), Marketo companies synced to some of them.
    n_crm = max(5, round(n_accounts * 0.6))
    n_mkto = max(0, n_accounts - n_crm)
    crm_org = (np.arange(n_crm) % 5 >= 3).astype(np.int64)
    crm_no = np.arange(n_crm)
    acc_key = sf_key("001", crm_org, crm_no)
    acc_name = cat("Company ", crm_no)
    acc_domain = cat("acct", crm_no, ".example")
    acc_updated = base_s - rng.integers(0, 730 * 86400, n_crm)
    mkto_of = rng.choice(n_crm, size=n_mkto, replace=n_mkto > n_crm)
    mkto_org = crm_org[mkto_of]
    account = {
        "source_key": np.concatenate([acc_key, cat(np.arange(1, n_mkto + 1), ".mkto_org@", MUNCHKINS[mkto_org],
                                                   ".Marketo")]),
        "system": np.concatenate([np.full(n_crm, "Salesforce", dtype=S), np.full(n_mkto, "Marketo", dtype=S)]),
        "instance": np.concatenate([ORGS[crm_org], MUNCHKINS[mkto_org]]),
        "crm_key": np.concatenate([acc_key, acc_key[mkto_of]]),
        "name": np.concatenate([acc_name, acc_name[mkto_of]]),
        "website": np.concatenate([cat("https://www.", acc_domain), cat("https://www.", acc_domain[mkto_of])]),
        "industry": np.array(INDUSTRIES, dtype=S)[rng.integers(0, len(INDUSTRIES), n_crm + n_mkto)],
        "annual_revenue": np.round(rng.lognormal(16.5, 1.6, n_crm + n_mkto), -3).astype(np.int64).astype(S),
        "employees": np.maximum(1, rng.lognormal(4.5, 1.5, n_crm + n_mkto)).astype(np.int64).astype(S),
        "updated_at": timestamps(np.concatenate([acc_updated, acc_updated[mkto_of]])),
        "is_deleted": flags(rng.random(n_crm + n_mkto) < 0.005),
        "extracted_at": extracted,
    }

    # MDM: the same company in both orgs (pairs, a tenth with a subsidiary in org 1), and singletons.
    org0, org1 = rng.permutation(np.flatnonzero(crm_org == 0)), rng.permutation(np.flatnonzero(crm_org == 1))
    n_pairs = int(0.15 * min(len(org0), len(org1)))
    n_triples = n_pairs // 10
    n_single = int(0.05 * (len(org0) - n_pairs - n_triples))
    pair_ids = np.arange(n_pairs)
    singles = org0[n_pairs + n_triples:n_pairs + n_triples + n_single]
    members = np.concatenate([org0[:n_pairs], org1[:n_pairs], org0[n_pairs:n_pairs + n_triples], singles])
    groups = np.concatenate([pair_ids, pair_ids, pair_ids[:n_triples], n_pairs + np.arange(n_single)])
    xref = {"mdm_id": cat("MDM-", pad(groups, 8)), "account_key": acc_key[members],
            "name": cat("Company ", members, " Group"), "extracted_at": extracted}

    # Persons: kinds A (Marketo lead + synced CRM contact), B (lead only), C (contact only),
    # D (lead synced to a CRM lead); the share of A is what makes the identity count come out.
    n_anon = round(n_persons * ANONYMOUS)
    nk = n_persons - n_anon
    target = (n_identities - n_anon) / max(nk, 1)
    lo, hi = _links_per_person(0.0), _links_per_person(1.0)
    share_a = min(0.95, max(0.05, (target - lo) / (hi - lo)))
    if not lo <= target <= hi:
        print(f"note: {n_identities:,} identities for {n_persons:,} persons is outside what the mix can "
              f"give ({lo:.2f} to {hi:.2f} a person); using {share_a:.0%} lead+contact persons", flush=True)
    probs = [share_a] + [(1 - share_a) * NON_A_MIX[k] for k in ("B", "C", "D")]
    kind = rng.choice(4, size=nk, p=probs)                   # 0 A, 1 B, 2 C, 3 D
    p_org = (rng.random(nk) < 0.4).astype(np.int64)
    p_acc = np.empty(nk, dtype=np.int64)
    for org in (0, 1):
        mask = p_org == org
        p_acc[mask] = _zipf_pick(rng, rng.permutation(np.flatnonzero(crm_org == org)), int(mask.sum()))
    first = np.array(FIRST, dtype=S)[rng.integers(0, len(FIRST), nk)]
    last = np.array(LAST, dtype=S)[rng.integers(0, len(LAST), nk)]
    personal = cat(np.strings.lower(first), ".", np.strings.lower(last), np.arange(nk), "@", acc_domain[p_acc])
    title = np.array(TITLES, dtype=S)[rng.integers(0, len(TITLES), nk)]

    leads = np.flatnonzero(kind != 2)
    contacts = np.flatnonzero((kind == 0) | (kind == 2))
    crm_leads = np.flatnonzero(kind == 3)
    cross = leads[rng.random(len(leads)) < CROSS_INSTANCE]
    contact_of = np.full(nk, NULL, dtype=S)
    contact_of[contacts] = sf_key("003", p_org[contacts], np.arange(len(contacts)))
    crm_lead_of = np.full(nk, NULL, dtype=S)
    crm_lead_of[crm_leads] = sf_key("00Q", p_org[crm_leads], np.arange(len(crm_leads)))

    lead_ids = 1_000_001 + np.arange(len(leads) + len(cross))
    lead_crm = np.where(kind[leads] == 0, contact_of[leads], crm_lead_of[leads])
    lead_crm[kind[leads] == 1] = NULL
    parts = [   # (role, persons, source keys, system, instance, record_type, crm_key, account_key)
        ("lead", leads, cat(lead_ids[:len(leads)], "@", MUNCHKINS[p_org[leads]], ".Marketo"), "Marketo",
         MUNCHKINS[p_org[leads]], "lead", lead_crm,
         nullable(acc_key[p_acc[leads]], kind[leads] != 0)),
        ("contact", contacts, contact_of[contacts], "Salesforce", ORGS[p_org[contacts]], "contact",
         contact_of[contacts], acc_key[p_acc[contacts]]),
        ("crm_lead", crm_leads, crm_lead_of[crm_leads], "Salesforce", ORGS[p_org[crm_leads]], "crm_lead",
         np.full(len(crm_leads), NULL, dtype=S), np.full(len(crm_leads), NULL, dtype=S)),
        ("cross_lead", cross, cat(lead_ids[len(leads):], "@", MUNCHKINS[1 - p_org[cross]], ".Marketo"),
         "Marketo", MUNCHKINS[1 - p_org[cross]], "lead", np.full(len(cross), NULL, dtype=S),
         np.full(len(cross), NULL, dtype=S)),
    ]
    role = np.concatenate([np.full(len(p[1]), i, dtype=np.int8) for i, p in enumerate(parts)])
    owner = np.concatenate([p[1] for p in parts])
    n_rec = len(owner)

    # Emails: the person's address, sometimes in other case or padded (normalisation joins them);
    # some missing, some blocked placeholders, some shared role mailboxes of the person's company.
    email = personal[owner].copy()
    u = rng.random(n_rec)
    upper, padded = (role > 0) & (u < 0.10), (role > 0) & (u >= 0.10) & (u < 0.15)
    email[upper] = np.strings.upper(email[upper])
    email[padded] = cat(" ", email[padded], " ")
    u = rng.random(n_rec)
    email_kind = np.zeros(n_rec, dtype=np.int8)              # 0 the person's, 2 missing, 3 blocked, 4 role
    missing = u < EMAIL_MISSING
    blocked = (u >= EMAIL_MISSING) & (u < EMAIL_MISSING + EMAIL_BLOCKED)
    shared = (u >= EMAIL_MISSING + EMAIL_BLOCKED) & (u < EMAIL_MISSING + EMAIL_BLOCKED + EMAIL_ROLE)
    email[blocked] = np.array(BLOCKED, dtype=S)[rng.integers(0, len(BLOCKED), int(blocked.sum()))]
    email[shared] = cat(np.array(ROLE_MAILBOXES, dtype=S)[rng.integers(0, len(ROLE_MAILBOXES), int(shared.sum()))],
                        "@", acc_domain[p_acc[owner[shared]]])
    email[missing] = NULL
    email_kind[missing], email_kind[blocked], email_kind[shared] = 2, 3, 4

    created = base_s - rng.integers(86400, 3 * 365 * 86400, n_rec)
    updated = created + (rng.random(n_rec) * (base_s - created)).astype(np.int64)
    deleted = rng.random(n_rec) < DELETED
    company = acc_name[p_acc[owner]].copy()
    company[role == 1] = NULL                                # contacts carry no company name
    crm_key = np.concatenate([p[6] for p in parts])
    person = {
        "source_key": np.concatenate([p[2] for p in parts]),
        "system": np.concatenate([np.full(len(p[1]), p[3], dtype=S) for p in parts]),
        "instance": np.concatenate([p[4] for p in parts]),
        "record_type": np.concatenate([np.full(len(p[1]), p[5], dtype=S) for p in parts]),
        "email": email, "first_name": first[owner], "last_name": last[owner], "title": title[owner],
        "company": company, "unsubscribed": flags(rng.random(n_rec) < 0.03),
        "crm_key": crm_key, "account_key": np.concatenate([p[7] for p in parts]),
        "created_at": timestamps(created), "updated_at": timestamps(updated),
        "is_deleted": flags(deleted), "extracted_at": extracted,
    }

    # Web visits: known visitors (one or two ECIDs each) and anonymous ones; an event carries the
    # visitor's email when the visitor identified themself (always on an ECID's first visit).
    visitors = rng.choice(nk, size=min(nk, round(nk * VISITORS)), replace=False)
    ecid_owner = np.repeat(visitors, 1 + (rng.random(len(visitors)) < SECOND_ECID))
    n_ecid = len(ecid_owner) + n_anon
    ecid = cat(rng.integers(10**18, 9 * 10**18, n_ecid), pad(rng.integers(0, 10**18, n_ecid), 19))
    known_ecid = np.arange(n_ecid) < len(ecid_owner)
    per_ecid = 1 + rng.poisson(np.where(known_ecid, 0.8, 0.5))
    ev_ecid = np.repeat(np.arange(n_ecid), per_ecid)
    first_visit = np.zeros(len(ev_ecid), dtype=bool)
    first_visit[np.concatenate([[0], np.cumsum(per_ecid)[:-1]])] = True
    ev_known = known_ecid[ev_ecid]
    ev_email = np.full(len(ev_ecid), NULL, dtype=S)
    with_email = ev_known & (first_visit | (rng.random(len(ev_ecid)) < 0.5))
    ev_email[with_email] = personal[ecid_owner[ev_ecid[with_email]]]
    event = {
        "source_key": cat(pad(np.arange(len(ev_ecid)), 32), "@", WEB_INSTANCE, ".Web"),
        "instance": WEB_INSTANCE,
        "person_key": cat(ecid[ev_ecid], "@", WEB_INSTANCE, ".ECID"),
        "event_type": "Web Visit",
        "occurred_at": timestamps(base_s - rng.integers(0, 30 * 86400, len(ev_ecid))),
        "url": cat("https://www.bodea.example/", np.array(PAGES, dtype=S)[rng.integers(0, len(PAGES), len(ev_ecid))]),
        "attributes": "{}",
        "ecid": ecid[ev_ecid], "email": ev_email, "extracted_at": extracted,
    }

    # Opportunities in the CRM (big accounts have more), a fifth also reported by Marketo; contact
    # roles from the account's own contacts.
    n_opp = max(1, round(n_crm * 0.5))
    opp_acc = _zipf_pick(rng, rng.permutation(n_crm), n_opp, exponent=0.5)
    opp_org = crm_org[opp_acc]
    opp_key = sf_key("006", opp_org, np.arange(n_opp))
    closed = rng.random(n_opp) < 0.55
    won = closed & (rng.random(n_opp) < 0.45)
    stage = np.array(STAGES_OPEN, dtype=S)[rng.integers(0, len(STAGES_OPEN), n_opp)]
    stage[closed] = "Closed Lost"
    stage[won] = "Closed Won"
    amount = (np.round(rng.lognormal(10.5, 1.2, n_opp), -2)).astype(np.int64).astype(S)
    close = base_s + rng.integers(-540, 180, n_opp) * 86400
    opp_updated = base_s - rng.integers(0, 365 * 86400, n_opp)
    mk = np.flatnonzero(rng.random(n_opp) < 0.2)
    both = np.concatenate([np.arange(n_opp), mk])
    opportunity = {
        "source_key": np.concatenate([opp_key, cat(50_000_001 + np.arange(len(mk)), "@", MUNCHKINS[opp_org[mk]],
                                                   ".Marketo")]),
        "system": np.concatenate([np.full(n_opp, "Salesforce", dtype=S), np.full(len(mk), "Marketo", dtype=S)]),
        "instance": np.concatenate([ORGS[opp_org], MUNCHKINS[opp_org[mk]]]),
        "crm_key": opp_key[both], "account_key": acc_key[opp_acc[both]],
        "name": cat("Deal ", both, " - ", acc_name[opp_acc[both]]), "amount": amount[both],
        "is_closed": flags(closed[both]), "is_won": flags(won[both]), "stage": stage[both],
        "close_date": np.datetime_as_string(close[both].astype("datetime64[s]"), unit="D").astype(S),
        "updated_at": timestamps(opp_updated[both]), "is_deleted": flags(rng.random(len(both)) < 0.003),
        "extracted_at": extracted,
    }
    by_account = np.argsort(p_acc[contacts], kind="stable")
    sorted_acc = p_acc[contacts][by_account]
    role_opp = np.repeat(np.arange(n_opp), np.minimum(1 + rng.poisson(1.0, n_opp), 4))
    lo_i = np.searchsorted(sorted_acc, opp_acc[role_opp], "left")
    hi_i = np.searchsorted(sorted_acc, opp_acc[role_opp], "right")
    has = hi_i > lo_i
    role_opp, lo_i, hi_i = role_opp[has], lo_i[has], hi_i[has]
    role_contact = contacts[by_account[lo_i + (rng.random(len(lo_i)) * (hi_i - lo_i)).astype(np.int64)]]
    _, keep = np.unique(role_opp.astype(np.int64) * nk + role_contact, return_index=True)
    keep.sort()
    role_opp, role_contact = role_opp[keep], role_contact[keep]
    primary = np.ones(len(role_opp), dtype=bool)
    primary[1:] = role_opp[1:] != role_opp[:-1]
    opportunity_person = {
        "source_key": sf_key("00K", opp_org[role_opp], np.arange(len(role_opp))),
        "instance": ORGS[opp_org[role_opp]], "opportunity_key": opp_key[role_opp],
        "person_key": contact_of[role_contact],
        "role": np.array(ROLES, dtype=S)[rng.integers(0, len(ROLES), len(role_opp))],
        "is_primary": flags(primary), "is_deleted": "f", "extracted_at": extracted,
    }

    live = ~deleted
    has_email = ~missing & (np.strings.strip(email) != "")
    identities = int((has_email & live).sum() + ((crm_key != NULL) & live).sum()
                     + n_ecid + len(ecid_owner))     # every ECID, and the email each known one was seen with
    kinds = {"lead_and_contact": int((kind == 0).sum()), "lead_only": int((kind == 1).sum()),
             "contact_only": int((kind == 2).sum()), "lead_and_crm_lead": int((kind == 3).sum()),
             "anonymous_visitors": n_anon}
    return {
        "tables": {"core_account": account, "core_account_xref": xref, "core_person": person,
                   "core_event": event, "core_opportunity": opportunity,
                   "core_opportunity_person": opportunity_person},
        "summary": {
            "persons_intended": n_persons, "persons_by_kind": kinds,
            "share_lead_and_contact": round(share_a, 3),
            "person_records": n_rec, "marketo_leads": len(leads) + len(cross),
            "leads_in_both_instances": len(cross), "crm_contacts": len(contacts), "crm_leads": len(crm_leads),
            "records_deleted_in_source": int(deleted.sum()),
            "emails_missing": int(missing.sum()), "emails_blocked_values": int(blocked.sum()),
            "emails_role_mailboxes": int(shared.sum()),
            "ecids": n_ecid, "ecids_known": len(ecid_owner), "web_events": len(ev_ecid),
            "identities_intended": n_identities, "identities": identities,
            "accounts": n_crm + n_mkto, "crm_accounts": n_crm, "marketo_companies": n_mkto,
            "mdm_groups": n_pairs + n_single, "mdm_xrefs": len(members),
            "opportunities": len(both), "opportunity_contact_roles": len(role_opp),
        },
        # What the incremental phase picks its changes from.
        "keys": person["source_key"], "owner": owner, "role": role, "kind": kind, "org": p_org,
        "email_kind": email_kind, "email": email, "deleted": deleted, "personal": personal,
        "contact_of": contact_of, "acc_key": acc_key, "p_acc": p_acc, "acc_domain": acc_domain,
        "ecid_owner": ecid_owner, "ecid": ecid[:len(ecid_owner)], "next_lead_id": int(lead_ids[-1]) + 1,
        "next_event": len(ev_ecid),
    }


def load(sandbox, data: dict) -> dict:
    from b2b_cdp import warehouse

    rows = {}
    with warehouse.connect(sandbox) as conn:
        for table, columns in data["tables"].items():
            rows[table] = copy_columns(conn, table, columns)
        for table in data["tables"]:    # as autovacuum would have by the time stitching runs
            conn.execute(f"ANALYZE {table}")
    return rows


# ---------------------------------------------------------------------------- incremental changes

def apply_changes(sandbox, data: dict, rng, now: datetime) -> dict:
    """1% of person records change email, 0.1% are deleted, 0.1% are added, and a few links merge
    two existing persons. Written as the normaliser would: updated_at and extracted_at move on."""
    from b2b_cdp import warehouse

    keys, owner, role, kind, org = data["keys"], data["owner"], data["role"], data["kind"], data["org"]
    n_rec = len(keys)
    live = ~data["deleted"]
    good_email = live & (data["email_kind"] == 0)
    ts = timestamps(np.array([int(now.timestamp())]))[0]
    n_merge = max(2, min(10, n_rec // 20_000))
    # Persons whose every record is live with its own address (so the merge is the only change).
    clean = np.ones(len(kind), dtype=bool)
    np.logical_and.at(clean, owner, good_email)
    has_cross = np.zeros(len(kind), dtype=bool)
    has_cross[owner[role == 3]] = True
    visitor = np.zeros(len(kind), dtype=bool)
    visitor[data["ecid_owner"]] = True
    lead_only = rng.permutation(np.flatnonzero((kind == 1) & clean & ~has_cross & ~visitor))
    visiting_lead_only = rng.permutation(np.flatnonzero((kind == 1) & clean & ~has_cross & visitor))
    contact_only = rng.permutation(np.flatnonzero((kind == 2) & clean))
    # (a) a lead newly synced to another person's contact in the same org
    merge_lead, merge_contact = [], []
    for o in (0, 1):
        leads_o, contacts_o = lead_only[org[lead_only] == o], contact_only[org[contact_only] == o]
        take = min(n_merge // 2 + (o == 0) * (n_merge % 2), len(leads_o), len(contacts_o))
        merge_lead.append(leads_o[:take])
        merge_contact.append(contacts_o[:take])
    merge_lead, merge_contact = np.concatenate(merge_lead), np.concatenate(merge_contact)
    # (b) a known visitor's ECID seen with another (contact-only) person's email
    spare_contacts = np.setdiff1d(contact_only, merge_contact)
    take = min(n_merge, len(visiting_lead_only), len(spare_contacts) // 2)
    bridge_from, bridge_to = visiting_lead_only[:take], spare_contacts[:take]
    # (c) new leads: mostly new people, some existing contact-only persons showing up in Marketo
    n_new = max(1, round(n_rec * 0.001))
    n_joining = min(n_new * 3 // 10, len(spare_contacts) - take)
    joining = spare_contacts[take:take + n_joining]
    touched = np.zeros(len(kind), dtype=bool)
    touched[np.concatenate([merge_lead, merge_contact, bridge_from, bridge_to, joining])] = True

    candidates = np.flatnonzero(live & ~touched[owner])
    picked = rng.permutation(candidates)[:round(n_rec * 0.011)]
    updated, removed = picked[:round(n_rec * 0.01)], picked[round(n_rec * 0.01):]
    new_email = cat("p", owner[updated], ".moved", np.arange(len(updated)), "@newco",
                    rng.integers(0, 1000, len(updated)), ".example")
    cosmetic = (rng.random(len(updated)) < 0.3) & (data["email_kind"][updated] == 0)
    new_email[cosmetic] = np.strings.upper(data["email"][updated][cosmetic])

    n_fresh = n_new - n_joining
    fresh_org = (rng.random(n_fresh) < 0.4).astype(np.int64)
    fresh_acc = rng.integers(0, len(data["acc_key"]), n_fresh)
    new_org = np.concatenate([fresh_org, org[joining]])
    new_ids = data["next_lead_id"] + np.arange(n_new)
    new_leads = {
        "source_key": cat(new_ids, "@", MUNCHKINS[new_org], ".Marketo"),
        "system": "Marketo", "instance": MUNCHKINS[new_org], "record_type": "lead",
        "email": np.concatenate([cat("new", np.arange(n_fresh), "@", data["acc_domain"][fresh_acc]),
                                 data["personal"][joining]]),
        "first_name": "New", "last_name": cat("Lead", np.arange(n_new)), "title": NULL, "company": NULL,
        "unsubscribed": "f", "crm_key": NULL, "account_key": NULL, "created_at": ts, "updated_at": ts,
        "is_deleted": "f", "extracted_at": ts,
    }
    # record index of each lead-only person's lead, and of each contact-only person's contact
    lead_rec = np.full(len(kind), -1)
    lead_rec[owner[role == 0]] = np.flatnonzero(role == 0)
    contact_of = data["contact_of"]
    ecid_of = np.full(len(kind), NULL, dtype=S)
    ecid_of[data["ecid_owner"][::-1]] = data["ecid"][::-1]          # a visitor's first ECID
    bridge_events = {
        "source_key": cat(pad(data["next_event"] + np.arange(take), 32), "@", WEB_INSTANCE, ".Web"),
        "instance": WEB_INSTANCE, "person_key": cat(ecid_of[bridge_from], "@", WEB_INSTANCE, ".ECID"),
        "event_type": "Web Visit", "occurred_at": ts, "url": "https://www.bodea.example/pricing",
        "attributes": "{}", "ecid": ecid_of[bridge_from], "email": data["personal"][bridge_to], "extracted_at": ts,
    }
    with warehouse.connect(sandbox) as conn:
        conn.execute("CREATE TEMP TABLE bench_change (source_key text PRIMARY KEY, email text, crm_key text, "
                     "account_key text, is_deleted boolean NOT NULL) ON COMMIT DROP")
        copy_columns(conn, "bench_change", {
            "source_key": np.concatenate([keys[updated], keys[removed], keys[lead_rec[merge_lead]]]),
            "email": np.concatenate([new_email, data["email"][removed], data["email"][lead_rec[merge_lead]]]),
            "crm_key": np.concatenate([np.full(len(updated) + len(removed), "", dtype=S),
                                       contact_of[merge_contact]]),
            "account_key": np.concatenate([np.full(len(updated) + len(removed), "", dtype=S),
                                           data["acc_key"][data["p_acc"][merge_contact]]]),
            "is_deleted": flags(np.concatenate([np.zeros(len(updated), bool), np.ones(len(removed), bool),
                                                np.zeros(len(merge_lead), bool)])),
        })
        changed = conn.execute(
            "UPDATE core_person c SET email = ch.email, "
            "crm_key = CASE WHEN ch.crm_key <> '' THEN ch.crm_key ELSE c.crm_key END, "
            "account_key = CASE WHEN ch.account_key <> '' THEN ch.account_key ELSE c.account_key END, "
            "is_deleted = ch.is_deleted, updated_at = %(now)s, extracted_at = %(now)s "
            "FROM bench_change ch WHERE c.source_key = ch.source_key", {"now": now}).rowcount
        added = copy_columns(conn, "core_person", new_leads)
        events = copy_columns(conn, "core_event", bridge_events) if take else 0
    return {"records_changed_email": len(updated), "records_deleted": len(removed),
            "records_added": added, "records_added_joining_existing_persons": int(n_joining),
            "merges_lead_synced_to_other_persons_contact": len(merge_lead),
            "merges_ecid_seen_with_other_persons_email": events,
            "core_person_rows_updated": changed}


# ---------------------------------------------------------------------------- measuring

class StatementTimer:
    """Times each SQL file the stitching runs through warehouse.run (the execute, not the fetch)."""

    def __init__(self):
        from b2b_cdp import warehouse

        self.warehouse, self.real = warehouse, warehouse.run
        self.seconds, self.calls = defaultdict(float), defaultdict(int)
        self.failed: str | None = None

    def __enter__(self):
        def timed(conn, name, *args, **kwargs):
            began = time.perf_counter()
            try:
                return self.real(conn, name, *args, **kwargs)
            except BaseException:
                self.failed = name
                raise
            finally:
                self.seconds[name] += time.perf_counter() - began
                self.calls[name] += 1
        self.warehouse.run = timed
        return self

    def __exit__(self, *exc):
        self.warehouse.run = self.real

    def top(self, n: int = 12) -> list[dict]:
        ranked = sorted(self.seconds, key=self.seconds.get, reverse=True)[:n]
        return [{"sql": name, "seconds": round(self.seconds[name], 2), "calls": self.calls[name]} for name in ranked]


def run_stitch(sandbox, run_id: str) -> dict:
    """One identity.stitch, timed; a failure (e.g. the module mid-rewrite) is reported, not raised."""
    outcome: dict = {"run_id": run_id}
    timer = None
    began = time.perf_counter()
    try:
        from b2b_cdp import identity

        settle(sandbox)     # each timed run starts on a quiet server, not on the last step's writes
        began = time.perf_counter()
        timer = StatementTimer()
        with timer:
            result = identity.stitch(sandbox, run_id)
        outcome["ok"] = True
        outcome["result"] = result if isinstance(result, (dict, list, int, float, str)) or result is None \
            else repr(result)
    except Exception as exc:   # noqa: BLE001 - the benchmark reports whatever went wrong
        outcome["ok"] = False
        outcome["error"] = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
        outcome["traceback_tail"] = traceback.format_exc().strip().splitlines()[-6:]
        print(f"\n!!! identity.stitch(sandbox, {run_id!r}) FAILED: {outcome['error']}\n", flush=True)
    outcome["seconds"] = round(time.perf_counter() - began, 3)
    if timer is not None:
        if not outcome["ok"] and timer.failed:
            outcome["failed_in_sql"] = timer.failed
        outcome["sql_seconds_through_warehouse_run"] = round(sum(timer.seconds.values()), 3)
        outcome["statements"] = timer.top()
    persons = outcome.get("result", {}).get("persons") if isinstance(outcome.get("result"), dict) else None
    outcome["persons_reported"] = persons
    return outcome


def table_exists(conn, table: str) -> bool:
    return conn.execute("SELECT to_regclass(%s) IS NOT NULL", (table,)).fetchone()[0]


def table_rows(sandbox) -> dict:
    from b2b_cdp import warehouse

    with warehouse.connect(sandbox) as conn:
        return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES if table_exists(conn, t)}


def person_counts(sandbox) -> dict:
    from b2b_cdp import warehouse

    counts = {}
    with warehouse.connect(sandbox) as conn:
        if table_exists(conn, "profile_person"):
            counts["profile_person"] = conn.execute("SELECT count(*) FROM profile_person").fetchone()[0]
        if table_exists(conn, "identity_record_person"):
            counts["identity_record_person_distinct"] = conn.execute(
                "SELECT count(DISTINCT person_id) FROM identity_record_person").fetchone()[0]
            if table_exists(conn, "core_person"):
                counts["persons_without_a_person_record"] = conn.execute("""
                    SELECT count(DISTINCT m.person_id) FROM identity_record_person m
                    WHERE NOT EXISTS (SELECT FROM identity_record_person o
                                      JOIN core_person p ON p.source_key = o.record_key AND NOT p.is_deleted
                                      WHERE o.person_id = m.person_id)""").fetchone()[0]
        if table_exists(conn, "identity_person") and _has_column(conn, "identity_person", "retired_at"):
            counts["identity_person_live"] = conn.execute(
                "SELECT count(*) FROM identity_person WHERE retired_at IS NULL").fetchone()[0]
        if table_exists(conn, "identity_rejected_link"):
            counts["rejected_links_by_reason"] = dict(conn.execute(
                "SELECT reason, count(*) FROM identity_rejected_link GROUP BY 1 ORDER BY 2 DESC").fetchall())
    return counts


def _has_column(conn, table: str, column: str) -> bool:
    return conn.execute("SELECT count(*) FROM information_schema.columns WHERE table_schema = current_schema() "
                        "AND table_name = %s AND column_name = %s", (table, column)).fetchone()[0] > 0


def _copy_out(conn, query: str) -> list[np.ndarray]:
    """Run a query through COPY TO STDOUT and split its tab-separated columns into object arrays."""
    import pandas as pd

    buffer = io.BytesIO()
    with conn.cursor() as cur, cur.copy(f"COPY ({query}) TO STDOUT") as copy:
        for chunk in copy:
            buffer.write(chunk)
    buffer.seek(0)
    if not buffer.getbuffer().nbytes:
        return []
    frame = pd.read_csv(buffer, sep="\t", header=None, dtype=object, quoting=3, na_filter=False,
                        keep_default_na=False, engine="c")
    return [frame[c].to_numpy(dtype=object) for c in frame.columns]


def read_links(sandbox) -> dict:
    """The links the stitching used, as (record, identity) string pairs, plus every record that is a
    node even without a joining link (live person records, and records in identity_link)."""
    from b2b_cdp import warehouse

    began = time.perf_counter()
    with warehouse.connect(sandbox) as conn:
        source, links = None, []
        if table_exists(conn, "identity_link") and conn.execute("SELECT EXISTS (SELECT FROM identity_link)").fetchone()[0]:
            joins = _has_column(conn, "identity_link", "joins")
            where = "WHERE joins" if joins else ""
            links = _copy_out(conn, f"SELECT record_key, namespace || ':' || value FROM identity_link {where}")
            source = "identity_link WHERE joins" if joins else "identity_link (no joins column: every link joins)"
            records = _copy_out(conn, "SELECT source_key FROM core_person WHERE NOT is_deleted "
                                      "UNION SELECT record_key FROM identity_link")
        else:
            source = "derived from core_person (identity_link is empty): source key, lower(btrim(email)), crm_key"
            links = _copy_out(conn, """
                SELECT source_key, 'source_key:' || source_key FROM core_person WHERE NOT is_deleted
                UNION ALL
                SELECT source_key, 'email:' || lower(btrim(email)) FROM core_person
                WHERE NOT is_deleted AND nullif(btrim(email), '') IS NOT NULL
                UNION ALL
                SELECT source_key, 'crm:' || crm_key FROM core_person WHERE NOT is_deleted AND crm_key IS NOT NULL""")
            records = []
    empty = np.array([], dtype=object)
    return {"source": source, "record": links[0] if links else empty, "identity": links[1] if links else empty,
            "all_records": records[0] if records else empty, "read_seconds": round(time.perf_counter() - began, 3)}


def components(links: dict) -> dict:
    """scipy connected components over records + identities, each step timed."""
    import pandas as pd
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    began = time.perf_counter()
    record_codes, records = pd.factorize(np.concatenate([links["record"], links["all_records"]]))
    identity_codes, identities = pd.factorize(links["identity"])
    factorise = time.perf_counter() - began

    began = time.perf_counter()
    n_records, n = len(records), len(records) + len(identities)
    m = len(identity_codes)
    graph = coo_matrix((np.ones(m, dtype=np.int8), (record_codes[:m], n_records + identity_codes)),
                       shape=(n, n)).tocsr()
    build = time.perf_counter() - began

    began = time.perf_counter()
    count, _labels = connected_components(graph, directed=False)
    found = time.perf_counter() - began
    return {"links": m, "records": n_records, "identities": len(identities), "components": int(count),
            "factorise_seconds": round(factorise, 3), "build_seconds": round(build, 3),
            "components_seconds": round(found, 3), "total_seconds": round(factorise + build + found, 3)}


def check(stitch: dict, counts: dict, baseline: dict) -> dict:
    """Components on the links against the persons the stitching produced: the distinct person ids
    of its records (identity_record_person) where that table exists, else the count it returned."""
    in_graph = counts.get("identity_record_person_distinct")
    persons = in_graph if in_graph is not None else stitch.get("persons_reported")
    equal = persons is not None and persons == baseline["components"]
    result = {"persons_from_stitching": persons,
              "persons_from_stitching_source": "identity_record_person (distinct person_id)" if in_graph is not None
              else "identity.stitch's returned persons",
              "persons_returned_by_stitch": stitch.get("persons_reported"),
              "components_from_scipy": baseline["components"], "equal": equal}
    if not equal:
        print(f"\n!!! PERSON COUNT MISMATCH ({stitch['run_id']}): stitching gives {persons}, connected components "
              f"on the same links give {baseline['components']}\n", flush=True)
    return result


def checkpoint(path: Path, report: dict, phases: dict) -> None:
    """The report so far, so a run stopped part-way (e.g. by a time limit) still leaves its figures."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(dict(report, phases=phases, complete=False), indent=2) + "\n")


def stitching_and_profiles(outcome: dict) -> tuple[float | None, float | None]:
    """A run's seconds split: stitching (graph, person and account ids) and the profile build."""
    if not outcome["ok"]:
        return None, None
    profiles = outcome["result"]["seconds"]["profiles"]
    return round(outcome["seconds"] - profiles, 3), profiles


def ratio(numerator, denominator):
    return round(numerator / denominator, 3) if numerator and denominator else None


# ---------------------------------------------------------------------------- main

def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--persons", type=int, default=1_000_000)
    parser.add_argument("--identities", type=int, help="default: 3x --persons")
    parser.add_argument("--accounts", type=int, help="default: --persons / 5")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--skip-incremental", action="store_true", help="stop after the full run and baseline")
    parser.add_argument("--report", type=Path, default=ROOT / "build" / "bench" / "identity.json")
    args = parser.parse_args()
    identities = args.identities if args.identities is not None else 3 * args.persons
    accounts = args.accounts if args.accounts is not None else max(10, args.persons // 5)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("b2b_cdp").setLevel(logging.INFO)

    bench_began = time.perf_counter()
    work = workspace("cdp-bench-identity-")
    from b2b_cdp.embedded import warehouse_configured

    configured = warehouse_configured()
    sandbox = fresh_sandbox(work)
    command = " ".join([".venv/bin/python", "bench/identity.py", "--persons", str(args.persons),
                        "--identities", str(identities), "--accounts", str(accounts), "--seed", str(args.seed)]
                       + (["--skip-incremental"] if args.skip_incremental else []))
    report: dict = {"command": command, "machine": machine(sandbox, configured), "sandbox": sandbox.schema,
                    "goals": {"ratio_full_to_scipy": "<= 3", "ratio_incremental_to_full": "< 0.10"},
                    "ratios": "ratio_stitching_to_scipy: the full run without its profile build (graph, person and "
                              "account ids); ratio_stitching_and_profiles_to_scipy (= ratio_full_to_scipy): the "
                              "whole full run"}
    phases: dict = {}
    rng = np.random.default_rng(args.seed)
    base = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(days=1)

    print(f"Generating {args.persons:,} persons, {identities:,} identities, {accounts:,} accounts...", flush=True)
    began = time.perf_counter()
    data = generate(args.persons, identities, accounts, rng, base)
    phases["generate_seconds"] = round(time.perf_counter() - began, 2)
    began = time.perf_counter()
    loaded = load(sandbox, data)
    phases["load_copy_and_analyze_seconds"] = round(time.perf_counter() - began, 2)
    report["generated"] = data["summary"]
    report["generated"]["rows_copied"] = loaded
    checkpoint(args.report, report, phases)
    for name, value in data["summary"].items():
        print(f"  {name}: {value:,}" if isinstance(value, int) else f"  {name}: {value}", flush=True)
    print(f"  generated in {phases['generate_seconds']} s, copied in {phases['load_copy_and_analyze_seconds']} s",
          flush=True)

    print("Full stitching...", flush=True)
    full = run_stitch(sandbox, "bench-full")
    phases["full_stitch_seconds"] = full["seconds"]
    print(f"  {'ok' if full['ok'] else 'FAILED'} in {full['seconds']} s; persons: {full['persons_reported']}", flush=True)
    report["full"] = full
    report["full"]["persons_in_tables"] = person_counts(sandbox)
    report["rows_after_full"] = table_rows(sandbox)
    checkpoint(args.report, report, phases)

    print("Baseline: scipy connected components on the same links...", flush=True)
    links = read_links(sandbox)
    baseline = components(links)
    baseline.update(links_source=links["source"], read_seconds=links["read_seconds"])
    del links
    phases["baseline_read_seconds"] = baseline["read_seconds"]
    phases["baseline_scipy_seconds"] = baseline["total_seconds"]
    print(f"  {baseline['links']:,} links ({baseline['links_source']}), {baseline['components']:,} components; "
          f"factorise {baseline['factorise_seconds']} s, build {baseline['build_seconds']} s, "
          f"components {baseline['components_seconds']} s", flush=True)
    report["baseline_scipy"] = baseline
    report["full_check"] = check(full, report["full"]["persons_in_tables"], baseline)
    full_s = full["seconds"] if full["ok"] else None
    full["stitching_seconds"], full["profiles_seconds"] = stitching_and_profiles(full)
    report["ratio_stitching_to_scipy"] = ratio(full["stitching_seconds"], baseline["total_seconds"])
    report["ratio_stitching_and_profiles_to_scipy"] = ratio(full_s, baseline["total_seconds"])
    report["ratio_full_to_scipy"] = report["ratio_stitching_and_profiles_to_scipy"]
    report["ratio_full_to_scipy_components_only"] = ratio(full_s, baseline["components_seconds"])
    checkpoint(args.report, report, phases)

    if not args.skip_incremental:
        print("Incremental changes...", flush=True)
        began = time.perf_counter()
        changes = apply_changes(sandbox, data, np.random.default_rng(args.seed + 1),
                                datetime.now(timezone.utc).replace(microsecond=0))
        phases["incremental_changes_seconds"] = round(time.perf_counter() - began, 2)
        print("  " + ", ".join(f"{k} {v:,}" for k, v in changes.items()), flush=True)
        report["incremental_changes"] = changes
        del data
        print("Incremental stitching...", flush=True)
        incremental = run_stitch(sandbox, "bench-incremental")
        incremental["stitching_seconds"], incremental["profiles_seconds"] = stitching_and_profiles(incremental)
        phases["incremental_stitch_seconds"] = incremental["seconds"]
        print(f"  {'ok' if incremental['ok'] else 'FAILED'} in {incremental['seconds']} s; "
              f"persons: {incremental['persons_reported']}", flush=True)
        incremental["persons_in_tables"] = person_counts(sandbox)
        report["incremental"] = incremental
        report["rows_after_incremental"] = table_rows(sandbox)
        checkpoint(args.report, report, phases)
        links = read_links(sandbox)
        after = components(links)
        after.update(links_source=links["source"], read_seconds=links["read_seconds"])
        del links
        report["incremental_check"] = check(incremental, incremental["persons_in_tables"], after)
        report["incremental_check"]["scipy_seconds"] = after["total_seconds"]
        report["ratio_incremental_to_full"] = ratio(incremental["seconds"] if incremental["ok"] else None, full_s)

    phases["bench_seconds"] = round(time.perf_counter() - bench_began, 1)
    report["phases"] = phases
    report["complete"] = True
    report["goals_met"] = {
        "stitching_within_3x_of_scipy": None if report["ratio_stitching_to_scipy"] is None
        else report["ratio_stitching_to_scipy"] <= 3,
        "full_within_3x_of_scipy": None if report["ratio_full_to_scipy"] is None
        else report["ratio_full_to_scipy"] <= 3,
        "incremental_under_10pct_of_full": None if report.get("ratio_incremental_to_full") is None
        else report["ratio_incremental_to_full"] < 0.10,
    }
    write_report(args.report, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
