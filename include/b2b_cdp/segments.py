"""Segment definitions (declarative YAML) compiled to set-based SQL, and their evaluation.

The compiler assembles the fragments in sql/segments/ around bound parameters: values from the
configuration are never formatted into SQL; only whitelisted column names and operator symbols are.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from b2b_cdp import warehouse
from b2b_cdp.catalog import ACCOUNT_ATTRIBUTES, EVENT_FIELDS, PERSON_ATTRIBUTES
from b2b_cdp.config import (AccountCondition, AccountSegment, AccountSegmentCondition, BuyingGroupCondition,
                            CdpConfig, Comparison, Condition, ConfigError, EventCondition, FieldCondition,
                            OpportunityAggregate, Sandbox, Segment)

log = logging.getLogger(__name__)

STREAMING_MAX_WINDOW_HOURS = 24
LIKE_OPERATORS = ("contains", "starts_with", "ends_with")
SYMBOLS = {"eq": "=", "ne": "<>", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="}
# `{over}` is empty where the deals are filtered by the join, or a FILTER (WHERE ...) clause.
# The fragments of an account condition, over a person's accounts or over the account itself.
ACCOUNT_FRAGMENTS = {"person": ("account_attribute", "opportunity_fact", "opportunity_aggregate"),
                     "account": ("account_audience_attribute", "account_audience_opportunity_fact",
                                 "account_audience_opportunities")}
AGGREGATES = {"sum": "coalesce(sum(o.amount){over}, 0)", "max": "coalesce(max(o.amount){over}, 0)",
              "count": "count(o.opportunity_key){over}"}


@dataclass
class CompiledSegment:
    segment_id: str
    # The member query; in a pass (compiled with facts) a person segment's is its condition, one
    # CASE of the pass's scan of the profiles (sql/segments/stage_qualifying.sql).
    sql: str
    params: dict[str, Any]
    mode: str
    definition_hash: str
    depends_on: set[str] = field(default_factory=set)
    audience: str = "person"


def _fragment(name: str, **parts: str) -> str:
    return warehouse.sql_file(f"segments/{name}").strip().format(**parts)


def _like_pattern(value: str, op: str) -> str:
    escaped = str(value).replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return {"contains": f"%{escaped}%", "starts_with": f"{escaped}%", "ends_with": f"%{escaped}"}[op]


class ConditionCompiler:
    """Compiles conditions of the audience language to SQL over `p` (profile_person), and account
    audience conditions over `a` (profile_account), binding every value; also used for buying-group
    role conditions and solution interests' inline account audiences (b2b_cdp.buying_groups)."""

    def __init__(self, facts: "PassFacts | None" = None, *, rows: bool = False, prefix: str = ""):
        self.params: dict[str, Any] = {}
        self.depends_on: set[str] = set()
        # With facts, event and opportunity conditions read columns a pass computed once for all its
        # segments; without, each is a self-contained subquery (one person's explain, role cases).
        self.facts = facts
        # rows: the condition is one column of a pass's scan of the profiles, where `f` (the event
        # facts) and `pa` (the person-account facts) are joined to `p`, and segment inputs are
        # uncorrelated sets (hashed once, not probed per person).
        self.rows = rows and facts is not None
        self.prefix = prefix         # keeps the values of several segments in one statement apart

    def bind(self, value: Any) -> str:
        name = f"{self.prefix}v{len(self.params)}"
        self.params[name] = value
        return f"%({name})s"

    def comparison(self, cond: Comparison, column_sql: str) -> str:
        """`column_sql <op> <bound value>`; the column is ours, the value always a parameter."""
        op = cond.op
        if op in SYMBOLS:
            return f"{column_sql} {SYMBOLS[op]} {self.bind(cond.value)}"
        if op in ("contains", "starts_with", "ends_with"):
            return f"{column_sql} ILIKE {self.bind(_like_pattern(cond.value, op))}"
        if op == "in":
            return f"{column_sql} = ANY({self.bind(list(cond.value))})"
        if op == "not_in":   # `<> ALL`, not `NOT (... = ANY)`: fragments put the column before the text
            return f"{column_sql} <> ALL({self.bind(list(cond.value))})"
        if op == "exists":
            return f"{column_sql} IS NOT NULL"
        if op == "not_exists":
            return f"{column_sql} IS NULL"
        raise ValueError(f"unsupported operator {op!r}")

    @staticmethod
    def nested(cond: Condition | AccountSegmentCondition | AccountCondition, compile_child) -> str | None:
        """all/any/not over the children compiled by `compile_child`; None for a leaf."""
        if getattr(cond, "all_", None) is not None:
            return "(" + " AND ".join(compile_child(c) for c in cond.all_) + ")"
        if getattr(cond, "any_", None) is not None:
            return "(" + " OR ".join(compile_child(c) for c in cond.any_) + ")"
        if getattr(cond, "not_", None) is not None:
            return f"NOT {compile_child(cond.not_)}"
        return None

    def condition(self, cond: Condition) -> str:
        if (combined := self.nested(cond, self.condition)) is not None:
            return combined
        if cond.attribute is not None:
            assert cond.attribute.name in PERSON_ATTRIBUTES
            return _fragment("person_attribute", column=cond.attribute.name,
                             comparison=self.comparison(cond.attribute, "").strip())
        if cond.account is not None:
            return self.account(cond.account)
        if cond.event is not None:
            return self.event(cond.event)
        if cond.buying_group is not None:
            return self.buying_group(cond.buying_group)
        self.depends_on.add(cond.in_segment)
        return _fragment("in_segment_set" if self.rows else "in_segment", segment_id=self.bind(cond.in_segment))

    def account(self, cond: AccountCondition | AccountSegmentCondition, over: str = "person") -> str:
        """An account attribute or opportunity aggregate: of any of the person's accounts (`p`), or
        of the account itself (`a`, an account audience)."""
        attribute, fact, aggregate = ACCOUNT_FRAGMENTS[over]
        if self.rows and over == "person":
            return _fragment("person_account_fact", column=self.facts.person_account_column(cond))
        if cond.attribute is not None:
            assert cond.attribute.name in ACCOUNT_ATTRIBUTES
            return _fragment(attribute, column=cond.attribute.name,
                             comparison=self.comparison(cond.attribute, "").strip())
        if self.facts is not None:
            return _fragment(fact, column=self.facts.opportunity_column(cond.opportunities),
                             comparison=self.comparison(cond.opportunities, "").strip())
        return _fragment(aggregate, **self.opportunity_parts(cond.opportunities))

    def account_audience(self, cond: AccountSegmentCondition | AccountCondition) -> str:
        """An account audience condition over `a` (profile_account); an inline account condition of a
        solution interest (attribute or opportunities) compiles the same way."""
        if (combined := self.nested(cond, self.account_audience)) is not None:
            return combined
        if cond.attribute is not None or cond.opportunities is not None:
            return self.account(cond, over="account")
        if cond.person is not None:
            return _fragment("account_audience_person", condition=self.condition(cond.person))
        self.depends_on.add(cond.in_segment)
        return _fragment("account_audience_in_segment", segment_id=self.bind(cond.in_segment))

    def opportunity_filter(self, agg: OpportunityAggregate) -> str:
        """Which deals an opportunity aggregate counts (`o` is the deal)."""
        filters = ["true"]
        if agg.won is not None:
            filters.append(f"o.is_won = {self.bind(agg.won)}")
        if agg.closed is not None:
            filters.append(f"o.is_closed = {self.bind(agg.closed)}")
        if agg.stages:
            filters.append(f"o.stage = ANY({self.bind(list(agg.stages))})")
        return " AND ".join(filters)

    def opportunity_parts(self, agg: OpportunityAggregate) -> dict[str, str]:
        """The deal filter, aggregate and comparison of an opportunity aggregate (`o` is the deal)."""
        return dict(opportunity_filter=self.opportunity_filter(agg), aggregate=AGGREGATES[agg.aggregate].format(over=""),
                    comparison=self.comparison(agg, "").strip())

    def buying_group(self, cond: BuyingGroupCondition) -> str:
        """The people of a solution interest's current buying groups (b2b_cdp.buying_groups)."""
        filters = ["true"]
        if cond.complete is not None:
            filters.append(f"g.complete = {self.bind(cond.complete)}")
        if cond.missing_role is not None:
            filters.append(f"{self.bind(cond.missing_role)} = ANY(g.missing_roles)")
        if cond.role is not None:
            filters.append(f"m.role = {self.bind(cond.role)}")
        return _fragment("buying_group_set" if self.rows else "buying_group",
                         solution_interest=self.bind(cond.solution_interest), group_filter=" AND ".join(filters))

    def event(self, cond: EventCondition) -> str:
        if self.rows:
            count = Comparison(op=cond.count.op, value=cond.count.value)
            return _fragment("event_fact_column", column=self.facts.event_column(cond),
                             comparison=self.comparison(count, "").strip())
        if self.facts is not None:
            column = self.facts.event_column(cond)
            count = Comparison(op=cond.count.op, value=cond.count.value)
            # People with no event in the window have no facts row: a count condition that zero
            # satisfies (`lt 3`) is written as "not among those whose count fails it".
            fragment = "event_fact_zero_qualifies" if _zero_satisfies(count) else "event_fact"
            return _fragment(fragment, column=column, comparison=self.comparison(count, "").strip())
        filters = [self.comparison(f, f"e.{f.field}") for f in cond.where] or ["true"]
        parts = dict(event_type=self.bind(cond.type), window_hours=self.bind(cond.within.hours_total),
                     event_filter=" AND ".join(filters))
        if cond.count.op == "gte" and cond.count.value == 1:
            return _fragment("event_exists", **parts)
        count = Comparison(op=cond.count.op, value=cond.count.value)
        return _fragment("event_count", comparison=self.comparison(count, "").strip(), **parts)


