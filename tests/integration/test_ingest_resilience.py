"""Ingestion against the emulators' limits, faults and time machine: nothing lost, nothing doubled."""

from datetime import datetime, timedelta, timezone

import pytest

from b2b_cdp import backfill, identity, incremental, ingest, warehouse
from b2b_cdp.config import load_config

CLOCK = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)
MKTO = "marketo_111_aaa_111"
MKTO_KEY = "marketo:111-AAA-111"


@pytest.fixture
def sandbox(clean_sandboxes):
    return clean_sandboxes[0]


def rows(sandbox, query, params=None):
    with warehouse.connect(sandbox) as conn:
        return conn.execute(query, params).fetchall()


def backfill_marketo(source_id=MKTO):
    ingest.land_marketo_activity_types(source_id, "bf", CLOCK)
    for obj in ("leads", "activities"):
        backfill.backfill_object(source_id, obj, CLOCK)
    ingest.land_marketo_b2b_objects(source_id, "bf", CLOCK)
    ingest.normalize(source_id)


def test_marketo_incremental_sync_picks_up_changes_deletions_and_new_activities(sandbox, bodea_fleet):
    backfill_marketo()
    bodea_fleet.advance(120)
    bodea_fleet.mutate(MKTO_KEY, "add_activity", lead_id=1003, activity_type_id=1,
                       primary_attribute_value="www.bodea.com/products/new-product")
    bodea_fleet.mutate(MKTO_KEY, "upsert_lead", fields={"id": 1001, "title": "CIO"})
    bodea_fleet.mutate(MKTO_KEY, "delete_lead", lead_id=1004)
    bodea_fleet.advance(60)

    assert incremental.sync_marketo_activities(MKTO, "inc-1", CLOCK) >= 1
    assert incremental.sync_marketo_leads(MKTO, "inc-1", CLOCK) == {"changed": 1, "deleted": 1}
    ingest.normalize(MKTO)
    assert rows(sandbox, "SELECT title FROM core_person WHERE source_key = '1001@111-AAA-111.Marketo'") == [("CIO",)]
    assert rows(sandbox, "SELECT is_deleted FROM core_person WHERE source_key = '1004@111-AAA-111.Marketo'") == [(True,)]
    new_visits = rows(sandbox, "SELECT count(*) FROM core_event WHERE person_key = '1003@111-AAA-111.Marketo' "
                               "AND occurred_at > %(t)s", {"t": CLOCK})
    assert new_visits == [(1,)]
    # Freshness on the source's clock: the visit is 60 s old when it lands, inside the 60-minute window.
    (lag, window), = rows(sandbox, "SELECT lake_lag_max_s, lake_window_s FROM ops_freshness "
                                   "WHERE source_id = %(s)s AND stream LIKE 'activities:%%' AND rows > 0",
                          {"s": MKTO})
    assert 59 <= lag <= 61 and window == 3600
    # The saved tokens make the next sync a no-op.
    assert incremental.sync_marketo_activities(MKTO, "inc-2", CLOCK) == 0
    assert incremental.sync_marketo_leads(MKTO, "inc-2", CLOCK) == {"changed": 0, "deleted": 0}
    identity.stitch(sandbox)
    assert rows(sandbox, "SELECT count(*) FROM profile_person WHERE email = 'lurker@gmail.com'") == [(0,)]


