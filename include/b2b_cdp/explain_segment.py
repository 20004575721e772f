"""Explain a segment's verdict for one person: which conditions hold, on what evidence.

`python -m b2b_cdp explain-segment --segment ID --email EMAIL` finds the person(s) the email identifies
(as `explain` does) and walks the segment's condition tree. Each condition is compiled on its own by
the segment compiler (b2b_cdp.segments.ConditionCompiler, every value bound) and evaluated for that one
person at the evaluation time; its evidence is read beside it: the attribute's value, the accounts'
values, the deals summed per account against the threshold, the events counted in the window (and
those left out, with why), the stored membership of an `in_segment` segment, the buying-group places.
The verdict ("in" or "out") is the segment's own compiled statement for that person, and it is
compared with the stored membership. For an account audience, `--account REF` (an account id, key,
MDM id or name) explains each account the reference names the same way, on the account's own
evidence (its attributes, deals, stored account memberships, and its people for `person` conditions).

The evaluation time is `--as-of`, else the segment's latest recorded evaluation, else now. Every query
is in sql/explain_segment/ (or sql/explain/) and runs in a read-only transaction.

Exit status: 0 explained, 1 nothing found (segment or email; the message names it), 2 a usage or
configuration error, 3 explained but the stored membership from an evaluation at that very time
disagrees with the verdict (the data or the definition changed since).
"""

from __future__ import annotations

import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, TextIO

import psycopg

from b2b_cdp import warehouse
from b2b_cdp.catalog import ACCOUNT_ATTRIBUTES, PERSON_ATTRIBUTES
from b2b_cdp.config import (AccountCondition, AccountSegment, AccountSegmentCondition, CdpConfig, Comparison,
                             Condition, Segment)
from b2b_cdp.explain import (NOT_FOUND, ExplainError, _amount, _name, _table, _when, as_json,
                             explain_email, reading, sandbox_label, sandbox_named, use_demo_warehouse)
from b2b_cdp.segments import SYMBOLS, ConditionCompiler, compile_segment, definition_hash

MEMBERSHIP_DISAGREES = 3
COUNT_WORDS = {"gte": "at least", "gt": "more than", "eq": "exactly", "lte": "at most", "lt": "fewer than"}


def _sql(name: str, **parts: str) -> str:
    """sql/explain_segment/<name>.sql with compiled parts (whitelisted names, bound placeholders) in."""
    return warehouse.sql_file(f"explain_segment/{name}").strip().format(**parts)


def _query(conn: psycopg.Connection, name: str, params: dict[str, Any], **parts: str) -> list[dict[str, Any]]:
    with conn.cursor() as cur:
        cur.execute(_sql(name, **parts), params)
        columns = [c.name for c in cur.description]
        return [dict(zip(columns, row)) for row in cur.fetchall()]


# ------------------------------------------------------------------------------ describing conditions