def _zero_satisfies(count: Comparison) -> bool:
    return {"gte": 0 >= count.value, "gt": False, "eq": count.value == 0,
            "lte": True, "lt": count.value > 0}[count.op]


class PassFacts:
    """What one evaluation pass computes once for all its segments: a count column per distinct
    event condition (a single scan of the events of the widest window) and an aggregate column per
    distinct opportunity aggregate (a single pass over the deals). Fifty segments then cost one scan
    of each instead of a correlated subquery per person and segment. Conditions read the facts
    through EXISTS on their unique index: under OR or NOT an IN (subquery) whose result outgrows
    work_mem is re-scanned for every person."""

    def __init__(self, as_of: datetime):
        self.as_of = as_of
        self.binder = ConditionCompiler()       # binds the facts' own values, apart from a segment's
        self.event_columns: dict[str, str] = {}
        self.event_types: set[str] = set()
        self.max_window_hours = 0
        self.lowered_fields: set[str] = set()
        self.compared_fields: set[str] = set()   # event fields compared as they are
        self.opportunity_columns: dict[str, str] = {}
        self.person_account_columns: dict[str, str] = {}

    def event_column(self, cond: EventCondition) -> str:
        key = json.dumps(cond.model_dump(exclude={"count"}, by_alias=True, exclude_none=True), sort_keys=True)
        if key not in self.event_columns:
            bind = self.binder.bind
            # The window's start is bound as a value: an expression would be computed for every event.
            filters = [f"e.event_type = {bind(cond.type)}",
                       f"e.occurred_at > {bind(self.as_of - timedelta(hours=cond.within.hours_total))}"]
            filters += [self._event_filter(f) for f in cond.where]
            self.event_columns[key] = f"count(*) FILTER (WHERE {' AND '.join(filters)})"
            self.event_types.add(cond.type)
            self.max_window_hours = max(self.max_window_hours, cond.within.hours_total)
        return f"e{list(self.event_columns).index(key)}"

    def _event_filter(self, cond: FieldCondition) -> str:
        assert cond.field in EVENT_FIELDS
        if cond.op not in LIKE_OPERATORS:
            self.compared_fields.add(cond.field)
            return self.binder.comparison(cond, f"e.{cond.field}")
        # ILIKE lower-cases the event's text again for every condition; the pass lower-cases it once
        # per event (lower(text) LIKE lower(pattern) is what ILIKE does).
        self.lowered_fields.add(cond.field)
        return f"e.{cond.field}__lower LIKE lower({self.binder.bind(_like_pattern(cond.value, cond.op))})"

    def opportunity_column(self, agg: OpportunityAggregate) -> str:
        key = json.dumps(agg.model_dump(exclude={"op", "value"}, exclude_none=True), sort_keys=True)
        if key not in self.opportunity_columns:
            self.opportunity_columns[key] = AGGREGATES[agg.aggregate].format(
                over=f" FILTER (WHERE {self.binder.opportunity_filter(agg)})")
        return f"o{list(self.opportunity_columns).index(key)}"

    def person_account_column(self, cond: AccountCondition) -> str:
        """A column of segment_person_account_facts: whether any of a person's accounts satisfies
        the condition (an attribute of the account, or one of its deal aggregates)."""
        key = json.dumps(cond.model_dump(by_alias=True, exclude_none=True), sort_keys=True)
        if key not in self.person_account_columns:
            if cond.attribute is not None:
                assert cond.attribute.name in ACCOUNT_ATTRIBUTES
                test = self.binder.comparison(cond.attribute, f"a.{cond.attribute.name}")
            else:
                test = self.binder.comparison(cond.opportunities, f"f.{self.opportunity_column(cond.opportunities)}")
            self.person_account_columns[key] = f"bool_or({test})"
        return f"a{list(self.person_account_columns).index(key)}"

    def event_facts_statement(self, among_stream_persons: bool = False) -> tuple[str, dict[str, Any]]:
        """The statement creating segment_event_facts, and its parameters."""
        columns = ", ".join(f"{sql} AS e{i}" for i, sql in enumerate(self.event_columns.values()))
        # Only the columns the counts read travel up from the scan (an event row is wide).
        fields = "".join([f", e.{name}" for name in sorted(self.compared_fields)]
                         + [f", lower(e.{name}) AS {name}__lower" for name in sorted(self.lowered_fields)])
        sums = ", ".join(f"sum(k.e{i})::bigint AS e{i}" for i in range(len(self.event_columns)))
        statement = _fragment("stage_event_facts", columns=columns, sums=sums, fields=fields, record_filter=(
            "AND e.person_key IN (SELECT m.record_key FROM identity_record_person m "
            "JOIN stream_persons s ON s.person_id = m.person_id)" if among_stream_persons else ""))
        return statement, {**self.binder.params, "as_of": self.as_of, "event_types": sorted(self.event_types),
                           "window_start": self.as_of - timedelta(hours=self.max_window_hours)}

    def stage(self, conn, among_stream_persons: bool = False) -> None:
        """Create (for this transaction) the facts tables the compiled segments read."""
        if self.event_columns:
            with conn.cursor() as cur:
                cur.execute(*self.event_facts_statement(among_stream_persons))
            warehouse.run(conn, "segments/index_event_facts").close()
        if self.opportunity_columns:
            columns = ", ".join(f"{sql} AS o{i}" for i, sql in enumerate(self.opportunity_columns.values()))
            with conn.cursor() as cur:
                cur.execute(_fragment("stage_account_facts", columns=columns), {**self.binder.params})
            warehouse.run(conn, "segments/index_account_facts").close()
        if self.person_account_columns:
            columns = ", ".join(f"{sql} AS a{i}" for i, sql in enumerate(self.person_account_columns.values()))
            with conn.cursor() as cur:
                cur.execute(_fragment("stage_person_account_facts", columns=columns,
                                      account_facts=_fragment("join_account_facts") if self.opportunity_columns
                                      else ""), {**self.binder.params})
            warehouse.run(conn, "segments/index_person_account_facts").close()

    def member_query(self, compiled: CompiledSegment) -> str:
        """A person segment compiled for the pass, as a query of its members on its own (the pass
        itself evaluates a layer's segments in one scan: sql/segments/stage_qualifying.sql)."""
        return _fragment("select_members", facts=self.scan_joins(), condition=compiled.sql)

    def scan_joins(self) -> str:
        """The facts a pass's scan of the profiles joins to `p` (persons with none: no row, NULLs)."""
        return " ".join(_fragment(name) for name, used in (("join_event_facts", self.event_columns),
                                                            ("join_person_account_facts", self.person_account_columns))
                        if used)


