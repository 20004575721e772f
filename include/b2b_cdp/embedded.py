"""An embedded PostgreSQL for machines with no warehouse configured (pgserver ships the binaries).

Used by `make demo` and the tests only when the Airflow connection `cdp_warehouse` is not set.
Its settings (sql/embedded/settings.sql) suit a single-user warehouse written in bulk.
"""

from __future__ import annotations

import json
import logging
import os
import re
from contextlib import contextmanager
from pathlib import Path

log = logging.getLogger(__name__)

CONN_ENV = "AIRFLOW_CONN_CDP_WAREHOUSE"
_servers: dict[str, object] = {}


def warehouse_configured() -> bool:
    return bool(os.environ.get(CONN_ENV))


def _running(data_dir: Path) -> bool:
    """Whether a server already runs on data_dir (another process's, e.g. `make up`'s)."""
    from pgserver.utils import PostmasterInfo

    info = PostmasterInfo.read_from_pgdata(data_dir) if (data_dir / "postmaster.pid").exists() else None
    return info is not None and info.is_running()


@contextmanager
def _byte_order_collation(data_dir: Path):
    """A new data folder sorts text in byte order (collation C): sorts and text indexes, the bulk of
    a full stitching run, compare bytes (with abbreviated keys) instead of calling the C library
    for each comparison; the order is C.UTF-8's (code points). Character classes (lower(), upper())
    stay the machine's. initdb reads the locale from the environment; LC_ALL would override it."""
    if (data_dir / "PG_VERSION").exists():
        yield
        return
    overrides = {"LC_COLLATE": "C"}
    if os.environ.get("LC_ALL"):
        overrides.update(LC_ALL="", LANG=os.environ["LC_ALL"])
    saved = {name: os.environ.get(name) for name in overrides}
    os.environ.update(overrides)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _configure(server, *, may_restart: bool) -> None:
    """Apply the embedded settings; those that need a restart take effect now if this process
    started the server, else when it next starts (a server others use is not restarted)."""
    import psycopg
    import pgserver

    from b2b_cdp import warehouse

    with psycopg.connect(server.get_uri(), autocommit=True) as conn:
        for statement in re.sub(r"--[^\n]*", "", warehouse.sql_file("embedded/settings")).split(";"):
            if statement.strip():
                conn.execute(statement)
        warehouse.run(conn, "embedded/reload").close()
        pending = [name for (name,) in warehouse.fetch_all(conn, "embedded/pending_restart")]
    if not pending:
        return
    if not may_restart:
        log.warning("Embedded warehouse in %s: %s take effect when it next starts", server.pgdata, ", ".join(pending))
        return
    log.info("Embedded warehouse: restarting once for %s", ", ".join(pending))
    pgserver.pg_ctl(["-w", "-m", "fast", "stop"], pgdata=server.pgdata, user=server.system_user)
    server.ensure_postgres_running()


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
        shared = _running(data_dir)
        with _byte_order_collation(data_dir):
            _servers[key] = pgserver.get_server(data_dir, cleanup_mode=None if keep_running else "stop")
        _configure(_servers[key], may_restart=not shared)
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