def _literal(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return _amount(value)
    if isinstance(value, list):
        return "[" + ", ".join(_literal(v) for v in value) + "]"
    return repr(value)


def _comparison(cond: Comparison) -> str:
    if cond.op in SYMBOLS:
        return f"{SYMBOLS[cond.op]} {_literal(cond.value)}"
    if cond.op in ("exists", "not_exists"):
        return cond.op.replace("_", " ")
    return f"{cond.op.replace('_', ' ')} {_literal(cond.value)}"


def _opportunities(account: AccountCondition) -> str:
    agg = account.opportunities
    deals = " ".join(w for w in ("won" if agg.won else "not won" if agg.won is False else "",
                                 "closed" if agg.closed else "open" if agg.closed is False else "") if w)
    stages = f" in stages {_literal(agg.stages)}" if agg.stages else ""
    what = "count of" if agg.aggregate == "count" else f"{agg.aggregate} of {agg.field} over"
    return f"{what} the {deals + ' ' if deals else ''}deals{stages} of an account {_comparison(agg)}"


def describe(cond: Condition) -> str:
    """A condition in words (children are described on their own lines)."""
    if cond.all_ is not None:
        return f"all of {len(cond.all_)}"
    if cond.any_ is not None:
        return f"any of {len(cond.any_)}"
    if cond.not_ is not None:
        return "not"
    if cond.attribute is not None:
        return f"attribute {cond.attribute.name} {_comparison(cond.attribute)}"
    if cond.account is not None:
        if cond.account.attribute is not None:
            return (f"an account's {cond.account.attribute.name} "
                    f"{_comparison(cond.account.attribute)}")
        return _opportunities(cond.account)
    if cond.event is not None:
        event = cond.event
        filters = " and ".join(f"{f.field} {_comparison(f)}" for f in event.where)
        window = f"{event.within.days} days" if event.within.days else f"{event.within.hours} hours"
        return (f"event {event.type!r}{' where ' + filters if filters else ''} within {window}, "
                f"{COUNT_WORDS[event.count.op]} {event.count.value}")
    if cond.buying_group is not None:
        group = cond.buying_group
        extras = [f"{k.replace('_', ' ')} {_literal(v)}" for k, v in
                  group.model_dump(exclude_none=True).items() if k != "solution_interest"]
        return f"buying group of {group.solution_interest!r}" + (f" ({', '.join(extras)})" if extras else "")
    return f"in_segment {cond.in_segment!r}"


def _kind(cond: Condition) -> str:
    for key, value in (("all", cond.all_), ("any", cond.any_), ("not", cond.not_),
                       ("attribute", cond.attribute), ("event", cond.event), ("in_segment", cond.in_segment),
                       ("buying_group", cond.buying_group)):
        if value is not None:
            return key
    return "account.attribute" if cond.account.attribute is not None else "account.opportunities"


def _children(cond: Condition, path: str) -> list[tuple[str, Condition]]:
    if cond.all_ is not None:
        return [(f"{path}.all[{i}]", c) for i, c in enumerate(cond.all_)]
    if cond.any_ is not None:
        return [(f"{path}.any[{i}]", c) for i, c in enumerate(cond.any_)]
    return [(f"{path}.not", cond.not_)] if cond.not_ is not None else []


# ------------------------------------------------------------------------------ evaluating conditions


class _Person:
    """One person at one evaluation time, on a read-only connection."""

    accounts = "person_accounts"     # the accounts its account conditions look at
    describe, kind = staticmethod(describe), staticmethod(_kind)

    def __init__(self, conn: psycopg.Connection, person_id: str, as_of: datetime):
        self.conn, self.person_id, self.as_of = conn, person_id, as_of

    def params(self, compiler: ConditionCompiler) -> dict[str, Any]:
        return {**compiler.params, "person_id": self.person_id, "as_of": self.as_of}

    def holds(self, cond: Condition) -> bool | None:
        """The condition compiled on its own and evaluated for this person (None: it compared NULL)."""
        compiler = ConditionCompiler()
        condition = compiler.condition(cond)
        rows = _query(self.conn, "holds", self.params(compiler), condition=condition)
        return rows[0]["holds"] if rows else None

    def node(self, cond: Condition, path: str) -> dict[str, Any]:
        children = [self.node(child, child_path) for child_path, child in _children(cond, path)]
        holds = self.holds(cond)
        node = {"path": path, "kind": self.kind(cond), "condition": self.describe(cond), "holds": holds}
        if children:
            held = sum(1 for c in children if c["holds"])
            node["summary"] = (f"the inner condition {'holds' if held else 'does not hold'}" if cond.not_
                               else f"{held} of {len(children)} hold")
            node["children"] = children
        else:
            node.update(self.evidence(cond))
        return node

    def evidence(self, cond: Condition) -> dict[str, Any]:
        if cond.attribute is not None:
            name = cond.attribute.name
            assert name in PERSON_ATTRIBUTES
            rows = _query(self.conn, "person_attribute", {"person_id": self.person_id}, column=name)
            value = rows[0]["value"] if rows else None
            return {"evidence": {"attribute": name, "value": value},
                    "summary": f"{name} is {_literal(value) if value is not None else 'empty (NULL)'}"}
        if cond.account is not None and cond.account.attribute is not None:
            return self.account_attribute(cond.account)
        if cond.account is not None:
            return self.opportunities(cond.account)
        if cond.event is not None:
            return self.events(cond)
        if cond.buying_group is not None:
            groups = warehouse.fetch_dicts(self.conn, "explain_segment/buying_groups",
                           {"person_id": self.person_id, "solution_interest": cond.buying_group.solution_interest})
            wanted = cond.buying_group
            for g in groups:     # which of the condition's filters each group passes (the verdict is SQL's)
                g["matches"] = ((wanted.complete is None or g["complete"] == wanted.complete)
                                and (wanted.missing_role is None or wanted.missing_role in g["missing_roles"])
                                and (wanted.role is None or g["role"] == wanted.role))
            matching = sum(1 for g in groups if g["matches"])
            return {"evidence": {"groups": groups},
                    "summary": (f"in {_count(len(groups), 'live group')} of {wanted.solution_interest!r}, "
                                f"{matching} matching" if groups
                                else f"in no live group of {wanted.solution_interest!r}")}
        history = warehouse.fetch_dicts(self.conn, "explain_segment/membership",
                        {"segment_id": cond.in_segment, "person_id": self.person_id})
        return _in_segment_evidence(cond.in_segment, history)

    def account_attribute(self, account: AccountCondition) -> dict[str, Any]:
        name = account.attribute.name
        assert name in ACCOUNT_ATTRIBUTES
        compiler = ConditionCompiler()
        comparison = compiler.comparison(account.attribute, f"a.{name}")
        accounts = _query(self.conn, "account_attribute", self.params(compiler), column=name, comparison=comparison,
                          accounts=_sql(self.accounts))
        held = [a for a in accounts if a["holds"]]
        return {"evidence": {"attribute": name, "accounts": accounts},
                "summary": (f"{len(held)} of {_count(len(accounts), 'account')} {_meet(accounts)}" if accounts
                            else "the person has no account")}

    def opportunities(self, account: AccountCondition) -> dict[str, Any]:
        agg = account.opportunities
        compiler = ConditionCompiler()
        parts = compiler.opportunity_parts(agg)
        comparison = compiler.comparison(agg, parts["aggregate"])
        params = self.params(compiler)
        accounts = _query(self.conn, "opportunity_accounts", params, aggregate=parts["aggregate"],
                          comparison=comparison, opportunity_filter=parts["opportunity_filter"],
                          accounts=_sql(self.accounts))
        deals = _query(self.conn, "opportunity_deals", params, opportunity_filter=parts["opportunity_filter"],
                       accounts=_sql(self.accounts))
        for row in accounts:
            row["opportunities"] = [{k: v for k, v in d.items() if k != "account_id"}
                                    for d in deals if d["account_id"] == row["account_id"]]
        held = [a for a in accounts if a["holds"]]
        best = max((a["total"] for a in accounts), default=None)
        summary = (f"{len(held)} of {_count(len(accounts), 'account')} {_meet(accounts)} (highest total {_amount(best)})"
                   if accounts else "the person has no account")
        return {"evidence": {"aggregate": agg.aggregate, "field": agg.field, "op": agg.op, "value": agg.value,
                             "accounts": accounts}, "summary": summary}

    def events(self, cond: Condition) -> dict[str, Any]:
        event = cond.event
        compiler = ConditionCompiler()
        parts = dict(event_type=compiler.bind(event.type), window_hours=compiler.bind(event.within.hours_total),
                     event_filter=" AND ".join(compiler.comparison(f, f"e.{f.field}") for f in event.where) or "true")
        params = self.params(compiler)
        matching = _query(self.conn, "event_matches", params, **parts)
        misses = _query(self.conn, "event_misses", params, **parts)
        count = matching[0]["total"] if matching else 0
        for miss in misses:
            reasons = []
            if not miss.pop("in_window"):
                reasons.append("outside the window" if miss["occurred_at"] <= self.as_of else "after the as-of time")
            if not miss.pop("passes_filters"):
                reasons.append("does not pass the filters")
            miss["why_not_counted"] = ", ".join(reasons)
        window_from = self.as_of - timedelta(hours=event.within.hours_total)
        return {"evidence": {
                    "window": {"after": window_from, "up_to": self.as_of}, "count": count,
                    "needs": {"op": event.count.op, "value": event.count.value},
                    "events": [{k: v for k, v in e.items() if k != "total"} for e in matching],
                    "not_counted": {"count": misses[0]["total"] if misses else 0,
                                    "events": [{k: v for k, v in e.items() if k != "total"} for e in misses]}},
                "summary": f"{_count(count, 'matching event')} in the window, needs {COUNT_WORDS[event.count.op]} "
                           f"{event.count.value}"}


def describe_account(cond: AccountSegmentCondition) -> str:
    """An account audience condition in words."""
    if cond.all_ is not None or cond.any_ is not None or cond.not_ is not None:
        return describe(cond)
    if cond.attribute is not None:
        return f"the account's {cond.attribute.name} {_comparison(cond.attribute)}"
    if cond.opportunities is not None:
        return _opportunities(cond).replace(" of an account ", " of the account ")
    if cond.person is not None:
        return f"one of its people: {describe(cond.person)}"
    return f"in_segment {cond.in_segment!r}"


def _account_kind(cond: AccountSegmentCondition) -> str:
    for key, value in (("all", cond.all_), ("any", cond.any_), ("not", cond.not_), ("person", cond.person),
                       ("in_segment", cond.in_segment), ("account.attribute", cond.attribute)):
        if value is not None:
            return key
    return "account.opportunities"


class _Account(_Person):
    """One account at one evaluation time, for an account audience: its conditions look at the
    account itself (attributes, deals, stored membership) or at its people (`person`)."""

    accounts = "the_account"
    describe, kind = staticmethod(describe_account), staticmethod(_account_kind)

    def __init__(self, conn: psycopg.Connection, account_id: str, as_of: datetime):
        super().__init__(conn, None, as_of)
        self.account_id = account_id

    def params(self, compiler: ConditionCompiler) -> dict[str, Any]:
        return {**compiler.params, "account_id": self.account_id, "as_of": self.as_of}

    def holds(self, cond: AccountSegmentCondition) -> bool | None:
        compiler = ConditionCompiler()
        condition = compiler.account_audience(cond)
        rows = _query(self.conn, "account_holds", self.params(compiler), condition=condition)
        return rows[0]["holds"] if rows else None

    def evidence(self, cond: AccountSegmentCondition) -> dict[str, Any]:
        if cond.attribute is not None:
            explained = self.account_attribute(cond)
            value = next((a["value"] for a in explained["evidence"]["accounts"]), None)
            explained["summary"] = (f"{cond.attribute.name} is "
                                    f"{_literal(value) if value is not None else 'empty (NULL)'}")
            return explained
        if cond.opportunities is not None:
            return self.opportunities(cond)
        if cond.person is not None:
            compiler = ConditionCompiler()
            condition = compiler.condition(cond.person)      # binds its values before params() reads them
            people = _query(self.conn, "account_people", self.params(compiler), condition=condition)
            counted = [p for p in people if p["holds"] and p["excluded_reason"] is None]
            excluded = sum(1 for p in people if p["holds"] and p["excluded_reason"] is not None)
            summary = (f"{len(counted)} of {_count(len(people), 'person')} of the account meet it"
                       + (f" ({excluded} more meet it but are excluded from segmentation)" if excluded else "")
                       if people else "the account has no people")
            return {"evidence": {"people": people}, "summary": summary}
        history = warehouse.fetch_dicts(self.conn, "explain_segment/account_membership",
                                        {"segment_id": cond.in_segment, "account_id": self.account_id})
        return _in_segment_evidence(cond.in_segment, history)


def _in_segment_evidence(segment_id: str, history: list[dict[str, Any]]) -> dict[str, Any]:
    """A stored membership (newest spell first) as the evidence of an in_segment condition."""
    current = next((h for h in history if h["exited_at"] is None), None)
    summary = (f"a current member of {segment_id!r} since {_when(current['entered_at'])}" if current
               else f"not a current member of {segment_id!r}"
               + (f" (left {_when(history[0]['exited_at'])})" if history else " (never a member)"))
    return {"evidence": {"segment": segment_id, "member": current is not None, "history": history},
            "summary": summary + "; in_segment reads the stored membership"}


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


def _meet(accounts: list) -> str:
    return "meets it" if len(accounts) == 1 else "meet it"


def failing(node: dict[str, Any]) -> list[dict[str, Any]]:
    """The leaf conditions (or `not`s) that make a node fail."""
    if node["holds"]:
        return []
    if node["kind"] == "not" or "children" not in node:
        return [node]
    return [leaf for child in node["children"] if not child["holds"] for leaf in failing(child)]


# ------------------------------------------------------------------------------ persons and verdicts


def explain_person(conn: psycopg.Connection, segment: Segment, person_id: str, as_of: datetime,
                   evaluation: dict[str, Any] | None) -> dict[str, Any]:
    person = warehouse.fetch_dicts(conn, "explain/person", {"person_id": person_id})[0]
    profile = ({k: person[k] for k in ("email", "first_name", "last_name", "title")}
               if person["has_profile"] else None)
    report: dict[str, Any] = {"person_id": person_id, "profile": profile,
                              "excluded_reason": person["excluded_reason"]}
    compiled = compile_segment(segment)
    (row,) = _query(conn, "is_member", {**compiled.params, "person_id": person_id, "as_of": as_of},
                    members=compiled.sql)
    report["verdict"] = "in" if row["member"] else "out"
    if profile is None:
        report["condition"] = None
        report["why"] = "no profile: the person has no live record, so segmentation cannot include it"
    else:
        tree = _Person(conn, person_id, as_of).node(segment.where, "where")
        report["condition"] = tree
        if person["excluded_reason"]:
            report["why"] = f"the profile is excluded from segmentation: {person['excluded_reason']}"
        elif tree["holds"]:
            report["why"] = "the segment's condition holds"
        else:
            report["why"] = "fails at " + "; ".join(f"{n['path']} ({n['condition']}: {n.get('summary', 'it holds')})"
                                                    for n in failing(tree))
    report["stored"] = stored_membership(conn, segment.id, person_id, as_of, evaluation, report["verdict"])
    return report


def stored_membership(conn: psycopg.Connection, segment_id: str, person_id: str | None, as_of: datetime,
                      evaluation: dict[str, Any] | None, verdict: str, account_id: str | None = None) -> dict[str, Any]:
    """What the membership history (of a person, or of an account in an account audience) says at
    `as_of`, and whether it agrees with the verdict."""
    history = (warehouse.fetch_dicts(conn, "explain_segment/membership", {"segment_id": segment_id, "person_id": person_id})
               if account_id is None else
               warehouse.fetch_dicts(conn, "explain_segment/account_membership",
                                     {"segment_id": segment_id, "account_id": account_id}))
    spell = next((h for h in history if h["entered_at"] <= as_of
                  and (h["exited_at"] is None or h["exited_at"] > as_of)), None)
    stored = {"member": spell is not None, "entered_at": spell["entered_at"] if spell else None,
              "history": history, "evaluated_at": evaluation["evaluated_at"] if evaluation else None,
              "run_id": evaluation["run_id"] if evaluation else None}
    if evaluation is None:
        stored.update(agrees=None, note="the segment has no evaluation recorded at or before this time")
        return stored
    stored["agrees"] = stored["member"] == (verdict == "in")
    stored["at_evaluation_time"] = evaluation["evaluated_at"] == as_of
    if not stored["at_evaluation_time"]:
        stored["note"] = (f"the stored membership is that of the evaluation at {_when(evaluation['evaluated_at'])}, "
                          "not of this time")
    elif not stored["agrees"]:
        stored["note"] = ("the data changed since that evaluation (run the segmentation again)"
                          if evaluation["definition_changed"] is False else
                          "the segment's definition changed since that evaluation")
    return stored


def explain_account_verdict(conn: psycopg.Connection, segment: AccountSegment, account_id: str, as_of: datetime,
                            evaluation: dict[str, Any] | None) -> dict[str, Any]:
    """An account audience's verdict for one account, with each condition's evidence."""
    found = warehouse.fetch_dicts(conn, "explain/account", {"account_id": account_id})
    profile = {k: found[0].get(k) for k in ("name", "mdm_id", "industry")} if found else None
    compiled = compile_segment(segment)
    (row,) = _query(conn, "account_is_member", {**compiled.params, "account_id": account_id, "as_of": as_of},
                    members=compiled.sql)
    report: dict[str, Any] = {"account_id": account_id, "profile": profile,
                              "verdict": "in" if row["member"] else "out"}
    tree = _Account(conn, account_id, as_of).node(segment.where, "where")
    report["condition"] = tree
    report["why"] = ("the segment's condition holds" if tree["holds"] else
                     "fails at " + "; ".join(f"{n['path']} ({n['condition']}: {n.get('summary', 'it holds')})"
                                             for n in failing(tree)))
    report["stored"] = stored_membership(conn, segment.id, None, as_of, evaluation, report["verdict"],
                                         account_id=account_id)
    return report


def _evaluation_time(conn: psycopg.Connection, segment: Segment | AccountSegment,
                     as_of: datetime | None) -> tuple[datetime, str, dict[str, Any] | None]:
    """The evaluation time (--as-of, else the latest evaluation, else now), what it comes from, and
    the evaluation recorded at or before it."""
    latest = warehouse.fetch_dicts(conn, "explain_segment/evaluation", {"segment_id": segment.id, "as_of": as_of})
    evaluation = latest[0] if latest else None
    if as_of is not None:
        source = "given with --as-of"
    elif evaluation is not None:
        as_of, source = evaluation["evaluated_at"], f"the segment's latest evaluation (run {evaluation['run_id']})"
    else:
        as_of, source = datetime.now(timezone.utc), "now: the segment has no evaluation recorded"
    if evaluation is not None:
        evaluation["definition_changed"] = evaluation["definition_hash"] != definition_hash(segment)
    return as_of, source, evaluation


def _segment_header(segment: Segment | AccountSegment) -> dict[str, Any]:
    return {"id": segment.id, "name": segment.name, "mode": segment.mode, "audience": segment.audience,
            "definition_hash": definition_hash(segment)}


def explain_account_segment(conn: psycopg.Connection, cfg: CdpConfig, segment: AccountSegment, reference: str,
                            as_of: datetime | None) -> dict[str, Any]:
    """An account audience's verdict for every account the reference names (id, key, MDM id, name)."""
    sandbox = cfg.sandbox_of(segment)
    account_ids = [r["account_id"] for r in warehouse.fetch_dicts(conn, "explain/account_ids", {"reference": reference})]
    if not account_ids:
        raise ExplainError(f"no account with id, key, MDM id or name {reference!r} in sandbox "
                           f"{sandbox_label(sandbox)}", NOT_FOUND, {"account": reference})
    as_of, source, evaluation = _evaluation_time(conn, segment, as_of)
    return {
        "looked_for": {"segment": segment.id, "account": reference, "sandbox": sandbox_label(sandbox)},
        "segment": _segment_header(segment), "as_of": as_of, "as_of_source": source, "evaluation": evaluation,
        "accounts": [explain_account_verdict(conn, segment, aid, as_of, evaluation) for aid in account_ids],
    }


def explain_segment(conn: psycopg.Connection, cfg: CdpConfig, segment: Segment, email: str,
                    as_of: datetime | None) -> dict[str, Any]:
    """The segment's verdict for every person the email identifies."""
    sandbox = cfg.sandbox_of(segment)
    person_ids = [r["person_id"] for r in warehouse.fetch_dicts(conn, "explain/email_persons", {"email": email})]
    if not person_ids:
        explain_email(conn, email, sandbox)      # raises the not-found error, saying what carries the email
    as_of, source, evaluation = _evaluation_time(conn, segment, as_of)
    return {
        "looked_for": {"segment": segment.id, "email": email, "sandbox": sandbox_label(sandbox)},
        "segment": _segment_header(segment), "as_of": as_of, "as_of_source": source, "evaluation": evaluation,
        "persons": [explain_person(conn, segment, pid, as_of, evaluation) for pid in person_ids],
    }


# ------------------------------------------------------------------------------ output


def _mark(holds: bool | None) -> str:
    return "[holds]" if holds else "[fails]" if holds is False else "[fails: NULL]"


def _evidence_lines(node: dict[str, Any], indent: str) -> list[str]:
    evidence, kind = node.get("evidence") or {}, node["kind"]
    lines: list[str] = []
    if kind == "account.attribute":
        for a in evidence["accounts"]:
            lines.append(f"{indent}{a['name'] or a['account_id']} ({a['account_id']}): {evidence['attribute']} "
                         f"{_literal(a['value']) if a['value'] is not None else 'empty'} -- "
                         f"{'meets it' if a['holds'] else 'does not meet it'}")
    elif kind == "account.opportunities":
        agg = f"{evidence['aggregate']} of {evidence['field']}" if evidence["field"] else "count"
        for a in evidence["accounts"]:
            mdm = f", MDM {a['mdm_id']}" if a["mdm_id"] else ""
            lines.append(f"{indent}{a['name'] or '(no profile)'} ({a['account_id']}{mdm}): {agg} over "
                         f"{_count(a['deals'], 'deal')} = {_amount(a['total'])}, "
                         f"{'meets' if a['holds'] else 'does not meet'} {SYMBOLS.get(evidence['op'], evidence['op'])} "
                         f"{_literal(evidence['value'])}")
            if a["opportunities"]:
                lines.extend(_table([[o["opportunity_key"], o["name"] or "-", _amount(o["amount"]),
                                      o["stage"] or "-", _when(o["close_date"])] for o in a["opportunities"]],
                                    indent + "  "))
    elif kind == "event":
        window = evidence["window"]
        lines.append(f"{indent}window: after {_when(window['after'])} up to {_when(window['up_to'])}")
        if evidence["events"]:
            lines.extend(_table([[_when(e["occurred_at"]), e["event_type"], e["url"] or e["primary_value"] or "-"]
                                 for e in evidence["events"]], indent + "  "))
        if len(evidence["events"]) < evidence["count"]:
            lines.append(f"{indent}  ... and {evidence['count'] - len(evidence['events'])} more")
        missed = evidence["not_counted"]
        if missed["count"]:
            lines.append(f"{indent}not counted ({missed['count']} of this type):")
            lines.extend(_table([[_when(e["occurred_at"]), e["event_type"], e["url"] or e["primary_value"] or "-",
                                  e["why_not_counted"]] for e in missed["events"]], indent + "  "))
    elif kind == "person":
        for p in evidence["people"]:
            excluded = f", excluded from segmentation: {p['excluded_reason']}" if p["excluded_reason"] else ""
            lines.append(f"{indent}{p['email'] or p['person_id']} ({', '.join(p['relations'])}{excluded}) -- "
                         f"{'meets it' if p['holds'] else 'does not meet it'}")
    elif kind == "buying_group":
        for g in evidence["groups"]:
            missing = ", ".join(g["missing_roles"]) or "none"
            lines.append(f"{indent}{g['group_id']} ({g['account_name'] or g['account_id']}): role {g['role']}, "
                         f"{'complete' if g['complete'] else 'incomplete'}, missing roles {missing} -- "
                         f"{'matches' if g['matches'] else 'does not match'}")
    return lines


def render_node(node: dict[str, Any], depth: int = 0) -> list[str]:
    indent = "    " + "  " * depth
    summary = f" -- {node['summary']}" if node.get("summary") else ""
    lines = [f"{indent}{_mark(node['holds'])} {node['path']}: {node['condition']}{summary}"]
    lines.extend(_evidence_lines(node, indent + "    "))
    for child in node.get("children", []):
        lines.extend(render_node(child, depth + 1))
    return lines


def render_person(person: dict[str, Any]) -> list[str]:
    profile = person["profile"]
    who = (f"{profile['email'] or '(no email)'}: {_name(profile)}, {profile['title'] or 'no title'}"
           if profile else "no profile")
    return _render_verdict(f"Person {person['person_id']} ({who})", person)


def render_account(account: dict[str, Any]) -> list[str]:
    profile = account["profile"]
    who = (f"{profile['name'] or '(no name)'}" + (f", MDM {profile['mdm_id']}" if profile["mdm_id"] else "")
           + (f", {profile['industry']}" if profile["industry"] else "")) if profile else "no profile"
    return _render_verdict(f"Account {account['account_id']} ({who})", account)


def _render_verdict(heading: str, member: dict[str, Any]) -> list[str]:
    """A person's or an account's verdict, stored membership and condition tree."""
    lines = [heading, f"  verdict: {member['verdict'].upper()} -- {member['why']}"]
    stored = member["stored"]
    if stored["evaluated_at"] is None:
        lines.append(f"  stored membership: {stored['note']}")
    else:
        state = (f"a member since {_when(stored['entered_at'])}" if stored["member"]
                 else "not a member")
        agreement = "agrees" if stored["agrees"] else "DISAGREES"
        note = f" ({stored['note']})" if stored.get("note") else ""
        lines.append(f"  stored membership: {state} (evaluation at {_when(stored['evaluated_at'])}, run "
                     f"{stored['run_id']}): {agreement}{note}")
    if member["condition"] is not None:
        lines.append("  conditions:")
        lines.extend(render_node(member["condition"]))
    return lines


def render(report: dict[str, Any]) -> str:
    segment, looked_for = report["segment"], report["looked_for"]
    lines = [f"segment {segment['id']} ({segment['name']}, {segment['mode']}"
             + (", account audience" if segment["audience"] == "account" else "")
             + f") in sandbox {looked_for['sandbox']}",
             f"evaluated at {_when(report['as_of'])}: {report['as_of_source']}"]
    if "accounts" in report:
        found, render_one = report["accounts"], render_account
        lines.append(f"account {looked_for['account']!r}: {_count(len(found), 'account')}")
    else:
        found, render_one = report["persons"], render_person
        lines.append(f"email {looked_for['email']!r}: {len(found)} person{'s' if len(found) > 1 else ''}")
    for member in found:
        lines.append("")
        lines.extend(render_one(member))
    return "\n".join(lines)


# ------------------------------------------------------------------------------ command line


def parse_as_of(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ExplainError(f"--as-of {text!r} is not an ISO 8601 date or date-time "
                           "(e.g. 2026-11-20T12:00:00Z)") from None
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def segment_named(cfg: CdpConfig, segment_id: str, sandbox: str | None) -> Segment:
    """The configured segment; in the named sandbox when one is given."""
    found = next((s for s in cfg.segments if s.id == segment_id), None)
    label = sandbox_label(sandbox_named(cfg, sandbox)) if sandbox else None
    if found is None:
        known = ", ".join(s.id for s in cfg.segments
                          if label is None or sandbox_label(cfg.sandbox_of(s)) == label) or "none"
        raise ExplainError(f"no segment {segment_id!r} in the configuration"
                           + (f" for sandbox {label}" if label else "") + f" (segments: {known})",
                           NOT_FOUND, {"segment": segment_id})
    if label and sandbox_label(cfg.sandbox_of(found)) != label:
        raise ExplainError(f"segment {segment_id!r} lives in sandbox {sandbox_label(cfg.sandbox_of(found))}, "
                           f"not {label}")
    return found


def run_explain_segment(*, segment: str, email: str | None = None, account: str | None = None,
                        as_of: str | None = None, sandbox: str | None = None,
                        json_output: bool = False, scenario: Path | None = None, config: Path | None = None,
                        out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Explain a segment's verdict for an email's persons (or, for an account audience, for the accounts
    a reference names), printing text or JSON; returns the exit status."""
    from b2b_cdp.config import ConfigError, load_config
    from b2b_cdp.demo import DEFAULT_SCENARIO

    out, err = out or sys.stdout, err or sys.stderr
    looked_for = {"segment": segment, **({"account": account} if account is not None else {"email": email})}
    try:
        try:
            cfg = load_config(config)
        except ConfigError as exc:
            raise ExplainError(str(exc)) from None
        chosen = segment_named(cfg, segment, sandbox)
        if (email is None) == (account is None):
            raise ExplainError("give exactly one of an email (a person audience) or an account (an account audience)")
        if chosen.audience == "account" and account is None:
            raise ExplainError(f"segment {segment!r} is an account audience: its members are accounts, not "
                               "persons; name an account instead of an email (make explain-segment "
                               f"SEGMENT={segment} ACCOUNT=id|key|mdm-id|name)")
        if chosen.audience != "account" and email is None:
            raise ExplainError(f"segment {segment!r} is a person audience: its members are persons; give an "
                               f"email instead of an account (make explain-segment SEGMENT={segment} EMAIL=address)")
        when = parse_as_of(as_of)
        use_demo_warehouse(scenario or DEFAULT_SCENARIO)
        with reading(cfg.sandbox_of(chosen)) as conn:
            report = (explain_account_segment(conn, cfg, chosen, account, when) if account is not None
                      else explain_segment(conn, cfg, chosen, email, when))
    except ExplainError as exc:
        print(f"explain-segment: {exc}", file=err)
        if json_output:
            print(as_json({"error": str(exc), "looked_for": {**looked_for, **exc.looked_for}}), file=out)
        return exc.status
    print(as_json(report) if json_output else render(report), file=out)
    stale = [p for p in report.get("persons", report.get("accounts"))
             if p["stored"].get("at_evaluation_time") and p["stored"]["agrees"] is False]
    return MEMBERSHIP_DISAGREES if stale else 0