def streaming_ineligibility(segment: Segment) -> str | None:
    """Why a segment cannot be evaluated continuously, or None when it can: streaming covers people
    and their events within windows under 24 hours; accounts and opportunities are batch only."""
    if segment.audience == "account":
        return "it is an account audience (its members are accounts), which is evaluated in batch once a day"
    for cond in segment.where.walk():
        if cond.account is not None or cond.buying_group is not None:
            what = "accounts or opportunities" if cond.account is not None else "buying groups"
            return f"it reads {what} (multi-entity), which are evaluated in batch once a day"
        if cond.event is not None and cond.event.within.hours_total >= STREAMING_MAX_WINDOW_HOURS:
            return (f"its event window ({cond.event.within.hours_total} h) is not under "
                    f"{STREAMING_MAX_WINDOW_HOURS} h")
    return None


def definition_hash(segment: Segment | AccountSegment) -> str:
    body = json.dumps(segment.where.model_dump(by_alias=True, exclude_none=True), sort_keys=True)
    if segment.audience != "person":     # a person segment's hash stays what it was
        body = json.dumps({"audience": segment.audience, "where": json.loads(body)}, sort_keys=True)
    return hashlib.sha256(body.encode()).hexdigest()[:16]


def compile_segment(segment: Segment | AccountSegment, facts: PassFacts | None = None,
                    prefix: str = "") -> CompiledSegment:
    """The segment's member query (person ids, or account ids for an account audience); with
    `facts`, reading the facts tables that pass stages, a person segment's condition over the pass's
    scan (its values named with `prefix`, apart from the other segments of the scan)."""
    if segment.audience == "account":
        compiler = ConditionCompiler(facts, prefix=prefix)
        statement = _fragment("select_accounts", condition=compiler.account_audience(segment.where))
    elif facts is not None:
        compiler = ConditionCompiler(facts, rows=True, prefix=prefix)
        statement = compiler.condition(segment.where)
    else:
        compiler = ConditionCompiler()
        statement = _fragment("select_members", facts="", condition=compiler.condition(segment.where))
    return CompiledSegment(segment.id, statement, compiler.params, segment.mode,
                           definition_hash(segment), compiler.depends_on, segment.audience)


