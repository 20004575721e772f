"""The Marketo emulator against the bodea scenario, spoken to as a real client would."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from pathlib import Path

import pytest
import requests

from emulators import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, EmulatorFleet

BODEA = Path(__file__).resolve().parents[2] / "include" / "scenarios" / "bodea.yaml"
MUNCHKIN = "111-AAA-111"
KEY = f"marketo:{MUNCHKIN}"
CREDENTIALS = {"grant_type": "client_credentials", "client_id": DEFAULT_CLIENT_ID,
               "client_secret": DEFAULT_CLIENT_SECRET}


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    return tmp_path / "state"


@pytest.fixture
def fleet(state_dir: Path):
    with EmulatorFleet.from_scenario(BODEA, state_dir=state_dir) as running:
        yield running


@pytest.fixture
def base(fleet) -> str:
    return fleet.urls[KEY]


@pytest.fixture
def api(base: str) -> requests.Session:
    """A session carrying a valid bearer token."""
    session = requests.Session()
    token = session.get(f"{base}/identity/oauth/token", params=CREDENTIALS).json()["access_token"]
    session.headers["Authorization"] = f"Bearer {token}"
    yield session
    session.close()


def ok(response: requests.Response) -> dict:
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["success"] is True, body
    assert "#" in body["requestId"]
    return body


def error_code(response: requests.Response) -> str:
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["success"] is False, body
    assert "requestId" in body
    return body["errors"][0]["code"]


# ------------------------------------------------------------------------------------------- identity

def test_token_is_reused_until_it_expires(base: str) -> None:
    first = requests.get(f"{base}/identity/oauth/token", params=CREDENTIALS)
    assert first.status_code == 200
    body = first.json()
    assert body["token_type"] == "bearer" and body["scope"].startswith("apis@")
    assert body["access_token"].endswith(":ab")
    assert 3590 <= body["expires_in"] <= 3599

    again = requests.post(f"{base}/identity/oauth/token", data=CREDENTIALS).json()   # form-encoded POST
    assert again["access_token"] == body["access_token"]
    assert again["expires_in"] <= body["expires_in"]


def test_bad_client_credentials_are_401(base: str) -> None:
    response = requests.get(f"{base}/identity/oauth/token", params={**CREDENTIALS, "client_secret": "nope"})
    assert response.status_code == 401
    assert response.json() == {"error": "unauthorized", "error_description": "Bad client credentials"}


def test_missing_unknown_and_expired_tokens(fleet, base: str) -> None:
    params = {"filterType": "email", "filterValues": "p1@townsend.com"}
    assert error_code(requests.get(f"{base}/rest/v1/leads.json", params=params)) == "601"
    bogus = {"Authorization": "Bearer 00000000-0000-0000-0000-000000000000:ab"}
    assert error_code(requests.get(f"{base}/rest/v1/leads.json", params=params, headers=bogus)) == "601"
    assert fleet.instance(KEY).call_count == 0          # refused calls do not count

    instance = fleet.instance(KEY)
    instance.token_ttl = 0.2
    token = requests.get(f"{base}/identity/oauth/token", params=CREDENTIALS).json()["access_token"]
    fleet.advance(0.3)                                   # emulated time: the clock is frozen otherwise
    expired = {"Authorization": f"Bearer {token}"}
    assert error_code(requests.get(f"{base}/rest/v1/leads.json", params=params, headers=expired)) == "602"
    fresh = requests.get(f"{base}/identity/oauth/token", params=CREDENTIALS).json()["access_token"]
    assert fresh != token


def test_unknown_path_is_plain_404(api: requests.Session, base: str) -> None:
    response = api.get(f"{base}/rest/v1/nothing-here.json")
    assert response.status_code == 404
    assert response.headers["Content-Type"].startswith("text/plain")


def test_body_over_one_megabyte_is_413(api: requests.Session, base: str) -> None:
    response = api.post(f"{base}/bulk/v1/leads/export/create.json", data=b"x" * (1024 * 1024 + 1),
                        headers={"Content-Type": "application/json"})
    assert response.status_code == 413


# ------------------------------------------------------------------------------------------- leads

def test_leads_by_email(api: requests.Session, base: str) -> None:
    body = ok(api.get(f"{base}/rest/v1/leads.json",
                      params={"filterType": "email", "filterValues": "P2@Townsend.com,nobody@example.com"}))
    assert body["result"] == [{"id": 1002, "email": "p2@townsend.com", "updatedAt": "2026-10-26T10:00:00Z",
                               "createdAt": "2025-03-01T09:05:00Z", "firstName": "Robin", "lastName": "Two"}]

    body = ok(api.get(f"{base}/rest/v1/leads.json", params={
        "filterType": "email", "filterValues": "lurker@gmail.com", "fields": "email,title,sfdcAccountId"}))
    assert body["result"] == [{"id": 1004, "email": "lurker@gmail.com", "title": None, "sfdcAccountId": None}]

    # The tunnel for long queries: POST ?_method=GET with the parameters form-encoded.
    body = ok(api.post(f"{base}/rest/v1/leads.json?_method=GET",
                       data={"filterType": "id", "filterValues": "1001,1003"}))
    assert [lead["id"] for lead in body["result"]] == [1001, 1003]


def test_lead_query_validation(api: requests.Session, base: str) -> None:
    too_many = ",".join(f"u{i}@example.com" for i in range(301))
    assert error_code(api.post(f"{base}/rest/v1/leads.json?_method=GET",
                               data={"filterType": "email", "filterValues": too_many})) == "1003"
    assert error_code(api.get(f"{base}/rest/v1/leads.json", params={"filterType": "email"})) == "1003"
    assert error_code(api.get(f"{base}/rest/v1/leads.json", params={
        "filterType": "email", "filterValues": "p1@townsend.com", "fields": "email,shoeSize"})) == "1006"


def test_describe_and_activity_types(api: requests.Session, base: str) -> None:
    fields = {f["rest"]["name"]: f for f in ok(api.get(f"{base}/rest/v1/leads/describe.json"))["result"]}
    assert fields["id"]["dataType"] == "integer" and fields["id"]["rest"]["readOnly"] is True
    assert fields["email"]["dataType"] == "email"
    assert fields["unsubscribed"]["dataType"] == "boolean"
    assert fields["updatedAt"]["dataType"] == "datetime"

    types = {t["id"]: t for t in ok(api.get(f"{base}/rest/v1/activities/types.json"))["result"]}
    assert {1, 2, 3, 6, 7, 9, 10, 11, 12, 13, 37} <= set(types)
    assert types[1]["name"] == "Visit Webpage"
    assert types[1]["primaryAttribute"] == {"name": "Webpage ID", "dataType": "integer"}
    assert {"name": "Webpage URL", "dataType": "string"} in types[1]["attributes"]


def test_describe_follows_lead_changes(fleet, api: requests.Session, base: str) -> None:
    """The field types describe reports are worked out once, and again after leads change."""
    def described() -> dict:
        return {f["rest"]["name"]: f["dataType"] for f in ok(api.get(f"{base}/rest/v1/leads/describe.json"))["result"]}

    instance = fleet.instance(KEY)
    assert "seats" not in described()
    instance.upsert_lead({"email": "p1@townsend.com", "id": 1001, "seats": 40})
    assert described()["seats"] == "integer"
    instance.upsert_lead({"email": "new@townsend.com", "seats": "forty"})
    assert described()["seats"] == "string"


def test_usage_stats_count_calls(fleet, api: requests.Session, base: str) -> None:
    ok(api.get(f"{base}/rest/v1/lists.json"))
    usage = ok(api.get(f"{base}/rest/v1/stats/usage.json"))["result"][0]
    assert usage["date"] == "2026-11-20"
    assert usage["total"] == 2 == fleet.instance(KEY).call_count
    assert usage["users"][0]["count"] == 2


# ------------------------------------------------------------------------------------------- bulk extract

def test_lead_export_end_to_end(api: requests.Session, base: str) -> None:
    created = ok(api.post(f"{base}/bulk/v1/leads/export/create.json", json={
        "fields": ["id", "email", "title", "company", "unsubscribed"],
        "columnHeaderNames": {"email": "Email"},
        "filter": {"updatedAt": {"startAt": "2026-10-20T00:00:00Z", "endAt": "2026-11-19T00:00:00Z"}},
    }))["result"][0]
    assert created["status"] == "Created" and created["format"] == "CSV"
    export = f"{base}/bulk/v1/leads/export/{created['exportId']}"

    early = api.get(f"{export}/file.json")
    assert early.status_code == 404 and early.headers["Content-Type"].startswith("text/plain")

    assert ok(api.post(f"{export}/enqueue.json"))["result"][0]["status"] == "Queued"
    assert error_code(api.post(f"{export}/enqueue.json")) == "1029"        # already queued
    seen = []
    for _ in range(10):
        job = ok(api.get(f"{export}/status.json"))["result"][0]
        seen.append(job["status"])
        if job["status"] == "Completed":
            break
        assert api.get(f"{export}/file.json").status_code == 404
    assert seen == ["Completed"]                # a small export is done by the first poll
    assert job["numberOfRecords"] == 2

    response = api.get(f"{export}/file.json")
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/csv")
    data = response.content
    assert job["fileSize"] == len(data)
    assert job["fileChecksum"] == "sha256:" + hashlib.sha256(data).hexdigest()
    rows = list(csv.reader(io.StringIO(data.decode())))
    assert rows == [["id", "Email", "title", "company", "unsubscribed"],
                    ["1002", "p2@townsend.com", "VP Engineering", "Townsend", "false"],
                    ["1004", "lurker@gmail.com", "null", "null", "false"]]
    assert b"1004,lurker@gmail.com,null,null,false" in data            # bare null, no quotes

    head = api.get(f"{export}/file.json", headers={"Range": "bytes=0-9"})
    assert head.status_code == 206
    assert head.headers["Content-Range"] == f"bytes 0-9/{len(data)}"
    assert head.headers["Content-Length"] == "10"
    tail = api.get(f"{export}/file.json", headers={"Range": "bytes=10-"})
    assert tail.status_code == 206 and head.content + tail.content == data

    listed = ok(api.get(f"{base}/bulk/v1/leads/export.json", params={"status": "Completed"}))["result"]
    assert [j["exportId"] for j in listed] == [created["exportId"]]


def test_activity_export_filters_by_window_and_type(api: requests.Session, base: str) -> None:
    job = ok(api.post(f"{base}/bulk/v1/activities/export/create.json", json={
        "filter": {"createdAt": {"startAt": "2026-10-21T00:00:00Z", "endAt": "2026-11-20T00:00:00Z"},
                   "activityTypeIds": [1]}}))["result"][0]
    export = f"{base}/bulk/v1/activities/export/{job['exportId']}"
    ok(api.post(f"{export}/enqueue.json"))
    while ok(api.get(f"{export}/status.json"))["result"][0]["status"] != "Completed":
        pass
    rows = list(csv.DictReader(io.StringIO(api.get(f"{export}/file.json").text)))
    assert [r["marketoGUID"] for r in rows] == ["m111-1", "m111-2", "m111-4"]
    assert rows[0]["campaignId"] == "null"
    assert rows[0]["attributes"] == '{"Webpage URL":"/products/new-product","Client IP Address":"203.0.113.7"}'


def export_rows(api: requests.Session, base: str, obj: str, body: dict) -> list[dict]:
    """An export created, queued, waited for and read."""
    job = ok(api.post(f"{base}/bulk/v1/{obj}/export/create.json", json=body))
    url = f"{base}/bulk/v1/{obj}/export/{job['result'][0]['exportId']}"
    ok(api.post(f"{url}/enqueue.json"))
    while ok(api.get(f"{url}/status.json"))["result"][0]["status"] != "Completed":
        pass
    return list(csv.DictReader(io.StringIO(api.get(f"{url}/file.json").text)))


def test_an_activity_added_after_an_export_is_in_the_next_one(fleet, api: requests.Session, base: str) -> None:
    """Activities' cells are rendered once and kept (the log is append-only): an activity recorded
    after an export is rendered for the next export of its window, and the earlier ones unchanged."""
    body = {"filter": {"createdAt": {"startAt": "2026-10-21T00:00:00Z", "endAt": "2026-11-21T00:00:00Z"}}}
    before = export_rows(api, base, "activities", body)
    added = fleet.mutate(KEY, "add_activity", lead_id=1001, activity_type_id=1, primary_attribute_value="bodea.com/new",
                         attributes={"Webpage URL": "/new, \"quoted\""})
    after = export_rows(api, base, "activities", body)
    assert after[:-1] == before
    assert after[-1]["marketoGUID"] == added["marketoGUID"]
    assert after[-1]["attributes"] == '{"Webpage URL":"/new, \\"quoted\\""}'


def test_a_lead_changed_or_deleted_after_an_export_shows_so_in_the_next_one(fleet, api: requests.Session,
                                                                             base: str) -> None:
    """Leads' cells are kept between exports too, and rendered afresh once a lead changes."""
    body = {"fields": ["id", "email", "title"],   # leads 1001 and 1002
            "filter": {"createdAt": {"startAt": "2025-02-20T00:00:00Z", "endAt": "2025-03-20T00:00:00Z"}}}
    before = {row["id"]: row for row in export_rows(api, base, "leads", body)}
    changed, deleted = sorted(before)[:2]
    fleet.mutate(KEY, "upsert_lead", fields={"id": int(changed), "title": "Chief Robot Officer"})
    fleet.mutate(KEY, "delete_lead", lead_id=int(deleted))
    after = {row["id"]: row for row in export_rows(api, base, "leads", body)}
    assert after[changed] == {**before[changed], "title": "Chief Robot Officer"}
    assert deleted not in after
    assert {k: v for k, v in after.items() if k != changed} == {
        k: v for k, v in before.items() if k not in (changed, deleted)}


