"""Marketo static-list activation on Bodea: members matched by email and by ECID, optional lead
creation (never for unsubscribed people), and no duplicate lead from concurrent upserts of one key.

The test configuration adds a segment `townsend_and_globex` (p1, p2, p3, g1) activated to list 9001
of Marketo 111-AAA-111, where only p1 and p2 have a lead by email. p3 is seen on the website with
an ECID that a lead of 111-AAA-111 also carries (another email); g1 has no lead there at all.
"""

import json
from pathlib import Path

import pytest
import yaml
from emulators import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET

from b2b_cdp import activation, identity, ingest, warehouse
from b2b_cdp.config import DEFAULT_CONFIG_PATH, load_config, parse_config
from b2b_cdp.sources.marketo import MarketoClient
from tests.integration.test_buying_groups import evaluate
from tests.integration.test_explain import stitched  # noqa: F401  (the fixture)
from tests.integration.test_pipeline_stages import CLOCK, one

P3_ECID = "12345678901234567890123456789012345678"
SEGMENT = {"id": "townsend_and_globex", "name": "Townsend and Globex people", "platform_instance": "bodea",
           "sandbox": "prod", "mode": "batch",
           "where": {"any": [{"attribute": {"name": "email", "op": "ends_with", "value": "@townsend.com"}},
                             {"attribute": {"name": "email", "op": "ends_with", "value": "@globex.example"}}]}}
MAPPING = [{"source": "email", "target": "email"}, {"source": "first_name", "target": "firstName"},
           {"source": "last_name", "target": "lastName"}, {"source": "title", "target": "title"}]


def destination(**more) -> dict:
    return {"id": "marketo_people", "type": "marketo", "munchkin_id": "111-AAA-111", "conn_id": "marketo_111_aaa_111",
            "platform_instance": "bodea", "sandbox": "prod", "mapping": MAPPING,
            "audiences": [{"segment": "townsend_and_globex", "static_list_id": 9001}], **more}


@pytest.fixture
def marketo(stitched, bodea_fleet, tmp_path, monkeypatch):  # noqa: F811
    """p3 visits the website with an ECID (landed and stitched), a lead of 111-AAA-111 carries that
    ECID (landed in the lake as a leads export would land it); returns the emulated instance."""
    instance = bodea_fleet.instance("marketo:111-AAA-111")
    lead = instance.upsert_lead({"email": "sam@home.example", "firstName": "Sam", "lastName": "Three",
                                 "ecids": f"mkto:{P3_ECID} 98765432109876543210987654321098765432"})
    with warehouse.connect(stitched) as conn:
        rows = warehouse.land_raw(conn, "raw_marketo_leads", batch_id="test:ecid-lead", instance="111-AAA-111",
                                  records=[{"id": lead["id"], "email": lead["email"], "ecids": lead["ecids"],
                                            "updatedAt": lead["updatedAt"]}])
        warehouse.run(conn, "ops/record_ingest_batch", {
            "batch_id": "test:ecid-lead", "source_id": "marketo_111_aaa_111", "object": "leads", "rows": rows,
            "api_calls": 0, "extracted_at": CLOCK}).close()
    drops = Path(bodea_fleet.urls["dropzone"].removeprefix("file://")) / "web_events"
    drops.mkdir(parents=True, exist_ok=True)
    (drops / "visits-p3.jsonl").write_text(json.dumps({
        "ecid": P3_ECID, "email": "p3@townsend.com", "timestamp": "2026-11-19T10:00:00Z",
        "url": "https://www.bodea.com/pricing"}) + "\n", encoding="utf-8")
    ingest.land_web_events("web_events", "run-ecid", CLOCK)
    ingest.normalize("web_events")
    identity.stitch(stitched)

    raw = yaml.safe_load(DEFAULT_CONFIG_PATH.read_text())
    raw["segments"].append(SEGMENT)
    raw["destinations"] += [destination(), destination(id="marketo_people_create",
                                                       lead_creation={"action": "createOrUpdate"})]
    (tmp_path / "cdp.yaml").write_text(yaml.safe_dump(raw))
    monkeypatch.setenv("CDP_CONFIG", str(tmp_path / "cdp.yaml"))
    evaluate(load_config(), stitched, CLOCK)
    instance.ecid_lead_id = lead["id"]
    return instance


def list_emails(instance, list_id: int = 9001) -> list[str]:
    return sorted(instance.leads_by_id[i]["email"] for i in instance.list_members(list_id))


def statuses(sandbox, destination_id: str) -> dict[str, tuple]:
    return {email: (action, status, reason) for email, action, status, reason in one(
        sandbox, "SELECT p.email, s.action, s.status, s.reason FROM activation_record_status s "
                 "JOIN profile_person p USING (person_id) WHERE s.destination_id = %s AND s.action = 'add'",
        (destination_id,))}


def test_members_are_matched_by_email_then_by_ecid(stitched, marketo):
    outcome = activation.activate_destination("marketo_people", "run-1")["9001"]
    assert (outcome["audience_size"], outcome["added"], outcome["skipped"]) == (4, 3, 1)
    # p3's lead is the one carrying p3's ECID (its email is another one).
    assert list_emails(marketo) == ["p1@townsend.com", "p2@townsend.com", "sam@home.example"]
    assert one(stitched, "SELECT s.member_key FROM activation_state s JOIN profile_person p USING (person_id) "
                         "WHERE p.email = 'p3@townsend.com'") == [(str(marketo.ecid_lead_id),)]
    assert statuses(stitched, "marketo_people")["g1@globex.example"] == ("add", "skipped", activation.NO_LEAD)
    # Without lead creation nobody is created.
    assert not [lead for lead in marketo.leads if lead.get("email") == "g1@globex.example"]


