"""Identity stitching: a rule-governed identity graph with stable person ids, and the profiles.

Nodes are records (Marketo leads, CRM contacts and leads, web visitors by ECID) and the identities
they carry (email, ECID, Marketo lead, CRM contact, CRM lead); a person is a connected component.
The changed records come out in one COPY, a row each, and their web events' identities in another;
the candidate links are built from them and every record rule (blocked values and patterns, value
length, ECID format, role mailboxes, unique scopes, 20 identities per record) is judged vectorised in
Python (pyarrow, numpy), and the accepted and refused links written back with COPY. Components come
from a C routine (scipy.sparse.csgraph) on integer codes, and only the few components that break a
graph rule (one value per unique namespace, 50 identities per graph) are resolved link by link in
Python. Runs are incremental: records changed since the previous run, and the persons they touch,
are all that is recomputed (and only the mappings and persons that changed are rewritten). Person
ids are stable: a component keeps its id, a merge keeps the oldest and records the absorbed ids, a
split gets new ids with lineage.
Accounts: Marketo companies join the CRM accounts they sync with, the MDM joins CRM accounts across
orgs (connected components by scipy too).
"""

from __future__ import annotations

import hashlib
import io
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import psycopg

from b2b_cdp import warehouse
from b2b_cdp.config import IdentityRules, Sandbox, load_config

log = logging.getLogger(__name__)

PROFILE_WINDOW_SECONDS = 600  # a source change should reach the profile within 10 minutes
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
    """Which links a conflict keeps: a record's own key, then its CRM record, email, ECID (links: a
    pyarrow table)."""
    import numpy as np
    import pyarrow.compute as pc

    def mask(condition):
        return condition.to_numpy(zero_copy_only=False)

    namespace = links["namespace"]
    return np.select([mask(pc.equal(links["value"], links["record_key"])), mask(pc.starts_with(namespace, "crm_")),
                      mask(pc.equal(namespace, "email"))], [0, 1, 2], default=3)


def _in_greedy_order(links):
    """The links (a pyarrow table) as tuples (record, namespace, value, scope, joins, seen,
    priority) in the order the greedy pass adds them: by priority, newest first, then by record,
    namespace and value (sorted in C: byte order is code-point order); and, for each tuple, its
    row in `links` (a numpy array)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    links = links.append_column("priority", pa.array(_link_priority(links)))
    order = pc.sort_indices(links, sort_keys=[("priority", "ascending"), ("seen_at", "descending"),
                                              ("record_key", "ascending"), ("namespace", "ascending"),
                                              ("value", "ascending")])
    columns = [links[name].take(order).to_pylist() for name in
               ("record_key", "namespace", "value", "unique_scope", "joins", "seen_at", "priority")]
    return list(zip(*columns)), order.to_numpy()


def _codes(column):
    """Integer codes of a string column and its distinct values (pyarrow dictionary encoding: one
    hash pass, no sort, no Python strings)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    encoded = pc.dictionary_encode(column)
    return encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64), encoded.dictionary


def _pair_codes(high, low, low_count: int):
    """Dense codes of (high, low) integer pairs."""
    import numpy as np
    import pandas as pd

    codes, _ = pd.factorize(high.astype(np.int64) * low_count + low)
    return codes.astype(np.int64)


