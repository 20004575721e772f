"""Buying groups on Bodea, against the real warehouse and the emulators.

Expected values, worked out by hand from include/scenarios/bodea.yaml and the shipped configuration
(solution interest new_product, template new_product_committee):

- Accounts with a closed-won deal: Townsend ($200k + $900k), Acme ($1.5M), Globex ($950k): 3 groups.
- Primary accounts: p1, p2, p3 -> Townsend; a1 -> Acme; g1 -> Globex; lurker has none.
- Roles, first match in priority order (Decision Maker, Champion, Influencer, Practitioner, Other):
  p2 "VP Engineering" matches Decision Maker, Champion (member of high_value_new_product_visitors)
  and Practitioner ("Engineer"): Decision Maker. p1 "Director of IT": Influencer. p3 "Procurement
  Manager": Practitioner. a1 "CTO": Other. g1 "Head of Operations": Influencer.
- Completeness over the required roles (Decision Maker 1, Influencer 1): Townsend (1, 1) 100,
  Acme (0, 0) 0, Globex (0, 1) 50.
- Engagement, window (2026-10-21 12:00, 2026-11-20 12:00]: p2 (Vital, x1.0) Visit Webpage 10-25 (1)
  + Fill Out Form 10-26 (5) + Open Email 11-03 (0.5) = 6.5; p1 (Important, x0.8) Visit Webpage 11-02
  = 0.8; p3's visit (09-10) is older. Townsend 7.3 points -> 100 * sqrt(7.3 / 100) = 27.02.
  a1's only visit is of 08-01: Acme 0. g1 (Important) visit 11-05: 0.8 -> 100 * sqrt(0.008) = 8.94.
"""

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
import yaml

from b2b_cdp import buying_groups, segments, warehouse
from b2b_cdp.config import DEFAULT_CONFIG_PATH, PROJECT_ROOT, load_config, parse_config
from tests.integration.test_explain import stitched  # noqa: F401  (the fixture)
from tests.integration.test_pipeline_stages import CLOCK, one

LATER = datetime(2026, 12, 30, tzinfo=timezone.utc)   # p2's visit is out of the segment's 30 days

GROUPS = """
SELECT a.mdm_id, g.members, g.completeness, g.complete, g.missing_roles, g.engagement_points, g.engagement,
       g.dissolved_at IS NULL
FROM buying_group g JOIN profile_account a USING (account_id)
WHERE g.solution_interest = 'new_product' ORDER BY a.mdm_id
"""
MEMBERS = """
SELECT a.mdm_id, p.email, m.role
FROM buying_group_member m JOIN buying_group g USING (group_id)
JOIN profile_account a USING (account_id) JOIN profile_person p USING (person_id)
WHERE m.exited_at IS NULL ORDER BY a.mdm_id, p.email
"""
EXPECTED_MEMBERS = [
    ("MDM-ACME", "a1@acmerobotics.com", "Other"),
    ("MDM-GLOBEX", "g1@globex.example", "Influencer"),
    ("MDM-TOWNSEND", "p1@townsend.com", "Influencer"),
    ("MDM-TOWNSEND", "p2@townsend.com", "Decision Maker"),
    ("MDM-TOWNSEND", "p3@townsend.com", "Practitioner"),
]


def raw_config() -> dict:
    return yaml.safe_load(DEFAULT_CONFIG_PATH.read_text())


def evaluate(cfg, sandbox, as_of, run_id="run-1"):
    """The daily run's order: segments not reading buying groups, the groups, then their readers."""
    readers = cfg.segments_reading_buying_groups()
    before = {s.id for s in cfg.segments} - readers
    segments.evaluate_sandbox(cfg, sandbox, as_of=as_of, run_id=run_id, segment_ids=before)
    result = buying_groups.evaluate_sandbox(cfg, sandbox, as_of=as_of, run_id=run_id)
    after = segments.evaluate_sandbox(cfg, sandbox, as_of=as_of, run_id=run_id, segment_ids=readers)
    return result, after


@pytest.fixture
def sandbox(stitched):
    """Bodea ingested and stitched through the real pipeline."""
    return stitched


