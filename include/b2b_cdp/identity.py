"""Identity stitching: a rule-governed identity graph with stable person ids, and the profiles.

Nodes are records (Marketo leads, CRM contacts and leads, web visitors by ECID) and the identities
they carry (email, ECID, Marketo lead, CRM contact, CRM lead); a person is a connected component.
Record rules (blocked values, ECID format, role mailboxes, 20 identities per record) are set-based
SQL; components come from a C routine (scipy.sparse.csgraph) on the links read out with COPY, and
only the few components that break a graph rule (one value per unique namespace, 50 identities per
graph) are resolved link by link in Python. Runs are incremental: records changed since the previous
run, and the persons they touch, are all that is recomputed. Person ids are stable: a component keeps
its id, a merge keeps the oldest and records the absorbed ids, a split gets new ids with lineage.
Accounts: Marketo companies join the CRM accounts they sync with, the MDM joins CRM accounts across
orgs (label propagation in SQL: accounts are few).
"""

from __future__ import annotations

import hashlib
import io
import logging
import time
from dataclasses import dataclass, field

import psycopg

from b2b_cdp import warehouse
from b2b_cdp.config import IdentityRules, Sandbox, load_config

log = logging.getLogger(__name__)

MAX_ROUNDS = 1000
PROFILE_WINDOW_SECONDS = 600  # a source change should reach the profile within 10 minutes
LINK_COLUMNS = ["record_key", "namespace", "value", "unique_scope", "joins", "seen_at"]
# Eviction order when a graph is over its cap: ECIDs (cookie-like) first, then the rest; oldest first.
EVICTION_RANK = {"ecid": 0}


# ---------------------------------------------------------------------------- components


@dataclass
class Components:
    """record key -> component number, and the links the graph rules refused."""
    labels: dict[str, int] | None = None
    frame: object = None            # pandas DataFrame (record_key, component)
    rejected: list[tuple[str, str, str, str]] = field(default_factory=list)


def _link_priority(links):
    """Which links a conflict keeps: a record's own key, then its CRM record, email, ECID."""
    import numpy as np

    own = links["value"].to_numpy() == links["record_key"].to_numpy()
    namespace = links["namespace"].to_numpy()
    return np.select([own, np.char.startswith(namespace.astype(str), "crm_"), namespace == "email"],
                     [0, 1, 2], default=3)


def components(links, rules: IdentityRules) -> Components:
    """Connected components of the record/identity graph, under the graph rules."""
    import numpy as np
    import pandas as pd
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    if links.empty:
        return Components(frame=pd.DataFrame({"record_key": [], "component": []}))
    record_codes, records = pd.factorize(links["record_key"])
    identity_keys = links["namespace"] + "\x1f" + links["value"]
    identity_codes, identities = pd.factorize(identity_keys)
    joins = links["joins"].to_numpy()
    size = len(records) + len(identities)
    rows, cols = record_codes[joins], identity_codes[joins] + len(records)
    graph = coo_matrix((np.ones(len(rows), dtype=np.int8), (rows, cols)), shape=(size, size)).tocsr()
    _, node_labels = connected_components(graph, directed=False)
    record_labels = node_labels[:len(records)].astype(np.int64)

    # Graph rules, checked per component; only the components that break one are resolved.
    link_component = record_labels[record_codes]
    per_component = pd.DataFrame({"component": link_component, "identity": identity_codes})
    too_big = per_component.groupby("component")["identity"].nunique()
    bad = set(too_big[too_big > rules.max_identities_per_graph].index)
    scoped = links["unique_scope"].to_numpy() != ""
    if scoped.any():
        held = pd.DataFrame({"component": link_component[scoped], "scope": links["unique_scope"].to_numpy()[scoped],
                             "value": links["value"].to_numpy()[scoped]})
        counts = held.groupby(["component", "scope"])["value"].nunique()
        bad |= set(counts[counts > 1].index.get_level_values(0))
    result = Components()
    if bad:
        next_label = int(record_labels.max()) + 1
        selected = np.isin(link_component, list(bad))
        subset = links[selected].assign(priority=_link_priority(links[selected]))
        relabelled, result.rejected = _resolve(subset, rules)
        index = pd.Index(records)
        for record_key, local in relabelled.items():
            record_labels[index.get_loc(record_key)] = next_label + local
        log.info("%d component(s) broke a graph rule; %d link(s) refused", len(bad), len(result.rejected))
    result.frame = pd.DataFrame({"record_key": records, "component": record_labels})
    return result


class _UnionFind:
    def __init__(self):
        self.parent: dict = {}
        self.scopes: dict = {}     # root -> {unique scope: value}

    def find(self, node):
        parent = self.parent.setdefault(node, node)
        while parent != node:
            grand = self.parent.setdefault(parent, parent)
            self.parent[node] = grand
            node, parent = parent, grand
        return node

    def conflict(self, a, b) -> tuple[str, str] | None:
        mine, theirs = self.scopes.get(a, {}), self.scopes.get(b, {})
        for scope, value in mine.items():
            if theirs.get(scope, value) != value:
                return scope, theirs[scope]
        return None

    def union(self, a, b) -> None:
        self.parent[b] = a
        merged = self.scopes.pop(b, {})
        self.scopes.setdefault(a, {}).update(merged)


