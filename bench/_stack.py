"""What the benchmarks on the local Airflow stack (`make up`) share: the scenario on the wall clock,
waiting for the DAGs, the sources' first load, a change made at the Marketo emulator, and
nearest-rank statistics."""

from __future__ import annotations

import math
import time
from datetime import datetime, timezone
from pathlib import Path

import requests
import yaml

from _shared import ROOT

MARKETO = "marketo:111-AAA-111"
MARKETO_SOURCE = "marketo_111_aaa_111"
MEMBER_LEAD = 1001                 # p1@townsend.com's lead on 111-AAA-111
FIRST_LOAD_TIMEOUT_S = 900


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def wall_clock_scenario(work: Path, edit=None) -> Path:
    """Bodea with its clock at the wall clock (the emulators then stamp what they serve as the
    warehouse does); `edit(raw)` may change it further."""
    raw = yaml.safe_load((ROOT / "include" / "scenarios" / "bodea.yaml").read_text())
    raw["clock"] = utcnow().replace(microsecond=0).isoformat().replace("+00:00", "Z")
    if edit is not None:
        edit(raw)
    path = work / "scenario.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def wait_for_dags(api, wanted: set[str]) -> None:
    """Until the DAGs are parsed. Each DAG file's DAGs appear together, so one ingest DAG stands
    for them all (which source has which first-load DAG is decided once they are there)."""
    deadline = time.monotonic() + 300
    while True:
        parsed = api.dag_ids()
        if wanted <= parsed and any(dag_id.startswith("ingest_") for dag_id in parsed):
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"DAGs not parsed within 300 s: {sorted(wanted - parsed)}")
        time.sleep(3)


def load_sources(api, cfg, logical_date: str) -> None:
    """Each source's first load and the stitching, as `make demo` orders them, then the ingestion
    paused: a benchmark unpauses what it measures."""
    first_loads = [f"ingest_backfill__{s.id}" if f"ingest_backfill__{s.id}" in api.dag_ids()
                   else f"ingest_incremental__{s.id}" for s in cfg.sources]
    for stage in (first_loads, ["identity_stitching"]):
        runs = {}
        for dag_id in stage:
            api.unpause(dag_id)
            runs[dag_id] = api.trigger(dag_id, logical_date)
        states = api.wait_for_runs(runs, timeout=FIRST_LOAD_TIMEOUT_S)
        if set(states.values()) != {"success"}:
            raise RuntimeError(f"first load failed: {states}")
        for dag_id in stage:
            if dag_id.startswith("ingest_"):
                api.pause(dag_id)


def visit_at_source(control_url: str, url: str, lead_id: int = MEMBER_LEAD) -> datetime:
    """A page visit happens at Marketo (the emulator, on the wall clock); returns when."""
    happened_at = utcnow()
    response = requests.post(f"{control_url}/control/mutations", timeout=30, json={
        "instance": MARKETO, "action": "add_activity",
        "args": {"lead_id": lead_id, "activity_type_id": 1, "primary_attribute_value": url,
                 "attributes": [{"name": "Webpage URL", "value": url.split(".com", 1)[-1]}]}})
    response.raise_for_status()
    return happened_at


def nearest_rank(values: list[float | None], target_s: float, limit_s: float) -> dict:
    """p50/p95/max by nearest rank (with a handful of rounds p95 is the slowest or next to it)."""
    measured = sorted(v for v in values if v is not None)
    if not measured:
        return {"rounds": 0, "missed": len(values)}

    def rank(q):
        return measured[max(0, math.ceil(q * len(measured)) - 1)]

    return {"rounds": len(measured), "missed": len(values) - len(measured), "p50": rank(0.5), "p95": rank(0.95),
            "max": measured[-1], "under_target": sum(v <= target_s for v in measured),
            "under_limit": sum(v <= limit_s for v in measured)}
