"""LinkedIn Matched Audiences activation on Bodea, against the LinkedIn emulator over real HTTP.

The test configuration adds a segment `townsend_people` (p1, p2, p3) and a LinkedIn destination
carrying it and the shipped high_value_new_product_visitors (p2 until the 30-day window drops
their visit), and a second one sending the account audience of the solution interest new_product
(Acme, Globex, Townsend) as a COMPANY segment. Every audience is far under LinkedIn's 300-member
minimum: every run warns.
"""

import json
import logging

import pytest
import requests
import yaml
from emulators import LINKEDIN_ACCESS_TOKEN

from b2b_cdp import activation, linkedin
from b2b_cdp.config import DEFAULT_CONFIG_PATH, ConfigError, load_config, parse_config
from tests.integration.test_activation_cloud_storage import OVER_1M, TOWNSEND
from tests.integration.test_buying_groups import LATER, evaluate
from tests.integration.test_explain import stitched  # noqa: F401  (the fixture)
from tests.integration.test_pipeline_stages import CLOCK, one

EMAILS = {"townsend_people": ["p1@townsend.com", "p2@townsend.com", "p3@townsend.com"],
          "high_value_new_product_visitors": ["p2@townsend.com"]}
AD_ACCOUNT = 508_123_456
# An account audience segment: Townsend ($1.1M stitched across both CRMs) and Acme ($1.5M) qualify.
OVER_1M = {"id": "accounts_over_1m", "name": "Accounts over $1M won", "platform_instance": "bodea",
           "sandbox": "prod", "audience": "account",
           "where": {"opportunities": {"aggregate": "sum", "field": "amount", "won": True, "op": "gt",
                                       "value": 1_000_000}}}


def connect_linkedin(monkeypatch, fleet, token: str = LINKEDIN_ACCESS_TOKEN) -> None:
    """The connection linkedin_ads pointing at the emulator with `token`, retries kept short."""
    monkeypatch.setenv("AIRFLOW_CONN_LINKEDIN_ADS", json.dumps({
        "conn_type": "http", "host": fleet.urls["linkedin:ads"], "login": "cdp-app",
        "password": token, "extra": {"segment_ready_wait": 0.3, "backoff_base": 0.1}}))


@pytest.fixture
def ads(stitched, bodea_fleet, tmp_path, monkeypatch):
    """The test configuration in force, its LinkedIn connection pointing at the emulator; returns
    the emulated LinkedIn (segments visible 0.5 s after creation)."""
    raw = yaml.safe_load(DEFAULT_CONFIG_PATH.read_text())
    raw["segments"].append(TOWNSEND)
    raw["destinations"].append({
        "id": "linkedin_ads", "type": "linkedin", "conn_id": "linkedin_ads", "ad_account_id": AD_ACCOUNT,
        "platform_instance": "bodea", "sandbox": "prod",
        "audiences": [{"segment": "townsend_people", "name": "Townsend people"},
                      {"segment": "high_value_new_product_visitors"}]})
    raw["destinations"].append({
        "id": "linkedin_accounts", "type": "linkedin", "conn_id": "linkedin_ads", "ad_account_id": AD_ACCOUNT,
        "platform_instance": "bodea", "sandbox": "prod",
        "account_audiences": [{"solution_interest": "new_product", "name": "New product accounts"}]})
    raw["segments"].append(OVER_1M)
    raw["destinations"].append({
        "id": "linkedin_account_segment", "type": "linkedin", "conn_id": "linkedin_ads", "ad_account_id": AD_ACCOUNT,
        "platform_instance": "bodea", "sandbox": "prod", "account_audiences": [{"segment": "accounts_over_1m"}]})
    path = tmp_path / "cdp.yaml"
    path.write_text(yaml.safe_dump(raw))
    monkeypatch.setenv("CDP_CONFIG", str(path))
    connect_linkedin(monkeypatch, bodea_fleet)
    emulator = bodea_fleet.instance("linkedin:ads")
    emulator.ready_after_seconds = 0.5
    evaluate(load_config(), stitched, CLOCK)
    return emulator


def hashes(segment: str) -> set[str]:
    return {linkedin.hash_email(e) for e in EMAILS[segment]}


def remote_ids(sandbox) -> dict[str, str]:
    return dict(one(sandbox, "SELECT audience_key, remote_id FROM activation_remote_audience"))


def test_hashing_trims_and_lower_cases():
    # sha256("test@example.com"), lower-case hex
    assert linkedin.hash_email("  Test@Example.COM ") == \
        "973dfe463ec85785f5f95af5ba3906eedb2d931c24e69824a89ea65dba4e813b"


