"""Explain a stitched person or account: why the profile looks the way it does.

`python -m b2b_cdp explain --email EMAIL` shows the person(s) an email identifies: the person id and
its lineage, the identity graph (each identity with the records carrying it), the source records,
the links the rules refused, the accounts with their roll-ups, and whether segmentation leaves the
profile out. `--account REF` shows an account (by account id, any of its keys, its MDM id or its
name, any case): its keys, the deals summed into its roll-ups (checked against the profile), and its
people. Plain text by default, `--json` for machines. Every query is in sql/explain/ and only reads.

Exit status: 0 explained, 1 nothing found (the message names what was looked for), 2 a usage or
configuration error, 3 explained but an account's roll-ups disagree with its deals.
"""

from __future__ import annotations

import json
import sys
from contextlib import contextmanager
from datetime import date, datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any, Callable, Iterator, TextIO

import psycopg

from b2b_cdp import warehouse
from b2b_cdp.config import CdpConfig, Sandbox

NOT_FOUND, USAGE, ROLLUP_MISMATCH = 1, 2, 3
ROLLUPS = ("closed_won_amount", "open_pipeline_amount", "opportunity_count", "last_close_date")
ROLLUP_LABELS = {"closed_won_amount": "closed-won", "open_pipeline_amount": "open pipeline",
                 "opportunity_count": "opportunities", "last_close_date": "last close"}


class ExplainError(Exception):
    """Something explain cannot answer; `status` is the exit status, `looked_for` what was asked."""

    def __init__(self, message: str, status: int = USAGE, looked_for: dict | None = None):
        super().__init__(message)
        self.status = status
        self.looked_for = looked_for or {}


# ------------------------------------------------------------------------------ where to look


def sandbox_named(cfg: CdpConfig, name: str | None) -> Sandbox:
    """`<platform_instance>/<sandbox>` of the configuration; without a name, its first sandbox."""
    sandboxes = cfg.sandboxes()
    if not name:
        return sandboxes[0]
    for sandbox in sandboxes:
        if name == f"{sandbox.platform_instance}/{sandbox.name}":
            return sandbox
    known = ", ".join(f"{s.platform_instance}/{s.name}" for s in sandboxes)
    raise ExplainError(f"unknown sandbox {name!r}: the configuration has {known}")


def sandbox_label(sandbox: Sandbox) -> str:
    return f"{sandbox.platform_instance}/{sandbox.name}"


def use_demo_warehouse(scenario: Path) -> None:
    """Reach the warehouse: the configured `cdp_warehouse` connection if there is one, else the
    embedded PostgreSQL that `make demo` left for the scenario (started again if it is stopped)."""
    from b2b_cdp.config import PROJECT_ROOT
    from b2b_cdp.demo import prepare_environment, state_dir_for
    from b2b_cdp.embedded import CONN_ENV, start_embedded_warehouse, warehouse_configured

    if warehouse_configured():
        return
    state_dir = state_dir_for(Path(scenario))
    data_dir = state_dir / "warehouse"
    if not data_dir.is_dir():
        shown = data_dir.relative_to(PROJECT_ROOT) if data_dir.is_relative_to(PROJECT_ROOT) else data_dir
        raise ExplainError(f"no warehouse to explain from: {CONN_ENV} is not set and the demo of "
                           f"{Path(scenario).name} has no state ({shown} is missing); run `make demo` first")
    prepare_environment(state_dir)
    start_embedded_warehouse(data_dir)


@contextmanager
def reading(sandbox: Sandbox) -> Iterator[psycopg.Connection]:
    """A read-only transaction on the sandbox; a sandbox the pipeline never migrated is named."""
    try:
        with warehouse.connect(sandbox) as conn:
            warehouse.run(conn, "explain/read_only").close()
            yield conn
    except psycopg.errors.UndefinedTable as exc:
        raise ExplainError(f"sandbox {sandbox_label(sandbox)} has no identity tables yet "
                           f"({str(exc).splitlines()[0]}); run the pipeline on it first") from None


# ------------------------------------------------------------------------------ persons


def explain_email(conn: psycopg.Connection, email: str, sandbox: Sandbox) -> dict[str, Any]:
    """Every person the email identifies, explained; ExplainError (status 1) when there is none."""
    looked_for = {"email": email, "sandbox": sandbox_label(sandbox)}
    person_ids = [row["person_id"] for row in warehouse.fetch_dicts(conn, "explain/email_persons", {"email": email})]
    if not person_ids:
        carried = warehouse.fetch_dicts(conn, "explain/email_records", {"email": email})[0]
        why = ""
        if carried["records"]:
            why = (f" ({carried['records']} source record(s) carry it, {carried['deleted']} deleted; "
                   "none is stitched to a person: deleted at the source, or stitching has not run since)")
        raise ExplainError(f"no person with email {email!r} in sandbox {sandbox_label(sandbox)}{why}",
                           NOT_FOUND, looked_for)
    return {"looked_for": looked_for, "persons": [explain_person(conn, pid) for pid in person_ids]}