def test_date_range_over_31_days_is_refused(api: requests.Session, base: str) -> None:
    window = {"startAt": "2026-01-01T00:00:00Z", "endAt": "2026-03-01T00:00:00Z"}
    for obj, body in [("leads", {"fields": ["id"], "filter": {"createdAt": window}}),
                      ("activities", {"filter": {"createdAt": window}})]:
        response = api.post(f"{base}/bulk/v1/{obj}/export/create.json", json=body)
        assert error_code(response) == "1003"
        assert "31 days" in response.json()["errors"][0]["message"]
    unknown = api.post(f"{base}/bulk/v1/leads/export/create.json", json={
        "fields": ["id", "shoeSize"], "filter": {"createdAt": {"startAt": "2026-01-01T00:00:00Z",
                                                               "endAt": "2026-01-31T00:00:00Z"}}})
    assert error_code(unknown) == "1003"
    assert error_code(api.get(f"{base}/bulk/v1/leads/export/not-a-job/status.json")) == "1003"


def test_queue_limits_and_daily_quota(fleet, api: requests.Session, base: str) -> None:
    body = {"fields": ["id"], "filter": {"createdAt": {"startAt": "2025-03-01T00:00:00Z",
                                                       "endAt": "2025-03-31T00:00:00Z"}}}

    def poll(export_id):
        return ok(api.get(f"{base}/bulk/v1/leads/export/{export_id}/status.json"))["result"][0]["status"]

    first = ok(api.post(f"{base}/bulk/v1/leads/export/create.json", json=body))["result"][0]["exportId"]
    ok(api.post(f"{base}/bulk/v1/leads/export/{first}/enqueue.json"))
    assert poll(first) == "Completed"                          # small: built at once, done by the first poll

    fleet.inject(KEY, "export_stall")                          # a busy instance: jobs stay Processing
    ids = [ok(api.post(f"{base}/bulk/v1/leads/export/create.json", json=body))["result"][0]["exportId"]
           for _ in range(11)]
    for export_id in ids[:10]:
        ok(api.post(f"{base}/bulk/v1/leads/export/{export_id}/enqueue.json"))
    full = api.post(f"{base}/bulk/v1/leads/export/{ids[10]}/enqueue.json")
    assert error_code(full) == "1029" and full.json()["errors"][0]["message"] == "Too many jobs in queue"
    assert [poll(i) for i in ids[:3]] == ["Processing", "Processing", "Queued"]   # two run at once
    assert api.get(f"{base}/bulk/v1/leads/export/{ids[0]}/file.json").status_code == 404
    assert ok(api.post(f"{base}/bulk/v1/leads/export/{ids[3]}/cancel.json"))["result"][0]["status"] == "Canceled"
    fleet.clear_faults()
    assert poll(ids[0]) == "Completed"
    assert poll(ids[2]) == "Completed"         # Queued when last polled: Marketo can skip a state
    assert poll(ids[3]) == "Canceled"

    fleet.instance(KEY).exports.daily_quota_bytes = 1          # the completed file used it up
    quota = api.post(f"{base}/bulk/v1/leads/export/{ids[10]}/enqueue.json")
    assert error_code(quota) == "1029"
    assert quota.json()["errors"][0]["message"] == "Export daily quota exceeded"