def check_segments(cfg: CdpConfig) -> None:
    """Refuse streaming segments that are not eligible, unknown or cross-sandbox references and cycles."""
    by_id = {s.id: (i, s) for i, s in enumerate(cfg.segments)}
    for i, segment in enumerate(cfg.segments):
        where = f"segments[{i}] ({segment.id})"
        if segment.mode == "streaming":
            reason = streaming_ineligibility(segment)
            if reason:
                fix = ("declare it batch (or leave mode out)" if segment.audience == "account" else
                       "declare it batch, or move the multi-entity part into a batch segment and use in_segment")
                raise ConfigError(f"{where}.mode: declared streaming, but {reason}; {fix}")
        # An account audience's own in_segment reads account audiences; person conditions read persons.
        references = [(c.in_segment, "person") for c in segment.person_conditions() if c.in_segment]
        if segment.audience == "account":
            references += [(c.in_segment, "account") for c in segment.where.walk() if c.in_segment]
        for reference, wanted in references:
            if reference not in by_id:
                raise ConfigError(f"{where}.where: in_segment {reference!r} is not a declared segment")
            other = by_id[reference][1]
            if cfg.sandbox_of(other) != cfg.sandbox_of(segment):
                raise ConfigError(f"{where}.where: in_segment {reference!r} lives in another sandbox")
            if other.audience != wanted:
                raise ConfigError(
                    f"{where}.where: in_segment {reference!r} is an account audience (its members are "
                    "accounts); a person condition reads person segments (in an account audience, use "
                    "in_segment at its top level, outside person)" if wanted == "person" else
                    f"{where}.where: in_segment {reference!r} is a person segment; an account audience's "
                    f"own in_segment reads account audiences (use person: {{in_segment: {reference}}} for "
                    "accounts having a member of it)")
        if segment.audience == "account":
            if any(cond.account is not None for cond in segment.person_conditions()):
                raise ConfigError(f"{where}.where: a person condition of an account audience does not read "
                                  "accounts (the account is the audience's member); put account conditions "
                                  "at the audience's top level")
    evaluation_order(cfg.segments)


