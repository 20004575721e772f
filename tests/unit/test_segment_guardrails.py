"""The segmentation guardrails (checkpoint config_segments): per sandbox at most 4,000 segments, 500
streaming segments and 50 account audiences; conditions nested at most 5 all/any/not deep; at most 50
values in one condition. Each violation names the YAML path, what is wrong and the fix."""

import pytest
import yaml

from b2b_cdp import guardrails
from b2b_cdp.config import DEFAULT_CONFIG_PATH, ConfigError, load_config, parse_config

VP = {"attribute": {"name": "title", "op": "contains", "value": "VP"}}


@pytest.fixture
def raw():
    return yaml.safe_load(DEFAULT_CONFIG_PATH.read_text())


def segment(segment_id: str, where: dict, *, mode: str = "batch", sandbox: str = "prod") -> dict:
    return {"id": segment_id, "name": segment_id, "platform_instance": "bodea", "sandbox": sandbox,
            "mode": mode, "where": where}


def segment_outcome(raw: dict) -> guardrails.CheckpointOutcome:
    return guardrails.run_config_checkpoints(parse_config(raw))["config_segments"]


def nested(depth: int) -> dict:
    """`depth` containers nested in one another (all, any, not, all, ...) around one attribute condition."""
    cond = VP
    for level in reversed(range(depth)):
        kind = ("all", "any", "not")[level % 3]
        cond = {"not": cond} if kind == "not" else {kind: [VP, cond] if level % 2 else [cond]}
    return cond


def test_the_shipped_configuration_passes_the_segment_checkpoint():
    outcome = guardrails.run_config_checkpoints(load_config())["config_segments"]
    assert (outcome.success, outcome.violations) == (True, [])


def test_4000_segments_per_sandbox_pass_and_4001_fail(raw):
    raw["segments"] += [segment(f"s{i}", VP) for i in range(3999)]
    assert segment_outcome(raw).success
    raw["segments"].append(segment("one_too_many", VP))
    outcome = segment_outcome(raw)
    assert outcome.violations == [
        "[config_segments] rule: At most 4,000 segments per sandbox. Offending entry: sandbox bodea/prod: "
        "4,001 segments; segments[4000] (one_too_many) is the 4,001st. Fix: remove or merge segments until "
        "4,000 or fewer remain in this sandbox (segments that differ only in a value can often be one segment "
        "with an in list), or move some to another sandbox."]


def test_the_segment_limit_is_per_sandbox(raw):
    raw["platform_instances"][0]["sandboxes"].append("dev")
    raw["segments"] += [segment(f"p{i}", VP) for i in range(3000)]
    raw["segments"] += [segment(f"d{i}", VP, sandbox="dev", mode="streaming") for i in range(400)]
    raw["segments"] += [segment(f"q{i}", VP, mode="streaming") for i in range(400)]
    assert segment_outcome(raw).success     # 3,401 + 400 segments; 400 + 400 streaming


def test_500_streaming_segments_per_sandbox_pass_and_501_fail(raw):
    raw["segments"] += [segment(f"s{i}", VP, mode="streaming") for i in range(500)]
    assert segment_outcome(raw).success
    raw["segments"].append(segment("live_one_too_many", VP, mode="streaming"))
    outcome = segment_outcome(raw)
    assert not outcome.success
    (violation,) = outcome.violations
    assert violation.startswith("[config_segments] rule: At most 500 streaming segments per sandbox. "
                                "Offending entry: sandbox bodea/prod: 501 streaming segments; "
                                "segments[501] (live_one_too_many).mode is the 501st. Fix: declare")
    assert "mode: batch" in violation


def test_50_account_audiences_per_sandbox_pass_and_51_fail(raw):
    """Account audience segments and the solution interests' inline accounts count; an interest naming
    an account audience segment reuses it and does not count again."""
    interest = raw["buying_groups"]["solution_interests"][0]
    won = {"opportunities": {"aggregate": "count", "won": True, "op": "gte", "value": 1}}
    raw["segments"] += [dict(segment(f"accounts_{i}", won), audience="account") for i in range(30)]
    raw["buying_groups"]["solution_interests"] += [
        dict(interest, id=f"interest_{i}", accounts={"all": True}) for i in range(19)]
    raw["buying_groups"]["solution_interests"] += [
        dict(interest, id=f"named_{i}", accounts={"segment": "accounts_0"}) for i in range(5)]
    assert segment_outcome(raw).success          # 30 segments + 20 inline
    raw["segments"].append(dict(segment("accounts_one_too_many", won), audience="account"))
    outcome = segment_outcome(raw)
    (violation,) = outcome.violations
    assert "rule: At most 50 account audiences per sandbox (segments with audience: account, and the inline " \
           "accounts of each buying-group solution interest)" in violation
    assert ("Offending entry: sandbox bodea/prod: 51 account audiences; "
            "buying_groups.solution_interests[19] (interest_18).accounts is the 51st.") in violation
    assert "accounts: {segment: <id>}" in violation


