"""`make demo`: the whole pipeline on a scenario, through Airflow, against the emulators.

State is kept per scenario file under build/state/ (warehouse data, Airflow metadata, the
emulators' state), so a second demo on the same scenario is a re-run against live systems and a
demo on another scenario starts clean. The report goes to build/demo/report.json.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from datetime import datetime
from pathlib import Path

from b2b_cdp.config import PROJECT_ROOT

log = logging.getLogger("b2b_cdp.demo")

DEFAULT_SCENARIO = PROJECT_ROOT / "include" / "scenarios" / "bodea.yaml"
BUILD_DIR = Path(os.environ.get("CDP_BUILD_DIR", PROJECT_ROOT / "build"))
# Emulators finish a bulk job within a few status polls; no need to wait a minute between them.
# The demo runs one task at a time, so one client may use an instance's whole rate limit.
EMULATOR_CONNECTION_EXTRA = {"bulk_poll_seconds": 0.01, "rate_limit_calls": 100}


def state_dir_for(scenario: Path) -> Path:
    scenario = scenario.resolve()
    digest = hashlib.sha256(str(scenario).encode()).hexdigest()[:8]
    return BUILD_DIR / "state" / f"{scenario.stem}-{digest}"


def prepare_environment(state_dir: Path) -> None:
    """Airflow settings for a self-contained run; must happen before Airflow is imported."""
    airflow_home = state_dir / "airflow"
    airflow_home.mkdir(parents=True, exist_ok=True)
    os.environ["AIRFLOW_HOME"] = str(airflow_home)
    os.environ.setdefault("AIRFLOW__CORE__DAGS_FOLDER", str(PROJECT_ROOT / "dags"))
    os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    os.environ.setdefault("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", f"sqlite:///{airflow_home / 'airflow.db'}")
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    # dag.test() cannot finish a run that carries a deadline alert (see README, Incremental syncs).
    os.environ.setdefault("CDP_DEADLINE_ALERTS", "off")


def connect_emulators(urls: dict[str, str], client_id: str, client_secret: str,
                      extra: dict | None = None) -> None:
    """Point the configuration's Airflow connections at the emulators (environment connections)."""
    from b2b_cdp.config import load_config

    os.environ["CDP_DROPZONE"] = urls["dropzone"]
    cfg = load_config()
    systems = {s.conn_id: s.system_key for s in cfg.sources if s.type in ("marketo", "salesforce")}
    systems.update({d.conn_id: f"marketo:{d.munchkin_id}" for d in cfg.destinations if d.type == "marketo"})
    for conn_id, system in systems.items():
        if system not in urls:
            raise KeyError(f"the scenario has no {system}, which the configuration's {conn_id} uses")
        os.environ[f"AIRFLOW_CONN_{conn_id.upper()}"] = json.dumps({
            "conn_type": "http", "host": urls[system], "login": client_id, "password": client_secret,
            "extra": {**EMULATOR_CONNECTION_EXTRA, **(extra or {})}})
    # LinkedIn takes a 3-legged OAuth access token, not client credentials: the emulator's own one.
    from emulators import LINKEDIN_ACCESS_TOKEN

    for destination in cfg.destinations:
        if destination.type == "linkedin" and "linkedin:ads" in urls:
            os.environ[f"AIRFLOW_CONN_{destination.conn_id.upper()}"] = json.dumps({
                "conn_type": "http", "host": urls["linkedin:ads"], "login": "cdp-app",
                "password": LINKEDIN_ACCESS_TOKEN})


def run_dags(logical_date: datetime) -> dict[str, str]:
    """Every DAG in stage order through dag.test(); returns dag_id -> run_id."""
    from airflow.dag_processing.dagbag import DagBag

    from b2b_cdp.config import load_config
    from b2b_cdp.orchestration import prepare_metadata

    prepare_metadata()
    bag = DagBag(dag_folder=os.environ["AIRFLOW__CORE__DAGS_FOLDER"])
    if bag.import_errors:
        raise RuntimeError(f"DAG import errors: {bag.import_errors}")
    cfg = load_config()
    # Each source's first load: its backfill DAG, or for file drops read as they come, its sync.
    first_loads = [f"ingest_backfill__{s.id}" if f"ingest_backfill__{s.id}" in bag.dags
                   else f"ingest_incremental__{s.id}" for s in cfg.sources]
    order = (first_loads + ["identity_stitching", "segmentation_daily"]
             + [f"activate__{d.id}" for d in cfg.destinations])
    run_ids: dict[str, str] = {}
    for dag_id in order:
        started = time.monotonic()
        run = bag.dags[dag_id].test(logical_date=logical_date)
        if run.state != "success":
            failed = [ti.task_id for ti in run.get_task_instances() if ti.state not in ("success", "skipped")]
            raise RuntimeError(f"{dag_id} ended {run.state}; tasks not successful: {failed} "
                               "(their logs are above)")
        run_ids[dag_id] = run.run_id
        print(f"  {dag_id}: success in {time.monotonic() - started:.1f}s", flush=True)
    return run_ids


