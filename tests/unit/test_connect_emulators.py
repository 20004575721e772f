"""connect_emulators (`make demo`, `make up`): every connection the configuration names points at an
emulator, LinkedIn destinations' included (with the emulator's access token, not client credentials)."""

import json
import os

import yaml
from emulators import LINKEDIN_ACCESS_TOKEN

from b2b_cdp.config import DEFAULT_CONFIG_PATH
from b2b_cdp.demo import connect_emulators

URLS = {"marketo:111-AAA-111": "http://127.0.0.1:1", "marketo:222-BBB-222": "http://127.0.0.1:2",
        "salesforce:00D000000000001AAA": "http://127.0.0.1:3", "salesforce:00D000000000002AAA": "http://127.0.0.1:4",
        "linkedin:ads": "http://127.0.0.1:5", "dropzone": "file:///tmp/cdp-test-dropzone"}


def test_a_linkedin_destination_gets_the_emulators_token(tmp_path, monkeypatch):
    raw = yaml.safe_load(DEFAULT_CONFIG_PATH.read_text())
    raw["destinations"].append({
        "id": "linkedin_ads", "type": "linkedin", "conn_id": "linkedin_ads", "ad_account_id": 508_123_456,
        "platform_instance": "bodea", "sandbox": "prod",
        "audiences": [{"segment": "high_value_new_product_visitors"}]})
    (tmp_path / "cdp.yaml").write_text(yaml.safe_dump(raw))
    monkeypatch.setenv("CDP_CONFIG", str(tmp_path / "cdp.yaml"))
    # Set through monkeypatch first, so that what connect_emulators writes is undone after the test.
    for name in ("CDP_DROPZONE", *(f"AIRFLOW_CONN_{conn_id}" for conn_id in (
            "MARKETO_111_AAA_111", "MARKETO_222_BBB_222", "SALESFORCE_CRM1", "SALESFORCE_CRM2", "LINKEDIN_ADS"))):
        monkeypatch.setenv(name, "")

    connect_emulators(URLS, "client", "secret")

    linkedin = json.loads(os.environ["AIRFLOW_CONN_LINKEDIN_ADS"])
    assert (linkedin["host"], linkedin["password"]) == ("http://127.0.0.1:5", LINKEDIN_ACCESS_TOKEN)
    assert json.loads(os.environ["AIRFLOW_CONN_MARKETO_111_AAA_111"])["login"] == "client"