def test_salesforce_sync_reads_late_commits_within_the_lookback_and_deletions(sandbox, bodea_fleet):
    org = "salesforce:00D000000000001AAA"
    for obj in load_config().source("salesforce_crm1").objects:
        ingest.land_salesforce_object("salesforce_crm1", obj, "bf", CLOCK)
    (cursor,), = rows(sandbox, "SELECT cursor FROM ops_sync_cursor WHERE stream = 'sobject:Contact'")
    assert cursor.startswith("2026-10-26T10:00:00")   # the newest Contact change the backfill saw
    bodea_fleet.mutate(org, "upsert_record", obj="Contact", record={
        "AccountId": "001A00000000001AAA", "Email": "new@townsend.com", "LastName": "New"})
    # Committed now, but stamped before the newest change already seen: only the lookback finds it.
    bodea_fleet.mutate(org, "commit_late", obj="Contact", record={
        "AccountId": "001A00000000001AAA", "Email": "late@townsend.com", "LastName": "Late"},
        system_modstamp="2026-10-26T09:55:00.000+0000")
    bodea_fleet.mutate(org, "delete_record", obj="Contact", record_id="003A00000000003AAA")
    landed = incremental.sync_salesforce_object("salesforce_crm1", "Contact", "inc-1", CLOCK)
    assert landed >= 3
    ingest.normalize("salesforce_crm1")
    emails = {e for e, in rows(sandbox, "SELECT email FROM core_person WHERE NOT is_deleted AND system = 'Salesforce'")}
    assert {"new@townsend.com", "late@townsend.com"} <= emails
    assert "a1@acmerobotics.com" not in emails
    # Re-reading the lookback window lands nothing already landed, and the run announces nothing...
    assert incremental.sync_salesforce_object("salesforce_crm1", "Contact", "inc-2", CLOCK) == 0
    assert ingest.normalize("salesforce_crm1") == 0
    # ...but another late commit inside the lookback still lands, once.
    (cursor,), = rows(sandbox, "SELECT cursor FROM ops_sync_cursor WHERE stream = 'sobject:Contact'")
    late = datetime.fromisoformat(cursor) - timedelta(minutes=5)
    bodea_fleet.mutate(org, "commit_late", obj="Contact", record={
        "AccountId": "001A00000000001AAA", "Email": "later@townsend.com", "LastName": "Later"},
        system_modstamp=late.strftime("%Y-%m-%dT%H:%M:%S.000+0000"))
    assert incremental.sync_salesforce_object("salesforce_crm1", "Contact", "inc-3", CLOCK) == 1
    assert incremental.sync_salesforce_object("salesforce_crm1", "Contact", "inc-4", CLOCK) == 0
    ingest.normalize("salesforce_crm1")
    assert rows(sandbox, "SELECT count(*), count(DISTINCT source_key) FROM core_person "
                         "WHERE email IN ('late@townsend.com', 'later@townsend.com')") == [(2, 2)]
    assert rows(sandbox, "SELECT count(*) FROM raw_salesforce_contact WHERE \"Email\" = 'late@townsend.com'") == [
        (1,)]


def test_a_new_client_reads_the_source_clock_not_this_machines(bodea_fleet):
    """getDeleted windows and quota days are on the source's clock: a client that has not called
    yet asks the source (its token answer's Date), never falls back to this machine's clock."""
    from b2b_cdp.sources.marketo import MarketoClient
    from b2b_cdp.sources.salesforce import SalesforceClient

    cfg = load_config()
    for client in (SalesforceClient.from_connection(cfg.source("salesforce_crm1").conn_id),
                   MarketoClient.from_connection(cfg.source(MKTO).conn_id)):
        assert abs(client.server_now() - CLOCK) < timedelta(minutes=1), type(client).__name__
        assert client.api_calls == 0   # the token request is not an API call


def test_get_deleted_sweeps_deletions_once(sandbox, bodea_fleet):
    from b2b_cdp.sources.salesforce import SalesforceClient

    org = "salesforce:00D000000000001AAA"
    client = SalesforceClient.from_connection(load_config().source("salesforce_crm1").conn_id)
    bodea_fleet.mutate(org, "delete_record", obj="Contact", record_id="003A00000000003AAA")
    assert incremental.sweep_salesforce_deletions("salesforce_crm1", "Contact", "inc-1", client) == 1
    assert rows(sandbox, 'SELECT _source_key, "IsDeleted", "Email" FROM raw_salesforce_contact') == [
        ("003A00000000003AAA@00D000000000001AAA.Salesforce", "true", None)]
    # The cursor moved to latestDateCovered: the next sweep asks only for what came after.
    assert incremental.sweep_salesforce_deletions("salesforce_crm1", "Contact", "inc-2", client) == 0
    ingest.normalize("salesforce_crm1")
    assert rows(sandbox, "SELECT is_deleted FROM core_person "
                         "WHERE source_key = '003A00000000003AAA@00D000000000001AAA.Salesforce'") == [(True,)]