def evaluation_order(segments: list[Segment]) -> list[Segment]:
    """Segments ordered so that every in_segment input is evaluated before its readers."""
    by_id = {s.id: s for s in segments}
    deps = {s.id: s.in_segments() & set(by_id) for s in segments}
    ordered, done, visiting = [], set(), set()

    def visit(segment_id: str, chain: list[str]) -> None:
        if segment_id in done:
            return
        if segment_id in visiting:
            raise ConfigError("segments: in_segment cycle " + " -> ".join(chain + [segment_id]))
        visiting.add(segment_id)
        for dep in sorted(deps[segment_id]):
            visit(dep, chain + [segment_id])
        visiting.discard(segment_id)
        done.add(segment_id)
        ordered.append(by_id[segment_id])

    for segment in segments:
        visit(segment.id, [])
    return ordered


def evaluate_sandbox(cfg: CdpConfig, sandbox: Sandbox, *, as_of: datetime, run_id: str,
                     modes: tuple[str, ...] = ("batch",),
                     segment_ids: set[str] | None = None) -> dict[str, dict[str, int]]:
    """Evaluate the segments of a sandbox (every one, or those of `segment_ids`) at `as_of` in one
    transaction; returns counts per segment."""
    segments = [s for s in evaluation_order(cfg.segments)
                if cfg.sandbox_of(s) == sandbox and s.mode in modes
                and (segment_ids is None or s.id in segment_ids)]
    facts = PassFacts(as_of)
    compiled = [compile_segment(segment, facts, f"s{i}_") for i, segment in enumerate(segments)]
    with warehouse.connect(sandbox) as conn:
        return _evaluate_pass(conn, segments, compiled, facts, run_id, streaming=False)


