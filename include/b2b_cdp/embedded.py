"""An embedded PostgreSQL for machines with no warehouse configured (pgserver ships the binaries).

Used by `make demo` and the tests only when the Airflow connection `cdp_warehouse` is not set.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)

CONN_ENV = "AIRFLOW_CONN_CDP_WAREHOUSE"
_servers: dict[str, object] = {}


def warehouse_configured() -> bool:
    return bool(os.environ.get(CONN_ENV))


def start_embedded_warehouse(data_dir: Path, *, keep_running: bool = False) -> str:
    """Start (or reuse) PostgreSQL in data_dir and point `cdp_warehouse` at it; returns the socket dir."""
    import pgserver

    # pgserver narrates every pg_ctl call at INFO, including from its exit hook after logging
    # has shut down; its warnings are what matter.
    logging.getLogger("pgserver").setLevel(logging.WARNING)
    data_dir = Path(data_dir).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    key = str(data_dir)
    if key not in _servers:
        _servers[key] = pgserver.get_server(data_dir, cleanup_mode=None if keep_running else "stop")
    server = _servers[key]
    socket_dir = server.get_uri().split("host=", 1)[1]
    os.environ[CONN_ENV] = json.dumps({
        "conn_type": "postgres", "host": socket_dir, "login": "postgres",
        "schema": "postgres", "port": 5432,
    })
    log.info("Embedded warehouse running in %s", data_dir)
    return socket_dir


def stop_embedded_warehouses() -> None:
    for server in _servers.values():
        server.cleanup()
    _servers.clear()