def test_bodea_groups_roles_and_scores(sandbox):
    result, _ = evaluate(load_config(), sandbox, CLOCK)
    assert result == {"solution_interests": {"new_product": {"groups": 3, "complete": 1, "members": 5, "entered": 5,
                                                             "exited": 0, "dissolved": 0}},
                      "entered": 5, "exited": 0, "dissolved": 0}
    assert one(sandbox, MEMBERS) == EXPECTED_MEMBERS
    assert one(sandbox, GROUPS) == [
        ("MDM-ACME", 1, Decimal("0.00"), False, ["Decision Maker", "Champion", "Influencer", "Practitioner"],
         Decimal("0"), Decimal("0.00"), True),
        ("MDM-GLOBEX", 1, Decimal("50.00"), False, ["Decision Maker", "Champion", "Practitioner", "Other"],
         Decimal("0.8"), Decimal("8.94"), True),
        ("MDM-TOWNSEND", 3, Decimal("100.00"), True, ["Champion", "Other"],
         Decimal("7.3"), Decimal("27.02"), True),
    ]
    # The lurker has no account; every group id is <solution interest>/<account id>.
    assert one(sandbox, "SELECT count(*) FROM buying_group WHERE group_id <> solution_interest || '/' || account_id")[0][0] == 0
    assert one(sandbox, "SELECT DISTINCT evaluated_at FROM buying_group") == [(CLOCK,)]

    # Re-running the same day changes nothing and keeps one score row per group and day.
    again, _ = evaluate(load_config(), sandbox, CLOCK, run_id="run-1b")
    assert (again["entered"], again["exited"], again["dissolved"]) == (0, 0, 0)
    assert one(sandbox, "SELECT count(*) FROM buying_group_score")[0][0] == 3
    assert one(sandbox, MEMBERS) == EXPECTED_MEMBERS


def test_each_activity_type_counts_at_most_twenty_times_per_member_and_day(sandbox):
    """25 more page visits by p1 on one day add 19 (the 20 allowed minus the one already there), 3
    the next day add 3; p1 is an Influencer (Important, x0.8): Townsend's 7.3 points become
    7.3 + 0.8 * 22 = 24.9, i.e. 100 * sqrt(0.249) = 49.90."""
    (p1_record,), = one(sandbox, "SELECT m.record_key FROM identity_record_person m JOIN profile_person p "
                                 "USING (person_id) WHERE p.email = 'p1@townsend.com' "
                                 "AND m.record_key LIKE '%.Marketo'")
    with warehouse.connect(sandbox) as conn:
        for i, at in enumerate([datetime(2026, 11, 2, 8, tzinfo=timezone.utc) + timedelta(minutes=k)
                                for k in range(25)]
                               + [datetime(2026, 11, 3, 8, tzinfo=timezone.utc) + timedelta(minutes=k)
                                  for k in range(3)]):
            conn.execute("INSERT INTO core_event (source_key, instance, person_key, activity_type_id, event_type, "
                         "occurred_at, extracted_at) VALUES (%s, '111-AAA-111', %s, 1, 'Visit Webpage', %s, %s)",
                         (f"extra-{i}", p1_record, at, CLOCK))
    evaluate(load_config(), sandbox, CLOCK)
    townsend = [row for row in one(sandbox, GROUPS) if row[0] == "MDM-TOWNSEND"][0]
    assert (townsend[5], townsend[6]) == (Decimal("24.9"), Decimal("49.90"))


def test_priority_order_list_membership_and_history(sandbox):
    """With Champion ranked above Decision Maker, p2 (a member of high_value_new_product_visitors)
    is Townsend's Champion and Townsend lacks a Decision Maker (completeness 50). Forty days later
    p2 has left the segment: p2's Champion row closes, a Decision Maker row opens, Townsend is
    complete again, and every score of both days is kept."""
    raw = raw_config()
    roles = raw["buying_groups"]["templates"][0]["roles"]
    roles[0], roles[1] = roles[1], roles[0]
    cfg = parse_config(raw)
    evaluate(cfg, sandbox, CLOCK)
    townsend = [row for row in one(sandbox, GROUPS) if row[0] == "MDM-TOWNSEND"][0]
    assert (townsend[2], townsend[3], townsend[4]) == (Decimal("50.00"), False, ["Decision Maker", "Other"])
    assert ("MDM-TOWNSEND", "p2@townsend.com", "Champion") in one(sandbox, MEMBERS)

    result, _ = evaluate(cfg, sandbox, LATER, run_id="run-2")
    assert (result["entered"], result["exited"]) == (1, 1)
    assert one(sandbox, "SELECT m.role, m.entered_at, m.exited_at FROM buying_group_member m "
                        "JOIN profile_person p USING (person_id) WHERE p.email = 'p2@townsend.com' "
                        "ORDER BY m.entered_at") == [("Champion", CLOCK, LATER), ("Decision Maker", LATER, None)]
    history = one(sandbox, "SELECT s.evaluated_at, s.completeness, s.engagement FROM buying_group_score s "
                           "JOIN buying_group g USING (group_id) JOIN profile_account a USING (account_id) "
                           "WHERE a.mdm_id = 'MDM-TOWNSEND' ORDER BY 1")
    # Nothing happened in the 30 days before LATER: engagement 0. (At CLOCK p2 weighs as a Champion,
    # Important x0.8: 6.5 * 0.8 + 0.8 = 6.0 points -> 24.49.)
    assert history == [(CLOCK, Decimal("50.00"), Decimal("24.49")), (LATER, Decimal("100.00"), Decimal("0.00"))]


