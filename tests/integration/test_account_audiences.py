"""Account audiences (segments with `audience: account`) on Bodea, against the real warehouse.

Expected values, from include/scenarios/bodea.yaml: three accounts have a closed-won deal --
Townsend ($200k + $900k = $1.1M; Automotive), Acme Robotics ($1.5M; Manufacturing) and Globex
($950k; Aerospace). Of the people of those accounts only p2 (Townsend) is a member of the shipped
person segment high_value_new_product_visitors.
"""

from __future__ import annotations

import copy
import io
import json
from datetime import timedelta

import pytest
import yaml

from b2b_cdp import buying_groups, segments, warehouse
from b2b_cdp.config import DEFAULT_CONFIG_PATH, ConfigError, parse_config
from b2b_cdp.explain_segment import run_explain_segment
from tests.integration.test_buying_groups import segmentation_daily
from tests.integration.test_explain import stitched  # noqa: F401 (the fixture)
from tests.integration.test_pipeline_stages import CLOCK, one

WON = {"opportunities": {"aggregate": "count", "won": True, "op": "gte", "value": 1}}
ACCOUNT_AUDIENCES = {
    "won_accounts": WON,
    "big_won_accounts_with_visitors": {"all": [
        {"opportunities": {"aggregate": "sum", "field": "amount", "won": True, "op": "gt", "value": 1_000_000}},
        {"person": {"in_segment": "high_value_new_product_visitors"}}]},
    "won_not_automotive": {"all": [{"in_segment": "won_accounts"},
                                   {"not": {"attribute": {"name": "industry", "op": "eq", "value": "Automotive"}}}]},
    "accounts_with_an_engineer": {"person": {"attribute": {"name": "title", "op": "contains", "value": "engineer"}}},
    "accounts_with_recent_visitors": {"person": {"event": {"type": "Visit Webpage", "within": {"days": 30}}}},
}
MEMBERS = """
SELECT m.segment_id, a.name, m.entered_at, m.exited_at
FROM audience_account_membership m JOIN profile_account a USING (account_id)
ORDER BY 1, 2, 3
"""


def raw_config() -> dict:
    raw = yaml.safe_load(DEFAULT_CONFIG_PATH.read_text())
    raw["segments"] += [{"id": sid, "name": sid, "platform_instance": "bodea", "sandbox": "prod",
                         "audience": "account", "where": copy.deepcopy(where)} for sid, where in ACCOUNT_AUDIENCES.items()]
    return raw


def current(sandbox) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for segment_id, name, _, exited_at in one(sandbox, MEMBERS):
        if exited_at is None:
            found.setdefault(segment_id, []).append(name)
    return found


def test_account_audiences_are_evaluated_in_the_daily_pass_with_history(stitched):
    cfg = parse_config(raw_config())
    results = segments.evaluate_sandbox(cfg, stitched, as_of=CLOCK, run_id="run-1")
    assert {sid: results[sid] for sid in ACCOUNT_AUDIENCES} == {
        "won_accounts": {"members": 3, "entered": 3, "exited": 0},
        "big_won_accounts_with_visitors": {"members": 1, "entered": 1, "exited": 0},
        "won_not_automotive": {"members": 2, "entered": 2, "exited": 0},
        "accounts_with_an_engineer": {"members": 1, "entered": 1, "exited": 0},
        "accounts_with_recent_visitors": results["accounts_with_recent_visitors"],
    }
    assert current(stitched) == {
        "won_accounts": ["Acme Robotics", "Globex", "Townsend"],
        "big_won_accounts_with_visitors": ["Townsend"],
        "won_not_automotive": ["Acme Robotics", "Globex"],
        "accounts_with_an_engineer": ["Townsend"],
        "accounts_with_recent_visitors": ["Globex", "Townsend"],
    }
    # Persons' membership is untouched: only the shipped person segment has members there.
    assert one(stitched, "SELECT DISTINCT segment_id FROM audience_membership") == [("high_value_new_product_visitors",)]
    assert one(stitched, "SELECT segment_id, audience, members FROM audience_evaluation "
                         "WHERE segment_id = 'won_accounts'") == [("won_accounts", "account", 3)]

    # Re-running the same day changes nothing.
    again = segments.evaluate_sandbox(cfg, stitched, as_of=CLOCK, run_id="run-1b")
    assert all((r["entered"], r["exited"]) == (0, 0) for r in again.values())

    # Forty days later nobody visited within 30 days: the visitors' accounts exit, with history kept.
    later = CLOCK + timedelta(days=40)
    results = segments.evaluate_sandbox(cfg, stitched, as_of=later, run_id="run-2")
    assert results["accounts_with_recent_visitors"] == {"members": 0, "entered": 0, "exited": 2}
    assert results["big_won_accounts_with_visitors"] == {"members": 0, "entered": 0, "exited": 1}
    assert [row for row in one(stitched, MEMBERS) if row[0] == "big_won_accounts_with_visitors"] == [
        ("big_won_accounts_with_visitors", "Townsend", CLOCK, later)]
    assert current(stitched)["won_accounts"] == ["Acme Robotics", "Globex", "Townsend"]


