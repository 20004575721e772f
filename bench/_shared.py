"""What the benchmarks share: a scratch folder, a fresh sandbox, the machine, the JSON report."""

from __future__ import annotations

import atexit
import json
import os
import platform
import shutil
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def workspace(prefix: str) -> Path:
    """A scratch folder, with Airflow and GX kept inside it (set before they are imported), removed
    when the benchmark exits (a full-size run leaves gigabytes: its warehouse, files, exports);
    CDP_BENCH_KEEP=1 keeps it."""
    work = Path(tempfile.mkdtemp(prefix=prefix))
    if not os.environ.get("CDP_BENCH_KEEP"):
        # Registered first, so it runs last: after the embedded warehouse has stopped.
        atexit.register(shutil.rmtree, work, ignore_errors=True)
    os.environ.setdefault("AIRFLOW_HOME", str(work / "airflow"))
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    return work


def fresh_sandbox(work: Path):
    """The configuration's first sandbox, empty, on the configured or an embedded warehouse."""
    from b2b_cdp import warehouse
    from b2b_cdp.config import load_config
    from b2b_cdp.embedded import start_embedded_warehouse, warehouse_configured

    if not warehouse_configured():
        start_embedded_warehouse(work / "warehouse")
    sandbox = load_config().sandboxes()[0]
    warehouse.recreate(sandbox)
    return sandbox


def settle(sandbox) -> None:
    """Let a timed run start on a quiet server: the tables vacuumed (autovacuum would otherwise work
    through the rows just written while the run is timed) and their dirty pages written out by a
    checkpoint (else the run pays for writing out what came before it)."""
    from b2b_cdp import warehouse

    with warehouse.connect(sandbox) as conn:
        conn.commit()
        conn.autocommit = True
        conn.execute("VACUUM (ANALYZE)")
        conn.execute("CHECKPOINT")


def write_report(path: Path, report: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


def machine(sandbox, configured: bool) -> dict:
    """The machine and PostgreSQL settings a report's figures were measured on."""
    from b2b_cdp import warehouse

    info = {"cores": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()}
    try:
        with open("/proc/meminfo") as handle:
            info["memory_gib"] = round(int(handle.readline().split()[1]) / 2**20, 1)
    except OSError:
        pass
    with warehouse.connect(sandbox) as conn:
        info["postgresql"] = {name: conn.execute(f"SHOW {name}").fetchone()[0] for name in (
            "server_version", "shared_buffers", "work_mem", "maintenance_work_mem", "max_parallel_workers_per_gather",
            "wal_level", "max_wal_size", "checkpoint_timeout")}
    info["postgresql"]["warehouse"] = "configured cdp_warehouse" if configured else "embedded (pgserver)"
    return info