def _distinct_per(group, member, member_count: int, group_count: int):
    """How many distinct members each group holds (groups and members as integer codes)."""
    import numpy as np
    import pandas as pd

    held = pd.unique(group.astype(np.int64) * member_count + member)    # a hash, not a sort
    return np.bincount(held // member_count, minlength=group_count)


def _connected(ends_a, ends_b, size: int):
    """Connected components of an undirected graph of `size` nodes given as integer edge ends:
    (how many, each node's component)."""
    import numpy as np
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    graph = coo_matrix((np.ones(len(ends_a), dtype=np.int8), (ends_a, ends_b)), shape=(size, size))
    return connected_components(graph.tocsr(), directed=False)


def components(links, rules: IdentityRules, record_codes=None, records=None) -> Components:
    """Connected components of the record/identity graph, under the graph rules. `links` is a
    pyarrow table (record_key, namespace, value, unique_scope ("" for none), joins, seen_at);
    the integer code of each link's record and the records they stand for, when already known."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    if links.num_rows == 0:
        return Components(frame=pa.table({"record_key": pa.array([], pa.string()), "component": pa.array([], pa.int64())}),
                          sizes=pa.table({"component": pa.array([], pa.int64()), "records": pa.array([], pa.int64()),
                                          "identities": pa.array([], pa.int64())}))
    if record_codes is None:
        record_codes, records = _codes(links["record_key"])
    namespace_codes, namespaces = _codes(links["namespace"])
    value_codes, values = _codes(links["value"])
    identity_codes = _pair_codes(value_codes, namespace_codes, len(namespaces))
    identity_count = int(identity_codes.max()) + 1
    joins = links["joins"].to_numpy()
    size = len(records) + identity_count
    rows, cols = record_codes[joins], identity_codes[joins] + len(records)
    _, node_labels = _connected(rows, cols, size)
    record_labels = node_labels[:len(records)].astype(np.int64)

    # Graph rules, checked per component; only the components that break one are resolved.
    link_component = record_labels[record_codes]
    component_count = int(record_labels.max()) + 1
    identities = _distinct_per(link_component, identity_codes, identity_count, component_count)
    bad = np.flatnonzero(identities > rules.max_identities_per_graph)
    scoped = pc.fill_null(pc.not_equal(links["unique_scope"], ""), False).to_numpy(zero_copy_only=False)
    if scoped.any():
        scope_codes, scopes = _codes(links["unique_scope"].filter(pa.array(scoped)))
        held = _pair_codes(link_component[scoped], scope_codes, len(scopes))
        counts = _distinct_per(held, value_codes[scoped], len(values), int(held.max()) + 1)
        first = np.zeros(len(counts), dtype=np.int64)
        first[held] = link_component[scoped]          # each (component, scope) pair's component
        bad = np.union1d(bad, first[counts > 1])
    result = Components()
    kept = np.ones(links.num_rows, dtype=bool)
    if len(bad):
        next_label = int(record_labels.max()) + 1
        selected = np.flatnonzero(np.isin(link_component, bad))
        ordered, order = _in_greedy_order(links.take(pa.array(selected)))
        relabelled, result.rejected = _resolve(ordered, rules)
        moved = pc.index_in(pa.array(list(relabelled), pa.string()), value_set=records).to_numpy(zero_copy_only=False)
        record_labels[moved] = next_label + np.fromiter(relabelled.values(), dtype=np.int64, count=len(relabelled))
        refused = {link[:3] for link in result.rejected}
        kept[selected[order]] = [link[:3] not in refused for link in ordered]
        log.info("%d component(s) broke a graph rule; %d link(s) refused", len(bad), len(result.rejected))
    result.frame = pa.table({"record_key": records, "component": record_labels})
    if len(bad):
        identities = _distinct_per(record_labels[record_codes[kept]], identity_codes[kept], identity_count,
                                   int(record_labels.max()) + 1)
    # Records and distinct identities (those the graph kept) of each component.
    records_per = np.bincount(record_labels)
    standing = np.flatnonzero(records_per)
    result.sizes = pa.table({"component": standing, "records": records_per[standing],
                             "identities": identities[standing]})
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


def _resolve(ordered: list[tuple], rules: IdentityRules) -> tuple[dict[str, int], list[tuple[str, str, str, str]]]:
    """Components that break a graph rule, rebuilt link by link (links in _in_greedy_order):
    unique-namespace conflicts refuse the lower-priority link; graphs over the cap evict identities
    (ECID first, oldest first)."""
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
    """The CSV a COPY ... TO STDOUT file writes, as a pyarrow table (NULL -> null, "" stays "")."""
    import pyarrow as pa
    from pyarrow import csv

    buffer = io.BytesIO()
    with conn.cursor() as cur, cur.copy(warehouse.sql_file(name), params) as copy:
        for block in copy:
            buffer.write(block)
    if buffer.tell() == 0:
        return pa.table({column: pa.array([], kind) for column, kind in columns.items()})
    buffer.seek(0)
    return csv.read_csv(buffer, read_options=csv.ReadOptions(column_names=list(columns)),
                        convert_options=csv.ConvertOptions(
                            column_types=columns, null_values=[""], strings_can_be_null=True,
                            quoted_strings_can_be_null=False,
                            true_values=["t"], false_values=["f"]))


def _copy_in(conn: psycopg.Connection, name: str, table) -> None:
    """Rows (a pyarrow table or a pandas frame) into a COPY ... FROM STDIN file as CSV: strings
    quoted, so "" is kept apart from NULL."""
    import pyarrow as pa
    from pyarrow import csv

    if not isinstance(table, pa.Table):
        table = pa.Table.from_pandas(table, preserve_index=False)
    buffer = io.BytesIO()
    csv.write_csv(table, buffer, write_options=csv.WriteOptions(include_header=False))
    data = buffer.getbuffer()
    with conn.cursor() as cur, cur.copy(warehouse.sql_file(name), writer=warehouse.FlushingWriter(cur)) as copy:
        for start in range(0, len(data), 1 << 20):
            copy.write(data[start:start + (1 << 20)])


def _seconds(micros):
    """Microseconds since the epoch as float seconds (the components' "seen_at")."""
    import pyarrow as pa
    import pyarrow.compute as pc

    return pc.divide(pc.cast(micros, pa.float64()), 1e6)


def _read_unchanged_links(conn: psycopg.Connection):
    """The links of the recomputed records that did not change, as the components read them."""
    import pyarrow as pa

    links = _copy_out(conn, "identity/export_unchanged_links", {
        "record_key": pa.string(), "namespace": pa.string(), "value": pa.string(), "unique_scope": pa.string(),
        "joins": pa.bool_(), "seen_us": pa.int64()})
    return links.set_column(5, "seen_at", _seconds(links["seen_us"]))


def _matches_any(values, patterns: list[str]):
    """Case-insensitive search for any of the patterns in each value (a pyarrow array), vectorised
    (RE2); patterns RE2 cannot run (back-references, look-arounds: the configuration accepts
    Python's syntax) go through Python's re."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.compute as pc

    either = "|".join(f"(?:{pattern})" for pattern in patterns)
    try:
        return pc.match_substring_regex(values, either, ignore_case=True).to_numpy(zero_copy_only=False)
    except pa.ArrowInvalid:
        return pd.Series(values.to_pylist(), dtype=object).str.contains(either, case=False, regex=True).to_numpy(
            dtype=bool)


def _role_mailbox(values, namespaces, mailboxes: list[str]):
    """Emails whose part before the first "@" is one of the role mailboxes."""
    import re

    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    names = [re.escape(name) for name in mailboxes if "@" not in name]
    if not names:
        return np.zeros(len(values), dtype=bool)
    emails = np.flatnonzero(pc.equal(namespaces, "email").to_numpy(zero_copy_only=False))
    shared = np.zeros(len(values), dtype=bool)
    shared[emails] = pc.match_substring_regex(values.take(pa.array(emails)),
                                              f"^(?:{'|'.join(names)})(?:@|$)").to_numpy(zero_copy_only=False)
    return shared


def _split_part(values, field: int):
    """PostgreSQL's split_part(value, '@', field) for field 1 or 2 ("" when there is no such part)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    parts = pc.split_pattern(values, "@")        # a plain split: far cheaper than a regex a row
    if isinstance(parts, pa.ChunkedArray):
        parts = parts.combine_chunks()
    present = pc.fill_null(pc.list_value_length(parts), 0).to_numpy(zero_copy_only=False) >= field
    at = parts.offsets.to_numpy()[:-1] + field - 1
    return pc.fill_null(parts.values.take(pa.array(np.where(present, at, 0), mask=~present)), "")


def _candidate_links(conn: psycopg.Connection, *, full: bool):
    """The candidate links of the records to judge (every record in a full run, the changed ones
    otherwise): each record's own key (rank 0), its CRM record (1) and email (2) from one row a
    record, and the ECIDs (3) and emails its web events carry. An identity a record carries both
    itself and through its events is one link (newest seen, best rank). `seen_us`: when the link
    was last seen, in microseconds since the epoch; `record_code`: the link's record, an index into
    the record keys returned with the links."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    every = "_all" if full else ""
    warehouse.run(conn, "identity/candidate_views").close()
    records = _copy_out(conn, f"identity/candidate_records{every}", {
        "record_key": pa.string(), "namespace": pa.string(), "crm_key": pa.string(), "email": pa.string(),
        "seen_us": pa.int64()})
    events = _copy_out(conn, f"identity/candidate_event_links{every}", {
        "record_key": pa.string(), "namespace": pa.string(), "value": pa.string(), "seen_us": pa.int64(),
        "priority": pa.int16()})

    n, m = records.num_rows, events.num_rows
    crm_rows = np.flatnonzero(pc.is_valid(records["crm_key"]).to_numpy(zero_copy_only=False))
    email_rows = np.flatnonzero(pc.is_valid(records["email"]).to_numpy(zero_copy_only=False))
    crm_namespace = pc.if_else(pc.starts_with(records["crm_key"], "00Q"), "crm_lead", "crm_contact")
    # Each link's record: an index into the records (their keys are distinct: codes in order of first
    # appearance are their row numbers), or past them an events-only record.
    record_codes, record_keys = _codes(pa.chunked_array(records["record_key"].chunks + events["record_key"].chunks,
                                                        pa.string()))
    event_record = record_codes[n:]
    unknown = event_record >= n
    link_record = np.concatenate([np.arange(n, dtype=np.int64), crm_rows, email_rows, event_record])
    piece = np.repeat(np.arange(4, dtype=np.int64), [n, len(crm_rows), len(email_rows), m])
    # Each record's links side by side (own key, CRM record, email, then its events'), so that a
    # later run deleting or reading one record's links finds them on one page, not on four.
    order = np.argsort(link_record * 4 + piece, kind="stable")

    def gather(sources, positions):
        """A column of the links, in that order: its sources end to end, taken at each link's position."""
        source = pa.concat_arrays([part.combine_chunks() if isinstance(part, pa.ChunkedArray) else part
                                   for part in sources])
        return source.take(pa.array(np.concatenate(positions)[order]))

    rows = [np.arange(n), crm_rows, email_rows, n + np.arange(m)]      # a record's row, or an event's
    links = pa.table({
        "record_key": gather([records["record_key"], events["record_key"]], rows),
        "namespace": gather([records["namespace"], crm_namespace, pa.array(["email"]), events["namespace"]],
                            [np.arange(n), n + crm_rows, np.full(len(email_rows), 2 * n), 2 * n + 1 + np.arange(m)]),
        "value": gather([records["record_key"], records["crm_key"], records["email"], events["value"]],
                        [np.arange(n), n + crm_rows, 2 * n + email_rows, 3 * n + np.arange(m)]),
        "seen_us": gather([records["seen_us"], events["seen_us"]], rows),
        "priority": pa.array(np.concatenate([piece[:n + len(crm_rows) + len(email_rows)],
                                             events["priority"].to_numpy()]).astype(np.int16)[order]),
        "record_code": link_record[order],
    })
    # Events usually stand for an ECID record of their own; those of a person record may repeat
    # one of its identities: only those records' links are grouped.
    with_events = np.zeros(link_record.max(initial=-1) + 1, dtype=bool)
    with_events[event_record[~unknown]] = True
    repeated = pa.array(with_events[link_record[order]])
    if pc.any(repeated).as_py():
        grouped = links.filter(repeated).to_pandas()
        grouped = grouped.sort_values("seen_us", ascending=False, kind="stable")
        best = grouped.groupby(["record_key", "namespace", "value"], sort=False)["priority"].transform("min")
        grouped = grouped.assign(priority=best).drop_duplicates(["record_key", "namespace", "value"])
        links = pa.concat_tables([links.filter(pc.invert(repeated)),
                                  pa.Table.from_pandas(grouped, schema=links.schema, preserve_index=False)])
    return links.combine_chunks(), record_keys


def _utc_text(micros):
    """Microseconds since the epoch as timestamptz text in UTC ("2026-12-07 10:00:00.000000+00").
    Formatting through a naive timestamp: pyarrow formats zoned ones about ten times slower."""
    import pyarrow as pa
    import pyarrow.compute as pc

    return pc.binary_join_element_wise(pc.cast(pc.cast(micros, pa.timestamp("us")), pa.string()), "+00", "")


@dataclass
class Judged:
    """The record rules' verdict on the candidate links: the refused ones and the accepted ones as
    written (pyarrow tables), and the accepted ones as the component computation reads them, with
    the integer code of each one's record and the records they stand for."""
    rejected: object
    links: object
    graph: object
    record_codes: object
    records: object


def _judge_links(candidates, records, rules: IdentityRules, run_id: str) -> Judged:
    """The record rules on the candidate links (and their record keys) from _candidate_links,
    vectorised (pyarrow, numpy): refused values (blocked values and patterns, values over 1,024
    characters, ECIDs not of 38 digits), role mailboxes (kept on their record, never joining), the
    unique scope of each link, the cap of identities per record (own key, CRM record, email, ECID;
    newest first), and the split into accepted links and refused ones (written back by _write_links)."""
    import numpy as np
    import pandas as pd
    import pyarrow as pa
    import pyarrow.compute as pc

    value, namespace = candidates["value"].combine_chunks(), candidates["namespace"].combine_chunks()
    blocked = pc.is_in(value, value_set=pa.array(rules.blocked_values, pa.string()))
    if rules.blocked_patterns:
        blocked = pc.or_(blocked, pa.array(_matches_any(value, rules.blocked_patterns)))
    refused = pc.case_when(
        pc.make_struct(blocked, pc.greater(pc.utf8_length(value), 1024),
                       pc.and_(pc.equal(namespace, "ecid"), pc.invert(pc.match_substring_regex(value, "^[0-9]{38}$")))),
        "blocked value", "value longer than 1024 characters", "ECID not 38 digits")
    shared = _role_mailbox(value, namespace, rules.shared_mailboxes)
    # One value per person in a unique namespace; the Marketo and CRM ones per instance (the
    # munchkin id or org id in the key, less its ".Marketo" / ".Salesforce" suffix).
    unique = pc.is_in(namespace, value_set=pa.array(rules.unique_namespaces, pa.string()))
    per_instance = pc.and_(unique, pc.is_in(namespace, value_set=pa.array(["marketo", "crm_contact", "crm_lead"])))
    # The instances are few: the suffix is stripped once per distinct one.
    instance = pc.dictionary_encode(_split_part(value.filter(per_instance), 2))
    instance = pc.replace_substring_regex(instance.dictionary, r"\.[A-Za-z]+$", "", max_replacements=1).take(
        instance.indices)
    scope = pc.replace_with_mask(pc.if_else(unique, namespace, pa.scalar(None, pa.string())), per_instance,
                                 pc.binary_join_element_wise(namespace.filter(per_instance), instance, ":"))

    cap = rules.max_identities_per_record
    judged = pc.is_null(refused).to_numpy(zero_copy_only=False)
    record_codes = candidates["record_code"].to_numpy()
    per_record = np.bincount(record_codes[judged], minlength=len(records))
    over_cap = judged & (per_record[record_codes] > cap)
    if over_cap.any():
        # Few records carry more than the cap: only those are ranked (a refused link ranks last).
        crowded = candidates.filter(pa.array(over_cap)).select(["record_key", "priority", "seen_us", "value"])
        crowded = crowded.to_pandas().set_index(np.flatnonzero(over_cap)).sort_values(
            ["record_key", "priority", "seen_us", "value"], ascending=[True, True, False, True])
        beyond = crowded.groupby("record_key", sort=False).cumcount().to_numpy() >= cap
        over_cap[:] = False
        over_cap[crowded.index[beyond]] = True
    accepted = judged & ~over_cap
    refusing = np.flatnonzero(~judged | over_cap | shared)
    reasons = refused.take(pa.array(refusing)).to_numpy(zero_copy_only=False)
    reasons = np.where(over_cap[refusing] & pd.isna(reasons), f"more than {cap} identities on one record", reasons)
    reasons = np.where(shared[refusing] & pd.isna(reasons),
                       "shared role mailbox: kept on its record, never joins two people", reasons)
    rejected = candidates.select(["record_key", "namespace", "value"]).take(pa.array(refusing))
    rejected = rejected.append_column("reason", pa.array(reasons, pa.string())).append_column(
        "run_id", pa.array(np.full(len(refusing), run_id, dtype=object), pa.string()))
    kept = pa.array(np.flatnonzero(accepted))
    seen_us = candidates["seen_us"].take(kept)
    links = pa.table({"record_key": candidates["record_key"].take(kept), "namespace": namespace.take(kept),
                      "value": value.take(kept), "unique_scope": scope.take(kept),
                      "joins": pa.array(~shared[accepted]),
                      "seen_at": _utc_text(seen_us)})
    # The accepted links' records, coded afresh from the codes above (a record may have none left).
    standing = np.zeros(len(records), dtype=bool)
    standing[record_codes[accepted]] = True
    recoded = np.cumsum(standing) - 1
    return Judged(
        rejected=rejected, links=links,
        graph=links.set_column(3, "unique_scope", pc.fill_null(links["unique_scope"], "")).set_column(
            5, "seen_at", _seconds(seen_us)),
        record_codes=recoded[record_codes[accepted]], records=records.take(pa.array(np.flatnonzero(standing))))


def _write_links(conn: psycopg.Connection, judged: Judged, *, full: bool) -> None:
    """The judged links written back with COPY; after a full run's, the indexes reset_links dropped."""
    _copy_in(conn, "identity/write_rejected_links", judged.rejected)
    _copy_in(conn, "identity/write_links", judged.links)
    if full:
        warehouse.run(conn, "identity/create_link_indexes").close()


def stitch(sandbox: Sandbox, run_id: str = "manual", *, full: bool = False) -> dict[str, int]:
    """Bring the identity graph and the profiles of one sandbox up to date, in one transaction:
    incrementally (what changed since the previous run), or in full (every link judged afresh)."""
    import pandas as pd
    import pyarrow as pa

    rules = load_config().identity
    timings: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[name] = round(now - clock, 3)
        clock = now

    # `alongside` is left before the connection: its thread is done before the transaction ends.
    with warehouse.connect(sandbox) as conn, ThreadPoolExecutor(1) as alongside:
        warehouse.run(conn, "identity/session_settings").close()
        warehouse.run(conn, "identity/lock_sandbox").close()
        started_at = warehouse.fetch_all(conn, "identity/clock")[0][0]
        rules_hash = hashlib.sha256(rules.model_dump_json().encode()).hexdigest()[:16]
        last = warehouse.fetch_all(conn, "identity/last_run")
        # A first run, a requested full run, or new linking rules: every link is judged afresh.
        since = None if full or not last or last[0][1] != rules_hash else last[0][0]
        mode = "full" if since is None else "incremental"
        snapshot = None
        if since is None:
            # For the second connection that reads the account graph alongside (after the candidates).
            snapshot = warehouse.fetch_all(conn, "identity/export_snapshot")[0][0]
            warehouse.run(conn, "identity/reset_links").close()
        else:
            with warehouse.run(conn, "identity/changed_records", {"since": since}) as cur:
                changed = cur.rowcount
            warehouse.run(conn, "identity/incremental_settings").close()
            warehouse.run(conn, "identity/analyze_changed").close()
            warehouse.run(conn, "identity/forget_changed").close()
        lap("changed_records")
        candidates, records = _candidate_links(conn, full=since is None)
        lap("candidates")
        # A full run reads the account graph alongside, in this transaction's snapshot: the server
        # would otherwise idle while the links are judged here.
        account_labels = alongside.submit(_account_labels_alongside, sandbox, snapshot, rules) if snapshot else None
        judged = _judge_links(candidates, records, rules, run_id)
        del candidates
        lap("judge_links")
        if since is None:
            # A full run's judged links are the whole graph: its components are computed while the
            # server writes and indexes them (the connection is the writer thread's until it is done).
            with ThreadPoolExecutor(1) as pool:
                writing = pool.submit(_write_links, conn, judged, full=True)
                found = components(judged.graph, rules, record_codes=judged.record_codes, records=judged.records)
                lap("components")
                writing.result()
            lap("write_links")
            changed = recomputed = len(judged.records)      # a full run judges every live record
            warehouse.run(conn, "identity/all_persons").close()
            lap("affected_records")
        else:
            _write_links(conn, judged, full=False)
            lap("write_links")
            # The records to recompute: those of every person the changes touch.
            warehouse.run(conn, "identity/affected_persons").close()
            with warehouse.run(conn, "identity/affected_records") as cur:
                recomputed = cur.rowcount
            warehouse.run(conn, "identity/analyze_records").close()
            lap("affected_records")
            # The changed records' links as just judged, and those of the others recomputed.
            links = pa.concat_tables([judged.graph, _read_unchanged_links(conn)])
            lap("read_links")
            found = components(links, rules)
            lap("components")
            del links
        del judged
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
                     remap, "update_persons", "insert_persons"):
            params = {"run_id": run_id} if step in ("assign_person_ids", "record_lineage", "retire_persons",
                                                    "insert_persons") else None
            warehouse.run(conn, f"identity/{step}", params).close()
        if since is None:        # an incremental run changes a sliver of them: autovacuum's statistics do
            warehouse.run(conn, "identity/analyze_graph").close()
        lap("person_ids")
        accounts_changed = since is None or warehouse.fetch_all(
            conn, "identity/account_side_changed", {"since": since})[0][0]
        if accounts_changed:
            labels, account_components = account_labels.result() if account_labels else _account_labels(conn, rules)
            _assign_account_ids(conn, labels)
        else:
            account_components = 0
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
             "segmentation by the guardrails), %d accounts (%d account graph components rebuilt); seconds %s",
             sandbox.schema, mode, changed, recomputed, persons, excluded, accounts, account_components, timings)
    return {"persons": persons, "accounts": accounts, "excluded": excluded, "changed": changed,
            "recomputed": recomputed, "accounts_rebuilt": bool(accounts_changed), "mode": mode,
            "seconds": timings}


