import copy

import pytest
import yaml

from b2b_cdp.config import DEFAULT_CONFIG_PATH, ConfigError, load_config, parse_config


@pytest.fixture
def raw():
    return yaml.safe_load(DEFAULT_CONFIG_PATH.read_text())


def test_the_shipped_configuration_is_valid():
    cfg = load_config()
    assert [s.id for s in cfg.segments] == ["high_value_new_product_visitors"]
    assert {s.schema for s in cfg.sandboxes()} == {"cdp_bodea_prod"}


def test_an_unknown_key_is_refused_with_its_path(raw):
    raw["sources"][0]["munchkin"] = "typo"
    with pytest.raises(ConfigError, match=r"sources\[0\] \(marketo_111_aaa_111\)\.munchkin: unknown key"):
        parse_config(raw)


def test_an_unknown_attribute_in_a_segment_names_the_yaml_path(raw):
    raw["segments"][0]["where"]["all"].append({"attribute": {"name": "shoe_size", "op": "eq", "value": 1}})
    with pytest.raises(ConfigError, match=r"segments\[0\] \(high_value_new_product_visitors\)\.where\.all\[2\]"
                                          r".*unknown person attribute 'shoe_size'"):
        parse_config(raw)


def test_too_many_values_in_one_condition_are_refused(raw):
    raw["segments"][0]["where"]["all"].append(
        {"attribute": {"name": "title", "op": "in", "value": [f"t{i}" for i in range(51)]}})
    with pytest.raises(ConfigError, match="51 values in one condition; at most 50"):
        parse_config(raw)


def test_an_unknown_sandbox_is_refused(raw):
    raw["sources"][0]["feeds"] = [{"platform_instance": "bodea", "sandbox": "dev"}]
    with pytest.raises(ConfigError, match=r"sources\[0\]\.feeds\[0\]: sandbox bodea/dev is not declared"):
        parse_config(raw)


def test_a_destination_cannot_carry_an_undeclared_segment(raw):
    raw["destinations"][0]["audiences"][0]["segment"] = "nope"
    with pytest.raises(ConfigError, match=r"destinations\[0\]\.audiences\[0\]\.segment: unknown segment 'nope'"):
        parse_config(raw)


def test_a_multi_entity_segment_declared_streaming_is_refused_with_the_reason(raw):
    raw["segments"][0]["mode"] = "streaming"
    with pytest.raises(ConfigError, match="declared streaming, but it reads accounts or opportunities"):
        parse_config(raw)


def test_a_people_and_recent_events_segment_may_stream(raw):
    seg = copy.deepcopy(raw["segments"][0])
    seg.update(id="recent_visitors", mode="streaming", where={
        "event": {"type": "Visit Webpage", "within": {"hours": 12}}})
    raw["segments"].append(seg)
    assert parse_config(raw).segment("recent_visitors").mode == "streaming"


def test_in_segment_cycles_are_refused(raw):
    base = raw["segments"][0]
    raw["segments"] += [
        {**base, "id": "a", "where": {"in_segment": "b"}},
        {**base, "id": "b", "where": {"in_segment": "a"}},
    ]
    with pytest.raises(ConfigError, match="in_segment cycle"):
        parse_config(raw)


def test_environment_variables_fill_paths(raw, tmp_path, monkeypatch):
    monkeypatch.setenv("CDP_DROPZONE", "s3://bucket/drops")
    path = tmp_path / "cdp.yaml"
    path.write_text(yaml.safe_dump(raw))
    assert load_config(path).source("mdm").path == "s3://bucket/drops/mdm"
