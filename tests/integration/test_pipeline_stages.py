"""Each stage against the real warehouse (PostgreSQL) and the emulators over HTTP, on Bodea."""

from datetime import datetime, timezone

import pytest

from b2b_cdp import activation, backfill, identity, ingest, segments, warehouse
from b2b_cdp.config import load_config

CLOCK = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)
P2_LEADS = {"marketo_111_aaa_111": ["p2@townsend.com"], "marketo_222_bbb_222": ["p2@townsend.com"]}


def ingest_everything(run_id: str) -> None:
    for source in load_config().sources:
        if source.type == "marketo":
            ingest.land_marketo_activity_types(source.id, run_id, CLOCK)
            backfill.backfill_object(source.id, "leads", CLOCK)
            backfill.backfill_object(source.id, "activities", CLOCK)
            ingest.land_marketo_b2b_objects(source.id, run_id, CLOCK)
        elif source.type == "salesforce":
            for obj in source.objects:
                ingest.land_salesforce_object(source.id, obj, run_id, CLOCK)
        elif source.type == "mdm":
            ingest.land_mdm(source.id, run_id, CLOCK)
        else:
            ingest.land_web_events(source.id, run_id, CLOCK)
        ingest.normalize(source.id)


def one(sandbox, sql_text, params=None):
    with warehouse.connect(sandbox) as conn:
        return conn.execute(sql_text, params).fetchall()


@pytest.fixture
def sandbox(clean_sandboxes):
    return clean_sandboxes[0]


def test_marketo_bulk_backfill_lands_raw_rows_once(sandbox, bodea_fleet):
    result = backfill.backfill_object("marketo_111_aaa_111", "leads", CLOCK)
    windows = len(ingest.bulk_windows(load_config().source("marketo_111_aaa_111").backfill_start, CLOCK))
    assert (result.windows_total, result.windows_done, result.rows) == (windows, windows, 4)
    # A second run finds every window loaded: no export, no new rows.
    again = backfill.backfill_object("marketo_111_aaa_111", "leads", CLOCK)
    assert again.rows == 4
    assert one(sandbox, "SELECT count(*) FROM raw_marketo_leads")[0][0] == 4
    # The bulk CSV's literal `null` lands as NULL, not the string "null".
    company = one(sandbox, "SELECT company FROM raw_marketo_leads "
                           "WHERE _source_key = '1004@111-AAA-111.Marketo'")[0][0]
    assert company is None
    progress = one(sandbox, "SELECT windows_done, windows_total, rows, predicted_days FROM ops_backfill_progress")
    assert progress == [(windows, windows, 4, 1)]


def test_bulk_windows_never_exceed_31_days():
    start = datetime(2025, 1, 1, tzinfo=timezone.utc)
    windows = ingest.bulk_windows(start, CLOCK)
    assert windows[0][0] == start and windows[-1][1] == CLOCK
    assert all(b - a <= ingest.BULK_WINDOW for a, b in windows)
    assert all(windows[i][1] == windows[i + 1][0] for i in range(len(windows) - 1))


def test_stitching_joins_people_and_accounts_across_instances_and_crms(sandbox, bodea_fleet):
    ingest_everything("run-1")
    # Both CRM orgs landed their contacts in the same run: one source's batch never replaces another's.
    assert one(sandbox, "SELECT _instance, count(*) FROM raw_salesforce_contact GROUP BY 1 ORDER BY 1") == [
        ("00D000000000001AAA", 3), ("00D000000000002AAA", 3)]
    counts = identity.stitch(sandbox)
    assert (counts["persons"], counts["accounts"], counts["mode"]) == (6, 3, "full")
    # p2 is one person across two Marketo instances and two CRMs.
    (keys,), = one(sandbox, "SELECT source_keys FROM profile_person WHERE email = 'p2@townsend.com'")
    assert sorted(keys) == ["003A00000000002AAA@00D000000000001AAA.Salesforce",
                            "003B00000000001AAA@00D000000000002AAA.Salesforce",
                            "1002@111-AAA-111.Marketo", "2001@222-BBB-222.Marketo"]
    # Townsend: $200k + $900k won, each deal counted once although Marketo and the CRM both report it;
    # the lost $3M deal and the open $5M one stay out of the won figure.
    won, pipeline, deals = one(sandbox, "SELECT closed_won_amount, open_pipeline_amount, opportunity_count "
                                        "FROM profile_account WHERE mdm_id = 'MDM-TOWNSEND'")[0]
    assert (won, pipeline, deals) == (1100000, 5000000, 4)  # 8 reports, 4 deals
    # Person ids survive a re-run.
    before = one(sandbox, "SELECT person_id, email FROM profile_person ORDER BY 1")
    identity.stitch(sandbox)
    assert one(sandbox, "SELECT person_id, email FROM profile_person ORDER BY 1") == before