def test_groups_of_accounts_leaving_the_audience_dissolve(sandbox):
    """An account audience given as a list of ids (here an MDM id): the next day only Townsend's group
    is live; Acme's and Globex's dissolve and their members exit."""
    evaluate(load_config(), sandbox, CLOCK)
    raw = raw_config()
    raw["buying_groups"]["solution_interests"][0]["accounts"] = {"ids": ["MDM-TOWNSEND"]}
    result, _ = evaluate(parse_config(raw), sandbox, CLOCK + timedelta(days=1), run_id="run-2")
    assert (result["dissolved"], result["exited"], result["entered"]) == (2, 2, 0)
    assert result["solution_interests"]["new_product"] == {"groups": 1, "complete": 1, "members": 3, "entered": 0,
                                                           "exited": 2, "dissolved": 2}
    assert [(row[0], row[7]) for row in one(sandbox, GROUPS)] == [
        ("MDM-ACME", False), ("MDM-GLOBEX", False), ("MDM-TOWNSEND", True)]
    assert [row[0] for row in one(sandbox, MEMBERS)] == ["MDM-TOWNSEND"] * 3


def test_the_checkpoint_after_formation_passes_then_names_each_broken_rule(sandbox):
    cfg = load_config()
    evaluate(cfg, sandbox, CLOCK)
    outcome = buying_groups.check_results(cfg, sandbox, "run-1")
    assert (outcome.success, outcome.violations) == (True, [])
    assert one(sandbox, "SELECT checkpoint, success FROM ops_checkpoint_result WHERE run_id = 'run-1' "
                        "AND checkpoint LIKE 'buying_groups%%'") == [("buying_groups__cdp_bodea_prod", True)]

    group = "new_product/" + one(sandbox, "SELECT account_id FROM profile_account WHERE mdm_id = 'MDM-GLOBEX'")[0][0]
    with warehouse.connect(sandbox) as conn:
        conn.execute("UPDATE buying_group SET completeness = 150, complete = true, members = 9 WHERE group_id = %s",
                     (group,))
        conn.execute("UPDATE buying_group_member SET role = 'Janitor' WHERE group_id = %s", (group,))
    raw = raw_config()
    raw["buying_groups"]["solution_interests"][0]["accounts"] = {"ids": ["MDM-TOWNSEND", "MDM-GLOBEX"]}
    outcome = buying_groups.check_results(parse_config(raw), sandbox, "run-2")
    acme = "new_product/" + one(sandbox, "SELECT account_id FROM profile_account WHERE mdm_id = 'MDM-ACME'")[0][0]
    g1 = one(sandbox, "SELECT person_id FROM profile_person WHERE email = 'g1@globex.example'")[0][0]
    assert not outcome.success
    assert outcome.violations == [
        f"completeness and engagement within 0..100: 1 violation(s), e.g. {group}",
        f"each member holds one role of the template per group: 1 violation(s), e.g. {group} {g1}",
        f"complete exactly when every required role has its required count: 1 violation(s), e.g. {group}",
        f"a group's member count is its open members: 1 violation(s), e.g. {group}",
        f"every live group's account is in its solution interest's account audience: 1 violation(s), e.g. {acme}",
    ]


