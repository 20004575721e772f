"""The emulator fleet as a whole: the CLI, the file drops and scenario validation."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlparse

import pytest
import requests

from emulators import EmulatorFleet, load_scenario

BODEA = Path(__file__).resolve().parents[2] / "include" / "scenarios" / "bodea.yaml"


def test_cli_prints_urls_first(tmp_path: Path) -> None:
    process = subprocess.Popen([sys.executable, "-m", "emulators", "--scenario", str(BODEA),
                                "--state-dir", str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        urls = json.loads(process.stdout.readline())
        assert set(urls) == {"marketo:111-AAA-111", "marketo:222-BBB-222", "salesforce:00D000000000001AAA",
                             "salesforce:00D000000000002AAA", "linkedin:ads", "dropzone", "control"}
        assert urls["dropzone"] == (tmp_path / "dropzone").resolve().as_uri()
        versions = requests.get(urls["salesforce:00D000000000001AAA"] + "/services/data/", timeout=5)
        assert versions.status_code == 200
    finally:
        process.terminate()
        assert process.wait(timeout=10) == 0
        process.stdout.close()


def test_fleet_urls_clock_and_mdm_drop(tmp_path: Path) -> None:
    with EmulatorFleet.from_scenario(BODEA, state_dir=tmp_path) as fleet:
        assert fleet.clock.isoformat() == "2026-11-20T12:00:00+00:00"
        assert all(url.startswith("http://127.0.0.1:") for key, url in fleet.urls.items() if key != "dropzone")
        assert len({url for url in fleet.urls.values()}) == 7          # every instance is its own host
        dropzone = Path(urlparse(fleet.urls["dropzone"]).path)
        assert dropzone == (tmp_path / "dropzone").resolve()
        with open(dropzone / "mdm" / "crossref.csv", newline="") as handle:
            rows = list(csv.DictReader(handle))
        assert list(rows[0]) == ["mdm_id", "name", "member_source_key"]
        assert rows[:2] == [
            {"mdm_id": "MDM-TOWNSEND", "name": "Townsend",
             "member_source_key": "001A00000000001AAA@00D000000000001AAA.Salesforce"},
            {"mdm_id": "MDM-TOWNSEND", "name": "Townsend",
             "member_source_key": "001B00000000001AAA@00D000000000002AAA.Salesforce"}]
        assert len(rows) == 4
        assert not (dropzone / "web_events").exists()        # bodea has no web events


def test_web_events_drop_and_temporary_dropzone(tmp_path: Path) -> None:
    scenario = tmp_path / "events.yaml"
    scenario.write_text(
        'clock: "2026-11-20T12:00:00Z"\n'
        "web_events:\n"
        '  - {ecid: "12345678901234567890123456789012345678", email: null,'
        ' timestamp: "2026-11-19T10:00:00Z", url: "https://www.bodea.com/products/new-product"}\n')
    with EmulatorFleet.from_scenario(scenario) as fleet:
        dropzone = Path(urlparse(fleet.urls["dropzone"]).path)
        lines = (dropzone / "web_events" / "events.jsonl").read_text().splitlines()
        assert [json.loads(line)["ecid"] for line in lines] == ["12345678901234567890123456789012345678"]
    assert not dropzone.exists()          # a temporary dropzone goes away with the fleet


@pytest.mark.parametrize("document, message", [
    ('marketo:\n  - {munchkin_id: "111-AAA-111", leadz: []}\n', "marketo[0].leadz: unknown key"),
    ("clok: 2026-01-01T00:00:00Z\n", "clok: unknown key"),
    ('salesforce:\n  - {org_id: "00D000000000001AAA", Contacts: []}\n', "salesforce[0].Contacts: unknown key"),
    ('mdm:\n  accounts:\n    - {mdm_id: M1, name: X, memberz: []}\n', "mdm.accounts[0].memberz: unknown key"),
    ('marketo:\n  - {munchkin_id: "111-AAA-111", leads: [{id: 1}, {id: 1}]}\n',
     "marketo[0].leads[1].id: duplicate"),
])
def test_scenario_structure_is_validated(tmp_path: Path, document: str, message: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(document)
    with pytest.raises(ValueError) as error:
        load_scenario(path)
    assert message in str(error.value)
    with pytest.raises(ValueError):
        EmulatorFleet.from_scenario(path)


def test_cli_sets_the_export_quota(tmp_path: Path) -> None:
    process = subprocess.Popen([sys.executable, "-m", "emulators", "--scenario", str(BODEA),
                                "--marketo-export-quota-mb", "0"], stdout=subprocess.PIPE, text=True)
    try:
        base = json.loads(process.stdout.readline())["marketo:111-AAA-111"]
        token = requests.get(f"{base}/identity/oauth/token", timeout=5, params={
            "grant_type": "client_credentials", "client_id": "cdp-emulator-client",
            "client_secret": "cdp-emulator-secret"}).json()["access_token"]
        refused = requests.post(f"{base}/bulk/v1/leads/export/create.json", timeout=5,
                                headers={"Authorization": f"Bearer {token}"},
                                json={"fields": ["id"], "filter": {"staticListId": 9001}}).json()
        assert refused["success"] is False
        assert refused["errors"] == [{"code": "1029", "message": "Export daily quota exceeded"}]
    finally:
        process.terminate()
        assert process.wait(timeout=10) == 0
        process.stdout.close()
