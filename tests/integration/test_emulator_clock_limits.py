"""The emulated clock and what runs on it: token expiry, Marketo's rate window, concurrency limit, daily
quotas (reset at Central midnight), the export quota, Salesforce's rolling 24-hour allotment."""

from __future__ import annotations

import threading
from datetime import datetime, timezone
from pathlib import Path

import pytest
import requests

from emulators import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, EmulatorFleet
from tests.integration.emulator_clients import marketo_session, marketo_token

BODEA = Path(__file__).resolve().parents[2] / "include" / "scenarios" / "bodea.yaml"
MKTO = "marketo:111-AAA-111"
SF = "salesforce:00D000000000001AAA"
CREDENTIALS = {"grant_type": "client_credentials", "client_id": DEFAULT_CLIENT_ID,
               "client_secret": DEFAULT_CLIENT_SECRET}
CLOCK = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)     # bodea's clock: 06:00 in Chicago


def code_of(response: requests.Response) -> str | None:
    body = response.json()
    return None if body["success"] else body["errors"][0]["code"]


def test_clock_is_frozen_set_and_advanced(fleet) -> None:
    assert fleet.clock_mode == "frozen"
    assert fleet.now() == CLOCK
    assert fleet.now() == CLOCK                                   # does not move by itself
    assert fleet.advance(90) == datetime(2026, 11, 20, 12, 1, 30, tzinfo=timezone.utc)
    assert fleet.set_clock("2026-12-01T00:00:00Z") == datetime(2026, 12, 1, tzinfo=timezone.utc)
    assert fleet.set_clock(datetime(2026, 12, 2)) == datetime(2026, 12, 2, tzinfo=timezone.utc)   # naive = UTC
    assert fleet.clock == CLOCK                                   # the scenario's clock stays what it was


def test_wall_clock_mode_runs_from_the_scenario_clock() -> None:
    fleet = EmulatorFleet.from_scenario(BODEA, clock_mode="wall")
    first = fleet.now()
    assert CLOCK <= first < CLOCK.replace(minute=1)
    assert fleet.now() > first
    with pytest.raises(ValueError):
        EmulatorFleet.from_scenario(BODEA, clock_mode="sideways")


def test_marketo_token_expires_after_3600_emulated_seconds(fleet) -> None:
    base = fleet.urls[MKTO]
    body = requests.get(f"{base}/identity/oauth/token", params=CREDENTIALS).json()
    assert body["expires_in"] == 3599
    token = body["access_token"]
    fleet.advance(3000)
    again = requests.get(f"{base}/identity/oauth/token", params=CREDENTIALS).json()
    assert again["access_token"] == token and again["expires_in"] == 599
    headers = {"Authorization": f"Bearer {token}"}
    assert code_of(requests.get(f"{base}/rest/v1/lists.json", headers=headers)) is None
    fleet.advance(600)                                            # issued at T, expired at T + 3600
    assert code_of(requests.get(f"{base}/rest/v1/lists.json", headers=headers)) == "602"
    fresh = requests.get(f"{base}/identity/oauth/token", params=CREDENTIALS).json()
    assert fresh["access_token"] != token and fresh["expires_in"] == 3599


def test_606_past_100_calls_in_20_seconds_and_recovery(fleet) -> None:
    base = fleet.urls[MKTO]
    with marketo_session(base) as api:
        for _ in range(100):
            assert code_of(api.get(f"{base}/rest/v1/activities/types.json")) is None
        refused = api.get(f"{base}/rest/v1/activities/types.json").json()
        assert refused["errors"] == [{"code": "606", "message": "Max rate limit '100' exceeded with in '20' secs"}]
        assert code_of(api.get(f"{base}/bulk/v1/leads/export.json")) == "606"        # /bulk counts too
        assert requests.get(f"{base}/identity/oauth/token", params=CREDENTIALS).status_code == 200  # not counted
        fleet.advance(20)
        assert code_of(api.get(f"{base}/rest/v1/activities/types.json")) is None