def explain_person(conn: psycopg.Connection, person_id: str) -> dict[str, Any]:
    params = {"person_id": person_id}
    person = warehouse.fetch_dicts(conn, "explain/person", params)[0]
    links = warehouse.fetch_dicts(conn, "explain/person_links", params)
    graph: dict[str, list[dict]] = {}
    for link in links:
        values = graph.setdefault(link["namespace"], [])
        if not values or values[-1]["value"] != link["value"]:
            values.append({"value": link["value"], "records": []})
        values[-1]["records"].append({k: link[k] for k in ("record_key", "joins", "unique_scope", "seen_at")})
    return {
        "person_id": person_id,
        "profile": {k: person[k] for k in ("email", "first_name", "last_name", "title", "company",
                                           "unsubscribed", "created_at", "updated_at", "primary_account_id")}
        if person["has_profile"] else None,
        "id_history": {"created_at": person["id_created_at"], "created_run": person["id_created_run"],
                       "retired_at": person["retired_at"], "retired_reason": person["retired_reason"]},
        "lineage": warehouse.fetch_dicts(conn, "explain/person_lineage", params),
        "graph": graph,
        "records": warehouse.fetch_dicts(conn, "explain/person_records", params),
        "rejected_links": warehouse.fetch_dicts(conn, "explain/person_rejected_links", params),
        "accounts": warehouse.fetch_dicts(conn, "explain/person_accounts", params),
        "excluded_reason": person["excluded_reason"],
    }


# ------------------------------------------------------------------------------ accounts


def explain_reference(conn: psycopg.Connection, reference: str, sandbox: Sandbox) -> dict[str, Any]:
    """Every account the reference names, explained; ExplainError (status 1) when there is none."""
    looked_for = {"account": reference, "sandbox": sandbox_label(sandbox)}
    account_ids = [row["account_id"] for row in warehouse.fetch_dicts(conn, "explain/account_ids", {"reference": reference})]
    if not account_ids:
        raise ExplainError(f"no account with id, key, MDM id or name {reference!r} in sandbox "
                           f"{sandbox_label(sandbox)}", NOT_FOUND, looked_for)
    return {"looked_for": looked_for, "accounts": [explain_account(conn, aid) for aid in account_ids]}


def rollups_of(opportunities: list[dict[str, Any]]) -> dict[str, Any]:
    """An account's roll-ups summed from its deals, as the profile build defines them."""
    closed = [o for o in opportunities if o["is_closed"] is True]
    return {
        "closed_won_amount": sum((o["amount"] for o in opportunities
                                  if o["is_won"] is True and o["amount"] is not None), Decimal(0)),
        "open_pipeline_amount": sum((o["amount"] for o in opportunities
                                     if o["is_closed"] is False and o["amount"] is not None), Decimal(0)),
        "opportunity_count": len(opportunities),
        "last_close_date": max((o["close_date"] for o in closed if o["close_date"]), default=None),
    }


def explain_account(conn: psycopg.Connection, account_id: str) -> dict[str, Any]:
    params = {"account_id": account_id}
    found = warehouse.fetch_dicts(conn, "explain/account", params)
    profile = found[0] if found else {"account_id": account_id}
    opportunities = warehouse.fetch_dicts(conn, "explain/account_opportunities", params)
    summed = rollups_of(opportunities)
    differences = {k: {"profile": profile.get(k), "from_opportunities": summed[k]}
                   for k in ROLLUPS if profile.get(k) != summed[k]}
    return {
        **profile,
        "keys": warehouse.fetch_dicts(conn, "explain/account_keys", params),
        "opportunities": opportunities,
        "rollup_check": {"matches": not differences, "from_opportunities": summed, "differences": differences},
        "people": warehouse.fetch_dicts(conn, "explain/account_people", params),
    }


# ------------------------------------------------------------------------------ output