def test_segments_created_members_added_then_no_call_without_change(stitched, ads, caplog):
    caplog.set_level(logging.WARNING, logger="b2b_cdp.linkedin")
    outcome = activation.activate_destination("linkedin_ads", "run-1")
    assert {k: (v["added"], v["removed"], v["skipped"]) for k, v in outcome.items()} == {
        "townsend_people": (3, 0, 0), "high_value_new_product_visitors": (1, 0, 0)}
    ids = remote_ids(stitched)
    assert set(ids) == {"townsend_people", "high_value_new_product_visitors"}
    for segment, remote_id in ids.items():
        assert ads.segment_members(remote_id) == hashes(segment)
        assert ads.segments[int(remote_id)]["type"] == "USER"
    assert ads.segments[int(ids["townsend_people"])]["name"] == "Townsend people"
    # The first users call came inside the not-found window and was retried.
    user_calls = [path for method, path in ads.calls if path.endswith("/users")]
    assert len(user_calls) > 2
    assert sum("under LinkedIn's minimum of 300" in r.getMessage() for r in caplog.records) == 2

    calls = ads.call_count
    again = activation.activate_destination("linkedin_ads", "run-2")
    assert ads.call_count == calls
    assert all(o["api_calls"] == 0 and o["added"] == o["removed"] == 0 for o in again.values())
    assert one(stitched, "SELECT api_calls, added FROM activation_sync_log WHERE destination_id = 'linkedin_ads' "
                         "AND run_id = 'run-2' ORDER BY audience_key") == [(0, 0), (0, 0)]

    # p2 leaves high_value_new_product_visitors: one REMOVE, the DMP segment is reused.
    evaluate(load_config(), stitched, LATER, run_id="run-3")
    later = activation.activate_destination("linkedin_ads", "run-3")
    assert later["high_value_new_product_visitors"]["removed"] == 1
    assert later["townsend_people"]["api_calls"] == 0
    assert remote_ids(stitched) == ids and len(ads.segments) == 2
    assert ads.segment_members(ids["high_value_new_product_visitors"]) == set()


def test_rate_limits_are_waited_out(stitched, ads, bodea_fleet):
    bodea_fleet.inject("linkedin:ads", "rate_limit_burst", count=2)
    outcome = activation.activate_destination("linkedin_ads", "run-1")
    assert outcome["townsend_people"]["added"] == 3
    assert bodea_fleet.faults() == []
    assert ads.segment_members(remote_ids(stitched)["townsend_people"]) == hashes("townsend_people")


def test_a_segment_created_by_a_run_that_died_is_found_not_created_again(stitched, ads):
    client = linkedin.LinkedInClient.from_connection("linkedin_ads")
    orphan = client.create_segment("Townsend people", AD_ACCOUNT, "linkedin_ads.townsend_people")
    activation.activate_destination("linkedin_ads", "run-1")
    assert remote_ids(stitched)["townsend_people"] == orphan
    assert len(ads.segments) == 2


def test_the_emulator_speaks_the_protocol(ads, bodea_fleet):
    base = bodea_fleet.urls["linkedin:ads"] + "/rest"
    headers = {"Authorization": f"Bearer {LINKEDIN_ACCESS_TOKEN}", "LinkedIn-Version": "202505",
               "X-Restli-Protocol-Version": "2.0.0"}
    body = {"name": "x", "account": f"urn:li:sponsoredAccount:{AD_ACCOUNT}", "type": "USER",
            "sourcePlatform": "test", "destinations": [{"destination": "LINKEDIN"}]}
    created = requests.post(f"{base}/dmpSegments", json=body, headers=headers, timeout=5)
    assert created.status_code == 201 and created.content == b""
    segment_id = created.headers["x-restli-id"]
    users = f"{base}/dmpSegments/{segment_id}/users"
    batch = {"elements": [
        {"action": "ADD", "userIds": [{"idType": "SHA256_EMAIL", "idValue": linkedin.hash_email("a@b.com")}]},
        {"action": "ADD", "userIds": [{"idType": "SHA256_EMAIL", "idValue": "a@b.com"}]}]}
    early = requests.post(users, json=batch, headers={**headers, "X-RestLi-Method": "BATCH_CREATE"}, timeout=5)
    assert (early.status_code, early.json()["message"]) == (404, "Could not find DMP segment")
    ads.ready_after_seconds = 0
    # Every element has its own status inside an HTTP 200.
    answer = requests.post(users, json=batch, headers={**headers, "X-RestLi-Method": "BATCH_CREATE"}, timeout=5)
    assert answer.status_code == 200
    assert [e["status"] for e in answer.json()["elements"]] == [201, 400]
    assert requests.post(users, json=batch, headers=headers, timeout=5).status_code == 400   # no BATCH_CREATE
    no_version = {k: v for k, v in headers.items() if k != "LinkedIn-Version"}
    assert requests.post(users, json=batch, headers={**no_version, "X-RestLi-Method": "BATCH_CREATE"},
                         timeout=5).status_code == 426
    assert requests.get(f"{base}/dmpSegments/{segment_id}", timeout=5).status_code == 401
    bodea_fleet.inject("linkedin:ads", "rate_limit_burst", count=1)
    limited = requests.get(f"{base}/dmpSegments/{segment_id}", headers=headers, timeout=5)
    assert (limited.status_code, limited.headers["Retry-After"]) == (429, "1")
    view = requests.get(f"{base}/dmpSegments/{segment_id}", headers=headers, timeout=5).json()
    assert (view["status"], view["inputCount"], view["audienceSize"]) == ("READY", 1, 0)   # under 300: 0
    found = requests.get(f"{base}/dmpSegments", params={"q": "account", "account": body["account"]},
                         headers=headers, timeout=5).json()["elements"]
    assert [str(s["id"]) for s in found] == [segment_id]


