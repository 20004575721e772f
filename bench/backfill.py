"""Benchmark: Marketo backfill from the emulator into the warehouse, against a plain COPY.

    python bench/backfill.py [--leads 1000000] [--activities 5000000] [--normalize] [--report build/bench/backfill.json]

Both sides run against the same PostgreSQL (the configured `cdp_warehouse` or an embedded one): the
pipeline's resumable bulk backfill (export jobs, streamed download, COPY into the raw lake) from the
Marketo emulator, run as its own process as a remote service is, leads and activities at once as
the backfill DAG's two tasks run, and, as the baseline, a COPY of the very same CSV files, already on
local disk, into a plain text table. Each side starts on a quiet server (vacuumed, checkpointed).
Reported: rows/s for each, their ratio (goal >= 0.5), per object its task's ratio and each file's
landing against its plain COPY, API calls and export bytes used against the quotas.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import threading
from contextlib import contextmanager
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path

import yaml

from _shared import ROOT, fresh_sandbox, settle, workspace, write_report

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


def cpu_seconds(pid: int) -> float:
    """User + system CPU a process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def server_cpu_seconds(sandbox) -> float | None:
    """CPU the PostgreSQL server has used so far: its postmaster's live children and those it has
    reaped (backends, autovacuum, checkpointer, WAL writer); None for a server on another machine."""
    from b2b_cdp import warehouse

    with warehouse.connect(sandbox) as conn:
        data_directory = conn.execute("SHOW data_directory").fetchone()[0]
    try:
        postmaster = int((Path(data_directory) / "postmaster.pid").read_text().split("\n", 1)[0])
        fields = Path(f"/proc/{postmaster}/stat").read_text().rsplit(")", 1)[1].split()
        total = sum(int(v) for v in fields[11:15]) / os.sysconf("SC_CLK_TCK")     # own + reaped children
        children = Path(f"/proc/{postmaster}/task/{postmaster}/children").read_text().split()
    except (OSError, ValueError, IndexError):
        return None
    for child in children:
        try:
            total += cpu_seconds(int(child))
        except OSError:
            pass            # exited meanwhile: its time is in the postmaster's reaped children
    return total


def server_cpu_since(before: float | None, sandbox) -> float | None:
    after = server_cpu_seconds(sandbox)
    return None if before is None or after is None else after - before


def server_activity(sandbox) -> dict:
    """Counters of the warehouse server's work so far (PostgreSQL 16 views): WAL written,
    checkpoints, buffers written by each process kind, autovacuum and autoanalyze runs."""
    from b2b_cdp import warehouse

    with warehouse.connect(sandbox) as conn:
        row = conn.execute(
            "SELECT pg_current_wal_lsn() - '0/0'::pg_lsn, checkpoints_timed + checkpoints_req, buffers_checkpoint,"
            " buffers_clean, buffers_backend,"
            " (SELECT coalesce(sum(autovacuum_count), 0) FROM pg_stat_user_tables),"
            " (SELECT coalesce(sum(autoanalyze_count), 0) FROM pg_stat_user_tables) FROM pg_stat_bgwriter").fetchone()
    return dict(zip(("wal_bytes", "checkpoints", "buffers_written_by_checkpoints", "buffers_written_by_bgwriter",
                     "buffers_written_by_backends", "autovacuums", "autoanalyzes"), (int(v) for v in row)))


def activity_since(before: dict, sandbox) -> dict:
    after = server_activity(sandbox)
    return {name: after[name] - before[name] for name in after}


