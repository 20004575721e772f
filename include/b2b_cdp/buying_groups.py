"""Buying groups: one per (account of a solution interest's account audience, solution interest).

A group is formed from the people whose primary account is the group's account: each takes the first
role of the interest's template, in priority order, whose condition they meet (a person condition of
the audience language, compiled by b2b_cdp.segments). Every evaluation, at the run's logical date,
rewrites membership with history (entered_at / exited_at per member and role) and scores each group:

- completeness: the mean over the template's roles required for completeness of
  min(members in the role / the role's required count, 1), as a percentage;
- engagement: over the 30 days before the evaluation, each activity type counted at most 20 times
  per member per UTC day, times the event type's weight (configured, default 1), times the member's
  role weight / 100 (Vital 1.0 ... Trivial 0.2); the group's points p score
  100 * sqrt(min(p, full_score_points) / full_score_points).

The SQL is in sql/buying_groups/; every value is a bound parameter.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

import psycopg

from b2b_cdp import warehouse
from b2b_cdp.config import AccountAudience, AccountSegmentCondition, CdpConfig, ConfigError, RoleTemplate, Sandbox
from b2b_cdp.segments import ConditionCompiler

log = logging.getLogger(__name__)

ENGAGEMENT_WINDOW_DAYS = 30
DAILY_CAP_PER_ACTIVITY_TYPE = 20
# What a role condition may read: person attributes and segment membership (Marketo's "member of
# list"), combined with all/any/not.
ROLE_CONDITION_KEYS = ("all", "any", "not", "attribute", "in_segment")


def _fragment(name: str, **parts: str) -> str:
    return warehouse.sql_file(f"buying_groups/{name}").strip().format(**parts)


def compile_account_audience(audience: AccountAudience) -> tuple[str, dict[str, Any]]:
    """The statement staging an account audience's accounts (`a` is profile_account), and its values:
    the current members of an account audience segment (evaluated earlier in the daily run), or the
    inline form, compiled as the audience language compiles account audience conditions."""
    compiler = ConditionCompiler()
    if audience.all_:
        condition = "true"
    elif audience.ids:
        condition = _fragment("account_ids", ids=compiler.bind(list(audience.ids)))
    elif audience.segment:
        condition = compiler.account_audience(AccountSegmentCondition(in_segment=audience.segment))
    else:
        condition = compiler.account_audience(audience.where)
    return _fragment("insert_accounts", condition=condition), compiler.params


def compile_role_assignment(template: RoleTemplate) -> tuple[str, dict[str, Any]]:
    """The statement giving each person of the audience accounts the first role they match."""
    compiler = ConditionCompiler()
    cases = [f"WHEN {compiler.condition(role.where) if role.where else 'true'} THEN {compiler.bind(role.name)}"
             for role in template.roles]
    return _fragment("insert_assignments", role_cases=" ".join(cases)), compiler.params


def _execute(conn: psycopg.Connection, compiled: tuple[str, dict[str, Any]], keys: dict[str, Any]) -> None:
    statement, params = compiled
    with conn.cursor() as cur:
        cur.execute(statement, {**params, **keys})


def _per_interest(conn: psycopg.Connection, name: str, params: dict[str, Any]) -> dict[str, int]:
    """sql/buying_groups/<name>.sql's (solution interest, count) rows as a dict."""
    return dict(warehouse.fetch_all(conn, f"buying_groups/{name}", params))


def _stage_audiences(conn: psycopg.Connection, cfg: CdpConfig, interests: list) -> None:
    """The work tables, with each solution interest's accounts (one row per group to be)."""
    warehouse.run(conn, "buying_groups/stage").close()
    for si in interests:
        _execute(conn, compile_account_audience(si.accounts),
                 {"solution_interest": si.id, "template_id": si.template})