def _account_labels(conn: psycopg.Connection, rules: IdentityRules):
    """The account graph's connected components (scipy), each key labelled with its component's
    smallest key: a pyarrow table (node, label) and the number of components. The keys come out
    sorted by the server, so the smallest is the one SQL's min() picks under its collation."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    warehouse.run(conn, "identity/account_graph").close()
    if rules.account_domain_fallback:
        warehouse.run(conn, "identity/account_domain_edges").close()
    nodes = _copy_out(conn, "identity/account_nodes", {"node": pa.string()})["node"].combine_chunks()
    edges = _copy_out(conn, "identity/account_edges", {"a": pa.string(), "b": pa.string()})
    if not len(nodes):
        return pa.table({"node": nodes, "label": nodes}), 0
    ends = [pc.index_in(edges[end], value_set=nodes).to_numpy(zero_copy_only=False).astype(np.int64)
            for end in ("a", "b")]
    count, labels = _connected(*ends, len(nodes))
    _, smallest = np.unique(labels, return_index=True)     # each component's first (smallest) node
    return pa.table({"node": nodes, "label": nodes.take(pa.array(smallest[labels]))}), count


def _account_labels_alongside(sandbox: Sandbox, snapshot: str, rules: IdentityRules):
    """_account_labels on a connection of its own that reads the stitching transaction's snapshot:
    a full run's account graph is computed while the stitching connection works on persons."""
    with warehouse.connect(sandbox) as side:
        side.commit()                        # a pooled connection may have begun a transaction
        side.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        try:
            with psycopg.ClientCursor(side) as cur:     # SET takes no bound parameters
                cur.execute(warehouse.sql_file("identity/import_snapshot"), {"snapshot": snapshot})
            warehouse.run(side, "identity/session_settings").close()
            return _account_labels(side, rules)
        finally:
            side.rollback()                  # it only read (and filled temporary tables)
            side.isolation_level = None


def _assign_account_ids(conn: psycopg.Connection, labels) -> None:
    """Each account key's id from its component's label; the keys whose account changed noted."""
    warehouse.run(conn, "identity/create_account_labels").close()
    _copy_in(conn, "identity/write_account_labels", labels)
    warehouse.run(conn, "identity/assign_account_ids").close()


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