def machine_busy_seconds() -> float:
    """CPU time all cores have spent not idle since boot (Linux /proc/stat)."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(values) - values[3] - values[4]) / os.sysconf("SC_CLK_TCK")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leads", type=int, default=50_000)
    parser.add_argument("--activities", type=int, default=250_000)
    parser.add_argument("--report", type=Path, default=ROOT / "build" / "bench" / "backfill.json")
    parser.add_argument("--normalize", action="store_true",
                        help="then time the normalisation of the landed lake into core (not in the ratio)")
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
    from b2b_cdp.sources.marketo import POOL_SLOTS, RATE_LIMIT_CALLS, RATE_LIMIT_SECONDS, MarketoClient

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
        import b2b_cdp.backfill as backfill_module

        # As in the backfill DAG: leads and activities are two tasks running at once in the
        # instance's pool (POOL_SLOTS), each a client of its own keeping to its share of the
        # instance's 100 calls per 20 s.
        objects = ("leads", "activities")
        clients = {obj: MarketoClient.from_connection(
            load_config().sources[0].conn_id, poll_seconds=0.2,
            limiter=SlidingWindowLimiter(RATE_LIMIT_CALLS // POOL_SLOTS, RATE_LIMIT_SECONDS)) for obj in objects}
        # Per object: time blocked on the source (its export files being built: minutes per job on
        # real Marketo), time spent landing (download stream -> COPY -> raw records) and the
        # rate-limit waits within it.
        timed = {obj: {"landing": 0.0, "landing_waits": 0.0, "build": 0.0, "build_waits": 0.0} for obj in objects}
        timed_lock = threading.Lock()

        @contextmanager
        def timing(obj: str, step: str):
            """Adds the block's seconds to timed[obj][step], and the rate-limit waits within them to
            timed[obj][step + "_waits"]. Windows land in threads of their own, several at a time:
            the seconds are summed over them."""
            client = clients[obj]
            began, waited_before = time.perf_counter(), client.limiter.waited
            try:
                yield
            finally:
                with timed_lock:
                    timed[obj][step] += time.perf_counter() - began
                    timed[obj][step + "_waits"] += client.limiter.waited - waited_before

        real_land = backfill_module.land

        def timed_land(*a, **k):
            # The task's landing threads are named after it (backfill-<object>).
            obj = next(o for o in objects if threading.current_thread().name.startswith(f"backfill-{o}"))
            with timing(obj, "landing"):
                return real_land(*a, **k)

        def timing_wait(obj, real_wait):
            def timed_wait(*a, **k):
                with timing(obj, "build"):
                    return real_wait(*a, **k)
            return timed_wait

        backfill_module.land = timed_land
        for obj, client in clients.items():
            client.wait_for_export = timing_wait(obj, client.wait_for_export)
        object_seconds: dict[str, float] = {}

        def backfill(obj: str) -> int:
            began = time.perf_counter()
            rows = backfill_object(load_config().sources[0].id, obj, CLOCK, client=clients[obj]).rows
            object_seconds[obj] = time.perf_counter() - began
            return rows

        settle(sandbox)
        server_cpu, activity = server_cpu_seconds(sandbox), server_activity(sandbox)
        emulator_cpu, own_cpu, busy = cpu_seconds(emulator.pid), time.process_time(), machine_busy_seconds()
        started = time.perf_counter()
        with ThreadPoolExecutor(len(objects)) as pool:
            rows = sum(pool.map(backfill, objects))
        pipeline_s = time.perf_counter() - started
        emulator_cpu, own_cpu = cpu_seconds(emulator.pid) - emulator_cpu, time.process_time() - own_cpu
        busy = machine_busy_seconds() - busy
        server_cpu, pipeline_activity = server_cpu_since(server_cpu, sandbox), activity_since(activity, sandbox)
        waited = {obj: client.limiter.waited for obj, client in clients.items()}
        client = clients["leads"]
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
        api_calls = sum(c.api_calls for c in clients.values())
    finally:
        emulator.terminate()
        emulator.wait(timeout=60)
    # Plain COPY into tables with the files' own columns (all text), NULL written as `null`.
    from psycopg import sql

    with warehouse.connect(sandbox) as conn:
        for obj in objects:
            header = next(path for o, path in files if o == obj).open(encoding="utf-8").readline().strip()
            conn.execute(sql.SQL("CREATE TABLE {} ({})").format(
                sql.Identifier(f"bench_{obj}_copy"),
                sql.SQL(", ").join(sql.SQL("{} text").format(sql.Identifier(c)) for c in header.split(","))))
    settle(sandbox)
    # Each object's files timed apart: the per-object ratios below compare like with like.
    baseline_s = {obj: 0.0 for obj in objects}
    activity, baseline_server_cpu = server_activity(sandbox), server_cpu_seconds(sandbox)
    with warehouse.connect(sandbox) as conn:
        for obj, path in files:
            statement = sql.SQL("COPY {} FROM STDIN WITH (FORMAT csv, HEADER true, NULL 'null')").format(
                sql.Identifier(f"bench_{obj}_copy"))
            began = time.perf_counter()
            with conn.cursor() as cur, cur.copy(statement) as copy, path.open("rb") as handle:
                while chunk := handle.read(1 << 16):
                    copy.write(chunk)
            baseline_s[obj] += time.perf_counter() - began
    baseline_activity = activity_since(activity, sandbox)
    baseline_server_cpu = server_cpu_since(baseline_server_cpu, sandbox)
    with warehouse.connect(sandbox) as conn:
        baseline_rows = {obj: conn.execute(sql.SQL("SELECT count(*) FROM {}").format(
            sql.Identifier(f"bench_{obj}_copy"))).fetchone()[0] for obj in objects}
    all_rows, all_s = sum(baseline_rows.values()), sum(baseline_s.values())
    plain_rate = all_rows / all_s
    if args.normalize:
        # What the backfill DAG runs next: the lake's batches into core, read through its views.
        from b2b_cdp.ingest import normalize

        settle(sandbox)
        began = time.perf_counter()
        normalize(load_config().sources[0].id)
        normalize_s = time.perf_counter() - began
        with warehouse.connect(sandbox) as conn:
            core_rows = {table: conn.execute(sql.SQL("SELECT count(*) FROM {}").format(
                sql.Identifier(table))).fetchone()[0] for table in ("core_person", "core_event")}
        report["normalize"] = {"seconds": round(normalize_s, 2), "core_rows": core_rows,
                               "raw_rows_per_s": round(rows / normalize_s)}

    def per_object(obj: str) -> dict:
        """One object's task. Its windows land several at a time: landing and build-wait seconds
        are summed over its windows (each file's landing set against its plain COPY)."""
        t, rate = timed[obj], baseline_rows[obj] / baseline_s[obj]
        return {"rows": baseline_rows[obj], "seconds": round(object_seconds[obj], 2),
                "landing_seconds_summed": round(t["landing"], 2),
                "landing_seconds_waiting_on_rate_limit": round(t["landing_waits"], 2),
                # Polling: its rate-limit waits count once, as rate-limit waits.
                "export_build_wait_seconds_summed": round(t["build"] - t["build_waits"], 2),
                "rate_limit_wait_seconds": round(waited[obj], 2),
                "plain_copy_seconds": round(baseline_s[obj], 2),
                "ratio_to_plain_copy": round(baseline_rows[obj] / object_seconds[obj] / rate, 3),
                "landing_ratio_to_plain_copy_excluding_waits": round(
                    baseline_rows[obj] / max(t["landing"] - t["landing_waits"], 1e-9) / rate, 3)}

    report.update({
        "pipeline": {"rows": rows, "seconds": round(pipeline_s, 2), "rows_per_s": round(rows / pipeline_s)},
        "baseline_plain_copy": {"rows": all_rows, "seconds": round(all_s, 2), "rows_per_s": round(plain_rate)},
        "ratio_to_plain_copy": round((rows / pipeline_s) / plain_rate, 3),
        "objects": {obj: per_object(obj) for obj in objects},
        "emulator_download_only_seconds": round(fetch_s, 2),
        # CPU the emulator (export builds, serving) and this process (download, COPY feed) used during
        # the pipeline's run: on a 2-core machine both compete with PostgreSQL's COPY.
        "emulator_cpu_seconds": round(emulator_cpu, 2), "pipeline_process_cpu_seconds": round(own_cpu, 2),
        "warehouse_server_cpu_seconds": None if server_cpu is None else round(server_cpu, 2),
        "baseline_warehouse_server_cpu_seconds": None if baseline_server_cpu is None else round(baseline_server_cpu, 2),
        "server_activity": {"pipeline": pipeline_activity, "baseline_plain_copy": baseline_activity},
        "machine_busy_cpu_seconds": round(busy, 2), "cores": os.cpu_count(),
        "api_calls": api_calls, "api_calls_daily_quota": 50_000,
        # Marketo allows 100 calls per 20 s: small volumes are bound by the call budget, not by bytes.
        "rate_limit": f"{RATE_LIMIT_CALLS} calls per {RATE_LIMIT_SECONDS:g} s, the whole instance's; "
                      f"each of the {POOL_SLOTS} tasks keeps to its share",
        "export_bytes": int(exported), "export_bytes_daily_quota": 500_000_000,
    })
    write_report(args.report, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