@pytest.mark.parametrize("as_of", [CLOCK, CLOCK - timedelta(days=40)])
def test_the_facts_form_selects_exactly_the_self_contained_accounts(stitched, as_of):
    cfg = parse_config(raw_config())
    defined = [cfg.segment(sid) for sid in ACCOUNT_AUDIENCES]
    segments.evaluate_sandbox(cfg, stitched, as_of=as_of, run_id="inputs")   # in_segment inputs
    facts = segments.PassFacts(as_of)
    with_facts = [segments.compile_segment(s, facts) for s in defined]
    with warehouse.connect(stitched) as conn:
        facts.stage(conn)
        for s, compiled in zip(defined, with_facts):
            alone = segments.compile_segment(s)
            found = [set(conn.execute(c.sql, {**c.params, "as_of": as_of}).fetchall()) for c in (alone, compiled)]
            assert found[0] == found[1], s.id


def test_a_solution_interest_forms_groups_in_an_account_audience_segment(stitched):
    raw = raw_config()
    raw["buying_groups"]["solution_interests"][0]["accounts"] = {"segment": "won_not_automotive"}
    cfg = parse_config(raw)
    segments.evaluate_sandbox(cfg, stitched, as_of=CLOCK, run_id="run-1")
    result = buying_groups.evaluate_sandbox(cfg, stitched, as_of=CLOCK, run_id="run-1")
    assert result["solution_interests"] == {"new_product": {"groups": 2, "complete": 0, "members": 2, "entered": 2,
                                                            "exited": 0, "dissolved": 0}}
    assert one(stitched, "SELECT a.name FROM buying_group g JOIN profile_account a USING (account_id) "
                         "WHERE g.dissolved_at IS NULL ORDER BY 1") == [("Acme Robotics",), ("Globex",)]


def test_the_daily_dag_evaluates_account_audiences_before_the_buying_groups(tmp_path, monkeypatch):
    raw = raw_config()
    raw["buying_groups"]["solution_interests"][0]["accounts"] = {"segment": "won_accounts"}
    dag = segmentation_daily(raw, tmp_path, monkeypatch)
    evaluate = dag.get_task("evaluate__cdp_bodea_prod")
    assert {o.name for o in evaluate.outlets} >= {f"cdp.audience.{sid}" for sid in ACCOUNT_AUDIENCES}
    assert dag.get_task("buying_groups__cdp_bodea_prod").upstream_task_ids == {"evaluate__cdp_bodea_prod"}


def refused(raw: dict) -> str:
    with pytest.raises(ConfigError) as caught:
        parse_config(raw)
    return str(caught.value)


