"""Marketo's incremental endpoints (paging tokens, activities, lead changes, deleted leads), source
mutations, and CRM-synced instances refusing B2B writes."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
import requests
import yaml

from emulators import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, EmulatorFleet

BODEA = Path(__file__).resolve().parents[2] / "include" / "scenarios" / "bodea.yaml"
KEY = "marketo:111-AAA-111"
CREDENTIALS = {"grant_type": "client_credentials", "client_id": DEFAULT_CLIENT_ID,
               "client_secret": DEFAULT_CLIENT_SECRET}


from tests.integration.emulator_clients import marketo_session as session_for  # noqa: E402


@pytest.fixture
def api(fleet):
    with session_for(fleet.urls[KEY]) as session:
        yield session


def ok(response: requests.Response) -> dict:
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["success"] is True, body
    return body


def error(response: requests.Response) -> dict:
    body = response.json()
    assert body["success"] is False, body
    return body["errors"][0]


def test_paging_token_is_opaque_and_date_based(fleet, api) -> None:
    base = fleet.urls[KEY]
    body = ok(api.get(f"{base}/rest/v1/activities/pagingtoken.json", params={"sinceDatetime": "2026-10-01T00:00:00Z"}))
    assert set(body) == {"requestId", "success", "nextPageToken"}
    token = body["nextPageToken"]
    assert base64.b32decode(token).decode() == "2026-10-01T00:00:00.000+0000,0"     # Marketo's own shape
    same = ok(api.get(f"{base}/rest/v1/activities/pagingtoken.json",
                      params={"sinceDatetime": "2026-09-30T19:00:00-05:00"}))["nextPageToken"]
    assert same == token
    assert ok(api.get(f"{base}/rest/v1/activities/pagingtoken.json",
                      params={"sinceDatetime": "2026-10-01"}))["nextPageToken"] == token
    assert error(api.get(f"{base}/rest/v1/activities/pagingtoken.json"))["code"] == "1003"
    assert error(api.get(f"{base}/rest/v1/activities/pagingtoken.json",
                         params={"sinceDatetime": "last tuesday"}))["code"] == "1001"


def test_activities_page_with_more_result_and_resume_later(fleet, api) -> None:
    base = fleet.urls[KEY]
    instance = fleet.instance(KEY)
    for n in range(320):
        instance.add_activity(1002, 1, f"www.bodea.com/page-{n}", {"Webpage URL": f"/page-{n}"},
                              primary_attribute_value_id=900 + n)
    token = ok(api.get(f"{base}/rest/v1/activities/pagingtoken.json",
                       params={"sinceDatetime": "2026-10-01T00:00:00Z"}))["nextPageToken"]
    first = ok(api.get(f"{base}/rest/v1/activities.json", params={"nextPageToken": token, "activityTypeIds": "1,12"}))
    assert len(first["result"]) == 300 and first["moreResult"] is True
    assert [a["marketoGUID"] for a in first["result"][:3]] == ["m111-1", "m111-2", "m111-4"]
    assert first["result"][0] == {
        "id": 2, "marketoGUID": "m111-1", "leadId": 1002, "activityDate": "2026-10-25T15:02:00Z",
        "activityTypeId": 1, "primaryAttributeValueId": 501,
        "primaryAttributeValue": "www.bodea.com/products/new-product",
        "attributes": [{"name": "Webpage URL", "value": "/products/new-product"},
                       {"name": "Client IP Address", "value": "203.0.113.7"}]}
    added = first["result"][3]
    assert added["activityDate"] == "2026-11-20T12:00:00Z" and added["primaryAttributeValue"] == "www.bodea.com/page-0"
    second = ok(api.get(f"{base}/rest/v1/activities.json",
                        params={"nextPageToken": first["nextPageToken"], "activityTypeIds": "1,12"}))
    assert len(second["result"]) == 23 and second["moreResult"] is False
    ids = [a["id"] for a in first["result"] + second["result"]]
    assert ids == sorted(ids) and len(set(ids)) == 323               # (activityDate, id) order, no repeats

    saved = second["nextPageToken"]
    empty = ok(api.get(f"{base}/rest/v1/activities.json", params={"nextPageToken": saved, "activityTypeIds": "1"}))
    assert "result" not in empty and empty["moreResult"] is False and empty["nextPageToken"] == saved
    fleet.advance(1800)
    instance.add_activity(1001, 1, "www.bodea.com/later")
    instance.add_activity(1003, 2, "Contact Us")
    later = ok(api.get(f"{base}/rest/v1/activities.json", params={"nextPageToken": saved, "activityTypeIds": "1"}))
    assert [(a["leadId"], a["activityDate"]) for a in later["result"]] == [(1001, "2026-11-20T12:30:00Z")]
    assert later["moreResult"] is False

    scoped = ok(api.get(f"{base}/rest/v1/activities.json",
                        params={"nextPageToken": token, "activityTypeIds": "1", "leadIds": "1001,1004"}))
    assert [a["marketoGUID"] for a in scoped["result"]] == ["m111-2", "m111-4", later["result"][0]["marketoGUID"]]
    small = ok(api.get(f"{base}/rest/v1/activities.json",
                       params={"nextPageToken": token, "activityTypeIds": "1", "batchSize": 2}))
    assert len(small["result"]) == 2 and small["moreResult"] is True


def test_activities_validation(fleet, api) -> None:
    base = fleet.urls[KEY]
    token = ok(api.get(f"{base}/rest/v1/activities/pagingtoken.json",
                       params={"sinceDatetime": "2026-01-01T00:00:00Z"}))["nextPageToken"]
    url = f"{base}/rest/v1/activities.json"
    assert error(api.get(url, params={"nextPageToken": token}))["code"] == "1003"             # type ids required
    eleven = ",".join(str(i) for i in (1, 2, 3, 6, 7, 9, 10, 11, 12, 13, 24))
    assert error(api.get(url, params={"nextPageToken": token, "activityTypeIds": eleven}))["code"] == "1003"
    assert error(api.get(url, params={"activityTypeIds": "1"}))["code"] == "1003"             # token required
    assert error(api.get(url, params={"nextPageToken": "not-a-token", "activityTypeIds": "1"}))["code"] == "1003"
    many = ",".join(str(1000 + i) for i in range(31))
    too_many = api.get(url, params={"nextPageToken": token, "activityTypeIds": "1", "leadIds": many})
    assert error(too_many)["code"] == "1003"
    listed = ok(api.get(url, params={"nextPageToken": token, "activityTypeIds": "1", "listId": 9001}))
    assert "result" not in listed                                  # the list is empty


def test_lead_changes_and_deleted_leads_from_mutations(fleet, api) -> None:
    base = fleet.urls[KEY]
    instance = fleet.instance(KEY)
    token = ok(api.get(f"{base}/rest/v1/activities/pagingtoken.json",
                       params={"sinceDatetime": "2026-11-20T00:00:00Z"}))["nextPageToken"]
    fleet.advance(60)
    updated = instance.upsert_lead({"id": 1001, "title": "CIO", "email": "p1@townsend.com"})
    assert updated["title"] == "CIO" and updated["updatedAt"] == "2026-11-20T12:01:00Z"
    created = instance.upsert_lead({"email": "new@townsend.com", "firstName": "Nova"})
    assert created["id"] == 1005 and created["createdAt"] == created["updatedAt"] == "2026-11-20T12:01:00Z"
    fleet.advance(60)
    gone = instance.delete_lead(1004)
    assert gone["activityTypeId"] == 37 and gone["leadId"] == 1004

    changes = ok(api.get(f"{base}/rest/v1/activities/leadchanges.json",
                         params={"nextPageToken": token, "fields": "title,firstName"}))
    assert changes["moreResult"] is False
    change, new_lead = changes["result"]
    assert change["activityTypeId"] == 13 and change["leadId"] == 1001
    assert change["activityDate"] == "2026-11-20T12:01:00Z"
    assert change["fields"] == [{"id": change["fields"][0]["id"], "name": "title", "newValue": "CIO",
                                 "oldValue": "Director of IT"}]
    assert {"name": "Source", "value": "Web service API"} in change["attributes"]
    assert new_lead["activityTypeId"] == 12 and new_lead["leadId"] == 1005
    only_email = ok(api.get(f"{base}/rest/v1/activities/leadchanges.json",
                            params={"nextPageToken": token, "fields": "email"}))
    assert [a["activityTypeId"] for a in only_email["result"]] == [12]   # email did not change
    assert error(api.get(f"{base}/rest/v1/activities/leadchanges.json",
                         params={"nextPageToken": token}))["code"] == "1003"

    deleted = ok(api.get(f"{base}/rest/v1/activities/deletedleads.json", params={"nextPageToken": token}))
    assert [(d["leadId"], d["activityTypeId"], d["activityDate"], d["primaryAttributeValue"])
            for d in deleted["result"]] == [(1004, 37, "2026-11-20T12:02:00Z", "Lee Lurker")]
    assert deleted["moreResult"] is False

    as_activities = ok(api.get(f"{base}/rest/v1/activities.json",
                               params={"nextPageToken": token, "activityTypeIds": "13"}))["result"]
    assert as_activities[0]["primaryAttributeValue"] == "Title"
    assert {"name": "New Value", "value": "CIO"} in as_activities[0]["attributes"]

    assert ok(api.get(f"{base}/rest/v1/lead/1001.json", params={"fields": "email,title"}))["result"] == [
        {"id": 1001, "email": "p1@townsend.com", "title": "CIO"}]
    assert ok(api.get(f"{base}/rest/v1/lead/1004.json"))["result"] == []
    by_id = ok(api.get(f"{base}/rest/v1/leads.json", params={"filterType": "id", "filterValues": "1004"}))
    assert by_id["result"] == []


def test_scenario_deleted_leads_and_mutations_survive_a_restart(tmp_path: Path) -> None:
    scenario = tmp_path / "s.yaml"
    scenario.write_text(yaml.safe_dump({"clock": "2026-11-20T12:00:00Z", "marketo": [{
        "munchkin_id": "333-CCC-333",
        "leads": [{"id": 1, "email": "a@example.com", "updatedAt": "2026-11-01T00:00:00Z"}],
        "deleted_leads": [{"id": 7, "deletedAt": "2026-11-15T10:00:00Z"}]}]}))
    key = "marketo:333-CCC-333"
    with EmulatorFleet.from_scenario(scenario, state_dir=tmp_path / "state") as fleet:
        fleet.advance(10)
        fleet.instance(key).upsert_lead({"id": 1, "email": "b@example.com"})
        fleet.instance(key).delete_lead(1)
    with EmulatorFleet.from_scenario(scenario, state_dir=tmp_path / "state") as fleet:
        base = fleet.urls[key]
        with session_for(base) as api:
            token = ok(api.get(f"{base}/rest/v1/activities/pagingtoken.json",
                               params={"sinceDatetime": "2026-11-01T00:00:00Z"}))["nextPageToken"]
            deleted = ok(api.get(f"{base}/rest/v1/activities/deletedleads.json", params={"nextPageToken": token}))
            assert [(d["leadId"], d["activityDate"]) for d in deleted["result"]] == [
                (7, "2026-11-15T10:00:00Z"), (1, "2026-11-20T12:00:10Z")]
            changes = ok(api.get(f"{base}/rest/v1/activities/leadchanges.json",
                                 params={"nextPageToken": token, "fields": "email"}))["result"]
            assert changes[0]["fields"][0]["newValue"] == "b@example.com"


def test_crm_synced_instances_refuse_b2b_writes(fleet, api) -> None:
    base = fleet.urls[KEY]
    for obj in ("companies", "opportunities"):
        refused = error(api.post(f"{base}/rest/v1/{obj}.json", json={"input": [{"externalCompanyId": "X"}]}))
        assert refused["code"] == "1003" and "CRM sync" in refused["message"]
        assert error(api.post(f"{base}/rest/v1/{obj}/delete.json", json={"input": []}))["code"] == "1003"
    # Opportunity roles only exist without a native CRM sync.
    for path in ("opportunities/roles.json?filterType=leadId&filterValues=1001", "opportunities/roles/describe.json"):
        assert error(api.get(f"{base}/rest/v1/{path}")) == {"code": "610", "message": "Requested resource not found"}
    assert ok(api.get(f"{base}/rest/v1/namedaccounts/describe.json"))["result"][0]["idField"] == "marketoGUID"


def test_unsynced_instance_syncs_companies_and_roles(tmp_path: Path) -> None:
    scenario = tmp_path / "s.yaml"
    scenario.write_text(yaml.safe_dump({"clock": "2026-11-20T12:00:00Z", "marketo": [{
        "munchkin_id": "333-CCC-333", "leads": [{"id": 1, "email": "a@example.com"}],
        "companies": [{"id": 5, "externalCompanyId": "ACME", "company": "Acme"}]}]}))
    with EmulatorFleet.from_scenario(scenario) as fleet:
        base = fleet.urls["marketo:333-CCC-333"]
        with session_for(base) as api:
            synced = ok(api.post(f"{base}/rest/v1/companies.json", json={"input": [
                {"externalCompanyId": "ACME", "industry": "Robots"},
                {"externalCompanyId": "GLOBEX", "company": "Globex"}]}))
            assert synced["result"] == [{"seq": 0, "status": "updated", "id": 5},
                                        {"seq": 1, "status": "created", "id": 6}]
            got = ok(api.get(f"{base}/rest/v1/companies.json", params={
                "filterType": "externalCompanyId", "filterValues": "ACME,GLOBEX",
                "fields": "company,industry,updatedAt"}))
            assert [(c["company"], c.get("industry"), c["updatedAt"]) for c in got["result"]] == [
                ("Acme", "Robots", "2026-11-20T12:00:00Z"), ("Globex", None, "2026-11-20T12:00:00Z")]
            roles = ok(api.post(f"{base}/rest/v1/opportunities/roles.json", json={"input": [
                {"externalOpportunityId": "O1", "leadId": 1, "role": "Buyer", "isPrimary": True}]}))["result"]
            assert roles[0]["status"] == "created"
            listed = ok(api.get(f"{base}/rest/v1/opportunities/roles.json",
                                params={"filterType": "leadId", "filterValues": "1"}))["result"]
            assert listed[0]["role"] == "Buyer"
            deleted = ok(api.post(f"{base}/rest/v1/companies/delete.json",
                                  json={"deleteBy": "dedupeFields", "input": [{"externalCompanyId": "GLOBEX"},
                                                                              {"externalCompanyId": "NOPE"}]}))
            assert [r["status"] for r in deleted["result"]] == ["deleted", "skipped"]