# ------------------------------------------------------------------------------------------- static lists

def test_static_list_membership_survives_a_restart(fleet, api: requests.Session, base: str,
                                                    state_dir: Path) -> None:
    lists = ok(api.get(f"{base}/rest/v1/lists.json"))["result"]
    assert [(entry["id"], entry["name"]) for entry in lists] == [(9001, "High-value new product visitors")]

    added = ok(api.post(f"{base}/rest/v1/lists/9001/leads.json?id=1002&id=1003&id=999999"))["result"]
    assert added == [{"id": 1002, "status": "added"}, {"id": 1003, "status": "added"},
                     {"id": 999999, "status": "skipped", "reasons": [{"code": "1004", "message": "Lead not found"}]}]
    removed = ok(api.delete(f"{base}/rest/v1/lists/9001/leads.json",
                            json={"input": [{"id": 1003}, {"id": 1001}]}))["result"]
    assert removed == [{"id": 1003, "status": "removed"},
                       {"id": 1001, "status": "skipped", "reasons": [{"code": "1015", "message": "Lead not in list"}]}]
    members = ok(api.get(f"{base}/rest/v1/lists/9001/leads.json"))["result"]
    assert [m["id"] for m in members] == [1002]
    membership = ok(api.get(f"{base}/rest/v1/lists/9001/leads/ismember.json", params={"id": ["1002", "1001"]}))
    assert [r["status"] for r in membership["result"]] == ["memberof", "notmemberof"]
    assert error_code(api.get(f"{base}/rest/v1/lists/4242/leads.json")) == "1013"
    too_many = {"input": [{"id": i} for i in range(301)]}
    assert error_code(api.post(f"{base}/rest/v1/lists/9001/leads.json", json=too_many)) == "1003"

    assert (state_dir / "marketo_111-AAA-111.json").exists()
    fleet.stop()
    with EmulatorFleet.from_scenario(BODEA, state_dir=state_dir) as again:
        url = again.urls[KEY]
        with requests.Session() as session:
            token = session.get(f"{url}/identity/oauth/token", params=CREDENTIALS).json()["access_token"]
            session.headers["Authorization"] = f"Bearer {token}"
            members = ok(session.get(f"{url}/rest/v1/lists/9001/leads.json", params={"fields": "email"}))
    assert members["result"] == [{"id": 1002, "email": "p2@townsend.com"}]