def test_615_with_11_requests_in_flight(fleet) -> None:
    base = fleet.urls[MKTO]
    token = marketo_token(base)
    fleet.inject(MKTO, "latency", seconds=0.5)
    codes: list[str | None] = []
    lock = threading.Lock()

    def call() -> None:
        response = requests.get(f"{base}/rest/v1/lists.json", headers={"Authorization": f"Bearer {token}"})
        with lock:
            codes.append(code_of(response))

    threads = [threading.Thread(target=call) for _ in range(11)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert codes.count("615") == 1 and codes.count(None) == 10
    body = requests.get(f"{base}/rest/v1/lists.json", headers={"Authorization": f"Bearer {token}"}).json()
    assert body["success"] is True                                # one at a time is fine


def test_607_daily_quota_resets_at_central_midnight() -> None:
    with EmulatorFleet.from_scenario(BODEA, marketo_daily_quota=5) as fleet:
        base = fleet.urls[MKTO]
        instance = fleet.instance(MKTO)
        assert instance.daily_quota == 5
        with marketo_session(base) as api:
            for _ in range(5):
                assert code_of(api.get(f"{base}/rest/v1/lists.json")) is None
            refused = api.get(f"{base}/rest/v1/lists.json").json()
            assert refused["errors"] == [{"code": "607", "message": "Daily quota reached"}]
            fleet.set_clock("2026-11-20T12:59:59Z")
            assert code_of(api.get(f"{base}/rest/v1/lists.json")) == "607"
        fleet.set_clock("2026-11-21T05:59:59Z")                   # 23:59:59 in Chicago, still the 20th
        with marketo_session(base) as api:                        # the old token has expired by now
            assert code_of(api.get(f"{base}/rest/v1/lists.json")) == "607"
            fleet.advance(1)                                      # 00:00 in Chicago: a new day
            usage = api.get(f"{base}/rest/v1/stats/usage.json").json()
            assert usage["result"][0]["date"] == "2026-11-21" and usage["result"][0]["total"] == 1
            week = api.get(f"{base}/rest/v1/stats/usage/last7days.json").json()["result"]
            assert [d["date"] for d in week][:2] == ["2026-11-21", "2026-11-20"] and len(week) == 7
            assert week[1]["total"] == 8                          # refusals count, as the docs imply
            errors = api.get(f"{base}/rest/v1/stats/errors/last7days.json").json()["result"]
            assert errors[1]["errors"] == [{"errorCode": "607", "count": 3}]
            instance.set_daily_quota(1)
            assert code_of(api.get(f"{base}/rest/v1/lists.json")) == "607"


def test_daily_quota_day_follows_daylight_saving_time() -> None:
    scenario_clock = datetime(2026, 7, 1, 4, 59, tzinfo=timezone.utc)   # 23:59 CDT on June 30th
    with EmulatorFleet.from_scenario(BODEA, marketo_daily_quota=1) as fleet:
        fleet.set_clock(scenario_clock)
        base = fleet.urls[MKTO]
        with marketo_session(base) as api:
            assert code_of(api.get(f"{base}/rest/v1/lists.json")) is None
            assert code_of(api.get(f"{base}/rest/v1/lists.json")) == "607"
            fleet.advance(60)                                     # 05:00 UTC = 00:00 CDT
            assert code_of(api.get(f"{base}/rest/v1/lists.json")) is None


def test_export_quota_exhaustion_and_reset(fleet) -> None:
    base = fleet.urls[MKTO]
    exports = fleet.instance(MKTO).exports
    body = {"fields": ["id", "email"], "filter": {"createdAt": {"startAt": "2025-03-01T00:00:00Z",
                                                                "endAt": "2025-03-31T00:00:00Z"}}}
    with marketo_session(base) as api:
        job = api.post(f"{base}/bulk/v1/leads/export/create.json", json=body).json()["result"][0]
        export = f"{base}/bulk/v1/leads/export/{job['exportId']}"
        api.post(f"{export}/enqueue.json")
        while api.get(f"{export}/status.json").json()["result"][0]["status"] != "Completed":
            pass
        size = api.get(f"{export}/status.json").json()["result"][0]["fileSize"]
        assert exports.bytes_exported_today == size == fleet.instance(MKTO).bytes_exported_today
        exports.daily_quota_bytes = size                          # used up exactly
        refused = api.post(f"{base}/bulk/v1/leads/export/create.json", json=body).json()
        assert refused["errors"] == [{"code": "1029", "message": "Export daily quota exceeded"}]
    fleet.set_clock("2026-11-21T05:59:00Z")                       # still the 20th in Chicago
    with marketo_session(base) as api:
        assert code_of(api.post(f"{base}/bulk/v1/leads/export/create.json", json=body)) == "1029"
        fleet.advance(60)                                         # midnight Central
        assert exports.bytes_exported_today == 0
        assert code_of(api.post(f"{base}/bulk/v1/leads/export/create.json", json=body)) is None


def test_bulk_job_timestamps_follow_the_clock(fleet) -> None:
    base = fleet.urls[MKTO]
    body = {"fields": ["id"], "filter": {"staticListId": 9001}}
    with marketo_session(base) as api:
        job = api.post(f"{base}/bulk/v1/leads/export/create.json", json=body).json()["result"][0]
        assert job["createdAt"] == "2026-11-20T12:00:00Z"
        fleet.advance(120)
        queued = api.post(f"{base}/bulk/v1/leads/export/{job['exportId']}/enqueue.json").json()["result"][0]
        assert queued["queuedAt"] == "2026-11-20T12:02:00Z"
        done = api.get(f"{base}/bulk/v1/leads/export/{job['exportId']}/status.json").json()["result"][0]
        # The queue is worked at once, not when polled: started and finished (the clock is frozen).
        assert (done["status"], done["startedAt"], done["finishedAt"]) == \
            ("Completed", "2026-11-20T12:02:00Z", "2026-11-20T12:02:00Z")


def test_salesforce_allotment_is_a_rolling_24_hours(fleet) -> None:
    base = fleet.urls[SF]
    org = fleet.instance(SF)
    org.api_allotted = 3
    token = requests.post(f"{base}/services/oauth2/token", data=CREDENTIALS).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    url = f"{base}/services/data/v62.0/limits"
    assert [requests.get(url, headers=headers).headers["Sforce-Limit-Info"] for _ in range(2)] == \
        ["api-usage=1/3", "api-usage=2/3"]
    fleet.advance(12 * 3600)
    assert requests.get(url, headers=headers).status_code == 200
    refused = requests.get(url, headers=headers)
    assert refused.status_code == 403
    assert refused.json() == [{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}]
    assert refused.headers["Sforce-Limit-Info"] == "api-usage=3/3"
    fleet.advance(12 * 3600 + 1)                                  # the first two calls fall out of the window
    ok = requests.get(url, headers=headers)
    assert ok.status_code == 200 and ok.headers["Sforce-Limit-Info"] == "api-usage=2/3"
    assert ok.json()["DailyApiRequests"] == {"Max": 3, "Remaining": 1}