def test_leads_are_created_once_and_never_for_unsubscribed_people(stitched, marketo, monkeypatch):
    one(stitched, "UPDATE profile_person SET unsubscribed = true WHERE email = 'g1@globex.example' RETURNING 1")
    first = activation.activate_destination("marketo_people_create", "run-1")["9001"]
    assert (first["added"], first["skipped"]) == (3, 1)
    assert statuses(stitched, "marketo_people_create")["g1@globex.example"] == (
        "add", "skipped", activation.UNSUBSCRIBED)
    assert not [lead for lead in marketo.leads if lead.get("email") == "g1@globex.example"]

    # g1 subscribes again; the run that creates the lead dies before adding it to the list.
    one(stitched, "UPDATE profile_person SET unsubscribed = false WHERE email = 'g1@globex.example' RETURNING 1")
    change_list = MarketoClient.change_list

    def die(self, *args, **kwargs):
        raise RuntimeError("worker lost after the lead was created")

    monkeypatch.setattr(MarketoClient, "change_list", die)
    with pytest.raises(RuntimeError):
        activation.activate_destination("marketo_people_create", "run-2")
    (created,) = [lead for lead in marketo.leads if lead.get("email") == "g1@globex.example"]
    assert (created["firstName"], created["lastName"], created["title"]) == ("Gale", "Globex", "Head of Operations")

    # The next run, at once (within Marketo's window where a second createOrUpdate of the same email
    # would create a second lead), finds the lead by email and upserts nothing.
    monkeypatch.setattr(MarketoClient, "change_list", change_list)
    calls = marketo.call_count
    again = activation.activate_destination("marketo_people_create", "run-3")["9001"]
    assert (again["added"], again["skipped"], again["api_calls"]) == (1, 0, 2)   # a lookup and a list add
    assert marketo.call_count - calls == 2
    assert marketo.duplicate_leads() == {}
    assert list_emails(marketo) == ["g1@globex.example", "p1@townsend.com", "p2@townsend.com", "sam@home.example"]
    assert activation.activate_destination("marketo_people_create", "run-4")["9001"]["api_calls"] == 0


def test_the_emulator_creates_a_duplicate_on_overlapping_upserts_of_one_key(bodea_fleet):
    """Marketo's documented hazard, reproduced: a createOrUpdate of an email whose creating call has
    not settled creates a second lead; createOnly and updateOnly see the first one."""
    instance = bodea_fleet.instance("marketo:111-AAA-111")
    instance.rate_limit_calls = None
    client = MarketoClient.from_connection("marketo_111_aaa_111")

    def upsert(action: str, email: str) -> dict:
        body = client.call("POST", "/rest/v1/leads.json", json={
            "action": action, "lookupField": "email",
            "input": [{"email": email, "firstName": "Dee", "lastName": "Uplicate"}]})
        return body["result"][0]

    assert upsert("createOrUpdate", "dee@x.example")["status"] == "created"
    assert upsert("createOnly", "dee@x.example")["reasons"][0]["code"] == "1005"
    assert upsert("createOrUpdate", "dee@x.example")["status"] == "created"        # the duplicate
    assert list(instance.duplicate_leads()) == ["dee@x.example"]
    assert upsert("updateOnly", "dee@x.example")["reasons"][0]["code"] == "1007"    # two leads match now

    instance.upsert_settle_seconds = 0
    assert upsert("createOrUpdate", "solo@x.example")["status"] == "created"
    assert upsert("createOrUpdate", "solo@x.example")["status"] == "updated"
    assert "solo@x.example" not in instance.duplicate_leads()
    refused = client.call("POST", "/rest/v1/leads.json", json={"input": [{"email": "a@x.example", "shoeSize": 9}]})
    assert refused["result"][0]["reasons"][0]["code"] == "1006"


def lead_creation_config(**changes) -> dict:
    raw = yaml.safe_load(DEFAULT_CONFIG_PATH.read_text())
    raw["destinations"][0] |= {"lead_creation": {"action": "createOnly"}, **changes}
    return raw


def test_lead_records_keep_one_member_per_email_and_skip_the_unsubscribed():
    dest = parse_config(lead_creation_config()).destinations[0]
    people = [{"person_id": "a", "email": "x@y.example", "first_name": "X", "last_name": "Y", "unsubscribed": False},
              {"person_id": "b", "email": "X@y.example", "first_name": "X", "last_name": "Y", "unsubscribed": False},
              {"person_id": "c", "email": "z@y.example", "first_name": "Z", "last_name": "Y", "unsubscribed": True},
              {"person_id": "d", "email": "w@y.example", "first_name": None, "last_name": "Y", "unsubscribed": False}]
    records, refused = activation.lead_records(dest, people)
    assert records == {"a": {"email": "x@y.example", "firstName": "X", "lastName": "Y"}}
    assert refused == {"b": activation.SAME_EMAIL, "c": activation.UNSUBSCRIBED,
                       "d": "cannot create a Marketo lead without firstName"}


def test_clients_share_one_rate_limit_per_instance():
    from b2b_cdp.connections import ApiCredentials

    creds = ApiCredentials("http://127.0.0.1:1", DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET)
    assert MarketoClient(creds).limiter is MarketoClient(creds).limiter
