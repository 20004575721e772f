"""The identity graph: linking rules with their audit, stable ids through merges and splits,
deletions, incremental runs, the 50-identity cap, the stitching checkpoint."""

from datetime import datetime, timedelta, timezone

import pytest

from b2b_cdp import identity, warehouse
from b2b_cdp.identity_checks import check_stitching

T0 = datetime(2026, 11, 1, tzinfo=timezone.utc)
MKTO, ORG = "111-AAA-111", "00D000000000001AAA"


@pytest.fixture
def sandbox(clean_sandboxes):
    return clean_sandboxes[0]


def put_person(sandbox, key, email=None, *, crm_key=None, deleted=False, minutes=0, first_name=None,
               unsubscribed=False):
    system, instance, kind = (("Marketo", MKTO, "lead") if key.endswith(".Marketo")
                              else ("Salesforce", ORG, "lead" if key.startswith("00Q") else "contact"))
    at = T0 + timedelta(minutes=minutes)
    with warehouse.connect(sandbox) as conn:
        conn.execute("""
            INSERT INTO core_person (source_key, system, instance, record_type, email, first_name, crm_key,
                                     unsubscribed, updated_at, is_deleted, extracted_at)
            VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
            ON CONFLICT (source_key) DO UPDATE
            SET email = EXCLUDED.email, crm_key = EXCLUDED.crm_key, is_deleted = EXCLUDED.is_deleted,
                updated_at = EXCLUDED.updated_at, extracted_at = EXCLUDED.extracted_at,
                first_name = EXCLUDED.first_name, unsubscribed = EXCLUDED.unsubscribed""",
                     (key, system, instance, kind, email, first_name, crm_key, unsubscribed, at, deleted, at))


def put_visit(sandbox, ecid, email=None, minutes=0, person_key=None):
    at = T0 + timedelta(minutes=minutes)
    with warehouse.connect(sandbox) as conn:
        conn.execute("""INSERT INTO core_event (source_key, instance, person_key, event_type, occurred_at, ecid,
                                                email, extracted_at)
                        VALUES (%s, 'web_events', %s, 'Web Visit', %s, %s, %s, %s)""",
                     (f"v{ecid}{minutes}@web_events.Web", person_key or f"{ecid}@web_events.ECID", at, ecid, email,
                      at))


def person_of(sandbox, key):
    with warehouse.connect(sandbox) as conn:
        row = conn.execute("SELECT person_id FROM identity_record_person WHERE record_key = %s", (key,)).fetchone()
    return row[0] if row else None


def query(sandbox, sql_text, params=None):
    with warehouse.connect(sandbox) as conn:
        return conn.execute(sql_text, params).fetchall()


LEAD1, LEAD2, LEAD3 = (f"{n}@{MKTO}.Marketo" for n in (1, 2, 3))
CONTACT = f"003A00000000001AAA@{ORG}.Salesforce"


def test_rules_refuse_links_with_their_reason(sandbox):
    put_person(sandbox, LEAD1, "Info@Acme.com")
    put_person(sandbox, CONTACT, "info@acme.com")            # a role mailbox joins no one
    put_person(sandbox, LEAD2, "test@acme.com")              # blocked pattern
    put_person(sandbox, f"4@{MKTO}.Marketo", "null")          # blocked value
    put_visit(sandbox, "123")                                 # not 38 digits
    result = identity.stitch(sandbox, "r1")
    assert result["mode"] == "full"
    assert person_of(sandbox, LEAD1) != person_of(sandbox, CONTACT)
    reasons = dict(((k, v), r) for k, v, r in query(
        sandbox, "SELECT record_key, value, reason FROM identity_rejected_link"))
    assert reasons[(LEAD2, "test@acme.com")] == "blocked value"
    assert reasons[(f"4@{MKTO}.Marketo", "null")] == "blocked value"
    assert reasons[("123@web_events.ECID", "123")] == "ECID not 38 digits"
    assert reasons[(LEAD1, "info@acme.com")].startswith("shared role mailbox")
    # The mailbox stays on its records, as an identity that does not join.
    assert query(sandbox, "SELECT count(*) FROM identity_link WHERE value = 'info@acme.com' AND NOT joins") == [(2,)]
    assert check_stitching(sandbox, "r1").success


def test_one_lead_per_marketo_instance_per_person(sandbox):
    put_person(sandbox, LEAD1, "dup@acme.com", minutes=1)
    put_person(sandbox, LEAD2, "dup@acme.com", minutes=2)    # a duplicate lead: same email, same instance
    put_person(sandbox, CONTACT, "dup@acme.com")
    identity.stitch(sandbox, "r1")
    assert person_of(sandbox, LEAD1) != person_of(sandbox, LEAD2)
    # The newer lead's email link wins the contact; the older lead's is refused, with the reason.
    assert person_of(sandbox, LEAD2) == person_of(sandbox, CONTACT)
    (reason,), = query(sandbox, "SELECT reason FROM identity_rejected_link WHERE record_key = %s", (LEAD1,))
    assert reason == f"unique namespace marketo:{MKTO}: the person already holds {LEAD2}"
    assert check_stitching(sandbox, "r1").success