def evaluate_sandbox(cfg: CdpConfig, sandbox: Sandbox, *, as_of: datetime, run_id: str) -> dict[str, Any]:
    """Form, update and score every buying group of a sandbox at `as_of`, in one transaction.

    Returns, per solution interest, its groups, complete groups and members, the members who
    entered and exited and the groups dissolved; and those last three for the whole sandbox."""
    bg = cfg.buying_groups
    interests = [si for si in bg.solution_interests if cfg.sandbox_of(si) == sandbox]
    engagement = bg.engagement
    with warehouse.connect(sandbox) as conn:
        _stage_audiences(conn, cfg, interests)
        for si in interests:
            template = bg.template(si.template)
            keys = {"solution_interest": si.id, "template_id": template.id, "as_of": as_of}
            warehouse.run(conn, "buying_groups/insert_roles", {
                "solution_interest": si.id,
                "roles": [r.name for r in template.roles],
                "weights": [r.weight_value for r in template.roles],
                "required_counts": [r.required_count for r in template.roles],
                "required": [r.required_for_completeness for r in template.roles]}).close()
            _execute(conn, compile_role_assignment(template), keys)
        at = {"as_of": as_of}
        dissolved = _per_interest(conn, "dissolve_groups", at)
        warehouse.run(conn, "buying_groups/upsert_groups", at).close()
        exited = _per_interest(conn, "close_members", at)
        entered = _per_interest(conn, "open_members", at)
        scored = warehouse.fetch_all(conn, "buying_groups/score_groups", {
            **at, "run_id": run_id, "window_days": ENGAGEMENT_WINDOW_DAYS,
            "daily_cap": DAILY_CAP_PER_ACTIVITY_TYPE, "default_weight": engagement.default_weight,
            "event_types": list(engagement.event_weights),
            "event_weights": list(engagement.event_weights.values()),
            "full_score_points": engagement.full_score_points})
    counts = {si.id: {"groups": 0, "complete": 0, "members": 0, "entered": entered.get(si.id, 0),
                      "exited": exited.get(si.id, 0), "dissolved": dissolved.get(si.id, 0)} for si in interests}
    for solution_interest, members, complete in scored:
        counts[solution_interest]["groups"] += 1
        counts[solution_interest]["complete"] += int(complete)
        counts[solution_interest]["members"] += members
    for si_id, c in counts.items():
        log.info("Solution interest %s at %s: %d group(s), %d complete, %d member(s) (+%d -%d), %d dissolved",
                 si_id, as_of.isoformat(), c["groups"], c["complete"], c["members"], c["entered"], c["exited"],
                 c["dissolved"])
    # Groups of a solution interest no longer configured are dissolved too: counted in the totals.
    return {"solution_interests": counts, "entered": sum(entered.values()), "exited": sum(exited.values()),
            "dissolved": sum(dissolved.values())}


def check_results(cfg: CdpConfig, sandbox: Sandbox, run_id: str):
    """The checkpoint after formation (GX, stored with the other checkpoints): completeness and
    engagement within 0..100, each member one role of the template per group, the complete flag
    consistent with the required roles' counts, member counts, and the live groups exactly the
    accounts of each solution interest's account audience."""
    import pandas as pd

    from b2b_cdp.guardrails import run_rule_checkpoint

    interests = [si for si in cfg.buying_groups.solution_interests if cfg.sandbox_of(si) == sandbox]
    roles = [(si.id, role) for si in interests for role in cfg.buying_groups.template(si.template).roles]
    with warehouse.connect(sandbox) as conn:
        _stage_audiences(conn, cfg, interests)
        facts = pd.DataFrame(warehouse.fetch_dicts(conn, "buying_groups/checks", {
            "interests": [si_id for si_id, _ in roles], "roles": [r.name for _, r in roles],
            "required_counts": [r.required_count for _, r in roles],
            "required": [r.required_for_completeness for _, r in roles]}))
    return run_rule_checkpoint(f"buying_groups__{sandbox.schema}", sandbox, run_id, facts)


# ---------------------------------------------------------------------------- configuration checks


def check_buying_groups(cfg: CdpConfig) -> None:
    """The references of the buying_groups section and of segments' buying_group conditions, each
    refusal naming the YAML path: unique ids, declared sandboxes and templates, role conditions on
    person attributes and segments of the interest's sandbox only (and no segment reading buying
    groups: that would be a cycle), buying_group conditions naming a solution interest of the
    segment's sandbox and roles of its template."""
    bg = cfg.buying_groups
    for kind, items in (("templates", bg.templates), ("solution_interests", bg.solution_interests)):
        seen: set[str] = set()
        for i, item in enumerate(items):
            if item.id in seen:
                raise ConfigError(f"buying_groups.{kind}[{i}].id: duplicate id {item.id!r}")
            seen.add(item.id)
    sandboxes = set(cfg.sandboxes())
    templates = {t.id: t for t in bg.templates}
    for i, si in enumerate(bg.solution_interests):
        where = f"buying_groups.solution_interests[{i}] ({si.id})"
        if cfg.sandbox_of(si) not in sandboxes:
            raise ConfigError(f"{where}: sandbox {si.platform_instance}/{si.sandbox} is not declared "
                              "under platform_instances")
        if si.template not in templates:
            raise ConfigError(f"{where}.template: unknown template {si.template!r}; declared: "
                              f"{', '.join(sorted(templates)) or 'none'}")
        if si.accounts.segment is not None:
            _check_audience_segment(cfg, si, f"{where}.accounts.segment")
    _check_role_conditions(cfg)
    _check_buying_group_conditions(cfg)