def test_segment_activation_and_exit(sandbox, bodea_fleet):
    cfg = load_config()
    ingest_everything("run-1")
    identity.stitch(sandbox)
    result = segments.evaluate_sandbox(cfg, sandbox, as_of=CLOCK, run_id="run-1")
    assert result["high_value_new_product_visitors"] == {"members": 1, "entered": 1, "exited": 0}
    members = one(sandbox, "SELECT p.email FROM audience_membership m JOIN profile_person p USING (person_id) "
                           "WHERE m.exited_at IS NULL")
    assert members == [("p2@townsend.com",)]

    # A dry run stores and prints the plan and calls nobody: the lists stay empty.
    for dest in cfg.destinations:
        outcome = activation.activate_destination(dest.id, "dry-1", dry_run=True)
        assert list(outcome.values()) == [{"dry_run": True, "audience_size": 1, "planned_add": 1,
                                           "planned_remove": 0, "api_calls": 0}]
        assert activation.list_member_emails(dest.conn_id, dest.audiences[0].static_list_id) == []
    plan = one(sandbox, "SELECT DISTINCT p.email, a.action FROM activation_plan a "
                        "JOIN profile_person p USING (person_id) WHERE a.run_id = 'dry-1'")
    assert plan == [("p2@townsend.com", "add")]
    assert one(sandbox, "SELECT bool_and(dry_run), sum(api_calls) FROM activation_sync_log "
                        "WHERE run_id = 'dry-1'") == [(True, 0)]

    for dest in cfg.destinations:
        outcome = activation.activate_destination(dest.id, "run-1")
        assert [o["added"] for o in outcome.values()] == [1]
        assert activation.list_member_emails(dest.conn_id, dest.audiences[0].static_list_id) == P2_LEADS[dest.id]
    assert one(sandbox, "SELECT DISTINCT match_rate FROM activation_sync_log WHERE run_id = 'run-1'") == [(1,)]

    # Nothing changed: no API call at all.
    for dest in cfg.destinations:
        outcome = activation.activate_destination(dest.id, "run-2")
        assert list(outcome.values()) == [{"audience_size": 1, "added": 0, "removed": 0, "skipped": 0,
                                           "api_calls": 0}]

    # Forty days later p2's visit is out of the 30-day window: p2 exits and leaves both lists.
    later = datetime(2026, 12, 30, tzinfo=timezone.utc)
    result = segments.evaluate_sandbox(cfg, sandbox, as_of=later, run_id="run-3")
    assert result["high_value_new_product_visitors"] == {"members": 0, "entered": 0, "exited": 1}
    (exited_at,), = one(sandbox, "SELECT exited_at FROM audience_membership")
    assert exited_at == later
    for dest in cfg.destinations:
        outcome = activation.activate_destination(dest.id, "run-3")
        assert [o["removed"] for o in outcome.values()] == [1]
        assert activation.list_member_emails(dest.conn_id, dest.audiences[0].static_list_id) == []


