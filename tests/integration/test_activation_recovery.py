"""Recovery: whatever stops an activation midway (a worker killed, an API failing mid-batch, a token
expiring), the next run converges: each destination holds exactly the segment, with no duplicate
lead and no member lost, and does only what was left.

The killed worker runs on a crowd of its own, far over one batch (300): 600 people with a lead of
111-AAA-111 and 300 known only to 222-BBB-222, whose leads the activation creates in 111-AAA-111.
The other Marketo cases use test_activation_marketo's configuration (p1, p2, p3, g1; g1's lead is
created), a fault striking right after the email lookup, the call before Sync Leads. The LinkedIn
cases use test_activation_linkedin's (townsend_people: p1, p2, p3), sent one element per call so
that a fault can strike between two batches of one run. Two people can share an email (a shared
mailbox never links them): the destination holds it once, and keeps it while either wants it.
"""

import os
import signal
import subprocess
import sys
import time

import pytest
import requests
import yaml

from b2b_cdp import activation, identity, linkedin, warehouse
from b2b_cdp.config import DEFAULT_CONFIG_PATH, load_config
from b2b_cdp.http import HttpPolicy
from b2b_cdp.sources.marketo import MarketoClient
from tests.integration.test_activation_linkedin import ads, connect_linkedin, hashes, remote_ids  # noqa: F401  (ads)
from tests.integration.test_activation_marketo import (  # noqa: F401  (marketo: the fixture)
    CREATING, MAPPING, PLAIN, list_emails, marketo)
from tests.integration.test_buying_groups import evaluate
from tests.integration.test_explain import stitched  # noqa: F401  (the fixture ads needs)
from tests.integration.test_pipeline_stages import CLOCK, ingest_everything, one

BATCH = 300                       # Marketo's list and lookup batch
KNOWN, UNKNOWN = 600, 300         # people with a lead of 111-AAA-111 / known only to 222-BBB-222
CROWD = {"id": "recovery_crowd", "name": "The recovery crowd", "platform_instance": "bodea", "sandbox": "prod",
         "mode": "batch", "where": {"attribute": {"name": "email", "op": "ends_with", "value": "@crowd.example"}}}
DESTINATION = {"id": "marketo_crowd", "type": "marketo", "munchkin_id": "111-AAA-111",
               "conn_id": "marketo_111_aaa_111", "platform_instance": "bodea", "sandbox": "prod",
               "mapping": MAPPING, "lead_creation": {"action": "createOrUpdate"},
               "audiences": [{"segment": "recovery_crowd", "static_list_id": 9005}]}
CROWD_LIST = 9005
# The worker: the activation as the DAG's task runs it, in a process of its own that the test kills.
WORKER = "from b2b_cdp import activation; activation.activate_destination('marketo_crowd', 'run-killed')"


def crowd_email(n: int) -> str:
    return f"m{n:04d}@crowd.example"


@pytest.fixture
def crowd(clean_sandboxes, bodea_fleet, tmp_path, monkeypatch):
    """Bodea plus the crowd, ingested and stitched through the real pipeline, the segment evaluated;
    returns the sandbox and the emulated 111-AAA-111."""
    sandbox = clean_sandboxes[0]
    known, other = bodea_fleet.instance("marketo:111-AAA-111"), bodea_fleet.instance("marketo:222-BBB-222")
    known.add_static_list(CROWD_LIST, "The recovery crowd")
    for n in range(KNOWN + UNKNOWN):
        (known if n < KNOWN else other).upsert_lead({
            "email": crowd_email(n), "firstName": f"Member{n}", "lastName": "Crowd", "unsubscribed": False,
            "createdAt": "2026-10-01T09:00:00Z"})
    raw = yaml.safe_load(DEFAULT_CONFIG_PATH.read_text())
    raw["segments"].append(CROWD)
    raw["destinations"].append(DESTINATION)
    (tmp_path / "cdp.yaml").write_text(yaml.safe_dump(raw))
    monkeypatch.setenv("CDP_CONFIG", str(tmp_path / "cdp.yaml"))
    ingest_everything("run-1")
    identity.stitch(sandbox)
    evaluate(load_config(), sandbox, CLOCK)
    return sandbox, known