def _check_audience_segment(cfg: CdpConfig, si, where: str) -> None:
    """A solution interest's `accounts: {segment: ...}` names an account audience of its sandbox."""
    segment = next((s for s in cfg.segments if s.id == si.accounts.segment), None)
    accounts = [s.id for s in cfg.segments if s.audience == "account" and cfg.sandbox_of(s) == cfg.sandbox_of(si)]
    if segment is None:
        raise ConfigError(f"{where}: {si.accounts.segment!r} is not a declared segment (account audiences of "
                          f"this sandbox: {', '.join(accounts) or 'none'})")
    if segment.audience != "account":
        raise ConfigError(f"{where}: {segment.id!r} is a person segment; a solution interest's accounts are an "
                          f"account audience (audience: account; declared: {', '.join(accounts) or 'none'})")
    if cfg.sandbox_of(segment) != cfg.sandbox_of(si):
        raise ConfigError(f"{where}: {segment.id!r} lives in another sandbox")
    if segment.id in cfg.segments_reading_buying_groups():
        raise ConfigError(f"{where}: {segment.id!r} reads buying groups, which are formed from its accounts "
                          "(a cycle)")


def _check_role_conditions(cfg: CdpConfig) -> None:
    segments = {s.id: s for s in cfg.segments}
    readers = cfg.segments_reading_buying_groups()
    for i, template in enumerate(cfg.buying_groups.templates):
        users = [si for si in cfg.buying_groups.solution_interests if si.template == template.id]
        for j, role in enumerate(template.roles):
            where = f"buying_groups.templates[{i}] ({template.id}).roles[{j}].where"
            for cond in role.where.walk() if role.where else ():
                used = [key for key in ("account", "event", "buying_group") if getattr(cond, key) is not None]
                if used:
                    raise ConfigError(f"{where}: a role condition reads person attributes and segment "
                                      f"membership ({', '.join(ROLE_CONDITION_KEYS)}), not {used[0]}; "
                                      "put it in a segment and use in_segment")
                if cond.in_segment is None:
                    continue
                segment = segments.get(cond.in_segment)
                if segment is None:
                    raise ConfigError(f"{where}: in_segment {cond.in_segment!r} is not a declared segment")
                if segment.audience != "person":
                    raise ConfigError(f"{where}: in_segment {cond.in_segment!r} is an account audience (its "
                                      "members are accounts); a role condition reads person segments")
                if segment.id in readers:
                    raise ConfigError(f"{where}: in_segment {cond.in_segment!r} reads buying groups, "
                                      "which are formed from this role condition (a cycle)")
                for si in users:
                    if cfg.sandbox_of(si) != cfg.sandbox_of(segment):
                        raise ConfigError(f"{where}: in_segment {cond.in_segment!r} lives in another sandbox "
                                          f"than solution interest {si.id!r}, which uses this template")


def _check_buying_group_conditions(cfg: CdpConfig) -> None:
    interests = {si.id: si for si in cfg.buying_groups.solution_interests}
    for i, segment in enumerate(cfg.segments):
        where = f"segments[{i}] ({segment.id}).where"
        for cond in segment.person_conditions():
            if cond.buying_group is None:
                continue
            si = interests.get(cond.buying_group.solution_interest)
            if si is None:
                raise ConfigError(f"{where}: buying_group solution_interest "
                                  f"{cond.buying_group.solution_interest!r} is not declared under "
                                  "buying_groups.solution_interests")
            if cfg.sandbox_of(si) != cfg.sandbox_of(segment):
                raise ConfigError(f"{where}: buying_group solution_interest {si.id!r} lives in another sandbox")
            template = cfg.buying_groups.template(si.template)
            for key in ("missing_role", "role"):
                name = getattr(cond.buying_group, key)
                if name is not None and template.role(name) is None:
                    raise ConfigError(f"{where}: buying_group {key} {name!r} is not a role of template "
                                      f"{template.id!r} ({', '.join(r.name for r in template.roles)})")