def test_a_record_keeps_20_identities_and_carries_its_events_identities_once(sandbox):
    put_person(sandbox, LEAD1, "  Heavy@Acme.com ", crm_key=CONTACT.replace("003A", "00QA"), minutes=30)
    ecids = [str(10**37 + n) for n in range(22)]
    for minute, ecid in enumerate(ecids):                     # visits of the lead itself, with its email
        put_visit(sandbox, f" {ecid} ", email="heavy@acme.com" if minute % 2 else None, minutes=minute,
                  person_key=LEAD1)
    put_visit(sandbox, ecids[21], email="HEAVY@acme.com", minutes=40, person_key=LEAD1)
    put_person(sandbox, LEAD2, "x" * 1025 + "@acme.com")
    put_person(sandbox, CONTACT, "a@b@acme.com")
    identity.stitch(sandbox, "r1")
    links = {(namespace, value): (scope, seen) for namespace, value, scope, seen in query(
        sandbox, "SELECT namespace, value, unique_scope, seen_at FROM identity_link WHERE record_key = %s", (LEAD1,))}
    # Own key, CRM lead, email and the 17 newest ECIDs; the email seen on the lead and its visits is
    # one link, last seen at the newest of them.
    assert len(links) == 20
    assert links[("marketo", LEAD1)] == (f"marketo:{MKTO}", T0 + timedelta(minutes=30))
    assert links[("crm_lead", CONTACT.replace("003A", "00QA"))] == (None, T0 + timedelta(minutes=30))
    assert links[("email", "heavy@acme.com")] == (None, T0 + timedelta(minutes=40))
    assert {value for namespace, value in links if namespace == "ecid"} == set(ecids[5:])
    refused = dict(((k, v), r) for k, v, r in query(sandbox, "SELECT record_key, value, reason FROM identity_rejected_link"))
    assert {v for (k, v), r in refused.items() if r == "more than 20 identities on one record"} == set(ecids[:5])
    assert refused[(LEAD2, "x" * 1025 + "@acme.com")] == "value longer than 1024 characters"
    assert query(sandbox, "SELECT namespace, value, unique_scope FROM identity_link WHERE record_key = %s "
                          "ORDER BY namespace", (CONTACT,)) == [
        ("crm_contact", CONTACT, f"crm_contact:{ORG}"), ("email", "a@b@acme.com", None)]
    assert check_stitching(sandbox, "r1").success
    # The links carry no unique constraint (unique by construction): the checkpoint is their guard.
    with warehouse.connect(sandbox) as conn:
        conn.execute("INSERT INTO identity_link SELECT * FROM identity_link WHERE record_key = %s "
                     "AND namespace = 'email'", (CONTACT,))
    doubled = check_stitching(sandbox, "r1-doubled")
    assert not doubled.success
    assert any("no link recorded twice" in v and f"{CONTACT} email a@b@acme.com" in v for v in doubled.violations)


def test_ids_are_stable_merges_keep_the_oldest_splits_get_new_ids(sandbox):
    put_person(sandbox, LEAD1, "a@acme.com")
    put_person(sandbox, CONTACT, "b@acme.com")
    identity.stitch(sandbox, "r1")
    first, second = person_of(sandbox, LEAD1), person_of(sandbox, CONTACT)
    assert first != second
    # Nothing changed: same ids, nothing recomputed.
    again = identity.stitch(sandbox, "r2")
    assert (again["mode"], again["changed"], again["recomputed"]) == ("incremental", 0, 0)
    assert (person_of(sandbox, LEAD1), person_of(sandbox, CONTACT)) == (first, second)
    # The lead gets synced with the contact: one person, keeping the older id.
    put_person(sandbox, LEAD1, "a@acme.com", crm_key=CONTACT, minutes=5)
    merged = identity.stitch(sandbox, "r3")
    assert merged["changed"] == 1
    assert person_of(sandbox, LEAD1) == person_of(sandbox, CONTACT) == first
    assert query(sandbox, "SELECT person_id, successor_id, event FROM identity_person_lineage") == [
        (second, first, "merge")]
    assert query(sandbox, "SELECT retired_reason FROM identity_person WHERE person_id = %s", (second,)) == [("merge",)]
    # The sync is undone: the two records part, each under a new id with lineage.
    put_person(sandbox, LEAD1, "a@acme.com", crm_key=None, minutes=10)
    identity.stitch(sandbox, "r4")
    parts = {person_of(sandbox, LEAD1), person_of(sandbox, CONTACT)}
    assert len(parts) == 2 and first not in parts
    assert set(query(sandbox, "SELECT successor_id FROM identity_person_lineage WHERE person_id = %s "
                              "AND event = 'split'", (first,))) == {(p,) for p in parts}
    # A record deleted at its source leaves the graph and its person.
    put_person(sandbox, CONTACT, "b@acme.com", deleted=True, minutes=15)
    identity.stitch(sandbox, "r5")
    assert person_of(sandbox, CONTACT) is None
    assert query(sandbox, "SELECT count(*) FROM profile_person") == [(1,)]
    assert check_stitching(sandbox, "r5").success