def _greedy(links: list[tuple], evicted: set) -> tuple[_UnionFind, list[tuple[str, str, str, str]]]:
    """Add links in priority order (own key, CRM record, email, ECID; newest first), refusing any
    that would give a person two values of one unique namespace."""
    groups, refused = _UnionFind(), []
    for record, namespace, value, scope, joins, _seen, _priority in links:
        identity = (namespace, value)
        if identity in evicted:
            continue
        root = groups.find(("record", record))
        if not joins:
            continue
        other = groups.find(identity)
        if scope and other == identity and identity not in groups.scopes:
            groups.scopes[identity] = {scope: value}
        if root == other:
            continue
        clash = groups.conflict(root, other)
        if clash:
            refused.append((record, namespace, value,
                            f"unique namespace {clash[0]}: the person already holds {clash[1]}"))
            continue
        groups.union(root, other)
    return groups, refused


def _resolve(subset, rules: IdentityRules) -> tuple[dict[str, int], list[tuple[str, str, str, str]]]:
    """Components that break a graph rule, rebuilt link by link: unique-namespace conflicts refuse
    the lower-priority link; graphs over the cap evict identities (ECID first, oldest first)."""
    ordered = sorted(subset.itertuples(index=False, name=None), key=lambda l: (l[6], -l[5], l[0], l[1], l[2]))
    evicted: set = set()
    while True:
        groups, refused = _greedy(ordered, evicted)
        refused_keys = {r[:3] for r in refused}
        members: dict = {}
        for record, namespace, value, _scope, _joins, seen, _priority in ordered:
            if (namespace, value) in evicted or (record, namespace, value) in refused_keys:
                continue
            root = groups.find(("record", record))
            members.setdefault(root, {})[(namespace, value)] = seen
        over = {root: ids for root, ids in members.items() if len(ids) > rules.max_identities_per_graph}
        if not over:
            break
        for ids in over.values():
            excess = len(ids) - rules.max_identities_per_graph
            victims = sorted(ids, key=lambda i: (EVICTION_RANK.get(i[0], 1), ids[i], i))[:excess]
            evicted.update(victims)
    refused_links = list(refused)
    for record, namespace, value, *_ in ordered:
        if (namespace, value) in evicted:
            refused_links.append((record, namespace, value,
                                  f"graph over {rules.max_identities_per_graph} identities: evicted "
                                  "(ECIDs first, then oldest first)"))
    roots: dict = {}
    labels = {}
    for record in dict.fromkeys(link[0] for link in ordered):
        root = groups.find(("record", record))
        labels[record] = roots.setdefault(root, len(roots))
    return labels, refused_links


# ---------------------------------------------------------------------------- the run


def _read_links(conn: psycopg.Connection):
    import pandas as pd

    buffer = io.BytesIO()
    with conn.cursor() as cur, cur.copy(warehouse.sql_file("identity/export_links")) as copy:
        for block in copy:
            buffer.write(block)
    buffer.seek(0)
    frame = pd.read_csv(buffer, header=None, names=LINK_COLUMNS, dtype={
        "record_key": str, "namespace": str, "value": str, "unique_scope": str, "seen_at": float},
        keep_default_na=False, na_values=[], true_values=["t"], false_values=["f"])
    frame["joins"] = frame["joins"].astype(bool)
    return frame


def _write(conn: psycopg.Connection, table: str, frame) -> None:
    data = frame.to_csv(index=False, header=False).encode("utf-8")
    with conn.cursor() as cur, cur.copy(f"COPY {table} FROM STDIN WITH (FORMAT csv)") as copy:
        for start in range(0, len(data), 1 << 20):
            copy.write(data[start:start + (1 << 20)])