def test_an_element_refused_is_recorded_and_retried_next_run(stitched, ads, monkeypatch):
    """An element LinkedIn refuses (here a malformed hash for p3) is skipped with LinkedIn's message,
    not held; the others go through, and the next run sends only the refused one again."""
    good = linkedin.hash_email
    monkeypatch.setattr(linkedin, "hash_email",
                        lambda email: good(email).upper() if email.startswith("p3@") else good(email))
    first = activation.activate_destination("linkedin_ads", "run-1")["townsend_people"]
    assert (first["added"], first["skipped"]) == (2, 1)
    (reason,), = one(stitched, "SELECT reason FROM activation_record_status WHERE destination_id = 'linkedin_ads' "
                               "AND audience_key = 'townsend_people' AND status = 'skipped'")
    assert reason == "400 SHA256_EMAIL must be 64 lower-case hexadecimal digits"
    assert one(stitched, "SELECT count(*) FROM activation_state WHERE destination_id = 'linkedin_ads' "
                         "AND audience_key = 'townsend_people'")[0][0] == 2

    monkeypatch.setattr(linkedin, "hash_email", good)
    second = activation.activate_destination("linkedin_ads", "run-2")["townsend_people"]
    assert (second["added"], second["skipped"], second["api_calls"]) == (1, 0, 1)
    assert ads.segment_members(remote_ids(stitched)["townsend_people"]) == hashes("townsend_people")


def test_website_domains_are_bare_and_companies_need_an_identifying_field():
    assert linkedin.website_domain("https://www.Townsend.com:443/about?x=1") == "townsend.com"
    assert linkedin.website_domain("globex.example") == "globex.example"
    assert linkedin.website_domain("  ") is None
    assert linkedin.company_member(None, None, None) is None
    assert json.loads(linkedin.company_member(" Acme ", "http://www.acme.com/", "urn:li:organization:7")) == {
        "companyName": "Acme", "companyWebsiteDomain": "acme.com", "organizationUrn": "urn:li:organization:7"}


def test_account_audiences_become_company_segments(stitched, ads, caplog):
    caplog.set_level(logging.WARNING, logger="b2b_cdp.linkedin")
    # Townsend's LinkedIn organization is known, by its MDM id; the other two go by name and domain.
    one(stitched, "INSERT INTO activation_organization_urn VALUES ('MDM-TOWNSEND', 'urn:li:organization:1035') "
                  "RETURNING account_key")
    accounts = dict(one(stitched, "SELECT mdm_id, name FROM profile_account"))
    expected = {linkedin.company_member(accounts["MDM-TOWNSEND"], "townsend.com", "urn:li:organization:1035"),
                linkedin.company_member(accounts["MDM-ACME"], "acmerobotics.com", None),
                linkedin.company_member(accounts["MDM-GLOBEX"], "globex.example", None)}

    outcome = activation.activate_destination("linkedin_accounts", "run-1")
    assert outcome == {"accounts__new_product": {"audience_size": 3, "added": 3, "removed": 0, "skipped": 0,
                                                 "api_calls": outcome["accounts__new_product"]["api_calls"]}}
    remote_id = remote_ids(stitched)["accounts__new_product"]
    segment = ads.segments[int(remote_id)]
    assert (segment["type"], segment["name"], segment["sourceSegmentId"]) == (
        "COMPANY", "New product accounts", "linkedin_accounts.accounts__new_product")
    assert ads.segment_members(remote_id) == expected
    assert all(path.endswith("/companies") for _, path in ads.calls if "/dmpSegments/" in path)
    assert any("COMPANY audience accounts__new_product has 3 members" in r.getMessage()
               and "under LinkedIn's minimum of 300" in r.getMessage() for r in caplog.records)

    calls = ads.call_count
    assert activation.activate_destination("linkedin_accounts", "run-2")["accounts__new_product"]["api_calls"] == 0
    assert ads.call_count == calls

    # The URN is withdrawn: Townsend is removed as it was sent and added again without it.
    one(stitched, "DELETE FROM activation_organization_urn RETURNING account_key")
    again = activation.activate_destination("linkedin_accounts", "run-3")["accounts__new_product"]
    assert (again["added"], again["removed"], again["api_calls"]) == (1, 1, 1)
    assert linkedin.company_member(accounts["MDM-TOWNSEND"], "townsend.com", None) in ads.segment_members(remote_id)
    assert len(ads.segment_members(remote_id)) == 3