def test_an_incremental_run_recomputes_only_touched_persons(sandbox):
    for n in range(1, 21):
        put_person(sandbox, f"{n}@{MKTO}.Marketo", f"p{n}@acme.com")
    assert identity.stitch(sandbox, "r1")["persons"] == 20
    written = "SELECT xmin::text FROM {} WHERE {} = %s"
    lead_mapping = query(sandbox, written.format("identity_record_person", "record_key"), (f"3@{MKTO}.Marketo",))
    person_row = query(sandbox, written.format("identity_person", "person_id"), (person_of(sandbox, f"3@{MKTO}.Marketo"),))
    put_person(sandbox, CONTACT, "p3@acme.com")
    result = identity.stitch(sandbox, "r2")
    assert (result["changed"], result["recomputed"], result["persons"]) == (1, 2, 20)
    assert person_of(sandbox, CONTACT) == person_of(sandbox, f"3@{MKTO}.Marketo")
    # The lead kept its person: its mapping is not rewritten; the person's size changed: it is.
    assert query(sandbox, written.format("identity_record_person", "record_key"), (f"3@{MKTO}.Marketo",)) == lead_mapping
    assert query(sandbox, written.format("identity_person", "person_id"),
                 (person_of(sandbox, f"3@{MKTO}.Marketo"),)) != person_row


def test_profiles_merge_by_source_priority_and_consent_is_conservative(sandbox):
    put_person(sandbox, LEAD1, "x@acme.com", first_name="Mkto", minutes=9, unsubscribed=True)
    put_person(sandbox, CONTACT, "x@acme.com", first_name="Crm", minutes=1)
    identity.stitch(sandbox, "r1")
    assert query(sandbox, "SELECT first_name, unsubscribed FROM profile_person") == [("Crm", True)]


def test_a_graph_over_50_identities_evicts_ecids_oldest_first(sandbox):
    put_person(sandbox, LEAD1, "heavy@acme.com")
    ecids = [str(10**37 + n) for n in range(55)]
    for minute, ecid in enumerate(ecids):
        put_visit(sandbox, ecid, email="heavy@acme.com", minutes=minute)
    identity.stitch(sandbox, "r1")
    (count,), = query(sandbox, "SELECT identities FROM identity_person WHERE person_id = %s",
                      (person_of(sandbox, LEAD1),))
    assert count == 50
    evicted = {v for v, in query(sandbox, "SELECT value FROM identity_rejected_link WHERE reason LIKE 'graph over%%'")}
    assert evicted == set(ecids[:7])          # 57 identities: the 7 oldest ECIDs go (lead key + email stay)
    assert check_stitching(sandbox, "r1").success


def test_the_website_domain_fallback_joins_accounts_only_when_switched_on(sandbox, tmp_path, monkeypatch):
    import yaml

    from b2b_cdp.config import DEFAULT_CONFIG_PATH

    with warehouse.connect(sandbox) as conn:
        for key, site in ((f"001A00000000001AAA@{ORG}.Salesforce", "https://www.Acme.com/about"),
                          ("001B00000000001BBB@00D000000000002BBB.Salesforce", "acme.com")):
            conn.execute("INSERT INTO core_account (source_key, system, instance, name, website, extracted_at) "
                         "VALUES (%s, 'Salesforce', split_part(%s, '@', 2), 'Acme', %s, %s)", (key, key, site, T0))
    identity.stitch(sandbox, "r1")
    assert query(sandbox, "SELECT count(*) FROM profile_account") == [(2,)]
    raw = yaml.safe_load(DEFAULT_CONFIG_PATH.read_text())
    raw["identity"] = {"account_domain_fallback": True}
    (tmp_path / "cdp.yaml").write_text(yaml.safe_dump(raw))
    monkeypatch.setenv("CDP_CONFIG", str(tmp_path / "cdp.yaml"))
    identity.stitch(sandbox, "r2")
    assert query(sandbox, "SELECT count(*), max(cardinality(source_keys)) FROM profile_account") == [(1, 2)]