def stitch(sandbox: Sandbox, run_id: str = "manual", *, full: bool = False) -> dict[str, int]:
    """Bring the identity graph and the profiles of one sandbox up to date, in one transaction:
    incrementally (what changed since the previous run), or in full (every link judged afresh)."""
    import pandas as pd

    rules = load_config().identity
    timings: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[name] = round(now - clock, 3)
        clock = now

    with warehouse.connect(sandbox) as conn:
        warehouse.run(conn, "identity/session_settings").close()
        started_at = warehouse.fetch_all(conn, "identity/clock")[0][0]
        rules_hash = hashlib.sha256(rules.model_dump_json().encode()).hexdigest()[:16]
        last = warehouse.fetch_all(conn, "identity/last_run")
        # A first run, a requested full run, or new linking rules: every link is judged afresh.
        since = None if full or not last or last[0][1] != rules_hash else last[0][0]
        mode = "full" if since is None else "incremental"
        if since is None:
            warehouse.run(conn, "identity/reset_links").close()
        with warehouse.run(conn, "identity/changed_records", {"since": since}) as cur:
            changed = cur.rowcount
        warehouse.run(conn, "identity/candidate_links", {
            "blocked_values": rules.blocked_values, "blocked_patterns": rules.blocked_patterns,
            "shared_mailboxes": rules.shared_mailboxes}).close()
        warehouse.run(conn, "identity/analyze_candidates").close()
        warehouse.run(conn, "identity/forget_changed").close()
        warehouse.run(conn, "identity/reject_links", {
            "max_per_record": rules.max_identities_per_record, "run_id": run_id}).close()
        warehouse.run(conn, "identity/accept_links", {
            "max_per_record": rules.max_identities_per_record,
            "unique_namespaces": rules.unique_namespaces}).close()
        with warehouse.run(conn, "identity/affected_records") as cur:
            recomputed = cur.rowcount
        warehouse.run(conn, "identity/analyze_records").close()
        lap("links")
        links = _read_links(conn)
        lap("read_links")
        found = components(links, rules)
        lap("components")
        warehouse.run(conn, "identity/create_work_tables").close()
        _write(conn, "stitch_component", found.frame)
        if found.rejected:
            _write(conn, "stitch_graph_rejected",
                   pd.DataFrame(found.rejected, columns=["record_key", "namespace", "value", "reason"]))
            warehouse.run(conn, "identity/drop_graph_rejected").close()
            warehouse.run(conn, "identity/record_graph_rejected", {"run_id": run_id}).close()
        warehouse.run(conn, "identity/analyze_components").close()
        lap("write_components")
        for step in ("prior_persons", "assign_person_ids", "record_lineage", "retire_persons",
                     "remap_records", "upsert_persons"):
            params = {"run_id": run_id} if step in ("assign_person_ids", "record_lineage", "retire_persons",
                                                    "upsert_persons") else None
            warehouse.run(conn, f"identity/{step}", params).close()
        warehouse.run(conn, "identity/analyze_graph").close()
        lap("person_ids")
        accounts_changed = since is None or warehouse.fetch_all(
            conn, "identity/account_side_changed", {"since": since})[0][0]
        if accounts_changed:
            account_rounds = _account_components(conn, rules)
        else:
            account_rounds = 0
            warehouse.run(conn, "identity/no_account_changes").close()
        lap("accounts")
        _build_profiles(conn, rules, accounts_changed)
        lap("profiles")
        persons, accounts, excluded = warehouse.fetch_all(conn, "identity/profile_counts")[0]
        warehouse.run(conn, "identity/record_run", {
            "run_id": run_id, "started_at": started_at, "mode": mode, "changed": changed,
            "recomputed": recomputed, "persons": persons, "rules_hash": rules_hash}).close()
        warehouse.run(conn, "identity/record_profile_freshness",
                      {"run_id": run_id, "window_s": PROFILE_WINDOW_SECONDS}).close()
    log.info("%s: %s stitching, %d changed record(s), %d recomputed; %d persons (%d excluded from "
             "segmentation by the guardrails), %d accounts (%d account rounds); seconds %s", sandbox.schema,
             mode, changed, recomputed, persons, excluded, accounts, account_rounds, timings)
    return {"persons": persons, "accounts": accounts, "excluded": excluded, "changed": changed,
            "recomputed": recomputed, "accounts_rebuilt": bool(accounts_changed), "mode": mode,
            "seconds": timings}


def _account_components(conn: psycopg.Connection, rules: IdentityRules) -> int:
    """Account ids by min-label propagation in SQL, one UPDATE per round, until nothing changes."""
    warehouse.run(conn, "identity/account_graph").close()
    if rules.account_domain_fallback:
        warehouse.run(conn, "identity/account_domain_edges").close()
    warehouse.run(conn, "identity/account_labels").close()
    for round_number in range(1, MAX_ROUNDS + 1):
        with warehouse.run(conn, "identity/propagate_labels") as cur:
            if cur.rowcount == 0:
                break
    else:
        raise RuntimeError(f"account graph: labels still changing after {MAX_ROUNDS} rounds")
    warehouse.run(conn, "identity/assign_account_ids").close()
    return round_number


def _build_profiles(conn: psycopg.Connection, rules: IdentityRules, accounts_changed: bool) -> None:
    """Rebuild the profiles of the persons this run touched (and of those whose account changed),
    then, if anything on the account side changed, the account profiles and their roll-ups."""
    warehouse.run(conn, "identity/profile_persons_to_build").close()
    warehouse.run(conn, "identity/profile_delete_persons").close()
    warehouse.run(conn, "identity/profile_persons", {
        "source_priority": rules.source_priority, "max_identities": rules.max_identities_per_graph,
        "max_events": rules.max_events_per_profile}).close()
    if accounts_changed:
        warehouse.run(conn, "identity/profile_accounts").close()
    warehouse.run(conn, "identity/profile_person_accounts").close()