def test_audiences_of_complete_groups_and_of_groups_missing_a_role_are_segments(sandbox):
    raw = raw_config()
    base = {k: v for k, v in raw["segments"][0].items() if k not in ("id", "name", "where", "description")}
    raw["segments"] += [
        {**base, "id": "complete_new_product_groups", "name": "Complete",
         "where": {"buying_group": {"solution_interest": "new_product", "complete": True}}},
        {**base, "id": "new_product_groups_missing_a_decision_maker", "name": "No decision maker",
         "where": {"buying_group": {"solution_interest": "new_product", "missing_role": "Decision Maker"}}},
        {**base, "id": "influencers_of_incomplete_groups", "name": "Influencers",
         "where": {"buying_group": {"solution_interest": "new_product", "complete": False, "role": "Influencer"}}},
        # Reads buying groups through in_segment: also evaluated after the groups.
        {**base, "id": "no_decision_maker_and_subscribed", "name": "Subscribed",
         "where": {"all": [{"in_segment": "new_product_groups_missing_a_decision_maker"},
                           {"attribute": {"name": "unsubscribed", "op": "eq", "value": False}}]}},
    ]
    cfg = parse_config(raw)
    assert cfg.segments_reading_buying_groups() == {
        "complete_new_product_groups", "new_product_groups_missing_a_decision_maker",
        "influencers_of_incomplete_groups", "no_decision_maker_and_subscribed"}
    _, after = evaluate(cfg, sandbox, CLOCK)
    assert {k: v["members"] for k, v in after.items()} == {
        "complete_new_product_groups": 3, "new_product_groups_missing_a_decision_maker": 2,
        "influencers_of_incomplete_groups": 1, "no_decision_maker_and_subscribed": 2}
    members = one(sandbox, "SELECT m.segment_id, p.email FROM audience_membership m JOIN profile_person p "
                           "USING (person_id) WHERE m.exited_at IS NULL ORDER BY 1, 2")
    assert members == [
        ("complete_new_product_groups", "p1@townsend.com"),
        ("complete_new_product_groups", "p2@townsend.com"),
        ("complete_new_product_groups", "p3@townsend.com"),
        ("high_value_new_product_visitors", "p2@townsend.com"),
        ("influencers_of_incomplete_groups", "g1@globex.example"),
        ("new_product_groups_missing_a_decision_maker", "a1@acmerobotics.com"),
        ("new_product_groups_missing_a_decision_maker", "g1@globex.example"),
        ("no_decision_maker_and_subscribed", "a1@acmerobotics.com"),
        ("no_decision_maker_and_subscribed", "g1@globex.example"),
    ]


def segmentation_daily(raw: dict, tmp_path, monkeypatch):
    """The segmentation_daily DAG as parsed with this configuration."""
    from airflow.dag_processing.dagbag import DagBag

    path = tmp_path / "cdp.yaml"
    path.write_text(yaml.safe_dump(raw))
    monkeypatch.setenv("CDP_CONFIG", str(path))
    bag = DagBag(dag_folder=str(PROJECT_ROOT / "dags" / "segmentation.py"))
    assert bag.import_errors == {}
    return bag.dags["segmentation_daily"]


def test_the_daily_dag_forms_groups_after_the_segments_and_before_their_readers(tmp_path, monkeypatch):
    raw = raw_config()
    raw["segments"].append({**raw["segments"][0], "id": "complete_groups", "name": "Complete",
                            "where": {"buying_group": {"solution_interest": "new_product", "complete": True}}})
    dag = segmentation_daily(raw, tmp_path, monkeypatch)
    groups = dag.get_task("buying_groups__cdp_bodea_prod")
    assert groups.upstream_task_ids == {"evaluate__cdp_bodea_prod"}
    after = dag.get_task("evaluate_after_buying_groups__cdp_bodea_prod")
    check = dag.get_task("check_buying_groups__cdp_bodea_prod")
    assert check.upstream_task_ids == {"buying_groups__cdp_bodea_prod"}
    assert {o.name for o in check.outlets} == {"cdp.buying_groups.new_product"}
    assert after.upstream_task_ids == {"check_buying_groups__cdp_bodea_prod"}
    assert {o.name for o in after.outlets} == {"cdp.audience.complete_groups"}
    assert {o.name for o in dag.get_task("evaluate__cdp_bodea_prod").outlets} == {
        "cdp.audience.high_value_new_product_visitors"}


def test_the_checked_formation_emits_one_asset_event_per_solution_interest(sandbox, tmp_path, monkeypatch):
    from collections import defaultdict
    from types import SimpleNamespace

    from b2b_cdp.orchestration import buying_group_asset

    dag = segmentation_daily(raw_config(), tmp_path, monkeypatch)
    formed, _ = evaluate(load_config(), sandbox, CLOCK)
    events = defaultdict(SimpleNamespace)
    check = dag.get_task("check_buying_groups__cdp_bodea_prod").python_callable
    assert check(formed, outlet_events=events, params={}, run_id="run-1") == {"success": True, "violations": []}
    assert events[buying_group_asset("new_product")].extra == {
        "groups": 3, "complete": 1, "members": 5, "entered": 5, "exited": 0, "dissolved": 0}