def _json_value(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, (datetime, date)):
        return _when(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def as_json(report: dict[str, Any]) -> str:
    return json.dumps(report, indent=2, default=_json_value)


def _when(value: datetime | date | None) -> str:
    if value is None:
        return "-"
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")
    return value.isoformat()


def _amount(value: Decimal | int | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f}" if value == int(value) else f"{value:,.2f}"


def _figure(key: str, value: Any) -> str:
    if key == "last_close_date":
        return _when(value)
    return str(value) if key == "opportunity_count" else _amount(value)


def _rollup_text(figures: dict[str, Any]) -> str:
    return "; ".join(f"{ROLLUP_LABELS[k]} {_figure(k, figures.get(k))}" for k in ROLLUPS)


def _name(row: dict[str, Any]) -> str:
    return " ".join(p for p in (row.get("first_name"), row.get("last_name")) if p) or "-"


def _table(rows: list[list[str]], indent: str = "    ") -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [indent + "  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]


def _section(lines: list[str], title: str, items: list, render: Callable[[list], list[str]]) -> None:
    lines.append(f"  {title} ({len(items)})" + ("" if items else ": none"))
    if items:
        lines.extend(render(items))


def _account_line(account: dict[str, Any]) -> str:
    mdm = f", MDM {account['mdm_id']}" if account.get("mdm_id") else ""
    return f"{account['account_id']} {account.get('name') or '(no profile)'}{mdm}"


def render_person(person: dict[str, Any]) -> list[str]:
    profile = person["profile"]
    lines = [f"Person {person['person_id']}"]
    if profile is None:
        lines.append("  no profile row for this id")
    else:
        company = f" at {profile['company']}" if profile["company"] else ""
        lines.append(f"  {profile['email'] or '(no email)'}: {_name(profile)}, {profile['title'] or 'no title'}"
                     f"{company}; {'unsubscribed' if profile['unsubscribed'] else 'subscribed'}; "
                     f"updated {_when(profile['updated_at'])}")
    history = person["id_history"]
    if history["created_at"]:
        retired = (f"; retired {_when(history['retired_at'])} ({history['retired_reason']})"
                   if history["retired_at"] else "")
        lines.append(f"  id given {_when(history['created_at'])} by run {history['created_run']}{retired}")
    excluded = person["excluded_reason"]
    lines.append(f"  segmentation: {'EXCLUDED: ' + excluded if excluded else 'included'}")

    def lineage(rows: list[dict]) -> list[str]:
        out = []
        for row in rows:
            if row["direction"] == "to":
                out.append(f"    records went to {row['successor_id']} ({row['event']}), run {row['run_id']}, "
                           f"{_when(row['at'])}")
                continue
            verb = "absorbed" if row["event"] == "merge" else "split from" if row["event"] == "split" else row["event"]
            via = f" (into {row['successor_id']})" if row["depth"] > 1 else ""
            out.append(f"    {'  ' * (row['depth'] - 1)}{verb} {row['person_id']}{via}, run {row['run_id']}, "
                       f"{_when(row['at'])}")
        return out

    def graph(namespaces: list[str]) -> list[str]:
        out = []
        for namespace in namespaces:
            for identity in person["graph"][namespace]:
                scopes = sorted({r["unique_scope"] for r in identity["records"] if r["unique_scope"]})
                unique = f"  (one per person in {', '.join(scopes)})" if scopes else ""
                out.append(f"    {namespace} {identity['value']}{unique}")
                out.extend(f"      on {r['record_key']}"
                           + ("  -- kept on its record, does not join" if r["joins"] is False else "")
                           for r in identity["records"])
        return out

    def records(rows: list[dict]) -> list[str]:
        table = [["source key", "system", "instance", "type", "email", "name", "title", "updated", "deleted"]]
        for r in rows:
            deleted = "-" if r["system"] is None else "yes" if r["is_deleted"] else "no"
            if not r["in_graph"]:
                deleted += " (left the graph)"
            table.append([r["record_key"], r["system"] or "-", r["instance"] or "-", r["record_type"] or "-",
                          r["email"] or "-", _name(r), r["title"] or "-", _when(r["updated_at"]), deleted])
        return _table(table)

    def rejected(rows: list[dict]) -> list[str]:
        return [f"    {r['namespace']} {r['value']} on {r['record_key']}: {r['reason']} "
                f"(run {r['run_id']}, {_when(r['rejected_at'])})" for r in rows]

    def accounts(rows: list[dict]) -> list[str]:
        out = []
        for a in rows:
            primary = " [primary]" if a["is_primary"] else ""
            out.append(f"    {_account_line(a)} -- {', '.join(a['relations']) or 'primary only'}{primary}")
            out.append(f"      {_rollup_text(a)}")
        return out

    _section(lines, "lineage", person["lineage"], lineage)
    identities = sum(len(v) for v in person["graph"].values())
    carriers = len({r["record_key"] for v in person["graph"].values() for i in v for r in i["records"]})
    lines.append(f"  identity graph ({identities} identities on {carriers} records)" if identities
                 else "  identity graph: no identities")
    lines.extend(graph(list(person["graph"])))
    _section(lines, "source records", person["records"], records)
    _section(lines, "rejected links", person["rejected_links"], rejected)
    _section(lines, "accounts", person["accounts"], accounts)
    return lines


def render_account(account: dict[str, Any]) -> list[str]:
    lines = [f"Account {_account_line(account)}"]
    details = [f"{k} {account[k]}" for k in ("website", "industry") if account.get(k)]
    if details:
        lines.append("  " + ", ".join(details))
    lines.append(f"  roll-ups: {_rollup_text(account)}")
    check = account["rollup_check"]
    if check["matches"]:
        lines.append("  roll-ups match the deals below")
    else:
        lines.append("  ROLL-UPS DISAGREE with the deals below: " + "; ".join(
            f"{ROLLUP_LABELS[k]} profile {_figure(k, d['profile'])} vs deals {_figure(k, d['from_opportunities'])}"
            for k, d in check["differences"].items()))

    def keys(rows: list[dict]) -> list[str]:
        out = []
        for k in rows:
            if k["account_key"].startswith("mdm:"):
                what = "MDM golden record"
            elif k["system"]:
                what = f"{k['system']} {k['instance']} account {k['name'] or '-'}" + (" (deleted)" if k["is_deleted"] else "")
            else:
                what = "referenced by people or deals only"
            out.append(f"    {k['account_key']}  {what}")
        return out

    def opportunities(rows: list[dict]) -> list[str]:
        table = [["deal", "name", "amount", "stage", "closed", "won", "close date", "reported by"]]
        for o in rows:
            table.append([o["opportunity_key"], o["name"] or "-", _amount(o["amount"]), o["stage"] or "-",
                          _yes_no(o["is_closed"]), _yes_no(o["is_won"]), _when(o["close_date"]),
                          ", ".join(o["source_keys"])])
        return _table(table)

    def people(rows: list[dict]) -> list[str]:
        table = [["person", "email", "name", "title", "relation", "note"]]
        for p in rows:
            notes = ["primary account"] if p["is_primary"] else []
            if p["excluded_reason"]:
                notes.append(f"excluded: {p['excluded_reason']}")
            table.append([p["person_id"], p["email"] or "-", _name(p), p["title"] or "-",
                          ", ".join(p["relations"]), "; ".join(notes) or "-"])
        return _table(table)

    _section(lines, "keys", account["keys"], keys)
    _section(lines, "opportunities", account["opportunities"], opportunities)
    _section(lines, "people", account["people"], people)
    return lines


def _yes_no(value: bool | None) -> str:
    return "-" if value is None else "yes" if value else "no"


def render(report: dict[str, Any]) -> str:
    """The plain-text explanation of a person or an account report."""
    looked_for = report["looked_for"]
    if "email" in looked_for:
        items, draw, what = report["persons"], render_person, f"email {looked_for['email']!r}"
    else:
        items, draw, what = report["accounts"], render_account, f"account {looked_for['account']!r}"
    noun = "person" if "email" in looked_for else "account"
    lines = [f"{what} in sandbox {looked_for['sandbox']}: {len(items)} {noun}{'s' if len(items) > 1 else ''}"]
    for item in items:
        lines.append("")
        lines.extend(draw(item))
    return "\n".join(lines)


# ------------------------------------------------------------------------------ command line


def run_explain(*, email: str | None = None, account: str | None = None, sandbox: str | None = None,
                json_output: bool = False, scenario: Path | None = None, config: Path | None = None,
                out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Explain an email's persons or an account, printing text or JSON; returns the exit status."""
    from b2b_cdp.config import ConfigError, load_config
    from b2b_cdp.demo import DEFAULT_SCENARIO

    out, err = out or sys.stdout, err or sys.stderr
    looked_for: dict[str, str] = {"email": email} if email is not None else {"account": account or ""}
    try:
        try:
            cfg = load_config(config)
        except ConfigError as exc:
            raise ExplainError(str(exc)) from None
        chosen = sandbox_named(cfg, sandbox)
        use_demo_warehouse(scenario or DEFAULT_SCENARIO)
        with reading(chosen) as conn:
            report = (explain_email(conn, email, chosen) if email is not None
                      else explain_reference(conn, account or "", chosen))
    except ExplainError as exc:
        print(f"explain: {exc}", file=err)
        if json_output:
            print(as_json({"error": str(exc), "looked_for": exc.looked_for or looked_for}), file=out)
        return exc.status
    print(as_json(report) if json_output else render(report), file=out)
    mismatched = [a for a in report.get("accounts", []) if not a["rollup_check"]["matches"]]
    return ROLLUP_MISMATCH if mismatched else 0