def test_an_account_id_derives_from_the_smallest_key_of_its_component(sandbox):
    org2 = "00D000000000002AAA"
    crm1, crm2 = f"001A00000000009AAA@{ORG}.Salesforce", f"001B00000000001AAA@{org2}.Salesforce"
    company, lone = f"7.mkto_org@{MKTO}.Marketo", f"001A00000000005AAA@{ORG}.Salesforce"
    with warehouse.connect(sandbox) as conn:
        # A chain: a Marketo company synced to a CRM account, grouped by the MDM with one in the other org.
        for key, crm_key in ((crm1, None), (crm2, None), (company, crm1), (lone, None)):
            conn.execute("INSERT INTO core_account (source_key, system, instance, crm_key, name, extracted_at) "
                         "VALUES (%s, %s, split_part(%s, '@', 2), %s, 'Acme', %s)",
                         (key, "Marketo" if key.endswith(".Marketo") else "Salesforce", key, crm_key, T0))
        conn.execute("INSERT INTO core_account_xref (mdm_id, account_key, extracted_at) "
                     "VALUES ('M1', %s, %s), ('M1', %s, %s)", (crm1, T0, crm2, T0))
    put_person(sandbox, CONTACT, "c@acme.com")
    with warehouse.connect(sandbox) as conn:
        conn.execute("UPDATE core_person SET account_key = 'unknown-account-key' WHERE source_key = %s", (CONTACT,))
    identity.stitch(sandbox, "r1")
    ids = dict(query(sandbox, "SELECT account_key, account_id FROM identity_account_key"))
    expected = dict(query(sandbox, "SELECT k, 'acc_' || substr(md5(min(k) OVER ()), 1, 20) FROM unnest(%s::text[]) k",
                          ([company, crm1, crm2, "mdm:M1"],)))
    assert {key: ids[key] for key in expected} == expected
    alone = query(sandbox, "SELECT k, 'acc_' || substr(md5(k), 1, 20) FROM unnest(%s::text[]) k",
                  ([lone, "unknown-account-key"],))
    assert {key: ids[key] for key, _ in alone} == dict(alone)
    assert len(ids) == 6 and len(set(ids.values())) == 3


def test_the_account_side_is_rebuilt_only_when_it_changed(sandbox):
    account = f"001A00000000001AAA@{ORG}.Salesforce"
    with warehouse.connect(sandbox) as conn:
        conn.execute("INSERT INTO core_account (source_key, system, instance, name, extracted_at) "
                     "VALUES (%s, 'Salesforce', %s, 'Acme', %s)", (account, ORG, T0))
    put_person(sandbox, CONTACT, "c@acme.com")
    assert identity.stitch(sandbox, "r1")["accounts_rebuilt"]
    put_person(sandbox, CONTACT, "c2@acme.com", minutes=5)          # a person change only
    assert not identity.stitch(sandbox, "r2")["accounts_rebuilt"]
    assert query(sandbox, "SELECT name FROM profile_account") == [("Acme",)]
    with warehouse.connect(sandbox) as conn:
        conn.execute("UPDATE core_account SET name = 'Acme Corp' WHERE source_key = %s", (account,))
    assert identity.stitch(sandbox, "r3")["accounts_rebuilt"]
    assert query(sandbox, "SELECT name FROM profile_account") == [("Acme Corp",)]
    with warehouse.connect(sandbox) as conn:                        # a withdrawn MDM cross-reference
        conn.execute("INSERT INTO core_account_xref (mdm_id, account_key, extracted_at) VALUES ('M1', %s, %s)",
                     (account, T0))
    assert identity.stitch(sandbox, "r4")["accounts_rebuilt"]
    assert not identity.stitch(sandbox, "r5")["accounts_rebuilt"]
    with warehouse.connect(sandbox) as conn:
        conn.execute("DELETE FROM core_account_xref")
    assert identity.stitch(sandbox, "r6")["accounts_rebuilt"]
    assert query(sandbox, "SELECT mdm_id FROM profile_account") == [(None,)]


def test_a_second_stitching_of_a_sandbox_waits_for_the_first(sandbox):
    import threading

    put_person(sandbox, LEAD1, "a@x.com")
    finished = []
    with warehouse.connect(sandbox) as holder:   # a stitching in progress holds the sandbox's lock
        warehouse.run(holder, "identity/lock_sandbox").close()
        worker = threading.Thread(target=lambda: finished.append(identity.stitch(sandbox, "second")))
        worker.start()
        worker.join(timeout=3)
        assert worker.is_alive() and not finished
    worker.join(timeout=60)
    assert finished and finished[0]["persons"] == 1