def test_list_members_page_with_next_page_token(api: requests.Session, base: str) -> None:
    ok(api.post(f"{base}/rest/v1/lists/9001/leads.json?id=1001&id=1002&id=1003"))
    first = ok(api.get(f"{base}/rest/v1/lists/9001/leads.json", params={"batchSize": 2}))
    assert [m["id"] for m in first["result"]] == [1001, 1002]
    second = ok(api.get(f"{base}/rest/v1/lists/9001/leads.json",
                        params={"batchSize": 2, "nextPageToken": first["nextPageToken"]}))
    assert [m["id"] for m in second["result"]] == [1003]
    assert "nextPageToken" not in second


# ------------------------------------------------------------------------------------------- B2B objects

def test_companies_and_opportunities_by_external_company_id(api: requests.Session, base: str) -> None:
    companies = ok(api.get(f"{base}/rest/v1/companies.json", params={
        "filterType": "externalCompanyId", "filterValues": "001A00000000001AAA,001A00000000002AAA",
        "fields": "externalCompanyId,company,annualRevenue"}))["result"]
    assert companies == [
        {"seq": 0, "externalCompanyId": "001A00000000001AAA", "company": "Townsend", "annualRevenue": 250000000},
        {"seq": 1, "externalCompanyId": "001A00000000002AAA", "company": "Acme Robotics",
         "annualRevenue": 90000000}]

    opportunities = ok(api.get(f"{base}/rest/v1/opportunities.json", params={
        "filterType": "externalCompanyId", "filterValues": "001A00000000001AAA",
        "fields": "externalOpportunityId,amount,isWon"}))["result"]
    assert [(o["externalOpportunityId"], o["amount"], o["isWon"]) for o in opportunities] == [
        ("006A00000000001AAA", 200000, True), ("006A00000000003AAA", 5000000, False)]

    describe = ok(api.get(f"{base}/rest/v1/companies/describe.json"))["result"][0]
    assert describe["idField"] == "id" and describe["dedupeFields"] == ["externalCompanyId"]
    assert ["externalCompanyId"] in describe["searchableFields"]
    describe = ok(api.get(f"{base}/rest/v1/opportunities/describe.json"))["result"][0]
    assert describe["idField"] == "marketoGUID" and describe["dedupeFields"] == ["externalOpportunityId"]

    assert error_code(api.get(f"{base}/rest/v1/companies.json",
                              params={"filterType": "website", "filterValues": "townsend.com"})) == "1003"


