"""Marketo static-list activation on Bodea: members matched by email and by ECID, optional lead
creation (never for unsubscribed people), and no duplicate lead from concurrent upserts of one key.

The test configuration adds a segment `townsend_and_globex` (p1, p2, p3, g1) activated to lists 9002
(no lead creation) and 9003 (lead creation) of Marketo 111-AAA-111, where only p1 and p2 have a lead
by email. p3 is seen on the website with
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
from tests.integration.test_pipeline_stages import CLOCK, ingest_everything, one

P3_ECID = "12345678901234567890123456789012345678"
SEGMENT = {"id": "townsend_and_globex", "name": "Townsend and Globex people", "platform_instance": "bodea",
           "sandbox": "prod", "mode": "batch",
           "where": {"any": [{"attribute": {"name": "email", "op": "ends_with", "value": "@townsend.com"}},
                             {"attribute": {"name": "email", "op": "ends_with", "value": "@globex.example"}}]}}
MAPPING = [{"source": "email", "target": "email"}, {"source": "first_name", "target": "firstName"},
           {"source": "last_name", "target": "lastName"}, {"source": "title", "target": "title"}]


# The lists of the test destinations (one list takes one segment).
PLAIN, CREATING, UPDATING = 9002, 9003, 9004


def destination(list_id: int = PLAIN, **more) -> dict:
    return {"id": "marketo_people", "type": "marketo", "munchkin_id": "111-AAA-111", "conn_id": "marketo_111_aaa_111",
            "platform_instance": "bodea", "sandbox": "prod", "mapping": MAPPING,
            "audiences": [{"segment": "townsend_and_globex", "static_list_id": list_id}], **more}


@pytest.fixture
def marketo(stitched, bodea_fleet, tmp_path, monkeypatch):  # noqa: F811
    """p3 visits the website with an ECID (landed and stitched), a lead of 111-AAA-111 carries that
    ECID (landed in the lake as a leads export would land it); returns the emulated instance."""
    instance = bodea_fleet.instance("marketo:111-AAA-111")
    for list_id in (PLAIN, CREATING, UPDATING):
        instance.add_static_list(list_id, f"Townsend and Globex ({list_id})")
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
    raw["destinations"] += [destination(), destination(CREATING, id="marketo_people_create",
                                                       lead_creation={"action": "createOrUpdate"}),
                            destination(UPDATING, id="marketo_people_update", update_attributes=True)]
    (tmp_path / "cdp.yaml").write_text(yaml.safe_dump(raw))
    monkeypatch.setenv("CDP_CONFIG", str(tmp_path / "cdp.yaml"))
    evaluate(load_config(), stitched, CLOCK)
    instance.ecid_lead_id = lead["id"]
    return instance


def list_emails(instance, list_id: int) -> list[str]:
    return sorted(instance.leads_by_id[i]["email"] for i in instance.list_members(list_id))


def statuses(sandbox, destination_id: str) -> dict[str, tuple]:
    return {email: (action, status, reason) for email, action, status, reason in one(
        sandbox, "SELECT p.email, s.action, s.status, s.reason FROM activation_record_status s "
                 "JOIN profile_person p USING (person_id) WHERE s.destination_id = %s AND s.action = 'add'",
        (destination_id,))}


def test_members_are_matched_by_email_then_by_ecid(stitched, marketo):
    outcome = activation.activate_destination("marketo_people", "run-1")[str(PLAIN)]
    assert (outcome["audience_size"], outcome["added"], outcome["skipped"]) == (4, 3, 1)
    # p3's lead is the one carrying p3's ECID (its email is another one).
    assert list_emails(marketo, PLAIN) == ["p1@townsend.com", "p2@townsend.com", "sam@home.example"]
    assert one(stitched, "SELECT s.member_key FROM activation_state s JOIN profile_person p USING (person_id) "
                         "WHERE p.email = 'p3@townsend.com'") == [(str(marketo.ecid_lead_id),)]
    assert statuses(stitched, "marketo_people")["g1@globex.example"] == ("add", "skipped", activation.NO_LEAD)
    # Without lead creation nobody is created.
    assert not [lead for lead in marketo.leads if lead.get("email") == "g1@globex.example"]

    # g1 is not looked up again while its email and consent stay as they were: no call at all.
    assert activation.activate_destination("marketo_people", "run-2")[str(PLAIN)]["api_calls"] == 0
    assert statuses(stitched, "marketo_people")["g1@globex.example"] == ("add", "skipped", activation.NO_LEAD)
    # A new email is looked up at once; after lookup_retry_hours (24) an unchanged one is too.
    one(stitched, "UPDATE profile_person SET email = 'gale@globex.example' WHERE email = 'g1@globex.example' "
                  "RETURNING 1")
    assert activation.activate_destination("marketo_people", "run-3")[str(PLAIN)]["api_calls"] == 1
    assert activation.activate_destination("marketo_people", "run-4")[str(PLAIN)]["api_calls"] == 0
    one(stitched, "UPDATE activation_unmatched SET looked_up_at = looked_up_at - interval '25 hours' RETURNING 1")
    assert activation.activate_destination("marketo_people", "run-5")[str(PLAIN)]["api_calls"] == 1


def test_leads_are_created_once_and_never_for_unsubscribed_people(stitched, marketo, monkeypatch):
    one(stitched, "UPDATE profile_person SET unsubscribed = true WHERE email = 'g1@globex.example' RETURNING 1")
    first = activation.activate_destination("marketo_people_create", "run-1")[str(CREATING)]
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
    again = activation.activate_destination("marketo_people_create", "run-3")[str(CREATING)]
    assert (again["added"], again["skipped"], again["api_calls"]) == (1, 0, 2)   # a lookup and a list add
    assert marketo.call_count - calls == 2
    assert marketo.duplicate_leads() == {}
    assert list_emails(marketo, CREATING) == ["g1@globex.example", "p1@townsend.com", "p2@townsend.com",
                                              "sam@home.example"]
    assert activation.activate_destination("marketo_people_create", "run-4")[str(CREATING)]["api_calls"] == 0


def test_changed_attributes_reach_the_lead_and_an_unchanged_run_sends_nothing(stitched, marketo):
    def lead(email: str) -> dict:
        (found,) = [lead for lead in marketo.leads if lead.get("email") == email]
        return found

    def updates() -> dict[str, tuple]:
        return {email: (status, reason) for email, status, reason in one(
            stitched, "SELECT p.email, s.status, s.reason FROM activation_record_status s JOIN profile_person p "
                      "USING (person_id) WHERE s.destination_id = 'marketo_people_update' AND s.action = 'update'")}

    p1_profile = one(stitched, "SELECT first_name, last_name, title FROM profile_person "
                               "WHERE email = 'p1@townsend.com'")[0]
    one(stitched, "UPDATE profile_person SET title = 'Head of Data' WHERE email = 'p3@townsend.com' RETURNING 1")
    first = activation.activate_destination("marketo_people_update", "run-1")[str(UPDATING)]
    # The three matched leads are sent their mapped attributes once, in one call after the list add.
    assert (first["added"], first["updated"], first["update_refused"]) == (3, 3, 0)
    assert first["api_calls"] == 3       # lookup by email, list add, one updateOnly
    assert (lead("p1@townsend.com")["firstName"], lead("p1@townsend.com")["lastName"],
            lead("p1@townsend.com")["title"]) == p1_profile
    # p3's lead (matched by ECID) takes p3's attributes but keeps its own email.
    assert (lead("sam@home.example")["title"], lead("sam@home.example")["id"]) == ("Head of Data", marketo.ecid_lead_id)

    assert activation.activate_destination("marketo_people_update", "run-2")[str(UPDATING)]["api_calls"] == 0

    # p1's title changes: a dry run plans one update and calls nobody; the real run sends only it.
    one(stitched, "UPDATE profile_person SET title = 'Chief Revenue Officer' WHERE email = 'p1@townsend.com' "
                  "RETURNING 1")
    calls = marketo.call_count
    plan = activation.activate_destination("marketo_people_update", "run-3", dry_run=True)[str(UPDATING)]
    # g1 (no lead) stays planned as an add; its lookup is not repeated until its email changes.
    assert (plan["planned_add"], plan["planned_remove"], plan["planned_update"], marketo.call_count) == (1, 0, 1, calls)
    assert one(stitched, "SELECT p.email FROM activation_plan a JOIN profile_person p USING (person_id) "
                         "WHERE a.run_id = 'run-3' AND a.action = 'update'") == [("p1@townsend.com",)]
    p2_changed_at = lead("p2@townsend.com")["updatedAt"]
    again = activation.activate_destination("marketo_people_update", "run-4")[str(UPDATING)]
    assert (again["added"], again["updated"], again["api_calls"]) == (0, 1, 1)
    assert lead("p1@townsend.com")["title"] == "Chief Revenue Officer"
    assert lead("p2@townsend.com")["updatedAt"] == p2_changed_at
    assert one(stitched, "SELECT planned_update, updated FROM activation_sync_log "
                         "WHERE destination_id = 'marketo_people_update' AND run_id = 'run-4'") == [(1, 1)]

    # A lead deleted in Marketo refuses its update: recorded with Marketo's reason, sent again next run.
    marketo.delete_lead(lead("p2@townsend.com")["id"])
    one(stitched, "UPDATE profile_person SET title = 'VP Sales' WHERE email = 'p2@townsend.com' RETURNING 1")
    refused = activation.activate_destination("marketo_people_update", "run-5")[str(UPDATING)]
    assert (refused["updated"], refused["update_refused"]) == (0, 1)
    assert updates()["p2@townsend.com"][0] == "skipped" and updates()["p2@townsend.com"][1].startswith("1004")
    assert activation.activate_destination("marketo_people_update", "run-6")[str(UPDATING)]["update_refused"] == 1
    assert marketo.duplicate_leads() == {}


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


def test_one_marketo_instance_receives_from_two_platform_instances(bodea_fleet, tmp_path, monkeypatch, warehouse_conn):
    """Bodea and a second platform instance (fed by Marketo 222-BBB-222 alone) each send their own
    segment to their own list of Marketo 111-AAA-111: each list holds exactly its segment, through
    the instance's one pool and rate limit."""
    from airflow.dag_processing.dagbag import DagBag

    from b2b_cdp.config import PROJECT_ROOT

    raw = yaml.safe_load(DEFAULT_CONFIG_PATH.read_text())
    raw["platform_instances"].append({"id": "bodea_emea", "sandboxes": ["prod"]})
    (other,) = [s for s in raw["sources"] if s["id"] == "marketo_222_bbb_222"]
    other["feeds"] = [{"platform_instance": "bodea_emea", "sandbox": "prod"}]
    townsend = {"where": {"attribute": {"name": "email", "op": "ends_with", "value": "@townsend.com"}},
                "sandbox": "prod", "mode": "batch"}
    lists = {"bodea": 9006, "bodea_emea": 9007}
    for instance, list_id in lists.items():
        raw["segments"].append({"id": f"townsend_{instance}", "name": f"Townsend ({instance})",
                                "platform_instance": instance, **townsend})
        raw["destinations"].append(destination(list_id, id=f"marketo_from_{instance}", platform_instance=instance,
                                               audiences=[{"segment": f"townsend_{instance}",
                                                           "static_list_id": list_id}]))
        bodea_fleet.instance("marketo:111-AAA-111").add_static_list(list_id, f"Townsend ({instance})")
    (tmp_path / "cdp.yaml").write_text(yaml.safe_dump(raw))
    monkeypatch.setenv("CDP_CONFIG", str(tmp_path / "cdp.yaml"))
    cfg = load_config()
    for sandbox in cfg.sandboxes():
        warehouse.recreate(sandbox)
    ingest_everything("run-1")
    for sandbox in cfg.sandboxes():
        identity.stitch(sandbox)
        evaluate(cfg, sandbox, CLOCK)

    instance = bodea_fleet.instance("marketo:111-AAA-111")
    outcomes = {name: activation.activate_destination(f"marketo_from_{name}", "run-1")[str(list_id)]
                for name, list_id in lists.items()}
    # Bodea's p1, p2 and p3 (p3 has no lead on 111); the second instance knows p2 and p3 from 222-BBB-222.
    assert list_emails(instance, lists["bodea"]) == ["p1@townsend.com", "p2@townsend.com"]
    assert list_emails(instance, lists["bodea_emea"]) == ["p2@townsend.com"]
    assert {name: o["audience_size"] for name, o in outcomes.items()} == {"bodea": 3, "bodea_emea": 2}
    assert all(activation.activate_destination(f"marketo_from_{name}", "run-2")[str(list_id)]["api_calls"] == 0
               for name, list_id in lists.items())
    bag = DagBag(dag_folder=str(PROJECT_ROOT / "dags" / "activation.py"))
    assert {bag.dags[f"activate__marketo_from_{name}"].get_task("sync_static_lists").pool for name in lists} == {
        "marketo_111_aaa_111"}
