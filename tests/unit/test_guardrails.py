"""The configuration guardrails, run as Great Expectations checkpoints."""

import pytest
import yaml

from b2b_cdp import guardrails
from b2b_cdp.config import DEFAULT_CONFIG_PATH, load_config, parse_config


@pytest.fixture
def raw():
    return yaml.safe_load(DEFAULT_CONFIG_PATH.read_text())


def test_the_shipped_configuration_passes():
    outcomes = guardrails.run_config_checkpoints(load_config())
    assert {n: o.success for n, o in outcomes.items()} == {
        "config_topology": True, "config_destination_mappings": True, "config_segments": True}
    guardrails.enforce(outcomes)


def test_one_marketo_feeding_two_platform_instances_is_refused(raw):
    raw["platform_instances"].append({"id": "emea", "sandboxes": ["prod"]})
    raw["sources"][0]["feeds"].append({"platform_instance": "emea", "sandbox": "prod"})
    outcomes = guardrails.run_config_checkpoints(parse_config(raw))
    assert not outcomes["config_topology"].success
    with pytest.raises(guardrails.GuardrailViolation) as err:
        guardrails.enforce(outcomes)
    text = str(err.value)
    assert "One Marketo instance may feed only one platform instance" in text      # the rule
    assert "Marketo 111-AAA-111" in text and "bodea, emea" in text                 # the entry
    assert "Fix: keep one platform_instance" in text                               # the fix


def test_one_marketo_feeding_several_sandboxes_of_one_instance_is_fine(raw):
    raw["platform_instances"][0]["sandboxes"].append("dev")
    raw["sources"][0]["feeds"].append({"platform_instance": "bodea", "sandbox": "dev"})
    assert guardrails.run_config_checkpoints(parse_config(raw))["config_topology"].success


def test_many_platform_instances_may_write_to_one_marketo(raw):
    raw["platform_instances"].append({"id": "emea", "sandboxes": ["prod"]})
    segment = dict(raw["segments"][0], id="emea_segment", platform_instance="emea")
    raw["segments"].append(segment)
    raw["destinations"].append(dict(raw["destinations"][0], id="marketo_111_from_emea", platform_instance="emea",
                                    audiences=[{"segment": "emea_segment", "static_list_id": 9002}]))
    assert all(o.success for o in guardrails.run_config_checkpoints(parse_config(raw)).values())


def test_fifty_mapped_attributes_pass_and_fifty_one_fail(raw):
    mapping = raw["destinations"][0]["mapping"]
    mapping += [{"source": "title", "target": f"field{i}"} for i in range(50 - len(mapping))]
    assert guardrails.run_config_checkpoints(parse_config(raw))["config_destination_mappings"].success
    mapping.append({"source": "company", "target": "field51"})
    outcome = guardrails.run_config_checkpoints(parse_config(raw))["config_destination_mappings"]
    assert not outcome.success
    assert any("At most 50 profile attributes" in v and "marketo_111_aaa_111.mapping (51 attributes)" in v
               for v in outcome.violations)


@pytest.mark.parametrize("attribute, kind", [("source_keys", "array"), ("identity_map", "map")])
def test_array_and_map_typed_attributes_cannot_be_mapped(raw, attribute, kind):
    raw["destinations"][1]["mapping"].append({"source": attribute, "target": "someField"})
    outcome = guardrails.run_config_checkpoints(parse_config(raw))["config_destination_mappings"]
    assert not outcome.success
    assert outcome.violations == [
        f"[config_destination_mappings] rule: Array- and map-typed profile attributes cannot be mapped to "
        f"Marketo person fields. Offending entry: destinations.marketo_222_bbb_222.mapping[3] "
        f"({attribute} -> someField, {kind}-typed). Fix: map a scalar attribute instead, or drop this mapping."]