def test_account_audience_conditions_count_depth_and_values_through_person(raw):
    stages = {"opportunities": {"aggregate": "count", "stages": [f"s{i}" for i in range(50)], "op": "gte", "value": 1}}
    raw["segments"].append(dict(segment("deep_accounts", {"all": [{"person": {"any": [{"not": nested(4)}]}}]}),
                                audience="account"))
    raw["segments"].append(dict(segment("wide_accounts", stages), audience="account"))
    outcome = segment_outcome(raw)
    assert [v.split(" Fix:")[0] for v in outcome.violations] == [
        "[config_segments] rule: Conditions nest at most 5 all/any/not deep. Offending entry: "
        "segments[1] (deep_accounts).where.all[0].person.any[0].not.all[0].any[1].not: all/any/not nested 7 "
        "deep (all > any > not > all > any > not > all).",
        "[config_segments] rule: At most 50 values in one condition (an in or not_in list, an opportunity "
        "condition's stages, an event condition's filters together). Offending entry: "
        "segments[2] (wide_accounts).where.opportunities: 51 values (value 1, stages 50)."]


def test_conditions_nest_five_deep_but_not_six(raw):
    raw["segments"].append(segment("five_deep", nested(5)))
    assert segment_outcome(raw).success
    raw["segments"].append(segment("six_deep", {"any": [VP, {"all": [VP, nested(5)]}]}))
    raw["buying_groups"]["templates"][0]["roles"][3]["where"] = nested(6)
    outcome = segment_outcome(raw)
    assert outcome.violations == [
        "[config_segments] rule: Conditions nest at most 5 all/any/not deep. Offending entry: "
        "segments[2] (six_deep).where.any[1].all[1].all[0].any[1].not.all[1]: all/any/not nested 7 deep "
        "(any > all > all > any > not > all > any). Fix: flatten the nesting (an all directly inside an all "
        "is one all, likewise any; a not over an any is an all of nots), or move an inner part into a "
        "segment of its own and refer to it with in_segment.",
        "[config_segments] rule: Conditions nest at most 5 all/any/not deep. Offending entry: "
        "buying_groups.templates[0] (new_product_committee).roles[3].where.all[0].any[1].not.all[1].any[0]: "
        "all/any/not nested 6 deep (all > any > not > all > any > not). Fix: flatten the nesting (an all "
        "directly inside an all is one all, likewise any; a not over an any is an all of nots), or move an "
        "inner part into a segment of its own and refer to it with in_segment."]


def test_fifty_values_in_one_condition_pass_and_fifty_one_fail(raw):
    stages = [f"Stage {i}" for i in range(49)]
    deals = {"account": {"opportunities": {"aggregate": "count", "stages": stages, "op": "gte", "value": 1}}}
    urls = {"event": {"type": "Visit Webpage", "within": {"days": 7}, "where": [
        {"field": "url", "op": "in", "value": [f"/page{i}" for i in range(30)]},
        {"field": "primary_value", "op": "not_in", "value": [f"v{i}" for i in range(20)]}]}}
    raw["segments"].append(segment("fifty_values", {"all": [deals, urls]}))
    assert segment_outcome(raw).success         # 49 stages + the count's value; 30 + 20 URL filter values
    stages.append("Stage 49")
    urls["event"]["where"][1]["value"].append("v20")
    outcome = segment_outcome(raw)
    fix = ("Fix: split the values over several conditions of at most 50 each under an any, or match a "
           "pattern (starts_with, contains) instead of listing the values.")
    rule = ("[config_segments] rule: At most 50 values in one condition (an in or not_in list, an "
            "opportunity condition's stages, an event condition's filters together). Offending entry: ")
    assert outcome.violations == [
        rule + "segments[1] (fifty_values).where.all[0].account.opportunities: 51 values (value 1, stages 50). " + fix,
        rule + "segments[1] (fifty_values).where.all[1].event: 51 values (where[0].value 30, where[1].value 21). "
        + fix]


def test_an_in_list_over_fifty_is_refused_already_when_the_configuration_is_read(raw):
    """A single list over the limit never reaches the checkpoint: the configuration loader refuses it."""
    raw["segments"].append(segment("long_list", {"attribute": {
        "name": "title", "op": "in", "value": [f"title {i}" for i in range(51)]}}))
    with pytest.raises(ConfigError, match=r"segments\[1\] \(long_list\)\.where\.attribute: "
                                          r"51 values in one condition; at most 50"):
        parse_config(raw)


def test_an_in_list_built_in_code_is_caught_by_the_checkpoint(raw):
    """Configurations assembled in code can skip the loader's validation; the checkpoint still counts."""
    cfg = parse_config(raw)
    seg = cfg.segments[0]
    event = seg.where.all_[1]
    long_filter = event.event.where[0].model_copy(update={"op": "in", "value": [f"/p{i}" for i in range(51)]})
    where = seg.where.model_copy(update={"all_": [seg.where.all_[0], event.model_copy(update={
        "event": event.event.model_copy(update={"where": [long_filter]})})]})
    cfg = cfg.model_copy(update={"segments": [seg.model_copy(update={"where": where})]})
    outcome = guardrails.run_config_checkpoints(cfg)["config_segments"]
    (violation,) = outcome.violations
    assert ("Offending entry: segments[0] (high_value_new_product_visitors).where.all[1].event: 51 values "
            "(where[0].value 51).") in violation


def test_violations_stop_the_dag_with_every_message(raw):
    raw["segments"].append(segment("six_deep", nested(6)))
    raw["segments"] += [segment(f"s{i}", VP, mode="streaming") for i in range(501)]
    outcomes = guardrails.run_config_checkpoints(parse_config(raw))
    assert outcomes["config_topology"].success and not outcomes["config_segments"].success
    with pytest.raises(guardrails.GuardrailViolation) as err:
        guardrails.enforce(outcomes)
    text = str(err.value)
    assert "501 streaming segments" in text and "segments[1] (six_deep).where" in text
