"""Faults switched on per run (Python, control API, CLI) and the control API over HTTP."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from emulators import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET

BODEA = Path(__file__).resolve().parents[2] / "include" / "scenarios" / "bodea.yaml"
MKTO = "marketo:111-AAA-111"
SF = "salesforce:00D000000000001AAA"
V = "/services/data/v62.0"
CREDENTIALS = {"grant_type": "client_credentials", "client_id": DEFAULT_CLIENT_ID,
               "client_secret": DEFAULT_CLIENT_SECRET}


from tests.integration.emulator_clients import marketo_session as marketo  # noqa: E402
from tests.integration.emulator_clients import salesforce_session as salesforce  # noqa: E402


def code_of(response: requests.Response) -> str | None:
    body = response.json()
    return None if body["success"] else body["errors"][0]["code"]


def lead_export(api: requests.Session, base: str, fields=("id", "email", "title")) -> tuple[dict, bytes]:
    body = {"fields": list(fields), "filter": {"createdAt": {"startAt": "2025-03-01T00:00:00Z",
                                                             "endAt": "2025-03-31T00:00:00Z"}}}
    job = api.post(f"{base}/bulk/v1/leads/export/create.json", json=body).json()["result"][0]
    export = f"{base}/bulk/v1/leads/export/{job['exportId']}"
    api.post(f"{export}/enqueue.json")
    while job["status"] != "Completed":
        job = api.get(f"{export}/status.json").json()["result"][0]
    return job, export


def bulk_results(sf: requests.Session, base: str, query: str) -> str:
    job = sf.post(f"{base}{V}/jobs/query", json={"operation": "query", "query": query}).json()
    while job["state"] != "JobComplete":
        job = sf.get(f"{base}{V}/jobs/query/{job['id']}").json()
    return f"{base}{V}/jobs/query/{job['id']}/results"


def test_latency(fleet) -> None:
    base = fleet.urls[SF]
    fleet.inject(SF, "latency", seconds=0.3, count=1)
    started = time.monotonic()
    requests.get(f"{base}/services/data/")
    assert time.monotonic() - started >= 0.3
    started = time.monotonic()
    requests.get(f"{base}/services/data/")
    assert time.monotonic() - started < 0.3                         # count=1: used up
    assert fleet.faults() == []


def test_http_5xx_counts_down_and_is_listed(fleet) -> None:
    entry = fleet.inject(MKTO, "http_5xx", count=2, status=502)
    assert entry["remaining"] == 2 and entry["params"] == {"status": 502}
    base = fleet.urls[MKTO]
    assert requests.get(f"{base}/identity/oauth/token", params=CREDENTIALS).status_code == 502
    assert fleet.faults()[0]["remaining"] == 1
    assert requests.get(f"{base}/identity/oauth/token", params=CREDENTIALS).status_code == 502
    assert requests.get(f"{base}/identity/oauth/token", params=CREDENTIALS).status_code == 200
    fleet.inject(SF, "http_5xx")
    assert requests.get(f"{fleet.urls[SF]}/services/data/").status_code == 503
    assert requests.get(f"{fleet.urls[SF]}/services/data/").status_code == 200
    assert requests.get(f"{base}/identity/oauth/token", params=CREDENTIALS).status_code == 200   # scoped


def test_rate_limit_burst(fleet) -> None:
    base = fleet.urls[MKTO]
    with marketo(base) as api:
        fleet.inject(MKTO, "rate_limit_burst", count=2)
        assert [code_of(api.get(f"{base}/rest/v1/lists.json")) for _ in range(3)] == ["606", "606", None]
    with salesforce(fleet.urls[SF]) as sf:
        fleet.inject(SF, "rate_limit_burst")
        refused = sf.get(f"{fleet.urls[SF]}{V}/limits")
        assert refused.status_code == 403 and refused.json()[0]["errorCode"] == "REQUEST_LIMIT_EXCEEDED"
        assert sf.get(f"{fleet.urls[SF]}{V}/limits").status_code == 200


def test_token_expiry(fleet) -> None:
    base = fleet.urls[MKTO]
    with marketo(base) as api, salesforce(fleet.urls[SF]) as sf:
        old = api.headers["Authorization"]
        fleet.inject(MKTO, "token_expiry")
        fleet.inject(SF, "token_expiry")
        assert code_of(api.get(f"{base}/rest/v1/lists.json")) == "602"
        expired = sf.get(f"{fleet.urls[SF]}{V}/limits")
        assert expired.status_code == 401 and expired.json()[0]["errorCode"] == "INVALID_SESSION_ID"
        fresh = requests.get(f"{base}/identity/oauth/token", params=CREDENTIALS).json()["access_token"]
        assert f"Bearer {fresh}" != old
        assert code_of(requests.get(f"{base}/rest/v1/lists.json", headers={"Authorization": f"Bearer {fresh}"})) is None
        with salesforce(fleet.urls[SF]) as again:
            assert again.get(f"{fleet.urls[SF]}{V}/limits").status_code == 200
    assert [f["fault"] for f in fleet.faults()] == ["token_expiry", "token_expiry"]


def test_connection_reset_on_downloads(fleet) -> None:
    base = fleet.urls[MKTO]
    with marketo(base) as api:
        job, export = lead_export(api, base)
        fleet.inject(MKTO, "connection_reset", after_bytes=10)
        with pytest.raises(requests.exceptions.RequestException):
            api.get(f"{export}/file.json").content
        whole = api.get(f"{export}/file.json").content                # the next download is whole
        assert len(whole) == job["fileSize"]
    with salesforce(fleet.urls[SF]) as sf:
        url = bulk_results(sf, fleet.urls[SF], "SELECT Id, Email FROM Contact")
        fleet.inject(SF, "connection_reset")
        with pytest.raises(requests.exceptions.RequestException):
            sf.get(url).content
        assert sf.get(url).headers["Sforce-NumberOfRecords"] == "3"


def test_malformed_csv_row(fleet) -> None:
    base = fleet.urls[MKTO]
    with marketo(base) as api:
        fleet.inject(MKTO, "malformed_csv_row", object="leads", row=1)
        _, export = lead_export(api, base)
        broken = api.get(f"{export}/file.json").text
        with pytest.raises(csv.Error):
            list(csv.reader(io.StringIO(broken), strict=True))
        _, export = lead_export(api, base)                            # the next file is clean again
        assert list(csv.reader(io.StringIO(api.get(f"{export}/file.json").text), strict=True))[1][0] == "1001"
    with salesforce(fleet.urls[SF]) as sf:
        fleet.inject(SF, "malformed_csv_row", object="Contact", row=2, kind="columns")
        text = sf.get(bulk_results(sf, fleet.urls[SF], "SELECT Id, Email FROM Contact")).text
        assert [len(row) for row in csv.reader(io.StringIO(text))] == [2, 2, 3, 2]


def test_field_renamed_and_renamed_back(fleet) -> None:
    base = fleet.urls[MKTO]
    with marketo(base) as api:
        fleet.inject(MKTO, "field_renamed", object="leads", old="title", new="jobTitle")
        names = {f["rest"]["name"] for f in api.get(f"{base}/rest/v1/leads/describe.json").json()["result"]}
        assert "jobTitle" in names and "title" not in names
        got = api.get(f"{base}/rest/v1/leads.json", params={"filterType": "id", "filterValues": "1002",
                                                           "fields": "jobTitle"}).json()["result"]
        assert got == [{"id": 1002, "jobTitle": "VP Engineering"}]
        assert code_of(api.get(f"{base}/rest/v1/leads.json", params={
            "filterType": "id", "filterValues": "1002", "fields": "title"})) == "1006"
        _, export = lead_export(api, base, fields=("id", "jobTitle"))
        assert api.get(f"{export}/file.json").text.splitlines()[0] == "id,jobTitle"
    with salesforce(fleet.urls[SF]) as sf:
        sf_base = fleet.urls[SF]
        fleet.inject(SF, "field_renamed", object="Contact", old="Title", new="JobTitle__c")
        fields = {f["name"] for f in sf.get(f"{sf_base}{V}/sobjects/Contact/describe").json()["fields"]}
        assert "JobTitle__c" in fields and "Title" not in fields
        old = sf.get(f"{sf_base}{V}/query", params={"q": "SELECT Title FROM Contact"})
        assert old.status_code == 400 and old.json()[0]["errorCode"] == "INVALID_FIELD"
        new = sf.get(f"{sf_base}{V}/query", params={"q": "SELECT JobTitle__c FROM Contact"}).json()
        assert new["records"][0]["JobTitle__c"] == "Director of IT"
        assert sf.get(bulk_results(sf, sf_base, "SELECT Id, JobTitle__c FROM Contact")).text.startswith(
            '"Id","JobTitle__c"')
        assert fleet.clear_faults() == 2
        fields = {f["name"] for f in sf.get(f"{sf_base}{V}/sobjects/Contact/describe").json()["fields"]}
        assert "Title" in fields and "JobTitle__c" not in fields
    with marketo(base) as api:
        assert api.get(f"{base}/rest/v1/leads.json", params={"filterType": "id", "filterValues": "1002",
                                                            "fields": "title"}).json()["result"][0]["title"] \
            == "VP Engineering"


def test_fault_validation(fleet) -> None:
    with pytest.raises(ValueError):
        fleet.inject(MKTO, "gremlins")
    with pytest.raises(ValueError):
        fleet.inject(MKTO, "http_5xx", count=0)
    with pytest.raises(ValueError):
        fleet.inject(MKTO, "latency", sconds=1)
    with pytest.raises(ValueError):
        fleet.inject(MKTO, "field_renamed", object="leads", old="shoeSize", new="x")
    with pytest.raises(ValueError, match="export_stall: object must be leads or activities"):
        fleet.inject(MKTO, "export_stall", object="Contact")
    with pytest.raises(KeyError):
        fleet.inject("marketo:999-ZZZ-999", "latency")
    assert fleet.faults() == []


def test_control_api_over_http(fleet) -> None:
    control = fleet.urls["control"]
    assert requests.get(f"{control}/control/clock").json() == {"now": "2026-11-20T12:00:00.000Z", "mode": "frozen"}
    assert requests.post(f"{control}/control/clock", json={"advance_seconds": 90}).json()["now"] == \
        "2026-11-20T12:01:30.000Z"
    assert requests.post(f"{control}/control/clock", json={"set": "2026-11-21T00:00:00Z"}).json()["now"] == \
        "2026-11-21T00:00:00.000Z"
    assert fleet.now().isoformat() == "2026-11-21T00:00:00+00:00"
    assert requests.post(f"{control}/control/clock", json={}).status_code == 400

    added = requests.post(f"{control}/control/faults", json={"instance": MKTO, "fault": "http_5xx",
                                                             "params": {"count": 1, "status": 500}})
    assert added.status_code == 201 and added.json()["fault"] == "http_5xx"
    listed = requests.get(f"{control}/control/faults").json()["faults"]
    assert [(f["instance"], f["fault"], f["remaining"]) for f in listed] == [(MKTO, "http_5xx", 1)]
    assert requests.get(f"{fleet.urls[MKTO]}/identity/oauth/token", params=CREDENTIALS).status_code == 500
    requests.post(f"{control}/control/faults", json={"instance": SF, "fault": "latency", "params": {"seconds": 0}})
    assert requests.delete(f"{control}/control/faults").json() == {"cleared": 1}
    assert requests.post(f"{control}/control/faults", json={"instance": MKTO, "fault": "nope"}).status_code == 400
    assert requests.post(f"{control}/control/faults", json={"instance": "marketo:000-XXX-000",
                                                            "fault": "latency"}).status_code == 404

    lead = requests.post(f"{control}/control/mutations", json={
        "instance": MKTO, "action": "upsert_lead", "args": {"fields": {"email": "ctl@example.com"}}})
    assert lead.status_code == 200 and lead.json()["result"]["updatedAt"] == "2026-11-21T00:00:00Z"
    activity = requests.post(f"{control}/control/mutations", json={
        "instance": MKTO, "action": "add_activity",
        "args": {"lead_id": lead.json()["result"]["id"], "activity_type_id": 2, "primary_attribute_value": "Demo"}})
    assert activity.json()["result"]["activityTypeId"] == 2
    record = requests.post(f"{control}/control/mutations", json={
        "instance": SF, "action": "upsert_record", "args": {"obj": "Account", "record": {"Name": "Initech"}}})
    assert record.json()["result"]["Id"].startswith("001")
    late = requests.post(f"{control}/control/mutations", json={
        "instance": SF, "action": "commit_late",
        "args": {"obj": "Account", "record": {"Name": "Late"}, "system_modstamp": "2026-11-20T23:59:00Z"}})
    assert late.json()["result"]["SystemModstamp"] == "2026-11-20T23:59:00.000+0000"
    deleted = requests.post(f"{control}/control/mutations", json={
        "instance": SF, "action": "delete_record",
        "args": {"obj": "Account", "record_id": record.json()["result"]["Id"]}})
    assert deleted.json()["result"]["IsDeleted"] is True
    bad = requests.post(f"{control}/control/mutations", json={"instance": MKTO, "action": "delete_lead",
                                                              "args": {"lead_id": 424242}})
    assert bad.status_code == 400 and "424242" in bad.json()["error"]
    explode = requests.post(f"{control}/control/mutations", json={"instance": MKTO, "action": "explode"})
    assert explode.status_code == 400
    assert requests.get(f"{control}/control/nothing").status_code == 404
    index = requests.get(f"{control}/control").json()
    assert index["urls"]["control"] == control and "field_renamed" in index["faults"]


def test_cli_fault_flag_and_control_url(tmp_path: Path) -> None:
    process = subprocess.Popen([sys.executable, "-m", "emulators", "--scenario", str(BODEA),
                                "--fault", f"{MKTO}:http_5xx:count=1,status=502",
                                "--fault", f"{SF}:latency:seconds=0"], stdout=subprocess.PIPE, text=True)
    try:
        urls = json.loads(process.stdout.readline())
        assert "control" in urls
        faults = requests.get(f"{urls['control']}/control/faults").json()["faults"]
        assert [(f["instance"], f["fault"], f["params"]) for f in faults] == [
            (MKTO, "http_5xx", {"status": 502}), (SF, "latency", {"seconds": 0})]
        assert requests.get(f"{urls[MKTO]}/identity/oauth/token", params=CREDENTIALS).status_code == 502
        assert requests.get(f"{urls[MKTO]}/identity/oauth/token", params=CREDENTIALS).status_code == 200
    finally:
        process.terminate()
        assert process.wait(timeout=10) == 0
        process.stdout.close()
    bad = subprocess.run([sys.executable, "-m", "emulators", "--scenario", str(BODEA), "--fault", "marketo:http_5xx"],
                         capture_output=True, text=True, timeout=30)
    assert bad.returncode == 2 and "--fault" in bad.stderr
