"""`make demo` end to end: the Bodea scenario through Airflow, twice, then another scenario."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

PROJECT_ROOT = Path(__file__).resolve().parents[2]
BODEA = PROJECT_ROOT / "include" / "scenarios" / "bodea.yaml"
DESTINATIONS = ["marketo_111_aaa_111", "marketo_222_bbb_222"]


def demo(build_dir: Path, scenario: Path, report: Path, **env_overrides) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("AIRFLOW", "CDP_"))}  # a fresh shell: no warehouse configured
    env.update(CDP_BUILD_DIR=str(build_dir), **env_overrides)
    return subprocess.run([sys.executable, "-m", "b2b_cdp", "demo", "--scenario", str(scenario),
                           "--report", str(report)], cwd=PROJECT_ROOT, env=env, capture_output=True,
                          text=True, timeout=600)


@pytest.fixture(scope="module")
def build_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("build")


@pytest.fixture(scope="module")
def first_run(build_dir):
    result = demo(build_dir, BODEA, build_dir / "first.json")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result, json.loads((build_dir / "first.json").read_text())


def test_the_first_demo_finds_exactly_p2_and_both_lists_hold_p2(first_run):
    result, report = first_run
    assert report["scenario"] == "include/scenarios/bodea.yaml"
    assert report["clock"] == "2026-11-20T12:00:00Z"
    assert report["profiles"] == {"persons": 6, "accounts": 3, "excluded": 0}
    assert report["segments"] == {"high_value_new_product_visitors": {"mode": "batch",
                                                                       "members": ["p2@townsend.com"]}}
    for dest in DESTINATIONS:
        got = report["destinations"][dest]
        assert got["type"] == "marketo"
        assert got["members"] == ["p2@townsend.com"]          # read back from Marketo's API
        assert (got["added"], got["removed"]) == (1, 0)
        assert got["api_calls"] == 1   # p2's lead of the instance is in the graph: the list add alone
    assert report["checkpoints"] == {name: {"success": True} for name in (
        "config_destination_mappings", "config_segments", "config_topology", "landing__marketo_111_aaa_111",
        "landing__marketo_222_bbb_222", "landing__salesforce_crm1", "landing__salesforce_crm2",
        "landing__web_events", "identity__cdp_bodea_prod", "buying_groups__cdp_bodea_prod")}
    assert "segment high_value_new_product_visitors (batch): 1 member(s) p2@townsend.com" in result.stdout


def test_a_second_demo_on_the_same_scenario_changes_nothing(first_run, build_dir):
    result = demo(build_dir, BODEA, build_dir / "second.json")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = json.loads((build_dir / "second.json").read_text())
    for dest in DESTINATIONS:
        assert report["destinations"][dest] == {"type": "marketo", "members": ["p2@townsend.com"],
                                                "added": 0, "removed": 0, "api_calls": 0}
    assert report["segments"] == first_run[1]["segments"]


def test_another_scenario_starts_from_clean_state(first_run, build_dir, tmp_path):
    # Townsend's second deal shrinks to $700k: stitched, Townsend has $900k and nobody qualifies.
    data = yaml.safe_load(BODEA.read_text())
    data["marketo"][1]["opportunities"][0]["amount"] = 700000
    data["salesforce"][1]["Opportunity"][0]["Amount"] = 700000
    variant = tmp_path / "bodea-small-deal.yaml"
    variant.write_text(yaml.safe_dump(data))
    result = demo(build_dir, variant, build_dir / "variant.json")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = json.loads((build_dir / "variant.json").read_text())
    assert report["segments"]["high_value_new_product_visitors"]["members"] == []
    for dest in DESTINATIONS:
        # Its own emulator state: the lists filled by the Bodea runs are not this scenario's lists.
        assert report["destinations"][dest] == {"type": "marketo", "members": [], "added": 0,
                                                "removed": 0, "api_calls": 0}


def test_a_refused_topology_stops_the_pipeline_before_data_moves(build_dir, tmp_path):
    config = yaml.safe_load((PROJECT_ROOT / "include" / "config" / "cdp.yaml").read_text())
    config["platform_instances"].append({"id": "emea", "sandboxes": ["prod"]})
    config["sources"][0]["feeds"].append({"platform_instance": "emea", "sandbox": "prod"})
    bad = tmp_path / "cdp.yaml"
    bad.write_text(yaml.safe_dump(config))
    result = demo(build_dir, BODEA, tmp_path / "never.json", CDP_CONFIG=str(bad))
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "One Marketo instance may feed only one platform instance" in output
    assert "Marketo 111-AAA-111 (sources marketo_111_aaa_111) feeds platform instances bodea, emea" in output
    assert "ingest_backfill__marketo_111_aaa_111 ended failed" in output
    assert not (tmp_path / "never.json").exists()