def held(sandbox, destination_id: str) -> int:
    return one(sandbox, "SELECT count(*) FROM activation_state WHERE destination_id = %s", (destination_id,))[0][0]


def segment_emails(sandbox, segment_id: str) -> list[str]:
    with warehouse.connect(sandbox) as conn:
        return sorted(email for _, email in warehouse.fetch_all(conn, "segments/current_member_emails",
                                                                {"segment_id": segment_id}))


def sync_log(sandbox, destination_id: str, run_id: str) -> tuple:
    (row,) = one(sandbox, "SELECT planned_add, planned_remove, added, removed, api_calls, finished_at IS NOT NULL "
                          "FROM activation_sync_log WHERE destination_id = %s AND run_id = %s",
                 (destination_id, run_id))
    return row


def test_a_worker_killed_mid_activation_leaves_the_rest_to_the_next_run(crowd, bodea_fleet, tmp_path):
    sandbox, instance = crowd
    members = segment_emails(sandbox, "recovery_crowd")
    assert len(members) == KNOWN + UNKNOWN
    # Every call answers slowly, so that the worker is surely killed with list batches still to send.
    bodea_fleet.inject("marketo:111-AAA-111", "latency", seconds=0.5)
    with open(tmp_path / "worker.log", "wb") as log:
        worker = subprocess.Popen([sys.executable, "-c", WORKER], env=os.environ.copy(), stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 45
        while held(sandbox, "marketo_crowd") < BATCH:
            assert worker.poll() is None, (tmp_path / "worker.log").read_text()
            assert time.monotonic() < deadline, "the worker recorded no list batch in time"
            time.sleep(0.05)
        os.kill(worker.pid, signal.SIGKILL)
    finally:
        worker.kill()
        worker.wait()
    assert worker.returncode == -signal.SIGKILL
    bodea_fleet.clear_faults()
    held_after_kill = held(sandbox, "marketo_crowd")
    assert BATCH <= held_after_kill < len(members)
    # The killed run never finished; the leads it created are in Marketo, though it died before
    # adding most of them to the list.
    assert sync_log(sandbox, "marketo_crowd", "run-killed")[5] is False
    assert len([lead for lead in instance.leads if lead["email"].endswith("@crowd.example")]) == len(members)
    leads_before = len(instance.leads)

    outcome = activation.activate_destination("marketo_crowd", "run-2")[str(CROWD_LIST)]
    remainder = len(members) - held_after_kill
    assert (outcome["added"], outcome["removed"], outcome["skipped"]) == (remainder, 0, 0)
    # Only the remainder: its list batches and one email lookup (for the created leads not yet
    # recorded), no Sync Leads call: the leads the killed run created are found, not created again.
    assert outcome["api_calls"] == -(-remainder // BATCH) + 1
    assert sync_log(sandbox, "marketo_crowd", "run-2") == (remainder, 0, remainder, 0, outcome["api_calls"], True)
    assert len(instance.leads) == leads_before
    assert instance.duplicate_leads() == {}
    # The list, read back through Marketo's API, holds exactly the segment.
    assert activation.list_member_emails("marketo_111_aaa_111", CROWD_LIST) == members
    assert list_emails(instance, CROWD_LIST) == members
    assert held(sandbox, "marketo_crowd") == len(members)
    assert activation.activate_destination("marketo_crowd", "run-3")[str(CROWD_LIST)]["api_calls"] == 0


def sync_townsend(run_id: str) -> dict:
    """townsend_people sent one element per BATCH_CREATE call: a run of three batches."""
    cfg = load_config()
    destination = cfg.destination("linkedin_ads")
    (audience,) = [a for a in linkedin._audiences(destination) if a.key == "townsend_people"]
    return linkedin.sync_audience(cfg, destination, audience, linkedin.LinkedInClient.from_connection("linkedin_ads"),
                                  run_id, batch_size=1)


def strike_after_first(monkeypatch, owner, name: str, strike) -> None:
    """`strike` (a fault switched on) right after the first call of owner.name has returned."""
    call = getattr(owner, name)
    struck = []

    def then_strike(*args, **kwargs):
        result = call(*args, **kwargs)
        if not struck:
            struck.append(strike())
        return result

    monkeypatch.setattr(owner, name, then_strike)


def strike_after_first_batch(monkeypatch, strike) -> None:
    """`strike` right after the run's first BATCH_CREATE is answered."""
    strike_after_first(monkeypatch, linkedin.LinkedInClient, "change_members", strike)


def strike_after_lookup(monkeypatch, strike) -> None:
    """`strike` right after the run's first email lookup, the call before Sync Leads (g1 has no lead)."""
    strike_after_first(monkeypatch, activation, "match_leads", strike)


def held_members(sandbox, audience_key: str) -> set[str]:
    return {key for key, in one(sandbox, "SELECT member_key FROM activation_state WHERE destination_id = "
                                         "'linkedin_ads' AND audience_key = %s", (audience_key,))}


@pytest.fixture
def ready_ads(ads):
    """LinkedIn with segments usable at once: no not-found retries, so call counts are exact."""
    ads.ready_after_seconds = 0
    return ads


def test_a_5xx_burst_mid_run_is_retried_through(stitched, ready_ads, bodea_fleet, monkeypatch):
    strike_after_first_batch(monkeypatch, lambda: bodea_fleet.inject("linkedin:ads", "http_5xx", count=3))
    outcome = sync_townsend("run-1")
    assert (outcome["added"], outcome["removed"], outcome["skipped"]) == (3, 0, 0)
    assert bodea_fleet.faults() == []                         # the three 503s were met, and retried
    # find + create the segment, three batches, the second one sent four times.
    assert outcome["api_calls"] == 2 + 3 + 3
    assert ready_ads.segment_members(remote_ids(stitched)["townsend_people"]) == hashes("townsend_people")


def test_a_5xx_burst_outlasting_the_retries_fails_the_run_and_the_next_run_converges(
        stitched, ready_ads, bodea_fleet, monkeypatch):
    # As many 503s as the HTTP policy makes attempts: the second batch never gets through.
    strike_after_first_batch(monkeypatch, lambda: bodea_fleet.inject("linkedin:ads", "http_5xx", count=6))
    with pytest.raises(linkedin.RetryableError, match="HTTP 503"):
        sync_townsend("run-1")
    remote_id = remote_ids(stitched)["townsend_people"]
    (first,) = ready_ads.segment_members(remote_id)
    assert first in hashes("townsend_people")
    # What LinkedIn holds is what the state says it holds: the answered batch, recorded at once.
    assert held_members(stitched, "townsend_people") == {first}
    assert sync_log(stitched, "linkedin_ads", "run-1")[5] is False

    outcome = activation.activate_destination("linkedin_ads", "run-2")["townsend_people"]
    assert (outcome["added"], outcome["removed"], outcome["api_calls"]) == (2, 0, 1)
    assert ready_ads.segment_members(remote_id) == hashes("townsend_people")
    assert held_members(stitched, "townsend_people") == hashes("townsend_people")
    assert len(ready_ads.segments) == 2                       # the DMP segment was reused, not created again


def test_an_expired_token_fails_the_run_cleanly_and_the_next_run_converges_once_renewed(
        stitched, ready_ads, bodea_fleet, monkeypatch):
    strike_after_first_batch(monkeypatch, lambda: bodea_fleet.inject("linkedin:ads", "token_expiry"))
    with pytest.raises(linkedin.LinkedInError) as failed:
        sync_townsend("run-1")
    # Not retried (a retry cannot renew a token) and said plainly.
    assert failed.value.status == 401
    assert "Invalid access token (serviceErrorCode 65600)" in str(failed.value)
    assert linkedin.EXPIRED_TOKEN in str(failed.value)
    remote_id = remote_ids(stitched)["townsend_people"]
    assert len(ready_ads.segment_members(remote_id)) == 1
    assert held_members(stitched, "townsend_people") == ready_ads.segment_members(remote_id)
    # Until the token is renewed every run fails the same way, before changing anything.
    with pytest.raises(linkedin.LinkedInError, match="HTTP 401"):
        activation.activate_destination("linkedin_ads", "run-2")
    assert len(held_members(stitched, "townsend_people")) == 1

    # The app is authorised again: the connection gets the new token.
    connect_linkedin(monkeypatch, bodea_fleet, ready_ads.issue_token())
    outcome = activation.activate_destination("linkedin_ads", "run-3")["townsend_people"]
    assert (outcome["added"], outcome["removed"], outcome["api_calls"]) == (2, 0, 1)
    assert ready_ads.segment_members(remote_id) == hashes("townsend_people")
    assert held_members(stitched, "townsend_people") == hashes("townsend_people")


def test_a_changed_email_is_removed_under_the_old_hash_and_added_under_the_new(stitched, ready_ads, bodea_fleet,
                                                                               monkeypatch):
    activation.activate_destination("linkedin_ads", "run-1")
    remote_id = remote_ids(stitched)["townsend_people"]
    # p3's email changes between runs (the profile as a re-stitch after the lead's change leaves it).
    one(stitched, "UPDATE profile_person SET email = 'sam.three@townsend.com' WHERE email = 'p3@townsend.com' "
                  "RETURNING 1")
    outcome = activation.activate_destination("linkedin_ads", "run-2")["townsend_people"]
    assert (outcome["added"], outcome["removed"], outcome["api_calls"]) == (1, 1, 1)   # one call: REMOVE + ADD
    now = {linkedin.hash_email(e) for e in ("p1@townsend.com", "p2@townsend.com", "sam.three@townsend.com")}
    assert ready_ads.segment_members(remote_id) == now
    assert held_members(stitched, "townsend_people") == now

    # p1's changes too, and the run dies between the REMOVE of the old hash and the ADD of the new:
    # the next run adds the new one only; the old one stays out.
    one(stitched, "UPDATE profile_person SET email = 'pat.one@townsend.com' WHERE email = 'p1@townsend.com' "
                  "RETURNING 1")
    strike_after_first_batch(monkeypatch, lambda: bodea_fleet.inject("linkedin:ads", "token_expiry"))
    with pytest.raises(linkedin.LinkedInError, match="HTTP 401"):
        sync_townsend("run-3")
    assert linkedin.hash_email("p1@townsend.com") not in ready_ads.segment_members(remote_id)
    connect_linkedin(monkeypatch, bodea_fleet, ready_ads.issue_token())
    again = activation.activate_destination("linkedin_ads", "run-4")["townsend_people"]
    assert (again["added"], again["removed"], again["api_calls"]) == (1, 0, 1)
    now = {linkedin.hash_email(e) for e in ("pat.one@townsend.com", "p2@townsend.com", "sam.three@townsend.com")}
    assert ready_ads.segment_members(remote_id) == now
    assert held_members(stitched, "townsend_people") == now
    assert activation.activate_destination("linkedin_ads", "run-5")["townsend_people"]["api_calls"] == 0


def test_a_sync_leads_call_left_unanswered_is_not_sent_again(stitched, marketo, bodea_fleet, monkeypatch):
    """A Sync Leads call whose answer never comes (a read timeout) may still be applied by Marketo:
    sending it again puts two upserts of one email in flight, Marketo's duplicate-lead hazard. The
    run stops instead; the next one finds the lead by email and creates nothing."""
    cfg = load_config()
    destination = cfg.destination("marketo_people_create")
    client = MarketoClient.from_connection("marketo_111_aaa_111", policy=HttpPolicy(read_timeout=0.5,
                                                                                    backoff_base=0.01))
    # Sync Leads answers after the client's read timeout.
    strike_after_lookup(monkeypatch, lambda: bodea_fleet.inject("marketo:111-AAA-111", "latency", seconds=1.5,
                                                                count=1))
    with pytest.raises(activation.LeadCreationUnconfirmed, match="not sent again"):
        activation.sync_static_list(cfg, destination, destination.audiences[0], client, "run-1")
    deadline = time.monotonic() + 10
    while not [lead for lead in marketo.leads if lead.get("email") == "g1@globex.example"]:
        assert time.monotonic() < deadline, "the unanswered Sync Leads call was never applied"
        time.sleep(0.05)
    assert marketo.duplicate_leads() == {}

    leads = len(marketo.leads)
    outcome = activation.activate_destination("marketo_people_create", "run-2")[str(CREATING)]
    assert (outcome["added"], outcome["skipped"]) == (4, 0)
    assert len(marketo.leads) == leads                        # found by email, not created again
    assert marketo.duplicate_leads() == {}
    assert activation.list_member_emails("marketo_111_aaa_111", CREATING) == [
        "g1@globex.example", "p1@townsend.com", "p2@townsend.com", "sam@home.example"]


class _Answers:
    """A session answering from a script: a status code, or an exception to raise."""

    def __init__(self, *script):
        self.script, self.sent = list(script), 0

    def request(self, method, url, **kwargs):
        self.sent += 1
        step = self.script.pop(0)
        if isinstance(step, Exception):
            raise step
        response = requests.Response()
        response.status_code = step
        return response


def test_a_write_that_must_not_apply_twice_is_resent_only_when_surely_refused():
    def policy(*script) -> HttpPolicy:
        return HttpPolicy(session=_Answers(*script), sleep=lambda seconds: None)

    # A 429 and a connection never made were surely not applied: sent again.
    sent = policy(429, requests.ConnectTimeout("no route"), 200)
    assert sent.request("POST", "http://x/leads", idempotent=False).status_code == 200
    assert sent.session.sent == 3
    # A read timeout, a dropped connection or a 5xx may have been applied: raised at once.
    for failure in (requests.ReadTimeout("slow"), requests.ConnectionError("reset"), 503):
        once = policy(failure, 200)
        with pytest.raises((requests.RequestException, linkedin.RetryableError)):
            once.request("POST", "http://x/leads", idempotent=False)
        assert once.session.sent == 1
        # An idempotent call (a list add, a lookup) is retried through the same failure.
        assert policy(failure, 200).request("POST", "http://x/list", idempotent=True).status_code == 200


def test_a_marketo_token_expiring_mid_run_is_renewed_and_the_run_completes(stitched, marketo, bodea_fleet,
                                                                          monkeypatch):
    strike_after_lookup(monkeypatch, lambda: bodea_fleet.inject("marketo:111-AAA-111", "token_expiry"))
    outcome = activation.activate_destination("marketo_people_create", "run-1")[str(CREATING)]
    # 602 on Sync Leads: a new token and the same call again (a 602 is refused before anything runs).
    assert (outcome["added"], outcome["skipped"]) == (4, 0)
    assert outcome["api_calls"] == 1 + 2 + 1                  # the lookup, Sync Leads twice, the list add
    assert marketo.duplicate_leads() == {}
    assert activation.list_member_emails("marketo_111_aaa_111", CREATING) == [
        "g1@globex.example", "p1@townsend.com", "p2@townsend.com", "sam@home.example"]


def test_a_marketo_5xx_on_sync_leads_stops_the_run_and_the_next_run_creates_the_lead_once(
        stitched, marketo, bodea_fleet, monkeypatch):
    strike_after_lookup(monkeypatch, lambda: bodea_fleet.inject("marketo:111-AAA-111", "http_5xx", status=502))
    with pytest.raises(activation.LeadCreationUnconfirmed, match="HTTP 502"):
        activation.activate_destination("marketo_people_create", "run-1")
    # Marketo had refused it after all: no lead yet; nobody was added to the list either.
    assert not [lead for lead in marketo.leads if lead.get("email") == "g1@globex.example"]
    assert marketo.list_members(CREATING) == []

    outcome = activation.activate_destination("marketo_people_create", "run-2")[str(CREATING)]
    assert (outcome["added"], outcome["skipped"]) == (4, 0)
    assert len([lead for lead in marketo.leads if lead.get("email") == "g1@globex.example"]) == 1
    assert activation.list_member_emails("marketo_111_aaa_111", CREATING) == [
        "g1@globex.example", "p1@townsend.com", "p2@townsend.com", "sam@home.example"]


def test_a_hash_two_members_share_stays_while_one_of_them_still_wants_it(stitched, ready_ads):
    """A shared mailbox is never an identity link, so two people can share an email. LinkedIn holds
    its hash once: when one of them moves to an address of their own, the other is not lost."""
    one(stitched, "UPDATE profile_person SET email = 'info@townsend.com' "
                  "WHERE email IN ('p1@townsend.com', 'p3@townsend.com') RETURNING 1")
    activation.activate_destination("linkedin_ads", "run-1")
    remote_id = remote_ids(stitched)["townsend_people"]
    shared = {linkedin.hash_email("info@townsend.com"), linkedin.hash_email("p2@townsend.com")}
    assert ready_ads.segment_members(remote_id) == shared

    (p3,), = one(stitched, "SELECT person_id FROM profile_person WHERE source_keys::text LIKE '%%2002%%'")
    one(stitched, "UPDATE profile_person SET email = 'p3@townsend.com' WHERE person_id = %s RETURNING 1", (p3,))
    outcome = activation.activate_destination("linkedin_ads", "run-2")["townsend_people"]
    assert (outcome["added"], outcome["api_calls"]) == (1, 1)
    assert ready_ads.segment_members(remote_id) == shared | {linkedin.hash_email("p3@townsend.com")}
    assert held_members(stitched, "townsend_people") == ready_ads.segment_members(remote_id)
    assert activation.activate_destination("linkedin_ads", "run-3")["townsend_people"]["api_calls"] == 0


def test_a_lead_two_members_share_stays_on_the_list_while_one_of_them_is_a_member(stitched, marketo):
    """Two people sharing a mailbox match the one lead that has it: when one leaves the segment,
    the lead stays on the list for the other."""
    lead = marketo.upsert_lead({"email": "info@townsend.com", "firstName": "Info", "lastName": "Townsend"})
    one(stitched, "UPDATE profile_person SET email = 'info@townsend.com' "
                  "WHERE email IN ('p3@townsend.com', 'g1@globex.example') RETURNING 1")
    evaluate(load_config(), stitched, CLOCK, run_id="run-1")
    activation.activate_destination("marketo_people", "run-1")
    assert list_emails(marketo, PLAIN) == ["info@townsend.com", "p1@townsend.com", "p2@townsend.com"]

    # One of the two leaves the segment (a new address outside it).
    (leaver,), = one(stitched, "SELECT min(person_id) FROM profile_person WHERE email = 'info@townsend.com'")
    one(stitched, "UPDATE profile_person SET email = 'sam@elsewhere.example' WHERE person_id = %s RETURNING 1",
        (leaver,))
    evaluate(load_config(), stitched, CLOCK, run_id="run-2")
    assert len(segment_emails(stitched, "townsend_and_globex")) == 3
    outcome = activation.activate_destination("marketo_people", "run-2")[str(PLAIN)]
    assert outcome["api_calls"] == 0                          # nothing to tell Marketo
    assert list_emails(marketo, PLAIN) == ["info@townsend.com", "p1@townsend.com", "p2@townsend.com"]
    assert lead["id"] in marketo.list_members(PLAIN)
    assert held(stitched, "marketo_people") == 3
