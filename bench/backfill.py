"""Benchmark: Marketo backfill from the emulator into the warehouse, against a plain COPY.

    python bench/backfill.py [--leads 1000000] [--activities 5000000] [--report build/bench/backfill.json]

Both sides run against the same PostgreSQL (the configured `cdp_warehouse` or an embedded one): the
pipeline's resumable bulk backfill (export jobs, streamed download, COPY into the raw lake) from the
Marketo emulator, run as its own process as a remote service is, and, as the baseline, a COPY of the
very same CSV files, already on local disk, into a plain text table. Reported: rows/s for each,
their ratio (goal >= 0.5), the same ratio over the pipeline's own time (without the time it waited
for the source to build its export files or for the rate limit), API calls and export bytes used
against the quotas.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import yaml

from _shared import ROOT, fresh_sandbox, workspace, write_report

CLOCK = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)
MUNCHKIN = "111-AAA-111"


def synthetic_scenario(path: Path, leads: int, activities: int) -> None:
    """The emulator's scenario file, written record by record (millions of records never sit in
    this process's memory at once)."""
    start = CLOCK - timedelta(days=300)
    step_lead = timedelta(days=299) / max(leads, 1)
    step_act = timedelta(days=299) / max(activities, 1)
    fmt = "%Y-%m-%dT%H:%M:%SZ"
    lead_rows = ({"id": i, "email": f"person{i}@company{i % 5000}.example", "firstName": f"First{i}",
                  "lastName": f"Last{i}", "title": "Engineer", "company": f"Company {i % 5000}",
                  "unsubscribed": False, "createdAt": (start + step_lead * i).strftime(fmt),
                  "updatedAt": (start + step_lead * i).strftime(fmt)} for i in range(1, leads + 1))
    activity_rows = ({"marketoGUID": f"a{i}", "leadId": 1 + i % max(leads, 1),
                      "activityDate": (start + step_act * i).strftime(fmt), "activityTypeId": 1,
                      "primaryAttributeValueId": 500 + i % 50,
                      "primaryAttributeValue": f"www.example.com/page/{i % 50}",
                      "attributes": [{"name": "Webpage URL", "value": f"/page/{i % 50}"}]}
                     for i in range(activities))
    with path.open("w", encoding="utf-8", buffering=1 << 20) as out:
        out.write(json.dumps({"clock": CLOCK.strftime(fmt)})[:-1]
                  + f', "marketo": [{{"munchkin_id": {json.dumps(MUNCHKIN)}, "leads": [')
        for name, rows in (("leads", lead_rows), ("activities", activity_rows)):
            if name == "activities":
                out.write('], "activities": [')
            for n, row in enumerate(rows):
                out.write((", " if n else "") + json.dumps(row))
        out.write("]}]}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leads", type=int, default=50_000)
    parser.add_argument("--activities", type=int, default=250_000)
    parser.add_argument("--report", type=Path, default=ROOT / "build" / "bench" / "backfill.json")
    args = parser.parse_args()

    work = workspace("cdp-bench-")
    config = yaml.safe_load((ROOT / "include" / "config" / "cdp.yaml").read_text())
    config["sources"] = [dict(config["sources"][0], backfill_start=(CLOCK - timedelta(days=301)).isoformat(),
                              activities_backfill_start=None,
                              daily_export_quota_mb=100_000)]
    config["segments"], config["destinations"] = [], []
    config.pop("buying_groups", None)
    (work / "cdp.yaml").write_text(yaml.safe_dump(config))
    os.environ["CDP_CONFIG"] = str(work / "cdp.yaml")

    from emulators import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET

    from b2b_cdp import warehouse
    from b2b_cdp.backfill import backfill_object
    from b2b_cdp.config import load_config
    from b2b_cdp.demo import connect_emulators
    from b2b_cdp.http import SlidingWindowLimiter
    from b2b_cdp.sources.marketo import RATE_LIMIT_CALLS, RATE_LIMIT_SECONDS, MarketoClient

    sandbox = fresh_sandbox(work)

    print(f"Generating {args.leads:,} leads and {args.activities:,} activities...", flush=True)
    synthetic_scenario(work / "scenario.json", args.leads, args.activities)
    report: dict = {"leads": args.leads, "activities": args.activities}
    # The emulator in its own process, as Marketo is a remote service: its export building then
    # competes with the pipeline for the machine's cores, not for one interpreter.
    started = time.perf_counter()
    emulator = subprocess.Popen(
        [sys.executable, "-m", "emulators", "--scenario", str(work / "scenario.json"),
         "--state-dir", str(work / "emulators"), "--marketo-daily-quota", "10000000",
         "--marketo-export-quota-mb", "100000"],
        cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        urls = json.loads(emulator.stdout.readline())
        report["emulator_start_seconds"] = round(time.perf_counter() - started, 2)
        connect_emulators(urls, DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET)
        # The benchmark is the instance's only client: it may use the whole 100 calls per 20 s
        # (a backfill task in the Airflow pool keeps to its share, half of it).
        client = MarketoClient.from_connection(
            load_config().sources[0].conn_id, poll_seconds=0.2,
            limiter=SlidingWindowLimiter(RATE_LIMIT_CALLS, RATE_LIMIT_SECONDS))
        import b2b_cdp.backfill as backfill_module

        # Time blocked on the source (its export files being built: minutes per job on real
        # Marketo) and time spent landing (download stream -> COPY -> raw records).
        timed = {"landing": 0.0, "landing_waits": 0.0, "export_build_wait": 0.0}
        real_land, real_wait = backfill_module.land, client.wait_for_export

        def timed_land(*a, **k):
            began, waited_before = time.perf_counter(), client.limiter.waited
            try:
                return real_land(*a, **k)
            finally:
                timed["landing"] += time.perf_counter() - began
                timed["landing_waits"] += client.limiter.waited - waited_before

        def timed_wait(*a, **k):
            # Rate-limit waits while polling count once, as rate-limit waits.
            began, waited_before = time.perf_counter(), client.limiter.waited
            try:
                return real_wait(*a, **k)
            finally:
                timed["export_build_wait"] += (time.perf_counter() - began
                                               - (client.limiter.waited - waited_before))

        backfill_module.land, client.wait_for_export = timed_land, timed_wait
        started = time.perf_counter()
        rows = sum(backfill_object(load_config().sources[0].id, obj, CLOCK, client=client).rows
                   for obj in ("leads", "activities"))
        pipeline_s = time.perf_counter() - started
        waited = client.limiter.waited
        with warehouse.connect(sandbox) as conn:
            exported = conn.execute("SELECT coalesce(sum(file_size), 0) FROM ops_bulk_job").fetchone()[0]
            export_ids = conn.execute("SELECT object, export_id FROM ops_bulk_job ORDER BY 1, window_start").fetchall()

        # Baseline: the same CSV files, fetched to local disk first, then one COPY each. The fetch is
        # timed apart: it is what the emulator (a Python HTTP server) costs the pipeline above.
        files = []
        fetch_started = time.perf_counter()
        for obj, export_id in export_ids:
            target = work / f"{obj}-{export_id}.csv"
            with target.open("wb") as handle:
                for chunk in client._export_bytes(obj, export_id):
                    handle.write(chunk)
            files.append((obj, target))
        fetch_s = time.perf_counter() - fetch_started
        api_calls = client.api_calls
    finally:
        emulator.terminate()
        emulator.wait(timeout=60)
    # Plain COPY into tables with the files' own columns (all text), NULL written as `null`.
    from psycopg import sql

    with warehouse.connect(sandbox) as conn:
        for obj in ("leads", "activities"):
            header = next(path for o, path in files if o == obj).open(encoding="utf-8").readline().strip()
            conn.execute(sql.SQL("CREATE TABLE {} ({})").format(
                sql.Identifier(f"bench_{obj}_copy"),
                sql.SQL(", ").join(sql.SQL("{} text").format(sql.Identifier(c)) for c in header.split(","))))
    started = time.perf_counter()
    with warehouse.connect(sandbox) as conn:
        for obj, path in files:
            statement = sql.SQL("COPY {} FROM STDIN WITH (FORMAT csv, HEADER true, NULL 'null')").format(
                sql.Identifier(f"bench_{obj}_copy"))
            with conn.cursor() as cur, cur.copy(statement) as copy, path.open("rb") as handle:
                while chunk := handle.read(1 << 16):
                    copy.write(chunk)
    baseline_s = time.perf_counter() - started
    with warehouse.connect(sandbox) as conn:
        baseline_rows = conn.execute("SELECT (SELECT count(*) FROM bench_leads_copy) + "
                                     "(SELECT count(*) FROM bench_activities_copy)").fetchone()[0]
    report.update({
        "pipeline": {"rows": rows, "seconds": round(pipeline_s, 2), "rows_per_s": round(rows / pipeline_s)},
        "baseline_plain_copy": {"rows": baseline_rows, "seconds": round(baseline_s, 2),
                                "rows_per_s": round(baseline_rows / baseline_s)},
        "ratio_to_plain_copy": round((rows / pipeline_s) / (baseline_rows / baseline_s), 3),
        "landing_seconds": round(timed["landing"], 2),
        "landing_seconds_waiting_on_rate_limit": round(timed["landing_waits"], 2),
        "landing_ratio_to_plain_copy_excluding_waits": round(
            (rows / max(timed["landing"] - timed["landing_waits"], 1e-9)) / (baseline_rows / baseline_s), 3),
        "emulator_download_only_seconds": round(fetch_s, 2),
        # Marketo allows 100 calls per 20 s: small volumes are bound by the call budget, not by bytes.
        "rate_limit_wait_seconds": round(waited, 2),
        "export_build_wait_seconds": round(timed["export_build_wait"], 2),
        # The pipeline's own time: the run less the time it sat waiting for the source to finish an
        # export job (the look-ahead hides most of it) and for the rate limit.
        "pipeline_own_seconds": round(pipeline_s - timed["export_build_wait"] - waited, 2),
        "ratio_to_plain_copy_excluding_source_waits": round(
            (rows / max(pipeline_s - timed["export_build_wait"] - waited, 1e-9)) / (baseline_rows / baseline_s), 3),
        "api_calls": api_calls, "api_calls_daily_quota": 50_000,
        "rate_limit": f"{RATE_LIMIT_CALLS} calls per {RATE_LIMIT_SECONDS:g} s, the whole instance's",
        "export_bytes": int(exported), "export_bytes_daily_quota": 500_000_000,
    })
    write_report(args.report, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
