"""The buying_groups section of the configuration: what it accepts, and each refusal naming its YAML path."""

import copy

import pytest
import yaml

from b2b_cdp.buying_groups import compile_account_audience, compile_role_assignment
from b2b_cdp.config import (DEFAULT_CONFIG_PATH, DEFAULT_ROLES, ROLE_WEIGHTS, AccountAudience, ConfigError,
                            Segment, load_config, parse_config)
from b2b_cdp.segments import compile_segment

TEMPLATE = r"buying_groups\.templates\[0\] \(new_product_committee\)"


@pytest.fixture
def raw():
    return yaml.safe_load(DEFAULT_CONFIG_PATH.read_text())


def roles(raw):
    return raw["buying_groups"]["templates"][0]["roles"]


def interest(raw):
    return raw["buying_groups"]["solution_interests"][0]


def add_segment(raw, segment_id, where, **extra):
    raw["segments"].append({**raw["segments"][0], "id": segment_id, "name": segment_id, "where": where, **extra})


def test_the_shipped_buying_groups():
    bg = load_config().buying_groups
    (template,) = bg.templates
    assert [(r.name, r.weight_value, r.required_for_completeness) for r in template.roles] == [
        ("Decision Maker", 100, True), ("Champion", 80, False), ("Influencer", 80, True),
        ("Practitioner", 60, False), ("Other", 20, False)]
    assert [(s.id, s.template) for s in bg.solution_interests] == [("new_product", "new_product_committee")]
    assert bg.engagement.event_weights == {"Fill Out Form": 5, "Open Email": 0.5}
    assert ROLE_WEIGHTS == {"Trivial": 20, "Minor": 40, "Normal": 60, "Important": 80, "Vital": 100}
    assert DEFAULT_ROLES == ("Decision Maker", "Influencer", "Practitioner", "Executive Steering Committee",
                             "Champion", "Other")


def test_a_configuration_without_buying_groups_is_valid(raw):
    del raw["buying_groups"]
    assert parse_config(raw).buying_groups.solution_interests == []


def test_at_most_twenty_roles_per_template(raw):
    extra = [{"name": f"Custom {i}", "where": {"attribute": {"name": "title", "op": "eq", "value": f"t{i}"}}}
             for i in range(16)]
    roles(raw).extend(extra[:15])
    assert len(parse_config(copy.deepcopy(raw)).buying_groups.templates[0].roles) == 20
    roles(raw).append(extra[15])
    with pytest.raises(ConfigError, match=TEMPLATE + r"\.roles: 21 roles; a template has at most 20"):
        parse_config(raw)


def test_weights_are_among_the_five_names(raw):
    roles(raw)[2]["weight"] = "Huge"
    with pytest.raises(ConfigError, match=TEMPLATE + r"\.roles\[2\]\.weight: unknown weight 'Huge'; use one of "
                                                     r"Trivial \(20\), Minor \(40\), Normal \(60\), Important \(80\), "
                                                     r"Vital \(100\)"):
        parse_config(raw)
    roles(raw)[2]["weight"] = 80   # the number is not the name
    with pytest.raises(ConfigError, match=TEMPLATE + r"\.roles\[2\]\.weight"):
        parse_config(raw)


def test_an_unknown_attribute_in_a_role_condition_names_the_yaml_path(raw):
    roles(raw)[0]["where"]["any"][1] = {"attribute": {"name": "shoe_size", "op": "eq", "value": 42}}
    with pytest.raises(ConfigError, match=TEMPLATE + r"\.roles\[0\]\.where\.any\[1\]: unknown person attribute "
                                                     r"'shoe_size'"):
        parse_config(raw)


def test_an_unknown_segment_in_a_role_condition_is_refused(raw):
    roles(raw)[1]["where"] = {"in_segment": "nope"}
    with pytest.raises(ConfigError, match=TEMPLATE + r"\.roles\[1\]\.where: in_segment 'nope' is not a declared segment"):
        parse_config(raw)


