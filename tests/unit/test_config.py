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


MAPPING = [{"source": "email", "target": "email"}, {"source": "first_name", "target": "firstName"},
           {"source": "last_name", "target": "lastName"}, {"source": "title", "target": "title"}]


def lead_creation_config(**changes) -> dict:
    raw = yaml.safe_load(DEFAULT_CONFIG_PATH.read_text())
    raw["destinations"][0] |= {"lead_creation": {"action": "createOnly"}, **changes}
    return raw


def test_lead_creation_configs_are_refused_naming_the_key():
    parse_config(lead_creation_config())          # the shipped mapping has firstName, lastName, email
    with pytest.raises(ConfigError, match=r"destinations\[0\] \(marketo_111_aaa_111\).*lead_creation: Marketo "
                                          r"needs firstName, lastName, email.*no target lastName"):
        parse_config(lead_creation_config(mapping=[{"source": "email", "target": "email"},
                                                   {"source": "first_name", "target": "firstName"}]))
    with pytest.raises(ConfigError, match=r"lead_creation: mapping\[3\] \(source_keys -> keys\) is array typed"):
        parse_config(lead_creation_config(mapping=MAPPING[:3] + [{"source": "source_keys", "target": "keys"}]))
    with pytest.raises(ConfigError, match="lead_creation: mapping has 51 attributes"):
        parse_config(lead_creation_config(mapping=MAPPING[:3] + [
            {"source": "title", "target": f"custom{i}"} for i in range(48)]))
    with pytest.raises(ConfigError, match=r"lead_creation\.action"):
        parse_config(lead_creation_config(lead_creation={"action": "createDuplicate"}))
    with pytest.raises(ConfigError, match=r"match_on\[0\]"):
        parse_config(lead_creation_config(match_on=["lead_id"]))


def test_attribute_updates_need_a_scalar_mapping(raw):
    raw["destinations"][0] |= {"update_attributes": True}
    assert parse_config(raw).destinations[0].update_attributes
    with pytest.raises(ConfigError, match=r"destinations\[0\] \(marketo_111_aaa_111\).*update_attributes: mapping "
                                          r"is empty"):
        parse_config({**raw, "destinations": [raw["destinations"][0] | {"mapping": []}] + raw["destinations"][1:]})
    with pytest.raises(ConfigError, match=r"update_attributes: mapping\[1\] \(identity_map -> ids\) is map typed"):
        parse_config({**raw, "destinations": [raw["destinations"][0] | {"mapping": [
            {"source": "title", "target": "title"}, {"source": "identity_map", "target": "ids"}]}]})


def test_two_audiences_on_one_static_list_are_refused(raw):
    """Each activation removes whoever is not in its own segment from its list."""
    second = copy.deepcopy(raw["destinations"][0]) | {"id": "marketo_again"}
    with pytest.raises(ConfigError, match=r"destinations\[2\]\.audiences\[0\]\.static_list_id: static list 9001 of "
                                          r"Marketo 111-AAA-111 is already destinations\[0\]\.audiences\[0\]'s"):
        parse_config({**raw, "destinations": raw["destinations"] + [second]})
    # The same list id on another instance is another list.
    parse_config({**raw, "destinations": raw["destinations"] + [second | {"munchkin_id": "333-CCC-333"}]})


def test_file_formats_are_csv_or_parquet_each_once(raw):
    base = {"id": "files", "type": "cloud_storage", "path": "/tmp/x", "platform_instance": "bodea", "sandbox": "prod",
            "audiences": [{"segment": "high_value_new_product_visitors"}]}
    assert parse_config({**raw, "destinations": [{**base, "formats": ["parquet", "csv"]}]}).destinations[0].formats == [
        "parquet", "csv"]
    with pytest.raises(ConfigError, match=r"destinations\[0\] \(files\).*formats: each format at most once"):
        parse_config({**raw, "destinations": [{**base, "formats": ["csv", "csv"]}]})
    with pytest.raises(ConfigError, match=r"destinations\[0\] \(files\)\.formats\[1\]"):
        parse_config({**raw, "destinations": [{**base, "formats": ["csv", "json"]}]})


def test_linkedin_account_audiences_name_a_solution_interest(raw):
    base = {"id": "ads", "type": "linkedin", "conn_id": "ads", "ad_account_id": 1, "platform_instance": "bodea",
            "sandbox": "prod"}
    cfg = parse_config({**raw, "destinations": [{**base, "account_audiences": [{"solution_interest": "new_product"}]}]})
    assert [a.solution_interest for a in cfg.destinations[0].account_audiences] == ["new_product"]
    with pytest.raises(ConfigError, match=r"destinations\[0\]\.account_audiences\[0\]\.solution_interest: unknown "
                                          r"solution interest 'nope'"):
        parse_config({**raw, "destinations": [{**base, "account_audiences": [{"solution_interest": "nope"}]}]})
    with pytest.raises(ConfigError, match="a LinkedIn destination needs audiences or account_audiences"):
        parse_config({**raw, "destinations": [base]})


def test_incremental_syncs_run_every_minute_unless_configured_with_a_period_of_the_hour(raw):
    cfg = parse_config(raw)
    assert {s.id: s.sync_schedule for s in cfg.sources if s.type != "mdm"} == {
        "marketo_111_aaa_111": "* * * * *", "marketo_222_bbb_222": "* * * * *",
        "salesforce_crm1": "* * * * *", "salesforce_crm2": "* * * * *", "web_events": "* * * * *"}
    raw["sources"][2]["sync_every_minutes"] = 15
    raw["sources"][5]["sync_every_minutes"] = 60
    cfg = parse_config(raw)
    assert cfg.source("salesforce_crm1").sync_schedule == "*/15 * * * *"
    assert cfg.source("web_events").sync_schedule == "0 * * * *"
    raw["sources"][0]["sync_every_minutes"] = 7
    with pytest.raises(ConfigError, match=r"sources\[0\] \(marketo_111_aaa_111\)\.sync_every_minutes: .*divides the hour"):
        parse_config(raw)