def build_report(scenario: Path, clock: datetime, run_ids: dict[str, str]) -> dict:
    from b2b_cdp import warehouse
    from b2b_cdp.activation import list_member_emails
    from b2b_cdp.config import load_config
    from b2b_cdp.ops import latest_checkpoints

    cfg = load_config()
    shown = scenario.relative_to(PROJECT_ROOT) if scenario.is_relative_to(PROJECT_ROOT) else scenario
    report: dict = {"scenario": str(shown), "clock": clock.isoformat().replace("+00:00", "Z"),
                    "profiles": {"persons": 0, "accounts": 0, "excluded": 0}, "segments": {}, "destinations": {},
                    "checkpoints": {}}
    for sandbox in cfg.sandboxes():
        with warehouse.connect(sandbox) as conn:
            counts = warehouse.fetch_all(conn, "identity/profile_counts")[0]
            for key, value in zip(("persons", "accounts", "excluded"), counts):
                report["profiles"][key] += value
            for segment in (s for s in cfg.segments if cfg.sandbox_of(s) == sandbox):
                rows = warehouse.fetch_all(conn, "segments/current_member_emails", {"segment_id": segment.id})
                report["segments"][segment.id] = {"mode": segment.mode,
                                                  "members": sorted(email for _, email in rows if email)}
            for destination in (d for d in cfg.destinations if cfg.sandbox_of(d) == sandbox):
                totals = {"added": 0, "removed": 0, "api_calls": 0}
                for row in warehouse.fetch_all(conn, "activation/sync_totals", {
                        "destination_id": destination.id, "run_id": run_ids[f"activate__{destination.id}"]}):
                    for key, value in zip(("added", "removed", "api_calls"), row):
                        totals[key] += value or 0
                members = sorted({email for aud in destination.audiences
                                  for email in list_member_emails(destination.conn_id, aud.static_list_id)})
                report["destinations"][destination.id] = {"type": destination.type, "members": members, **totals}
        for name, success in latest_checkpoints(sandbox).items():
            previous = report["checkpoints"].get(name, {"success": True})
            report["checkpoints"][name] = {"success": previous["success"] and success}
    return report


def summary(report: dict) -> str:
    lines = [f"Scenario {report['scenario']} at {report['clock']}",
             f"  profiles: {report['profiles']['persons']} persons, {report['profiles']['accounts']} accounts"]
    for segment_id, seg in report["segments"].items():
        lines.append(f"  segment {segment_id} ({seg['mode']}): {len(seg['members'])} member(s) "
                     f"{', '.join(seg['members'])}")
    for dest_id, dest in report["destinations"].items():
        lines.append(f"  destination {dest_id}: holds {', '.join(dest['members']) or 'nobody'} "
                     f"(+{dest['added']} -{dest['removed']}, {dest['api_calls']} API call(s))")
    lines.append("  checkpoints: " + ", ".join(
        f"{name} {'passed' if c['success'] else 'FAILED'}" for name, c in report["checkpoints"].items()))
    return "\n".join(lines)


def run_demo(scenario: Path = DEFAULT_SCENARIO, report_path: Path | None = None) -> dict:
    scenario = Path(scenario).resolve()
    if not scenario.exists():
        raise FileNotFoundError(f"scenario file not found: {scenario}")
    state_dir = state_dir_for(scenario)
    prepare_environment(state_dir)

    from emulators import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, EmulatorFleet

    from b2b_cdp.embedded import start_embedded_warehouse, warehouse_configured

    if not warehouse_configured():
        print(f"Starting the embedded warehouse in {state_dir / 'warehouse'}", flush=True)
        start_embedded_warehouse(state_dir / "warehouse")
    with EmulatorFleet.from_scenario(scenario, state_dir=state_dir / "emulators") as fleet:
        print("Emulators: " + json.dumps(fleet.urls), flush=True)
        connect_emulators(fleet.urls, DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET)
        print(f"Running every DAG at logical date {fleet.clock.isoformat()}", flush=True)
        run_ids = run_dags(fleet.clock)
        report = build_report(scenario, fleet.clock, run_ids)
    report_path = report_path or BUILD_DIR / "demo" / "report.json"
    report_path.parent.mkdir(parents=True, exist_ok=True)
    report_path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(summary(report))
    print(f"Report: {report_path}")
    return report
