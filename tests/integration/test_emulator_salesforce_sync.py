"""Salesforce for incremental extractors: Bulk API 2.0 query jobs, getDeleted / getUpdated, records
changed through mutations, and the late-committed SystemModstamp quirk."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import requests
import yaml

from emulators import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, EmulatorFleet

BODEA = Path(__file__).resolve().parents[2] / "include" / "scenarios" / "bodea.yaml"
ORG = "00D000000000001AAA"
KEY = f"salesforce:{ORG}"
V = "/services/data/v62.0"
CREDENTIALS = {"grant_type": "client_credentials", "client_id": DEFAULT_CLIENT_ID,
               "client_secret": DEFAULT_CLIENT_SECRET}


def login(base: str) -> requests.Session:
    token = requests.post(f"{base}/services/oauth2/token", data=CREDENTIALS).json()["access_token"]
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    return session


@pytest.fixture
def fleet():
    with EmulatorFleet.from_scenario(BODEA) as running:
        yield running


@pytest.fixture
def sf(fleet):
    with login(fleet.urls[KEY]) as session:
        yield session


def run_job(sf: requests.Session, base: str, query: str, operation: str = "query", **options) -> dict:
    created = sf.post(f"{base}{V}/jobs/query", json={"operation": operation, "query": query, **options})
    assert created.status_code == 200, created.text
    job = created.json()
    assert job["state"] == "UploadComplete" and job["apiVersion"] == 62.0 and job["id"].startswith("750")
    states = []
    while job["state"] not in ("JobComplete", "Failed", "Aborted"):
        job = sf.get(f"{base}{V}/jobs/query/{job['id']}").json()
        states.append(job["state"])
    assert states == ["InProgress", "JobComplete"]
    return job


def test_bulk_query_job_end_to_end_with_locator_paging(tmp_path: Path) -> None:
    contacts = [{"Id": f"003C{i:014d}", "Email": f"c{i}@example.com", "LastName": f"O'Neil, {i}",
                 "Title": None if i % 3 == 0 else 'The "Boss"', "IsDeleted": False,
                 "SystemModstamp": "2026-11-01T00:00:00.000+0000"} for i in range(7)]
    contacts.append({"Id": "003D00000000000001", "Email": "gone@example.com", "IsDeleted": True,
                     "SystemModstamp": "2026-11-02T00:00:00.000+0000"})
    scenario = tmp_path / "s.yaml"
    scenario.write_text(yaml.safe_dump({"clock": "2026-11-20T12:00:00Z",
                                        "salesforce": [{"org_id": ORG, "Contact": contacts}]}))
    with EmulatorFleet.from_scenario(scenario) as fleet, login(fleet.urls[KEY]) as sf:
        base = fleet.urls[KEY]
        job = run_job(sf, base, "SELECT Id, LastName, Title, IsDeleted, SystemModstamp FROM Contact")
        assert job["numberRecordsProcessed"] == 7 and job["object"] == "Contact" and job["jobType"] == "V2Query"
        pages, locator = [], None
        while locator != "null":
            params = {"maxRecords": 3} | ({"locator": locator} if locator else {})
            response = sf.get(f"{base}{V}/jobs/query/{job['id']}/results", params=params)
            assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/csv")
            locator = response.headers["Sforce-Locator"]
            pages.append((int(response.headers["Sforce-NumberOfRecords"]), response.text))
        assert [n for n, _ in pages] == [3, 3, 1]
        first = pages[0][1]
        assert first.splitlines()[0] == '"Id","LastName","Title","IsDeleted","SystemModstamp"'
        assert first.splitlines()[1] == '"003C00000000000000","O\'Neil, 0",,"false","2026-11-01T00:00:00.000Z"'
        rows = [row for _, text in pages for row in list(csv.DictReader(io.StringIO(text)))]
        assert [r["Id"] for r in rows] == [c["Id"] for c in contacts[:7]]
        assert rows[1]["Title"] == 'The "Boss"' and rows[0]["Title"] == ""
        again = sf.get(f"{base}{V}/jobs/query/{job['id']}/results")                   # default maxRecords
        assert again.headers["Sforce-NumberOfRecords"] == "7" and again.headers["Sforce-Locator"] == "null"

        everything = run_job(sf, base, "SELECT Id FROM Contact WHERE IsDeleted = true", operation="queryAll",
                             columnDelimiter="PIPE", lineEnding="CRLF")
        body = sf.get(f"{base}{V}/jobs/query/{everything['id']}/results").content
        assert body == b'"Id"\r\n"003D00000000000001"\r\n'

        other_version = sf.get(f"{base}/services/data/v61.0/jobs/query/{job['id']}/results")
        assert other_version.status_code == 409
        assert sf.delete(f"{base}{V}/jobs/query/{job['id']}").status_code == 204
        assert sf.get(f"{base}{V}/jobs/query/{job['id']}").status_code == 404


def test_bulk_query_job_refusals_abort_and_early_results(fleet, sf) -> None:
    base = fleet.urls[KEY]
    for query in ("SELECT COUNT() FROM Contact", "SELECT Id FROM Contact OFFSET 5",
                  "SELECT Id, (SELECT Id FROM Contacts) FROM Account",
                  "SELECT AccountId FROM Contact GROUP BY AccountId"):
        refused = sf.post(f"{base}{V}/jobs/query", json={"operation": "query", "query": query})
        assert refused.status_code == 400, query
        assert "not supported" in refused.json()[0]["message"]
    assert sf.post(f"{base}{V}/jobs/query", json={"operation": "query", "query": "SELECT Id FROM Contact "
                                                  "WHERE LastName = 'OFFSET'"}).status_code == 200
    bad_field = sf.post(f"{base}{V}/jobs/query", json={"operation": "query", "query": "SELECT ShoeSize FROM Contact"})
    assert bad_field.status_code == 400 and bad_field.json()[0]["errorCode"] == "INVALID_FIELD"
    upsert = sf.post(f"{base}{V}/jobs/query", json={"operation": "upsert", "query": "SELECT Id FROM Contact"})
    assert upsert.status_code == 400

    job = sf.post(f"{base}{V}/jobs/query", json={"operation": "query", "query": "SELECT Id FROM Account"}).json()
    early = sf.get(f"{base}{V}/jobs/query/{job['id']}/results")
    assert early.status_code == 400
    aborted = sf.patch(f"{base}{V}/jobs/query/{job['id']}", json={"state": "Aborted"})
    assert aborted.status_code == 200 and aborted.json()["state"] == "Aborted"
    assert sf.get(f"{base}{V}/jobs/query/{job['id']}").json()["state"] == "Aborted"
    assert sf.patch(f"{base}{V}/jobs/query/{job['id']}", json={"state": "Aborted"}).status_code == 400
    assert "Sforce-Limit-Info" in aborted.headers


def test_get_deleted_and_its_15_day_window(fleet, sf) -> None:
    base = fleet.urls[KEY]
    org = fleet.instance(KEY)
    fleet.advance(3600)
    gone = org.delete_record("Contact", "003A00000000003AAA")
    assert gone["IsDeleted"] is True and gone["SystemModstamp"] == "2026-11-20T13:00:00.000+0000"
    url = f"{base}{V}/sobjects/Contact/deleted/"
    body = sf.get(url, params={"start": "2026-11-19T00:00:00Z", "end": "2026-11-21T00:00:00Z"}).json()
    assert body == {"deletedRecords": [{"id": "003A00000000003AAA", "deletedDate": "2026-11-20T13:00:00.000+0000"}],
                    "earliestDateAvailable": "2026-11-05T13:00:00.000+0000",
                    "latestDateCovered": "2026-11-20T13:00:00.000+0000"}
    before = sf.get(url, params={"start": "2026-11-19T00:00:00+00:00", "end": "2026-11-20T12:59:00+00:00"}).json()
    assert before["deletedRecords"] == []
    too_old = sf.get(url, params={"start": "2026-11-05T12:00:00Z", "end": "2026-11-20T00:00:00Z"})
    assert too_old.status_code == 400
    assert too_old.json() == [{"message": "start date cannot be more than 15 days ago",
                               "errorCode": "INVALID_REPLICATION_DATE"}]
    backwards = sf.get(url, params={"start": "2026-11-20T00:00:00Z", "end": "2026-11-19T00:00:00Z"})
    assert backwards.status_code == 400 and backwards.json()[0]["errorCode"] == "INVALID_REPLICATION_DATE"
    # query hides the deleted row, queryAll shows it
    q = "SELECT Id FROM Contact WHERE Id = '003A00000000003AAA'"
    assert sf.get(f"{base}{V}/query", params={"q": q}).json()["totalSize"] == 0
    assert sf.get(f"{base}{V}/queryAll", params={"q": q}).json()["totalSize"] == 1

    updated = sf.get(f"{base}{V}/sobjects/Contact/updated/",
                     params={"start": "2026-10-21T13:00:00Z", "end": "2026-11-21T00:00:00Z"}).json()
    assert updated == {"ids": ["003A00000000002AAA"], "latestDateCovered": "2026-11-20T13:00:00.000+0000"}
    assert sf.get(f"{base}{V}/sobjects/Contact/updated/",
                  params={"start": "2026-10-01T00:00:00Z", "end": "2026-11-21T00:00:00Z"}).status_code == 400


def test_upsert_record_and_a_late_commit_needs_a_lookback(fleet, sf) -> None:
    base = fleet.urls[KEY]
    org = fleet.instance(KEY)

    def changed_since(moment: datetime) -> list[str]:
        stamp = moment.strftime("%Y-%m-%dT%H:%M:%S.000+0000")
        q = f"SELECT Id, SystemModstamp FROM Contact WHERE SystemModstamp > {stamp} ORDER BY SystemModstamp"
        return [r["Id"] for r in sf.get(f"{base}{V}/query", params={"q": q}).json()["records"]]

    fleet.advance(3600)
    created = org.upsert_record("Contact", {"Email": "new@townsend.com", "LastName": "New", "Shoe__c": 44})
    assert len(created["Id"]) == 18 and created["Id"].startswith("003")
    assert created["SystemModstamp"] == "2026-11-20T13:00:00.000+0000" and created["IsDeleted"] is False
    cursor = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)
    assert changed_since(cursor) == [created["Id"]]
    cursor = fleet.now()                                          # the extractor's new high-water mark
    fleet.advance(30)
    late = org.commit_late("Contact", {"Email": "late@townsend.com"}, cursor - timedelta(seconds=5))
    assert late["SystemModstamp"] == "2026-11-20T12:59:55.000+0000"
    assert changed_since(cursor) == []                            # missed without a lookback
    assert changed_since(cursor - timedelta(seconds=10)) == [late["Id"], created["Id"]]
    with pytest.raises(ValueError):
        org.commit_late("Contact", {"Email": "x@y.z"}, fleet.now() + timedelta(seconds=1))

    fields = {f["name"] for f in sf.get(f"{base}{V}/sobjects/Contact/describe").json()["fields"]}
    assert "Shoe__c" in fields
    org.upsert_record("Contact", {"Id": created["Id"], "Title": "CTO"})
    got = sf.get(f"{base}{V}/query", params={"q": f"SELECT Title, Email FROM Contact WHERE Id = '{created['Id']}'"})
    assert got.json()["records"][0]["Title"] == "CTO" and got.json()["records"][0]["Email"] == "new@townsend.com"