def test_export_jobs_survive_a_restart(fleet, api: requests.Session, base: str, state_dir: Path) -> None:
    body = {"fields": ["id", "email"], "filter": {"staticListId": 9001}}
    ok(api.post(f"{base}/rest/v1/lists/9001/leads.json?id=1003"))
    done = ok(api.post(f"{base}/bulk/v1/leads/export/create.json", json=body))["result"][0]["exportId"]
    queued = ok(api.post(f"{base}/bulk/v1/leads/export/create.json", json=body))["result"][0]["exportId"]
    ok(api.post(f"{base}/bulk/v1/leads/export/{done}/enqueue.json"))
    finished = ok(api.get(f"{base}/bulk/v1/leads/export/{done}/status.json"))["result"][0]
    assert finished["status"] == "Completed"
    content = api.get(f"{base}/bulk/v1/leads/export/{done}/file.json").content
    assert content == b"id,email\n1003,a1@acmerobotics.com\n"
    fleet.inject(KEY, "export_stall")                   # stopped while its file is being built
    ok(api.post(f"{base}/bulk/v1/leads/export/{queued}/enqueue.json"))
    assert ok(api.get(f"{base}/bulk/v1/leads/export/{queued}/status.json"))["result"][0]["status"] == "Processing"
    fleet.stop()

    with EmulatorFleet.from_scenario(BODEA, state_dir=state_dir) as again:
        url = again.urls[KEY]
        with requests.Session() as session:
            token = session.get(f"{url}/identity/oauth/token", params=CREDENTIALS).json()["access_token"]
            session.headers["Authorization"] = f"Bearer {token}"
            assert ok(session.get(f"{url}/bulk/v1/leads/export/{done}/status.json"))["result"][0] == finished
            assert session.get(f"{url}/bulk/v1/leads/export/{done}/file.json").content == content
            # Built again after the restart, as the job never completed.
            assert ok(session.get(f"{url}/bulk/v1/leads/export/{queued}/status.json"))["result"][0]["status"] \
                == "Completed"
            assert session.get(f"{url}/bulk/v1/leads/export/{queued}/file.json").content == content
        assert again.instance(KEY).exports.quota["bytes"] == 2 * len(content)