STREAM_CURSOR = {"source_id": "segmentation", "stream": "streaming"}
STREAM_LOOKBACK = timedelta(minutes=10)    # longer than any landing or stitching transaction


def evaluate_streaming(cfg: CdpConfig, sandbox: Sandbox, *, run_id: str) -> dict[str, dict[str, int]]:
    """Re-evaluate the streaming segments of a sandbox, now, for the people whose events or records
    changed since the previous pass and the current members (whose time windows slide). A streaming
    segment reads a batch segment's membership as of the latest daily run."""
    segments = [s for s in evaluation_order(cfg.segments) if cfg.sandbox_of(s) == sandbox and s.mode == "streaming"]
    results: dict[str, dict[str, int]] = {}
    if not segments:
        return results
    with warehouse.connect(sandbox) as conn:
        as_of = warehouse.fetch_all(conn, "segments/stream_clock")[0][0]
        cursor = warehouse.fetch_all(conn, "incremental/get_cursor", STREAM_CURSOR)
        # A row carries the time it was written: one committed after the previous pass took its
        # snapshot bears an earlier time. Looking back re-evaluates a few people twice, misses none.
        since = (datetime.fromisoformat(cursor[0][0]) - STREAM_LOOKBACK if cursor
                 else datetime.min.replace(tzinfo=as_of.tzinfo))
        with warehouse.run(conn, "segments/stage_stream_persons", {
                "since": since, "segment_ids": [s.id for s in segments]}) as cur:
            people = cur.rowcount
        facts = PassFacts(as_of)
        compiled = [compile_segment(segment, facts, f"s{i}_") for i, segment in enumerate(segments)]
        results = _evaluate_pass(conn, segments, compiled, facts, run_id, streaming=True)
        warehouse.run(conn, "incremental/set_cursor", {**STREAM_CURSOR, "cursor": as_of.isoformat()}).close()
    log.info("Streaming pass at %s: %d people re-evaluated for %d segment(s)", as_of.isoformat(), people,
             len(segments))
    return results


# A streaming pass scans, and closes memberships among, only the people it re-evaluates.
STREAM_SCOPES = {"person_scope": "JOIN stream_persons s ON s.person_id = p.person_id",
                 "exit_scope": "AND m.person_id IN (SELECT person_id FROM stream_persons)"}
BATCH_SCOPES = {"person_scope": "", "exit_scope": ""}


def layers(segments: list[Segment | AccountSegment], compiled: list[CompiledSegment]) -> list[list[int]]:
    """The pass's segments (in evaluation order) grouped into layers: a segment's layer follows those
    of the segments of the pass it reads, so each layer reads only memberships already applied."""
    layer_of: dict[str, int] = {}
    for segment, query in zip(segments, compiled):
        layer_of[segment.id] = 1 + max((layer_of[d] for d in query.depends_on if d in layer_of), default=-1)
    grouped: dict[int, list[int]] = {}
    for i, segment in enumerate(segments):
        grouped.setdefault(layer_of[segment.id], []).append(i)
    return [grouped[n] for n in sorted(grouped)]