@pytest.mark.parametrize("condition, kind", [
    ({"event": {"type": "Visit Webpage", "within": {"days": 30}}}, "event"),
    ({"account": {"attribute": {"name": "industry", "op": "eq", "value": "Automotive"}}}, "account"),
    ({"buying_group": {"solution_interest": "new_product"}}, "buying_group"),
])
def test_role_conditions_read_person_attributes_and_segment_membership_only(raw, condition, kind):
    roles(raw)[3]["where"] = {"not": condition}
    with pytest.raises(ConfigError, match=TEMPLATE + rf"\.roles\[3\]\.where: a role condition reads person attributes "
                                                     rf"and segment membership .*, not {kind}"):
        parse_config(raw)


def test_a_role_reading_a_segment_that_reads_buying_groups_is_a_cycle(raw):
    add_segment(raw, "complete_groups", {"buying_group": {"solution_interest": "new_product", "complete": True}})
    add_segment(raw, "via_complete", {"in_segment": "complete_groups"})
    roles(raw)[1]["where"] = {"in_segment": "via_complete"}
    with pytest.raises(ConfigError, match=TEMPLATE + r"\.roles\[1\]\.where: in_segment 'via_complete' reads buying "
                                                     r"groups.*cycle"):
        parse_config(raw)


def test_duplicate_role_names_are_refused(raw):
    roles(raw)[4]["name"] = "Champion"
    with pytest.raises(ConfigError, match=TEMPLATE + r"\.roles: roles\[1\] and roles\[4\] are both named 'Champion'"):
        parse_config(raw)


def test_a_template_needs_a_role_required_for_completeness(raw):
    for role in roles(raw):
        role.pop("required_for_completeness", None)
    with pytest.raises(ConfigError, match=TEMPLATE + r"\.roles: no role is required_for_completeness"):
        parse_config(raw)


def test_required_counts_are_positive(raw):
    roles(raw)[0]["required_count"] = 0
    with pytest.raises(ConfigError, match=TEMPLATE + r"\.roles\[0\]\.required_count: Input should be greater than "
                                                     r"or equal to 1"):
        parse_config(raw)


def test_a_solution_interest_names_a_declared_template_and_sandbox(raw):
    interest(raw)["template"] = "nope"
    with pytest.raises(ConfigError, match=r"buying_groups\.solution_interests\[0\] \(new_product\)\.template: "
                                          r"unknown template 'nope'; declared: new_product_committee"):
        parse_config(raw)
    interest(raw).update(template="new_product_committee", sandbox="dev")
    with pytest.raises(ConfigError, match=r"buying_groups\.solution_interests\[0\] \(new_product\): sandbox "
                                          r"bodea/dev is not declared"):
        parse_config(raw)


def test_solution_interest_ids_are_unique(raw):
    raw["buying_groups"]["solution_interests"].append(copy.deepcopy(interest(raw)))
    with pytest.raises(ConfigError, match=r"buying_groups\.solution_interests\[1\]\.id: duplicate id 'new_product'"):
        parse_config(raw)


def test_an_account_audience_has_one_kind(raw):
    interest(raw)["accounts"] = {"all": True, "ids": ["MDM-TOWNSEND"]}
    with pytest.raises(ConfigError, match=r"buying_groups\.solution_interests\[0\] \(new_product\)\.accounts: an "
                                          r"account audience has exactly one of: segment, all: true, ids, where"):
        parse_config(raw)
    interest(raw)["accounts"] = {"where": {"attribute": {"name": "shoe_size", "op": "eq", "value": 1}}}
    with pytest.raises(ConfigError, match=r"solution_interests\[0\] \(new_product\)\.accounts\.where: unknown account "
                                          r"attribute 'shoe_size'"):
        parse_config(raw)


