"""What the benchmarks share: a scratch folder, a fresh sandbox, the JSON report."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def workspace(prefix: str) -> Path:
    """A scratch folder, with Airflow and GX kept inside it (set before they are imported)."""
    work = Path(tempfile.mkdtemp(prefix=prefix))
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


def write_report(path: Path, report: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
