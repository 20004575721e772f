"""Shared fixtures: an isolated Airflow home, the warehouse (embedded unless configured) and the
emulators on the Bodea scenario, reached the way tasks reach them (Airflow connections)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]
BODEA = PROJECT_ROOT / "include" / "scenarios" / "bodea.yaml"

# Before anything imports Airflow: a throw-away home, no examples, no telemetry.
_AIRFLOW_HOME = tempfile.mkdtemp(prefix="cdp-test-airflow-")
os.environ["AIRFLOW_HOME"] = _AIRFLOW_HOME
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("AIRFLOW__CORE__DAGS_FOLDER", str(PROJECT_ROOT / "dags"))
os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
os.environ.setdefault("CDP_DEADLINE_ALERTS", "off")
os.environ.setdefault("CDP_DROPZONE", f"file://{_AIRFLOW_HOME}/dropzone")


@pytest.fixture(scope="session")
def warehouse_conn():
    """The warehouse for the whole session: the configured `cdp_warehouse`, else an embedded one."""
    from b2b_cdp.embedded import start_embedded_warehouse, stop_embedded_warehouses, warehouse_configured

    started = False
    if not warehouse_configured():
        start_embedded_warehouse(Path(tempfile.mkdtemp(prefix="cdp-test-pg-")))
        started = True
    yield os.environ["AIRFLOW_CONN_CDP_WAREHOUSE"]
    if started:
        stop_embedded_warehouses()


@pytest.fixture
def clean_sandboxes(warehouse_conn):
    """Every sandbox schema of the default configuration, dropped and migrated afresh."""
    from b2b_cdp import warehouse
    from b2b_cdp.config import load_config

    sandboxes = load_config().sandboxes()
    for sandbox in sandboxes:
        warehouse.recreate(sandbox)
    return sandboxes


@pytest.fixture
def bodea_fleet(tmp_path, monkeypatch):
    """The emulators on the Bodea scenario, with the configuration's connections pointing at them."""
    from emulators import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, EmulatorFleet

    from b2b_cdp.demo import connect_emulators

    # Stage tests are about data, not throttling: the rate limit has tests of its own.
    with EmulatorFleet.from_scenario(BODEA, state_dir=tmp_path / "emulators", marketo_rate_limit=None) as fleet:
        monkeypatch.setenv("CDP_DROPZONE", fleet.urls["dropzone"])
        saved = {k: v for k, v in os.environ.items() if k.startswith("AIRFLOW_CONN_") and k != "AIRFLOW_CONN_CDP_WAREHOUSE"}
        connect_emulators(fleet.urls, DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, extra={"rate_limit_calls": 100_000})
        yield fleet
        for key in [k for k in os.environ if k.startswith("AIRFLOW_CONN_") and k != "AIRFLOW_CONN_CDP_WAREHOUSE"]:
            if key not in saved:
                del os.environ[key]