def test_a_buying_group_condition_names_a_declared_solution_interest_and_roles_of_its_template(raw):
    add_segment(raw, "bg", {"all": [{"buying_group": {"solution_interest": "nope", "complete": True}}]})
    with pytest.raises(ConfigError, match=r"segments\[1\] \(bg\)\.where: buying_group solution_interest 'nope' is "
                                          r"not declared under buying_groups\.solution_interests"):
        parse_config(raw)
    raw["segments"][1]["where"] = {"buying_group": {"solution_interest": "new_product", "missing_role": "CFO"}}
    with pytest.raises(ConfigError, match=r"segments\[1\] \(bg\)\.where: buying_group missing_role 'CFO' is not a "
                                          r"role of template 'new_product_committee' \(Decision Maker, Champion, "):
        parse_config(raw)
    raw["segments"][1]["where"] = {"buying_group": {"solution_interest": "new_product", "complet": True}}
    with pytest.raises(ConfigError, match=r"segments\[1\] \(bg\)\.where\.buying_group\.complet: unknown key"):
        parse_config(raw)


def test_a_segment_reading_buying_groups_cannot_stream(raw):
    add_segment(raw, "bg", {"buying_group": {"solution_interest": "new_product"}}, mode="streaming")
    with pytest.raises(ConfigError, match=r"segments\[1\] \(bg\)\.mode: declared streaming, but it reads buying "
                                          r"groups \(multi-entity\)"):
        parse_config(raw)


def test_event_weights_are_not_negative(raw):
    raw["buying_groups"]["engagement"]["event_weights"]["Visit Webpage"] = -1
    with pytest.raises(ConfigError, match=r"buying_groups\.engagement\.event_weights\.Visit Webpage: Input should be "
                                          r"greater than or equal to 0"):
        parse_config(raw)


def test_the_buying_group_condition_compiles_with_bound_values():
    segment = Segment.model_validate({"id": "s", "name": "S", "platform_instance": "p", "sandbox": "x", "where": {
        "buying_group": {"solution_interest": "new_product", "complete": False, "missing_role": "Decision Maker",
                         "role": "Influencer"}}})
    compiled = compile_segment(segment)
    assert "Decision Maker" not in compiled.sql and "new_product" not in compiled.sql
    assert "buying_group_member" in compiled.sql and "= ANY(g.missing_roles)" in compiled.sql
    assert set(compiled.params.values()) == {False, "Decision Maker", "Influencer", "new_product"}


def test_role_assignment_takes_the_first_matching_role_in_one_statement():
    template = load_config().buying_groups.templates[0]
    sql, params = compile_role_assignment(template)
    assert "VP" not in sql and ";" not in sql
    cases = sql[sql.index("CASE WHEN ("):sql.index("END AS role")]
    assert cases.count("WHEN") == 5
    # THEN values in the template's order: the CASE picks the first role whose condition holds.
    names = [params[part.split("%(")[1].split(")s")[0]] for part in cases.split("THEN")[1:]]
    assert names == ["Decision Maker", "Champion", "Influencer", "Practitioner", "Other"]
    assert "WHEN true THEN" in sql   # Other has no condition: everyone else of the account


def test_account_audiences_compile_to_bound_conditions_on_the_account():
    sql, params = compile_account_audience(AccountAudience.model_validate({"ids": ["MDM-TOWNSEND", "acc_1"]}))
    assert "MDM-TOWNSEND" not in sql and params == {"v0": ["MDM-TOWNSEND", "acc_1"]}
    assert "a.mdm_id = ANY(%(v0)s)" in sql
    sql, params = compile_account_audience(AccountAudience.model_validate({"all": True}))
    assert sql.rstrip().endswith("WHERE true") and params == {}
    sql, params = compile_account_audience(AccountAudience.model_validate(
        {"where": {"attribute": {"name": "industry", "op": "in", "value": ["Automotive", "Aerospace"]}}}))
    assert "a.industry = ANY(%(v0)s)" in sql and params == {"v0": ["Automotive", "Aerospace"]}