def test_account_audience_errors_name_the_yaml_path():
    raw = raw_config()
    raw["segments"][1]["mode"] = "streaming"
    assert ("segments[1] (won_accounts).mode: declared streaming, but it is an account audience (its members "
            "are accounts), which is evaluated in batch once a day; declare it batch") in refused(raw)

    raw = raw_config()
    raw["segments"][3]["where"]["all"][0] = {"in_segment": "high_value_new_product_visitors"}
    assert ("segments[3] (won_not_automotive).where: in_segment 'high_value_new_product_visitors' is a person "
            "segment; an account audience's own in_segment reads account audiences") in refused(raw)

    raw = raw_config()
    raw["segments"][0]["where"]["all"][0] = {"in_segment": "won_accounts"}
    assert ("segments[0] (high_value_new_product_visitors).where: in_segment 'won_accounts' is an account "
            "audience") in refused(raw)

    raw = raw_config()
    raw["segments"][4]["where"]["person"] = {"account": {"attribute": {"name": "industry", "op": "eq", "value": "x"}}}
    assert "segments[4] (accounts_with_an_engineer).where: a person condition of an account audience" in refused(raw)

    raw = raw_config()
    raw["segments"][2]["where"]["all"][0]["opportunities"]["aggregate"] = "median"
    assert "segments[2] (big_won_accounts_with_visitors).where.all[0].opportunities.aggregate" in refused(raw)

    raw = raw_config()
    raw["buying_groups"]["solution_interests"][0]["accounts"] = {"segment": "high_value_new_product_visitors"}
    assert ("buying_groups.solution_interests[0] (new_product).accounts.segment: "
            "'high_value_new_product_visitors' is a person segment") in refused(raw)

    raw = raw_config()
    raw["buying_groups"]["templates"][0]["roles"][1]["where"] = {"in_segment": "won_accounts"}
    assert "roles[1].where: in_segment 'won_accounts' is an account audience" in refused(raw)


def test_explain_segment_explains_an_accounts_verdict(stitched, tmp_path):
    path = tmp_path / "cdp.yaml"
    path.write_text(yaml.safe_dump(raw_config()))
    segments.evaluate_sandbox(parse_config(raw_config()), stitched, as_of=CLOCK, run_id="run-1")

    def explained(segment: str, **wanted) -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        status = run_explain_segment(segment=segment, config=path, out=out, err=err, **wanted)
        return status, out.getvalue(), err.getvalue()

    # Townsend has won deals but is in the automotive industry: out, at the `not`.
    status, text, err = explained("won_not_automotive", account="Townsend")
    assert (status, err) == (0, ""), err
    assert text.startswith("segment won_not_automotive (won_not_automotive, batch, account audience) in sandbox "
                           "bodea/prod\nevaluated at 2026-11-20T12:00:00Z: the segment's latest evaluation (run run-1)\n"
                           "account 'Townsend': 1 account\n")
    assert "  verdict: OUT -- fails at where.all[1] (not: the inner condition holds)\n" in text
    assert "(evaluation at 2026-11-20T12:00:00Z, run run-1): agrees" in text
    lines = text.split("  conditions:\n")[1].splitlines()
    assert lines[1] == ("      [holds] where.all[0]: in_segment 'won_accounts' -- a current member of 'won_accounts' "
                        "since 2026-11-20T12:00:00Z; in_segment reads the stored membership")
    assert lines[2] == "      [fails] where.all[1]: not -- the inner condition holds"
    assert lines[3] == ("        [holds] where.all[1].not: the account's industry = 'Automotive' -- "
                        "industry is 'Automotive'")
    # In: Townsend's won deals sum to 1.1M and one of its people (p2) is a member of the person segment.
    status, text, _ = explained("big_won_accounts_with_visitors", account="MDM-TOWNSEND")
    assert status == 0 and "  verdict: IN -- the segment's condition holds\n" in text
    assert "sum of amount over the won deals of the account > 1,000,000 -- 1 of 1 account meets it" in text
    assert ("where.all[1]: one of its people: in_segment 'high_value_new_product_visitors' -- "
            "1 of ") in text
    assert "p2@townsend.com (direct, opportunity_role) -- meets it" in text
    assert "p3@townsend.com (direct, opportunity_role) -- does not meet it" in text
    # JSON: the same verdicts, machine-readable; a person condition lists each of the account's people.
    status, text, _ = explained("accounts_with_an_engineer", account="Globex", json_output=True)
    report = json.loads(text)
    (globex,) = report["accounts"]
    assert (status, globex["verdict"], globex["stored"]["agrees"]) == (0, "out", True)
    people = globex["condition"]["evidence"]["people"]
    assert people and not any(p["holds"] for p in people)
    # The wrong kind of member, or an unknown account, is named.
    status, _, err = explained("won_accounts", email="p2@townsend.com")
    assert status == 2 and "is an account audience" in err and "ACCOUNT=" in err
    status, _, err = explained("high_value_new_product_visitors", account="Townsend")
    assert status == 2 and "is a person audience" in err
    status, _, err = explained("won_accounts", account="Initech")
    assert status == 1 and "no account with id, key, MDM id or name 'Initech'" in err
