"""The Salesforce emulator: OAuth client credentials, SOQL query/queryAll, cursor paging, limits."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import requests
import yaml

from emulators import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, EmulatorFleet

BODEA = Path(__file__).resolve().parents[2] / "include" / "scenarios" / "bodea.yaml"
ORG = "00D000000000001AAA"
KEY = f"salesforce:{ORG}"
VERSION = "v62.0"
CREDENTIALS = {"grant_type": "client_credentials", "client_id": DEFAULT_CLIENT_ID,
               "client_secret": DEFAULT_CLIENT_SECRET}


@pytest.fixture
def fleet(tmp_path: Path):
    with EmulatorFleet.from_scenario(BODEA, state_dir=tmp_path / "state") as running:
        yield running


def login(base: str) -> requests.Session:
    response = requests.post(f"{base}/services/oauth2/token", data=CREDENTIALS)
    assert response.status_code == 200, response.text
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {response.json()['access_token']}"
    return session


def query(session: requests.Session, base: str, soql: str, endpoint: str = "query", **headers) -> requests.Response:
    return session.get(f"{base}/services/data/{VERSION}/{endpoint}", params={"q": soql}, headers=headers)


def test_client_credentials_token(fleet) -> None:
    base = fleet.urls[KEY]
    body = requests.post(f"{base}/services/oauth2/token", data=CREDENTIALS).json()
    assert body["access_token"].startswith(f"{ORG}!")
    assert body["instance_url"] == base
    assert body["token_type"] == "Bearer"
    assert body["id"] == f"{base}/id/{ORG}/005000000000001AAA"
    assert body["issued_at"].isdigit() and body["signature"]

    bad = requests.post(f"{base}/services/oauth2/token", data={**CREDENTIALS, "client_secret": "wrong"})
    assert bad.status_code == 400
    assert bad.json() == {"error": "invalid_client", "error_description": "invalid client credentials"}


def test_data_api_needs_a_session(fleet) -> None:
    response = requests.get(f"{fleet.urls[KEY]}/services/data/{VERSION}/query", params={"q": "SELECT Id FROM Contact"})
    assert response.status_code == 401
    assert response.json() == [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]


def test_query_selects_filters_and_orders(fleet) -> None:
    base = fleet.urls[KEY]
    with login(base) as session:
        response = query(session, base, "SELECT Id, Name, amount FROM Opportunity "
                                        "WHERE IsWon = true AND SystemModstamp >= 2026-01-01T00:00:00.000+0000 "
                                        "ORDER BY Amount DESC LIMIT 5")
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["totalSize"] == 2 and body["done"] is True and "nextRecordsUrl" not in body
        assert body["records"][0] == {
            "attributes": {"type": "Opportunity",
                           "url": f"/services/data/{VERSION}/sobjects/Opportunity/006A00000000002AAA"},
            "Id": "006A00000000002AAA", "Name": "Acme Renewal", "Amount": 1500000}
        assert list(body["records"][0]) == ["attributes", "Id", "Name", "Amount"]

        recent = query(session, base, "SELECT Email FROM Contact WHERE SystemModstamp > 2026-10-01T00:00:00Z "
                                      "AND Email != null ORDER BY SystemModstamp").json()
        assert [r["Email"] for r in recent["records"]] == ["p1@townsend.com", "p2@townsend.com"]


def test_query_errors(fleet) -> None:
    base = fleet.urls[KEY]
    with login(base) as session:
        unknown_field = query(session, base, "SELECT Id, ShoeSize FROM Contact")
        assert unknown_field.status_code == 400
        assert unknown_field.json()[0]["errorCode"] == "INVALID_FIELD"
        assert "ShoeSize" in unknown_field.json()[0]["message"]

        unknown_object = query(session, base, "SELECT Id FROM Widget")
        assert unknown_object.status_code == 400
        assert unknown_object.json() == [{"message": unknown_object.json()[0]["message"], "errorCode": "INVALID_TYPE"}]
        assert "sObject type 'Widget' is not supported." in unknown_object.json()[0]["message"]

        malformed = query(session, base, "SELECT Id FROM Contact WHERE")
        assert malformed.status_code == 400 and malformed.json()[0]["errorCode"] == "MALFORMED_QUERY"


def test_limit_info_header_counts_calls(fleet) -> None:
    base = fleet.urls[KEY]
    with login(base) as session:
        first = query(session, base, "SELECT Id FROM Account")
        second = session.get(f"{base}/services/data/{VERSION}/sobjects/")
    assert first.headers["Sforce-Limit-Info"] == "api-usage=1/100000"
    assert second.headers["Sforce-Limit-Info"] == "api-usage=2/100000"
    assert {s["name"] for s in second.json()["sobjects"]} >= {"Account", "Contact", "Opportunity"}
    assert fleet.instance(KEY).call_count == 2
    versions = requests.get(f"{base}/services/data/").json()
    assert {"label", "url", "version"} <= set(versions[0])


def test_next_records_url_paging_and_query_all(tmp_path: Path) -> None:
    contacts = [{"Id": f"003C{i:014d}", "AccountId": "001C00000000000001", "Email": f"c{i}@example.com",
                 "IsDeleted": False, "SystemModstamp": "2026-11-01T00:00:00.000+0000"} for i in range(450)]
    contacts += [{"Id": f"003D{i:014d}", "Email": f"gone{i}@example.com", "IsDeleted": True,
                  "SystemModstamp": "2026-11-02T00:00:00.000+0000"} for i in range(5)]
    scenario = tmp_path / "big.yaml"
    scenario.write_text(yaml.safe_dump({"clock": "2026-11-20T12:00:00Z",
                                        "salesforce": [{"org_id": ORG, "name": "CRM", "Contact": contacts}]}))
    with EmulatorFleet.from_scenario(scenario) as fleet:
        base = fleet.urls[KEY]
        with login(base) as session:
            page = query(session, base, "SELECT Id, Email FROM Contact", **{"Sforce-Query-Options": "batchSize=200"})
            sizes, seen = [], []
            while True:
                body = page.json()
                assert body["totalSize"] == 450
                sizes.append(len(body["records"]))
                seen.extend(r["Id"] for r in body["records"])
                if body["done"]:
                    assert "nextRecordsUrl" not in body
                    break
                assert re.fullmatch(rf"/services/data/{VERSION}/query/01g\w+-\d+", body["nextRecordsUrl"])
                page = session.get(base + body["nextRecordsUrl"])
            assert sizes == [200, 200, 50]
            assert seen == [c["Id"] for c in contacts[:450]]

            # batchSize is clamped to 200..2000
            tiny = query(session, base, "SELECT Id FROM Contact", **{"Sforce-Query-Options": "batchSize=10"}).json()
            assert len(tiny["records"]) == 200

            everything = query(session, base, "SELECT Id, IsDeleted FROM Contact WHERE IsDeleted = true",
                               endpoint="queryAll").json()
            assert everything["totalSize"] == 5
            assert query(session, base, "SELECT Id FROM Contact WHERE IsDeleted = true").json()["totalSize"] == 0