def test_evaluation_uses_the_given_time_not_the_clock(sandbox, bodea_fleet):
    cfg = load_config()
    ingest_everything("run-1")
    identity.stitch(sandbox)
    # Before p2's visit (2026-10-25) nobody qualifies.
    early = datetime(2026, 10, 20, tzinfo=timezone.utc)
    assert segments.evaluate_sandbox(cfg, sandbox, as_of=early, run_id="r")[
        "high_value_new_product_visitors"]["members"] == 0


def test_each_deal_counts_once_per_account_whatever_the_person_relation(sandbox, bodea_fleet):
    """p2 is related to Townsend both directly and through deal roles; Townsend's $1.1M must not
    count twice (it would pass a $1.5M threshold if it did)."""
    import yaml

    from b2b_cdp.config import DEFAULT_CONFIG_PATH, parse_config

    raw = yaml.safe_load(DEFAULT_CONFIG_PATH.read_text())
    raw["segments"][0]["where"]["all"][0]["account"]["opportunities"]["value"] = 1_500_000
    ingest_everything("run-1")
    identity.stitch(sandbox)
    relations = one(sandbox, "SELECT DISTINCT relation FROM profile_person_account pa "
                             "JOIN profile_person p USING (person_id) WHERE p.email = 'p2@townsend.com'")
    assert sorted(r for r, in relations) == ["direct", "opportunity_role"]
    result = segments.evaluate_sandbox(parse_config(raw), sandbox, as_of=CLOCK, run_id="r")
    assert result["high_value_new_product_visitors"]["members"] == 0


def test_marketo_only_and_crm_direct_configurations_give_the_same_segment(sandbox, bodea_fleet, tmp_path,
                                                                          monkeypatch):
    """With CRM-synced Marketo instances the CRM needs no direct connection: dropping the two
    Salesforce sources (the CRM data flows through Marketo) selects the same people."""
    import yaml

    from b2b_cdp.config import DEFAULT_CONFIG_PATH, load_config as load

    raw = yaml.safe_load(DEFAULT_CONFIG_PATH.read_text())
    raw["sources"] = [s for s in raw["sources"] if s["type"] != "salesforce"]
    marketo_only = tmp_path / "marketo-only.yaml"
    marketo_only.write_text(yaml.safe_dump(raw))
    monkeypatch.setenv("CDP_CONFIG", str(marketo_only))
    assert [s.type for s in load().sources] == ["marketo", "marketo", "mdm", "web_events"]
    ingest_everything("run-1")
    identity.stitch(sandbox)
    result = segments.evaluate_sandbox(load(), sandbox, as_of=CLOCK, run_id="run-1")
    assert result["high_value_new_product_visitors"]["members"] == 1
    members = one(sandbox, "SELECT p.email FROM audience_membership m JOIN profile_person p USING (person_id)")
    assert members == [("p2@townsend.com",)]
    won, = one(sandbox, "SELECT closed_won_amount FROM profile_account WHERE mdm_id = 'MDM-TOWNSEND'")[0]
    assert won == 1100000


def test_profiles_over_the_event_guardrail_are_left_out_of_segments_and_counted(sandbox, bodea_fleet, tmp_path,
                                                                                  monkeypatch):
    import yaml

    from b2b_cdp.config import DEFAULT_CONFIG_PATH

    raw = yaml.safe_load(DEFAULT_CONFIG_PATH.read_text())
    raw["identity"] = {"max_events_per_profile": 1}      # p2 has more than one event
    (tmp_path / "cdp.yaml").write_text(yaml.safe_dump(raw))
    monkeypatch.setenv("CDP_CONFIG", str(tmp_path / "cdp.yaml"))
    ingest_everything("run-1")
    stitched = identity.stitch(sandbox)
    assert stitched["excluded"] >= 1
    assert one(sandbox, "SELECT excluded_reason FROM profile_person WHERE email = 'p2@townsend.com'") == [
        ("more than 1 events",)]
    result = segments.evaluate_sandbox(load_config(), sandbox, as_of=CLOCK, run_id="run-1")
    assert result["high_value_new_product_visitors"]["members"] == 0
    assert one(sandbox, "SELECT excluded_profiles FROM audience_evaluation") == [(stitched["excluded"],)]
