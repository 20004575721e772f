"""`explain`: a person by email and an account by any reference, on Bodea stitched in the warehouse."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from b2b_cdp import explain, identity, warehouse
from tests.integration.test_pipeline_stages import ingest_everything

PROJECT_ROOT = Path(__file__).resolve().parents[2]
P2 = "p2@townsend.com"
P2_RECORDS = ["003A00000000002AAA@00D000000000001AAA.Salesforce", "003B00000000001AAA@00D000000000002AAA.Salesforce",
              "1002@111-AAA-111.Marketo", "2001@222-BBB-222.Marketo"]
CRM1_TOWNSEND = "001A00000000001AAA@00D000000000001AAA.Salesforce"

@pytest.fixture
def stitched(clean_sandboxes, bodea_fleet):
    """Bodea ingested and stitched through the real pipeline."""
    sandbox = clean_sandboxes[0]
    ingest_everything("run-1")
    identity.stitch(sandbox)
    return sandbox


def explained(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    kwargs = dict(arg.split("=", 1) for arg in args)
    status = explain.run_explain(email=kwargs.get("email"), account=kwargs.get("account"),
                                 sandbox=kwargs.get("sandbox"), json_output="json" in kwargs, out=out, err=err)
    return status, out.getvalue(), err.getvalue()


def sql(sandbox, text, params=None):
    with warehouse.connect(sandbox) as conn:
        return conn.execute(text, params).fetchall()


def test_a_person_shows_every_record_its_graph_and_its_accounts(stitched):
    status, text, err = explained(f"email=  {P2.upper()} ")
    assert (status, err) == (0, "")
    assert text.startswith(f"email '  {P2.upper()} ' in sandbox bodea/prod: 1 person\n")
    (person_id,), = sql(stitched, "SELECT person_id FROM profile_person WHERE email = %s", (P2,))
    assert f"\nPerson {person_id}\n" in text
    # Both Marketo leads and the CRM contacts, each as a source record row with its system and type.
    for key in P2_RECORDS:
        assert key in text
    records = text.split("source records (4)")[1].split("rejected links")[0]
    assert [line.split()[:4] for line in records.strip().splitlines()[1:]] == [
        [P2_RECORDS[0], "Salesforce", "00D000000000001AAA", "contact"],
        [P2_RECORDS[1], "Salesforce", "00D000000000002AAA", "contact"],
        [P2_RECORDS[2], "Marketo", "111-AAA-111", "lead"],
        [P2_RECORDS[3], "Marketo", "222-BBB-222", "lead"]]
    # The email identity is carried by all four records.
    graph = text.split("identity graph")[1].split("source records")[0]
    email_block = graph.split(f"    email {P2}\n")[1]
    assert [line.strip() for line in email_block.splitlines()[:4]] == [f"on {key}" for key in P2_RECORDS]
    # p2's CRM 1 contact is carried by the contact itself and by the Marketo lead synced with it.
    crm1 = graph.split(f"    crm_contact {P2_RECORDS[0]}")[1].splitlines()
    assert crm1[0].startswith("  (one per person in ") and crm1[1:3] == [f"      on {P2_RECORDS[0]}",
                                                                     f"      on {P2_RECORDS[2]}"]
    # Townsend, stitched through the MDM, is p2's primary account with the $1.1M closed-won.
    accounts = text.split("accounts (1)")[1]
    assert "Townsend, MDM MDM-TOWNSEND -- direct, opportunity_role [primary]" in accounts
    assert ("closed-won 1,100,000; open pipeline 5,000,000; opportunities 4; last close 2026-05-20"
            in accounts)
    assert "segmentation: included" in text
    assert "rejected links (0): none" in text

    status, out, _ = explained(f"email={P2}", "json=1")
    report = json.loads(out)
    assert status == 0 and report["looked_for"] == {"email": P2, "sandbox": "bodea/prod"}
    (person,) = report["persons"]
    assert sorted(r["record_key"] for r in person["records"]) == P2_RECORDS
    assert {r["system"] for r in person["records"]} == {"Marketo", "Salesforce"}
    (townsend,) = person["accounts"]
    assert (townsend["mdm_id"], townsend["is_primary"], townsend["closed_won_amount"]) == ("MDM-TOWNSEND", True, 1100000)
    assert person["excluded_reason"] is None


def test_an_account_by_any_reference_with_its_deals_and_people(stitched):
    (account_id,), = sql(stitched, "SELECT account_id FROM profile_account WHERE mdm_id = 'MDM-TOWNSEND'")
    references = [account_id, "MDM-TOWNSEND", CRM1_TOWNSEND, "001B00000000001AAA", "townsend inc.", " TOWNSEND "]
    for reference in references:
        status, out, err = explained(f"account={reference}", "json=1")
        assert (status, err) == (0, ""), reference
        assert [a["account_id"] for a in json.loads(out)["accounts"]] == [account_id], reference

    status, text, _ = explained("account=Townsend")
    assert status == 0
    assert f"Account {account_id} Townsend, MDM MDM-TOWNSEND" in text
    assert "roll-ups: closed-won 1,100,000; open pipeline 5,000,000; opportunities 4" in text
    assert "roll-ups match the deals below" in text
    assert "mdm:MDM-TOWNSEND  MDM golden record" in text
    assert f"{CRM1_TOWNSEND}  Salesforce 00D000000000001AAA account Townsend" in text
    deals = text.split("opportunities (4)")[1].split("people")[0]
    for name, amount in [("Opportunity 1", "200,000"), ("Opportunity 2", "900,000"),
                         ("Townsend Lost Deal", "3,000,000"), ("Townsend Expansion", "5,000,000")]:
        assert name in deals and amount in deals
    people = text.split("people (")[1]
    assert people.startswith("3)")
    p2_line = next(line for line in people.splitlines() if P2 in line)
    assert "direct, opportunity_role" in p2_line and "primary account" in p2_line
    assert "p1@townsend.com" in people and "p3@townsend.com" in people

    report = json.loads(explained("account=MDM-TOWNSEND", "json=1")[1])
    (townsend,) = report["accounts"]
    assert townsend["rollup_check"] == {"matches": True, "differences": {}, "from_opportunities": {
        "closed_won_amount": 1100000, "open_pipeline_amount": 5000000, "opportunity_count": 4,
        "last_close_date": "2026-05-20"}}
    assert sum(o["amount"] for o in townsend["opportunities"] if o["is_won"]) == 1100000


def test_unknown_email_account_or_sandbox_exits_non_zero_naming_it(stitched):
    status, out, err = explained("email=nobody@example.com")
    assert status == explain.NOT_FOUND and out == ""
    assert err == "explain: no person with email 'nobody@example.com' in sandbox bodea/prod\n"

    status, out, err = explained("account=Initech")
    assert status == explain.NOT_FOUND
    assert "no account with id, key, MDM id or name 'Initech' in sandbox bodea/prod" in err
    assert json.loads(explained("account=Initech", "json=1")[1])["looked_for"] == {
        "account": "Initech", "sandbox": "bodea/prod"}

    status, _, err = explained(f"email={P2}", "sandbox=bodea/staging")
    assert status == explain.USAGE
    assert "unknown sandbox 'bodea/staging': the configuration has bodea/prod" in err

    # Through the command line, in its own process: the exit status, and stdout stays pure JSON.
    cli = [sys.executable, "-m", "b2b_cdp", "explain", "--json"]
    missing = subprocess.run(cli + ["--email", "nobody@example.com"], capture_output=True, text=True,
                             cwd=PROJECT_ROOT, timeout=300)
    assert missing.returncode == 1, missing.stderr
    assert "nobody@example.com" in missing.stderr
    found = subprocess.run(cli + ["--email", P2, "--sandbox", "bodea/prod"], capture_output=True,
                           text=True, cwd=PROJECT_ROOT, timeout=300)
    assert found.returncode == 0, found.stderr
    assert json.loads(found.stdout)["persons"][0]["profile"]["email"] == P2


def test_lineage_refusals_non_joining_identities_exclusion_and_bad_rollups_are_shown(stitched):
    """Rows the rewritten stitching writes (lineage, refused links, identities that do not join,
    exclusions) and deleted records are added here by hand, so that each part of the explanation has
    something to show; a profile figure is falsified to see the roll-up check catch it."""
    (person_id,), = sql(stitched, "SELECT person_id FROM profile_person WHERE email = %s", (P2,))
    with warehouse.connect(stitched) as conn:
        conn.execute("INSERT INTO identity_person_lineage (person_id, successor_id, event, run_id) VALUES "
                     "('prs_old_robin', %(p)s, 'merge', 'run-7'), ('prs_older', 'prs_old_robin', 'split', 'run-3')",
                     {"p": person_id})
        conn.execute("INSERT INTO identity_rejected_link (record_key, namespace, value, reason, run_id) "
                     "VALUES ('1002@111-AAA-111.Marketo', 'email', 'sales@townsend.com', "
                     "'shared email: carried by more than 5 records', 'run-7')")
        conn.execute("INSERT INTO identity_link (record_key, namespace, value, unique_scope, joins, seen_at) "
                     "VALUES ('1002@111-AAA-111.Marketo', 'ecid', '12345678901234567890123456789012345678', "
                     "NULL, false, now())")
        conn.execute("UPDATE profile_person SET excluded_reason = 'more than 50 identities' WHERE person_id = %s",
                     (person_id,))
        conn.execute("UPDATE profile_account SET closed_won_amount = 2200000 WHERE mdm_id = 'MDM-TOWNSEND'")
        conn.execute("INSERT INTO core_person (source_key, system, instance, record_type, email, is_deleted, "
                     "extracted_at) VALUES ('1099@111-AAA-111.Marketo', 'Marketo', '111-AAA-111', 'lead', "
                     "' P2@Townsend.com', true, now()), ('1098@111-AAA-111.Marketo', 'Marketo', '111-AAA-111', "
                     "'lead', 'gone@townsend.com', true, now())")

    status, text, _ = explained(f"email={P2}")
    assert status == 0
    assert "lineage (2)" in text
    assert "    absorbed prs_old_robin, run run-7" in text
    assert "      split from prs_older (into prs_old_robin), run run-3" in text
    assert ("    ecid 12345678901234567890123456789012345678\n"
            "      on 1002@111-AAA-111.Marketo  -- kept on its record, does not join\n") in text
    assert ("email sales@townsend.com on 1002@111-AAA-111.Marketo: shared email: carried by more than 5 "
            "records (run run-7") in text
    assert "segmentation: EXCLUDED: more than 50 identities" in text
    deleted_lead = next(line for line in text.splitlines() if "1099@111-AAA-111.Marketo" in line)
    assert deleted_lead.endswith("yes (left the graph)")
    status, _, err = explained("email=gone@townsend.com")
    assert status == explain.NOT_FOUND and "(1 source record(s) carry it, 1 deleted;" in err

    status, text, _ = explained("account=MDM-TOWNSEND")
    assert status == explain.ROLLUP_MISMATCH
    assert "ROLL-UPS DISAGREE with the deals below: closed-won profile 2,200,000 vs deals 1,100,000" in text
    assert "excluded: more than 50 identities" in text
