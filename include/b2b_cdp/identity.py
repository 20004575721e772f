"""Identity stitching: a rule-governed identity graph with stable person ids, and the profiles.

Nodes are records (Marketo leads, CRM contacts and leads, web visitors by ECID) and the identities
they carry (email, ECID, Marketo lead, CRM contact, CRM lead); a person is a connected component.
The candidate links come out in one COPY, with blocked values and ECID format judged and role
mailboxes flagged in SQL; the blocked patterns and the 20 identities per record are judged
vectorised in Python, and the accepted and refused links written back with COPY. Components come from a C routine (scipy.sparse.csgraph), and only the few
components that break a graph rule (one value per unique namespace, 50 identities per graph) are
resolved link by link in Python. Runs are incremental: records changed since the previous
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
    sizes: object = None            # pandas DataFrame (component, records, identities)
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
        return Components(frame=pd.DataFrame({"record_key": [], "component": []}),
                          sizes=pd.DataFrame({"component": [], "records": [], "identities": []}))
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
    kept = np.ones(len(links), dtype=bool)
    if bad:
        next_label = int(record_labels.max()) + 1
        selected = np.isin(link_component, list(bad))
        subset = links[selected].assign(priority=_link_priority(links[selected]))
        relabelled, result.rejected = _resolve(subset, rules)
        index = pd.Index(records)
        for record_key, local in relabelled.items():
            record_labels[index.get_loc(record_key)] = next_label + local
        refused = {link[:3] for link in result.rejected}
        subset_links = subset[["record_key", "namespace", "value"]].itertuples(index=False, name=None)
        kept[np.flatnonzero(selected)] = [link not in refused for link in subset_links]
        log.info("%d component(s) broke a graph rule; %d link(s) refused", len(bad), len(result.rejected))
    result.frame = pd.DataFrame({"record_key": records, "component": record_labels})
    result.sizes = _sizes(record_labels, record_codes[kept], identity_codes[kept], len(identities))
    return result


def _sizes(record_labels, record_codes, identity_codes, identity_count: int):
    """Records and distinct identities (those the graph kept) of each component."""
    import numpy as np
    import pandas as pd

    labels, compact = np.unique(record_labels, return_inverse=True)
    held = np.unique(compact[record_codes].astype(np.int64) * identity_count + identity_codes)
    return pd.DataFrame({"component": labels, "records": np.bincount(compact, minlength=len(labels)),
                         "identities": np.bincount(held // identity_count, minlength=len(labels))})


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


def _copy_out(conn: psycopg.Connection, name: str, columns: dict, params: dict | None = None):
    """The CSV a COPY ... TO STDOUT file writes, as a pandas DataFrame (NULL -> None, "" stays "")."""
    import pyarrow as pa
    from pyarrow import csv

    buffer = io.BytesIO()
    with conn.cursor() as cur, cur.copy(warehouse.sql_file(name), params) as copy:
        for block in copy:
            buffer.write(block)
    if buffer.tell() == 0:
        return pa.table({column: pa.array([], kind) for column, kind in columns.items()}).to_pandas()
    buffer.seek(0)
    return csv.read_csv(buffer, read_options=csv.ReadOptions(column_names=list(columns)),
                        convert_options=csv.ConvertOptions(
                            column_types=columns, null_values=[""], strings_can_be_null=True,
                            quoted_strings_can_be_null=False,
                            true_values=["t"], false_values=["f"])).to_pandas()


def _copy_in(conn: psycopg.Connection, name: str, frame) -> None:
    """Rows into a COPY ... FROM STDIN file as CSV: strings quoted, so "" is kept apart from NULL."""
    import pyarrow as pa
    from pyarrow import csv

    buffer = io.BytesIO()
    csv.write_csv(pa.Table.from_pandas(frame, preserve_index=False), buffer,
                  write_options=csv.WriteOptions(include_header=False))
    data = buffer.getbuffer()
    with conn.cursor() as cur, cur.copy(warehouse.sql_file(name)) as copy:
        for start in range(0, len(data), 1 << 20):
            copy.write(data[start:start + (1 << 20)])


def _link_types() -> dict:
    import pyarrow as pa

    return {"record_key": pa.string(), "namespace": pa.string(), "value": pa.string(),
            "unique_scope": pa.string(), "joins": pa.bool_(), "seen_at": pa.float64()}


def _read_links(conn: psycopg.Connection):
    return _copy_out(conn, "identity/export_links", _link_types())


def _matches_any(values, patterns: list[str]):
    """Case-insensitive search for any of the patterns in each value, vectorised (RE2); patterns RE2
    cannot run (back-references, look-arounds: the configuration accepts Python's syntax) go
    through Python's re."""
    import pyarrow as pa
    import pyarrow.compute as pc

    either = "|".join(f"(?:{pattern})" for pattern in patterns)
    try:
        return pc.match_substring_regex(pa.array(values), either, ignore_case=True).to_numpy(zero_copy_only=False)
    except pa.ArrowInvalid:
        return values.astype(object).str.contains(either, case=False, regex=True).to_numpy(dtype=bool)


def _judge_links(conn: psycopg.Connection, rules: IdentityRules, run_id: str, lap):
    """The record rules on the changed records' candidate links, vectorised: refused values come
    judged from SQL; here the cap of identities per record (own key, CRM record, email, ECID; newest
    first) and the split into accepted links and refused ones, each written back with COPY.
    Returns the accepted links in the shape the component computation reads."""
    import numpy as np
    import pandas as pd
    import pyarrow as pa

    candidates = _copy_out(conn, "identity/candidate_links", {
        "record_key": pa.string(), "namespace": pa.string(), "value": pa.string(), "unique_scope": pa.string(),
        "seen_at": pa.string(), "seen_epoch": pa.float64(), "priority": pa.int16(), "refused": pa.string(),
        "shared": pa.bool_()}, {
        "blocked_values": rules.blocked_values, "shared_mailboxes": rules.shared_mailboxes,
        "unique_namespaces": rules.unique_namespaces})
    lap("candidates")
    if rules.blocked_patterns:
        blocked = _matches_any(candidates["value"], rules.blocked_patterns)
        candidates.loc[blocked, "refused"] = "blocked value"
    cap = rules.max_identities_per_record
    judged = candidates["refused"].isna().to_numpy()
    record_codes, records = pd.factorize(candidates["record_key"])
    per_record = np.bincount(record_codes[judged], minlength=len(records))
    over_cap = judged & (per_record[record_codes] > cap)
    if over_cap.any():
        # Few records carry more than the cap: only those are ranked (a refused link ranks last).
        crowded = candidates[over_cap].sort_values(["record_key", "priority", "seen_epoch", "value"],
                                                   ascending=[True, True, False, True])
        beyond = crowded.groupby("record_key", sort=False).cumcount().to_numpy() >= cap
        over_cap[:] = False
        over_cap[crowded.index[beyond]] = True
    shared = candidates["shared"].to_numpy()
    accepted = judged & ~over_cap
    refusing = ~judged | over_cap | shared
    reasons = candidates.loc[refusing, "refused"].to_numpy(dtype=object)
    capped, mailbox = over_cap[refusing], shared[refusing]
    reasons = np.where(capped & pd.isna(reasons), f"more than {cap} identities on one record", reasons)
    reasons = np.where(mailbox & pd.isna(reasons), "shared role mailbox: kept on its record, never joins two people",
                       reasons)
    refused = candidates.loc[refusing, ["record_key", "namespace", "value"]].assign(reason=reasons, run_id=run_id)
    links = candidates.loc[accepted, ["record_key", "namespace", "value", "unique_scope", "seen_at", "seen_epoch",
                                      "shared"]]
    del candidates
    links["joins"] = ~links.pop("shared")
    lap("judge_links")
    _copy_in(conn, "identity/write_rejected_links", refused)
    _copy_in(conn, "identity/write_links", links[["record_key", "namespace", "value", "unique_scope", "joins",
                                                  "seen_at"]])
    lap("write_links")
    links["unique_scope"] = links["unique_scope"].fillna("")
    links["seen_at"] = links.pop("seen_epoch")
    return links[LINK_COLUMNS].reset_index(drop=True)


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
        warehouse.run(conn, "identity/lock_sandbox").close()
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
        warehouse.run(conn, "identity/analyze_changed").close()
        warehouse.run(conn, "identity/forget_changed").close()
        lap("changed_records")
        judged_links = _judge_links(conn, rules, run_id, lap)
        if since is None:
            warehouse.run(conn, "identity/create_link_indexes").close()
            lap("link_indexes")
        # A full run recomputes every live record; an incremental one, those the changes touch.
        with warehouse.run(conn, "identity/all_live_records" if since is None else "identity/affected_records") as cur:
            recomputed = cur.rowcount
        warehouse.run(conn, "identity/analyze_records").close()
        lap("affected_records")
        # In a full run the links just judged are the whole graph: no need to read them back.
        links = judged_links if since is None else _read_links(conn)
        del judged_links
        lap("read_links")
        found = components(links, rules)
        lap("components")
        warehouse.run(conn, "identity/create_work_tables").close()
        _copy_in(conn, "identity/write_components", found.frame)
        _copy_in(conn, "identity/write_component_sizes", found.sizes)
        if found.rejected:
            _copy_in(conn, "identity/write_graph_rejected",
                   pd.DataFrame(found.rejected, columns=["record_key", "namespace", "value", "reason"]))
            warehouse.run(conn, "identity/drop_graph_rejected").close()
            warehouse.run(conn, "identity/record_graph_rejected", {"run_id": run_id}).close()
        warehouse.run(conn, "identity/analyze_components").close()
        lap("write_components")
        # A full run maps every record afresh: the map is emptied and indexed once after filling.
        remap = "remap_all_records" if since is None else "remap_records"
        for step in ("prior_persons", "assign_person_ids", "analyze_assignment", "record_lineage", "retire_persons",
                     remap, "upsert_persons"):
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
        _build_profiles(conn, rules, accounts_changed, full=since is None)
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


def _build_profiles(conn: psycopg.Connection, rules: IdentityRules, accounts_changed: bool, *, full: bool) -> None:
    """Rebuild the profiles of the persons this run touched (and of those whose account changed),
    then, if anything on the account side changed, the account profiles and their roll-ups."""
    if full:
        warehouse.run(conn, "identity/profile_all_persons_to_build").close()
        warehouse.run(conn, "identity/profile_reset_persons").close()
    else:
        warehouse.run(conn, "identity/profile_persons_to_build").close()
        warehouse.run(conn, "identity/profile_delete_persons").close()
    warehouse.run(conn, "identity/profile_persons", {
        "source_priority": rules.source_priority, "max_identities": rules.max_identities_per_graph,
        "max_events": rules.max_events_per_profile}).close()
    if accounts_changed:
        warehouse.run(conn, "identity/profile_accounts").close()
    warehouse.run(conn, "identity/profile_person_accounts").close()
    if full:
        warehouse.run(conn, "identity/profile_index_persons").close()