@pytest.mark.parametrize("persisted", [True, False], ids=["state-dir", "no-state-dir"])
def test_export_download_is_the_reported_file_and_ranges_resume_it(tmp_path: Path, persisted: bool) -> None:
    """A file of several MiB, served from disk: the whole download is the file the job reported,
    a Range answers exactly the tail with 206, and a download cut off resumes byte-exact."""
    activities = [{"marketoGUID": f"g{i}", "leadId": 1, "activityDate": f"2026-11-{1 + i % 18:02d}T12:00:00Z",
                   "activityTypeId": 1, "primaryAttributeValue": f"www.example.com/page/{i}",
                   "attributes": [{"name": "Webpage URL", "value": f"/page/{i}?q=\"x\",y"}]}
                  for i in range(30_000)]
    scenario = tmp_path / "big.json"
    scenario.write_text(json.dumps({"clock": "2026-11-20T12:00:00Z", "marketo": [
        {"munchkin_id": MUNCHKIN, "leads": [{"id": 1, "email": "a@b.com"}], "activities": activities}]}))
    with EmulatorFleet.from_scenario(scenario, state_dir=tmp_path / "state" if persisted else None) as fleet, \
            requests.Session() as api:
        base = fleet.urls[KEY]
        api.headers["Authorization"] = "Bearer " + api.get(f"{base}/identity/oauth/token",
                                                           params=CREDENTIALS).json()["access_token"]
        window = {"startAt": "2026-11-01T00:00:00Z", "endAt": "2026-11-20T00:00:00Z"}
        job = ok(api.post(f"{base}/bulk/v1/activities/export/create.json",
                          json={"filter": {"createdAt": window}}))["result"][0]
        export = f"{base}/bulk/v1/activities/export/{job['exportId']}"
        ok(api.post(f"{export}/enqueue.json"))
        while job["status"] != "Completed":
            job = ok(api.get(f"{export}/status.json"))["result"][0]
        assert job["numberOfRecords"] == 30_000 and job["fileSize"] > 2 * 1024 * 1024

        whole = api.get(f"{export}/file.json")
        assert whole.status_code == 200 and whole.headers["Content-Length"] == str(job["fileSize"])
        data = whole.content
        assert len(data) == job["fileSize"]
        assert job["fileChecksum"] == "sha256:" + hashlib.sha256(data).hexdigest()
        assert data.count(b"\n") == 30_001 and data.startswith(b"marketoGUID,leadId,activityDate,")
        if persisted:
            assert (tmp_path / "state" / f"marketo_{MUNCHKIN}.exports" / f"{job['exportId']}.csv").read_bytes() == data

        offset = job["fileSize"] - 1_234_567
        tail = api.get(f"{export}/file.json", headers={"Range": f"bytes={offset}-"})
        assert tail.status_code == 206
        assert tail.headers["Content-Range"] == f"bytes {offset}-{job['fileSize'] - 1}/{job['fileSize']}"
        assert tail.headers["Content-Length"] == "1234567" and tail.content == data[offset:]
        suffix = api.get(f"{export}/file.json", headers={"Range": "bytes=-10"})
        assert suffix.status_code == 206 and suffix.content == data[-10:]
        beyond = api.get(f"{export}/file.json", headers={"Range": f"bytes={job['fileSize']}-"})
        assert beyond.status_code == 416 and beyond.headers["Content-Range"] == f"bytes */{job['fileSize']}"

        # Cut off mid-body twice (the whole, then a resumed range): each resume asks from the last byte.
        fleet.inject(KEY, "connection_reset", after_bytes=1_000_000, count=2)
        received = b""
        for _ in range(3):
            headers = {"Range": f"bytes={len(received)}-"} if received else {}
            try:
                with api.get(f"{export}/file.json", headers=headers, stream=True) as response:
                    assert response.status_code == (206 if received else 200)
                    for chunk in response.iter_content(1 << 16):
                        received += chunk
                break
            except requests.exceptions.RequestException:
                continue
        assert len(received) == job["fileSize"] and received == data
        assert fleet.faults() == []                                      # both cuts happened
        scratch = fleet.instance(KEY).exports._scratch
    assert scratch is None if persisted else not scratch[0].exists()   # no stray copy outlives the fleet