def test_the_emulator_keeps_users_and_companies_apart(bodea_fleet):
    ads = bodea_fleet.instance("linkedin:ads")
    base = bodea_fleet.urls["linkedin:ads"] + "/rest"
    headers = {"Authorization": f"Bearer {LINKEDIN_ACCESS_TOKEN}", "LinkedIn-Version": "202505",
               "X-Restli-Protocol-Version": "2.0.0", "X-RestLi-Method": "BATCH_CREATE"}
    ads.ready_after_seconds = 0
    body = {"name": "c", "account": f"urn:li:sponsoredAccount:{AD_ACCOUNT}", "type": "COMPANY",
            "sourcePlatform": "test", "destinations": [{"destination": "LINKEDIN"}]}
    company_segment = requests.post(f"{base}/dmpSegments", json=body, headers=headers, timeout=5).headers["x-restli-id"]
    user_segment = requests.post(f"{base}/dmpSegments", json={**body, "type": "USER"}, headers=headers,
                                 timeout=5).headers["x-restli-id"]
    companies = {"elements": [
        {"action": "ADD", "companyName": "Acme", "companyWebsiteDomain": "acme.com"},
        {"action": "ADD", "companyWebsiteDomain": "https://www.acme.com"},
        {"action": "ADD", "organizationUrn": "urn:li:company:1"},
        {"action": "ADD"}]}
    answer = requests.post(f"{base}/dmpSegments/{company_segment}/companies", json=companies, headers=headers,
                           timeout=5)
    assert answer.status_code == 200
    assert [e["status"] for e in answer.json()["elements"]] == [201, 400, 400, 400]
    assert ads.segment_members(company_segment) == {'{"companyName":"Acme","companyWebsiteDomain":"acme.com"}'}
    assert requests.post(f"{base}/dmpSegments/{user_segment}/companies", json=companies, headers=headers,
                         timeout=5).status_code == 400
    assert requests.post(f"{base}/dmpSegments/{company_segment}/users", json={"elements": [
        {"action": "ADD", "userIds": [{"idType": "SHA256_EMAIL", "idValue": linkedin.hash_email("a@b.com")}]}]},
        headers=headers, timeout=5).status_code == 400


def test_an_account_audience_segment_becomes_a_company_segment(stitched, ads):
    accounts = dict(one(stitched, "SELECT mdm_id, name FROM profile_account"))
    outcome = activation.activate_destination("linkedin_account_segment", "run-1")["accounts_over_1m"]
    assert (outcome["audience_size"], outcome["added"], outcome["removed"]) == (2, 2, 0)
    remote_id = remote_ids(stitched)["accounts_over_1m"]
    segment = ads.segments[int(remote_id)]
    assert (segment["type"], segment["name"], segment["sourceSegmentId"]) == (
        "COMPANY", "accounts_over_1m", "linkedin_account_segment.accounts_over_1m")
    assert ads.segment_members(remote_id) == {
        linkedin.company_member(accounts["MDM-TOWNSEND"], "townsend.com", None),
        linkedin.company_member(accounts["MDM-ACME"], "acmerobotics.com", None)}
    assert activation.activate_destination("linkedin_account_segment", "run-2")["accounts_over_1m"]["api_calls"] == 0


def test_account_audiences_name_an_account_audience_segment():
    raw = yaml.safe_load(DEFAULT_CONFIG_PATH.read_text())
    raw["destinations"].append({
        "id": "bad", "type": "linkedin", "conn_id": "linkedin_ads", "ad_account_id": AD_ACCOUNT,
        "platform_instance": "bodea", "sandbox": "prod",
        "account_audiences": [{"segment": "high_value_new_product_visitors"}]})
    with pytest.raises(ConfigError, match=r"account_audiences\[0\]\.segment: 'high_value_new_product_visitors' "
                                          r"is not an account audience"):
        parse_config(raw)
    raw["destinations"][-1]["account_audiences"] = [{"segment": "x", "solution_interest": "new_product"}]
    with pytest.raises(ConfigError, match="exactly one of: segment, solution_interest"):
        parse_config(raw)
