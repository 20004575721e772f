"""Explain a segment's verdict for one person: which conditions hold, on what evidence.

`python -m b2b_cdp explain-segment --segment ID --email EMAIL` finds the person(s) the email identifies
(as `explain` does) and walks the segment's condition tree. Each condition is compiled on its own by
the segment compiler (b2b_cdp.segments.ConditionCompiler, every value bound) and evaluated for that one
person at the evaluation time; its evidence is read beside it: the attribute's value, the accounts'
values, the deals summed per account against the threshold, the events counted in the window (and
those left out, with why), the stored membership of an `in_segment` segment, the buying-group places.
The verdict ("in" or "out") is the segment's own compiled statement for that person, and it is
compared with the stored membership.

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
from b2b_cdp.config import AccountCondition, CdpConfig, Comparison, Condition, Segment
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
        node = {"path": path, "kind": _kind(cond), "condition": describe(cond), "holds": holds}
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
        current = next((h for h in history if h["exited_at"] is None), None)
        summary = (f"a current member of {cond.in_segment!r} since {_when(current['entered_at'])}" if current
                   else f"not a current member of {cond.in_segment!r}"
                   + (f" (left {_when(history[0]['exited_at'])})" if history else " (never a member)"))
        return {"evidence": {"segment": cond.in_segment, "member": current is not None, "history": history},
                "summary": summary + "; in_segment reads the stored membership"}

    def account_attribute(self, account: AccountCondition) -> dict[str, Any]:
        name = account.attribute.name
        assert name in ACCOUNT_ATTRIBUTES
        compiler = ConditionCompiler()
        comparison = compiler.comparison(account.attribute, f"a.{name}")
        accounts = _query(self.conn, "account_attribute", self.params(compiler), column=name, comparison=comparison)
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
                          comparison=comparison, opportunity_filter=parts["opportunity_filter"])
        deals = _query(self.conn, "opportunity_deals", params, opportunity_filter=parts["opportunity_filter"])
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


def stored_membership(conn: psycopg.Connection, segment_id: str, person_id: str, as_of: datetime,
                      evaluation: dict[str, Any] | None, verdict: str) -> dict[str, Any]:
    """What the membership history says at `as_of`, and whether it agrees with the verdict."""
    history = warehouse.fetch_dicts(conn, "explain_segment/membership", {"segment_id": segment_id, "person_id": person_id})
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


def explain_segment(conn: psycopg.Connection, cfg: CdpConfig, segment: Segment, email: str,
                    as_of: datetime | None) -> dict[str, Any]:
    """The segment's verdict for every person the email identifies."""
    sandbox = cfg.sandbox_of(segment)
    person_ids = [r["person_id"] for r in warehouse.fetch_dicts(conn, "explain/email_persons", {"email": email})]
    if not person_ids:
        explain_email(conn, email, sandbox)      # raises the not-found error, saying what carries the email
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
    return {
        "looked_for": {"segment": segment.id, "email": email, "sandbox": sandbox_label(sandbox)},
        "segment": {"id": segment.id, "name": segment.name, "mode": segment.mode,
                    "definition_hash": definition_hash(segment)},
        "as_of": as_of, "as_of_source": source, "evaluation": evaluation,
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
    lines = [f"Person {person['person_id']} ({who})",
             f"  verdict: {person['verdict'].upper()} -- {person['why']}"]
    stored = person["stored"]
    if stored["evaluated_at"] is None:
        lines.append(f"  stored membership: {stored['note']}")
    else:
        state = (f"a member since {_when(stored['entered_at'])}" if stored["member"]
                 else "not a member")
        agreement = "agrees" if stored["agrees"] else "DISAGREES"
        note = f" ({stored['note']})" if stored.get("note") else ""
        lines.append(f"  stored membership: {state} (evaluation at {_when(stored['evaluated_at'])}, run "
                     f"{stored['run_id']}): {agreement}{note}")
    if person["condition"] is not None:
        lines.append("  conditions:")
        lines.extend(render_node(person["condition"]))
    return lines


def render(report: dict[str, Any]) -> str:
    segment, looked_for = report["segment"], report["looked_for"]
    persons = report["persons"]
    lines = [f"segment {segment['id']} ({segment['name']}, {segment['mode']}) in sandbox {looked_for['sandbox']}",
             f"evaluated at {_when(report['as_of'])}: {report['as_of_source']}",
             f"email {looked_for['email']!r}: {len(persons)} person{'s' if len(persons) > 1 else ''}"]
    for person in persons:
        lines.append("")
        lines.extend(render_person(person))
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


def run_explain_segment(*, segment: str, email: str, as_of: str | None = None, sandbox: str | None = None,
                        json_output: bool = False, scenario: Path | None = None, config: Path | None = None,
                        out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Explain a segment's verdict for an email's persons, printing text or JSON; returns the exit status."""
    from b2b_cdp.config import ConfigError, load_config
    from b2b_cdp.demo import DEFAULT_SCENARIO

    out, err = out or sys.stdout, err or sys.stderr
    looked_for = {"segment": segment, "email": email}
    try:
        try:
            cfg = load_config(config)
        except ConfigError as exc:
            raise ExplainError(str(exc)) from None
        chosen = segment_named(cfg, segment, sandbox)
        if chosen.audience == "account":
            raise ExplainError(f"segment {segment!r} is an account audience: its members are accounts, not "
                               "persons, so there is no person's verdict to explain; its current members are "
                               "the open rows of audience_account_membership, and `make explain-account ACCOUNT=...` "
                               "shows an account's attributes, deals and people")
        when = parse_as_of(as_of)
        use_demo_warehouse(scenario or DEFAULT_SCENARIO)
        with reading(cfg.sandbox_of(chosen)) as conn:
            report = explain_segment(conn, cfg, chosen, email, when)
    except ExplainError as exc:
        print(f"explain-segment: {exc}", file=err)
        if json_output:
            print(as_json({"error": str(exc), "looked_for": {**looked_for, **exc.looked_for}}), file=out)
        return exc.status
    print(as_json(report) if json_output else render(report), file=out)
    stale = [p for p in report["persons"] if p["stored"].get("at_evaluation_time") and p["stored"]["agrees"] is False]
    return MEMBERSHIP_DISAGREES if stale else 0