def test_a_crash_after_the_export_resumes_the_same_export(sandbox, bodea_fleet, monkeypatch):
    real_land = backfill.land
    calls = {"n": 0}

    def crash_once(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("worker killed")
        return real_land(*args, **kwargs)

    monkeypatch.setattr(backfill, "land", crash_once)
    used_at_start = bodea_fleet.instance(MKTO_KEY).bytes_exported_today
    with pytest.raises(RuntimeError, match="worker killed"):
        backfill.backfill_object(MKTO, "leads", CLOCK)
    # The crashed window's export completed; the next windows' were already queued (look-ahead).
    exports_at_crash = dict(rows(sandbox, "SELECT window_start, export_id FROM ops_bulk_job "
                                          "WHERE export_id IS NOT NULL AND status <> 'loaded'"))
    (window, status), = rows(sandbox, "SELECT window_start, status FROM ops_bulk_job WHERE status = 'Completed'")
    assert len(exports_at_crash) == 1 + backfill.LOOK_AHEAD and window in exports_at_crash
    monkeypatch.setattr(backfill, "land", real_land)
    result = backfill.backfill_object(MKTO, "leads", CLOCK)
    assert result.windows_done == result.windows_total and result.rows == 4
    # Both exports under way at the crash were resumed, not created again.
    for start, export_id in exports_at_crash.items():
        assert rows(sandbox, "SELECT export_id FROM ops_bulk_job WHERE window_start = %(w)s",
                    {"w": start}) == [(export_id,)]
    assert rows(sandbox, "SELECT count(*), count(DISTINCT _source_key) FROM raw_marketo_leads") == [(4, 4)]
    # Every window was exported, and charged, exactly once.
    charged = bodea_fleet.instance(MKTO_KEY).bytes_exported_today - used_at_start
    assert charged == rows(sandbox, "SELECT sum(file_size) FROM ops_bulk_job")[0][0]


def test_an_exhausted_export_quota_pauses_until_the_central_midnight_reset(sandbox, bodea_fleet):
    exports = bodea_fleet.instance(MKTO_KEY).exports
    exports.daily_quota_bytes = 1200           # a few windows' worth a day
    days = 1
    while True:
        try:
            result = backfill.backfill_object(MKTO, "leads", CLOCK)
            break
        except backfill.QuotaExhausted as paused:
            now = bodea_fleet.now()
            local = (now + paused.resume_in).astimezone(backfill.QUOTA_TIMEZONE)
            assert local.hour == 0 and local.minute <= 1, "resumes just after midnight Central"
            calls = bodea_fleet.instance(MKTO_KEY).call_count
            with pytest.raises(backfill.QuotaExhausted):      # paused: no export is attempted
                backfill.backfill_object(MKTO, "leads", CLOCK)
            assert bodea_fleet.instance(MKTO_KEY).call_count - calls <= 2
            bodea_fleet.advance(paused.resume_in.total_seconds())
            days += 1
    assert result.rows == 4 and result.windows_done == result.windows_total
    (predicted,), = rows(sandbox, "SELECT predicted_days FROM ops_backfill_progress WHERE object = 'leads'")
    assert days > 1 and predicted == 1    # the prediction made when done: nothing remains
    # Given this volume up front, the prediction holds: the backfill took no more quota days.
    (volume,), = rows(sandbox, "SELECT sum(file_size) FROM ops_bulk_job WHERE object = 'leads'")
    assert days <= backfill.predict_days(volume, exports.daily_quota_bytes, exports.daily_quota_bytes)


def test_backfill_days_prediction():
    assert backfill.predict_days(0, 100, 500) == 1
    assert backfill.predict_days(100, 100, 500) == 1
    assert backfill.predict_days(2_900_000_000, 0, 500_000_000) == 7   # the seed's "up to 7 days"
    assert backfill.predict_days(600, 100, 500) == 2


def test_downloads_survive_a_connection_reset_and_token_expiry(sandbox, bodea_fleet):
    bodea_fleet.inject(MKTO_KEY, "connection_reset", after_bytes=100, count=3)
    bodea_fleet.inject(MKTO_KEY, "token_expiry")
    result = backfill.backfill_object(MKTO, "leads", CLOCK)
    assert result.rows == 4
    assert rows(sandbox, "SELECT count(*), count(DISTINCT _source_key) FROM raw_marketo_leads") == [(4, 4)]


def test_a_malformed_csv_row_is_quarantined_and_the_rest_lands(sandbox, bodea_fleet):
    from b2b_cdp.landing_checks import check_landed

    bodea_fleet.inject(MKTO_KEY, "malformed_csv_row", object="leads", row=1, kind="columns")
    backfill.backfill_object(MKTO, "leads", CLOCK)
    outcome = check_landed(MKTO, "bf", CLOCK)
    assert not outcome.success
    quarantined = rows(sandbox, "SELECT reason FROM raw_quarantine")
    assert quarantined == [("malformed row in the source file",)]
    assert rows(sandbox, "SELECT count(*) FROM raw_marketo_leads")[0][0] == 3


def test_the_client_keeps_under_the_rate_limit_instead_of_meeting_606(tmp_path):
    """250 calls against an emulator enforcing 100 calls per 20 s: the client waits, never refused."""
    from emulators import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, EmulatorFleet

    from b2b_cdp.connections import ApiCredentials
    from b2b_cdp.http import SlidingWindowLimiter
    from b2b_cdp.sources.marketo import MarketoClient
    from tests.conftest import BODEA

    with EmulatorFleet.from_scenario(BODEA, state_dir=tmp_path) as fleet:
        fake = {"now": 0.0}

        def sleep(seconds):   # waiting moves the emulated clock instead of the test's wall time
            fake["now"] += seconds
            fleet.advance(seconds)

        limiter = SlidingWindowLimiter(100, 20.0, clock=lambda: fake["now"], sleep=sleep)
        client = MarketoClient(ApiCredentials(fleet.urls[MKTO_KEY], DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET),
                               limiter=limiter)
        client.policy.max_attempts = 1          # a 606 would fail the test instead of being retried
        for _ in range(250):
            client.call("GET", "/rest/v1/lists.json")
        assert client.api_calls == 250
        assert limiter.waited >= 40.0


def test_a_throttled_file_download_is_retried_not_landed_as_content(sandbox, bodea_fleet):
    """Marketo refuses a file download over the rate limit with a JSON 606 envelope (HTTP 200):
    the client must retry it, never take the envelope for the CSV."""
    from b2b_cdp.sources.marketo import MarketoClient

    client = MarketoClient.from_connection(load_config().source(MKTO).conn_id)
    client.policy.sleep = lambda seconds: None
    export_id = client.create_export("leads", {"fields": ["id", "email"], "format": "CSV", "filter": {
        "createdAt": {"startAt": "2025-03-01T00:00:00Z", "endAt": "2025-03-31T00:00:00Z"}}})
    client.enqueue_export("leads", export_id)
    client.wait_for_export("leads", export_id)
    bodea_fleet.inject(MKTO_KEY, "rate_limit_burst", count=2)
    body = b"".join(client._export_bytes("leads", export_id)).decode()
    assert body.splitlines()[0] == "id,email" and "p1@townsend.com" in body