def _evaluate_pass(conn, segments: list[Segment | AccountSegment], compiled: list[CompiledSegment],
                   facts: PassFacts, run_id: str, streaming: bool) -> dict[str, dict[str, int]]:
    """The facts staged once, then layer by layer (inputs before their readers): the layer's person
    segments in one scan of the profiles and one membership statement, its account audiences one
    statement each."""
    warehouse.run(conn, "segments/pass_settings").close()
    began = time.perf_counter()
    facts.stage(conn, among_stream_persons=streaming)
    log.info("Facts for %d segment(s): %d event, %d opportunity and %d person-account condition(s) in %.1f s",
             len(segments), len(facts.event_columns), len(facts.opportunity_columns),
             len(facts.person_account_columns), time.perf_counter() - began)
    (excluded,), = warehouse.fetch_all(conn, "segments/excluded_profiles")
    scopes = STREAM_SCOPES if streaming else BATCH_SCOPES
    counts: dict[str, tuple[int, int, int]] = {}
    if any(query.audience == "person" for query in compiled):
        warehouse.run(conn, "segments/create_qualifying").close()
    for layer in layers(segments, compiled):
        if people := [compiled[i] for i in layer if compiled[i].audience == "person"]:
            counts |= _evaluate_layer(conn, people, facts, scopes)
        for i in layer:
            if compiled[i].audience == "account":
                counts[segments[i].id] = _evaluate_accounts(conn, segments[i], compiled[i], facts.as_of)
    results = {}
    for segment, query in zip(segments, compiled):
        open_before, exited, entered = counts[segment.id]
        results[segment.id] = _record(conn, segment, query, facts.as_of, run_id, excluded,
                                      open_before, exited, entered)
    return results


def _evaluate_layer(conn, layer: list[CompiledSegment], facts: PassFacts,
                    scopes: dict[str, str]) -> dict[str, tuple[int, int, int]]:
    """A layer of person segments: who qualifies for each, in one scan of the profiles, then every
    membership change of the layer in one statement; (open before, exited, entered) per segment."""
    began = time.perf_counter()
    params: dict[str, Any] = {"as_of": facts.as_of, "segment_ids": [c.segment_id for c in layer]}
    cases = []
    for i, query in enumerate(layer):
        params |= query.params | {f"layer_{i}": query.segment_id}
        cases.append(_fragment("layer_member_case", condition=query.sql, segment_id=f"%(layer_{i})s"))
    warehouse.run(conn, "segments/clear_qualifying").close()
    with conn.cursor() as cur:
        cur.execute(_fragment("stage_qualifying", cases=", ".join(cases), facts=facts.scan_joins(),
                              scope=scopes["person_scope"]), params)
        qualifying = cur.rowcount
    warehouse.run(conn, "segments/analyze_qualifying").close()
    scanned = time.perf_counter()
    with conn.cursor() as cur:
        cur.execute(_fragment("apply_layer", exit_scope=scopes["exit_scope"]), params)
        counts = {segment_id: (before, exited, entered) for segment_id, before, exited, entered in cur.fetchall()}
    log.info("Layer of %d person segment(s): %d qualifying rows in %.1f s, memberships applied in %.1f s",
             len(layer), qualifying, scanned - began, time.perf_counter() - scanned)
    return counts


def _evaluate_accounts(conn, segment: AccountSegment, compiled: CompiledSegment,
                       as_of: datetime) -> tuple[int, int, int]:
    """One account audience: who qualifies, the memberships of those who left closed, the new ones
    opened; (open before, exited, entered)."""
    with conn.cursor() as cur:
        cur.execute(_fragment("apply_account_membership", members=compiled.sql),
                    {**compiled.params, "segment_id": segment.id, "as_of": as_of})
        (open_before, exited, entered), = cur.fetchall()
    return open_before, exited, entered


def _record(conn, segment: Segment | AccountSegment, compiled: CompiledSegment, as_of: datetime, run_id: str,
            excluded_profiles: int, open_before: int, exited: int, entered: int) -> dict[str, int]:
    """A segment's evaluation recorded (audience_evaluation) and logged; its counts."""
    members = open_before - exited + entered
    warehouse.run(conn, "segments/record_evaluation", {
        "segment_id": segment.id, "as_of": as_of, "mode": segment.mode, "audience": compiled.audience,
        "definition_hash": compiled.definition_hash, "members": members,
        "entered": entered, "exited": exited, "run_id": run_id, "excluded_profiles": excluded_profiles}).close()
    log.info("Segment %s at %s: %d %s members (+%d, -%d)", segment.id, as_of.isoformat(), members,
             compiled.audience, entered, exited)
    return {"members": members, "entered": entered, "exited": exited}
