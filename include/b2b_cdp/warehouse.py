"""The warehouse: one SQL runner, one COPY loader, numbered migrations.

The warehouse is reached only through the Airflow connection `cdp_warehouse` (PostgresHook). Every
statement lives in sql/; values are always bound parameters. Each sandbox is one schema, selected
with search_path, so the SQL files name tables without a schema and no query crosses sandboxes.
"""

from __future__ import annotations

import csv
import itertools
import json
import logging
import os
import threading
from contextlib import contextmanager
from functools import lru_cache
from typing import Any, Iterable, Iterator

import psycopg
from psycopg import sql
from psycopg.copy import LibpqWriter
from psycopg.generators import copy_to

from b2b_cdp.config import PROJECT_ROOT, Sandbox

WAREHOUSE_CONN_ID = "cdp_warehouse"
IDLE_CONNECTIONS = 4     # kept open per warehouse in each process, for the next transaction
SQL_DIR = PROJECT_ROOT / "sql"
MIGRATIONS_DIR = SQL_DIR / "migrations"

log = logging.getLogger(__name__)


@lru_cache(maxsize=None)
def sql_file(name: str) -> str:
    """The text of sql/<name>.sql."""
    path = SQL_DIR / f"{name}.sql"
    if not path.exists():
        raise FileNotFoundError(f"no SQL file {path.relative_to(PROJECT_ROOT)}")
    return path.read_text(encoding="utf-8")


def _hook():
    # Imported lazily: the provider pulls in Airflow, which plain library users may not need.
    from airflow.providers.postgres.hooks.postgres import PostgresHook

    return PostgresHook(postgres_conn_id=WAREHOUSE_CONN_ID)


class _IdleConnections:
    """Connections back from a transaction, kept for the next one (a task landing a batch runs
    several short transactions: a new connection costs a server process each time). Reset (session
    settings, temporary tables, advisory locks: sql/ops/reset_connection.sql) before being kept.
    Per process: a process forked with some keeps none of its parent's."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self._idle: dict[str, list[psycopg.Connection]] = {}

    def take(self, server: str) -> psycopg.Connection | None:
        with self._lock:
            if self._pid != os.getpid():    # forked: those sockets are the parent's
                self._pid, self._idle = os.getpid(), {}
            idle = self._idle.get(server)
            return idle.pop() if idle else None

    def give_back(self, server: str, conn: psycopg.Connection) -> None:
        try:
            conn.autocommit = True
            run(conn, "ops/reset_connection").close()
        except psycopg.Error:
            conn.close()
            return
        with self._lock:
            idle = self._idle.setdefault(server, [])
            if self._pid == os.getpid() and len(idle) < IDLE_CONNECTIONS:
                idle.append(conn)
                return
        conn.close()


_connections = _IdleConnections()


@contextmanager
def connect(sandbox: Sandbox | None = None) -> Iterator[psycopg.Connection]:
    """One transaction on the warehouse, scoped to a sandbox's schema; commits on success."""
    hook = _hook()
    server = hook.connection.get_uri()     # the pool's key: a process may be pointed elsewhere
    conn = _connections.take(server)
    if conn is not None:
        try:                                # a kept connection the server has since dropped
            conn.autocommit = False
            run(conn, "ops/probe_connection").close()
        except psycopg.Error:
            conn.close()
            conn = None
    if conn is None:
        conn = hook.get_conn()
        conn.autocommit = False
    try:
        if sandbox is not None:
            use_sandbox(conn, sandbox)
        yield conn
        conn.commit()
    except BaseException:
        try:
            conn.rollback()
        finally:
            conn.close()
        raise
    _connections.give_back(server, conn)


def use_sandbox(conn: psycopg.Connection, sandbox: Sandbox) -> None:
    """Point the connection's unqualified table names at a sandbox's schema."""
    with conn.cursor() as cur:
        cur.execute(sql.SQL("SET search_path TO {}, public").format(sql.Identifier(sandbox.schema)))


def run(conn: psycopg.Connection, name: str, params: dict[str, Any] | None = None,
        identifiers: dict[str, str | list[str]] | None = None) -> psycopg.Cursor:
    """Execute sql/<name>.sql with bound parameters; {identifiers} are quoted as SQL identifiers
    (a list becomes a comma-separated list of them)."""
    statement: Any = sql_file(name)
    if identifiers:
        statement = sql.SQL(statement).format(**{k: _identifiers(v) for k, v in identifiers.items()})
    cur = conn.cursor()
    # Without parameters psycopg sends the text as is, so a file may hold several statements.
    cur.execute(statement, params if params else None)
    return cur


def _identifiers(value: str | list[str]) -> sql.Composable:
    if isinstance(value, str):
        return sql.Identifier(value)
    return sql.SQL(", ").join(sql.Identifier(v) for v in value)


def fetch_all(conn: psycopg.Connection, name: str, params: dict[str, Any] | None = None) -> list[tuple]:
    with run(conn, name, params) as cur:
        return cur.fetchall()


def fetch_dicts(conn: psycopg.Connection, name: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """The rows of sql/<name>.sql as dicts keyed by column name."""
    with run(conn, name, params) as cur:
        columns = [c.name for c in cur.description]
        return [dict(zip(columns, row)) for row in cur.fetchall()]


class FlushingWriter(LibpqWriter):
    """COPY data sent to the server as it is written, a slice at a time. psycopg's own writers (off
    macOS) leave it in libpq's output buffer, which grows while the server reads slower than a
    download arrives; libpq then moves the buffer's unsent rest after every partial send, and that
    moving was most of a bulk landing's CPU in this process. The download does not wait on it: the
    kernel's socket buffers keep receiving while a slice is sent."""

    SLICE = 128 * 1024   # libpq takes large buffers badly (psycopg splits them likewise)

    def write(self, data) -> None:
        view = memoryview(data)
        for start in range(0, len(view), self.SLICE):
            self.connection.wait(copy_to(self._pgconn, view[start:start + self.SLICE], flush=True))


def copy_rows(conn: psycopg.Connection, table: str, columns: list[str], rows: Iterable[tuple]) -> int:
    """Stream rows into a table with COPY (never materialising them); returns the row count."""
    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(table), sql.SQL(", ").join(sql.Identifier(c) for c in columns))
    count = 0
    with conn.cursor() as cur, cur.copy(statement, writer=FlushingWriter(cur)) as copy:
        for row in rows:
            copy.write_row(row)
            count += 1
    return count


# ---------------------------------------------------------------------------- the raw lake
# One text column per source field, added when a source first brings the field; each row's batch
# number comes from the table's default (sql/raw/begin_batch.sql), the batch's id and instance live
# once in raw_batch (sql/migrations/050_raw_batch_numbers.sql), its extraction and load times once in
# ops_ingest_batch (sql/migrations/041_raw_batch_times.sql). The rows are written to <table>__rows;
# the lake's name is a view adding the source key, computed from the record's own key when read
# (sql/migrations/047_raw_source_key_on_read.sql), and the batch's id and instance.

MAX_COLUMN_BYTES = 63        # PostgreSQL's identifier length
REST_CHUNK = 1000            # records per COPY when landing parsed records
BATCH_COLUMN = "_batch"      # a raw row's batch number


def rows_table(table: str) -> str:
    """The table a raw table's rows are written to (its name in the lake is a view of it)."""
    return f"{table}__rows"


class MalformedFile(ValueError):
    """A CSV file PostgreSQL's COPY refused (e.g. a row with the wrong number of cells)."""


def raw_columns(conn: psycopg.Connection, table: str) -> list[str]:
    """The writable columns of a raw table in the connection's sandbox."""
    return [row[0] for row in fetch_all(conn, "raw/columns", {"rows": rows_table(table)})]


def ensure_columns(conn: psycopg.Connection, table: str, fields: Iterable[str],
                   known: set[str] | None = None) -> set[str]:
    """Give every field a column (in this transaction); returns the table's columns."""
    known = set(raw_columns(conn, table)) if known is None else known
    added = False
    for field in fields:
        if field.startswith("_") and field != "_parse_error":   # the flag a file's row-by-row reader sets
            raise ValueError(f"{table}: source field {field!r} starts with '_', which the lake reserves "
                             "for its own columns")
        if field in known:
            continue
        if not field or len(field.encode("utf-8")) > MAX_COLUMN_BYTES:
            raise ValueError(f"{table}: source field {field!r} cannot be a column (1 to "
                             f"{MAX_COLUMN_BYTES} bytes)")
        run(conn, "raw/add_column", identifiers={"rows": rows_table(table), "column": field}).close()
        log.info("%s: new source field %r, column added", table, field)
        known.add(field)
        added = True
    if added:
        run(conn, "raw/refresh_view", {"table": table}).close()
    return known


def _begin_batch(conn: psycopg.Connection, table: str, batch_id: str, instance: str) -> None:
    """Replace a landing batch: a re-run task first removes what its previous attempt landed."""
    run(conn, "raw/delete_batch", {"batch_id": batch_id}, identifiers={"rows": rows_table(table)}).close()
    run(conn, "raw/begin_batch", {"batch_id": batch_id, "instance": instance}).close()


def _as_text(value: Any) -> str | None:
    """A record value as its raw cell: scalars in their text form, objects and arrays as JSON."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    return json.dumps(value, separators=(",", ":"))


def land_raw(conn: psycopg.Connection, table: str, *, batch_id: str, instance: str,
             records: Iterable[dict]) -> int:
    """Land parsed records (e.g. REST pages) in a raw table as one idempotent batch.

    Re-running the same batch replaces it, so a retried task leaves the lake as one run would.
    """
    _begin_batch(conn, table, batch_id, instance)
    known, count = set(raw_columns(conn, table)), 0
    records = iter(records)
    while chunk := list(itertools.islice(records, REST_CHUNK)):
        fields = list(dict.fromkeys(field for record in chunk for field in record))
        ensure_columns(conn, table, fields, known)
        count += copy_rows(conn, rows_table(table), fields, ([_as_text(r.get(f)) for f in fields] for r in chunk))
    return count


def land_raw_csv(conn: psycopg.Connection, table: str, *, batch_id: str, instance: str,
                 chunks: Iterable[bytes], key_column: str, null_marker: str = "null") -> int:
    """Land a CSV file's bytes as one raw batch with a single COPY, without parsing rows in Python
    (`null_marker` cells become NULL: Marketo writes `null`, Salesforce leaves the cell empty).
    Raises MalformedFile, leaving the transaction usable, when COPY refuses the file."""
    chunks = iter(chunks)
    head = b""
    for chunk in chunks:
        head += chunk
        if b"\n" in head:
            break
    if not head.strip():
        return 0
    columns = next(csv.reader([head.split(b"\n", 1)[0].decode("utf-8").rstrip("\r")]))
    if key_column not in columns:
        raise MalformedFile(f"the file has no {key_column!r} column (columns: {columns})")
    ensure_columns(conn, table, columns)
    _begin_batch(conn, table, batch_id, instance)
    statement = sql.SQL("COPY {} ({}) FROM STDIN WITH (FORMAT csv, HEADER true, NULL {})").format(
        sql.Identifier(rows_table(table)), _identifiers(columns), sql.Literal(null_marker))
    try:
        with conn.transaction():   # a savepoint: a refused file leaves the outer transaction usable
            with conn.cursor() as cur:
                with cur.copy(statement, writer=FlushingWriter(cur)) as copy:
                    copy.write(head)
                    for chunk in chunks:
                        copy.write(chunk)
                return cur.rowcount
    except (psycopg.errors.BadCopyFileFormat, psycopg.errors.DataError) as exc:
        raise MalformedFile(str(exc).splitlines()[0]) from None


def replicate_batch(conn: psycopg.Connection, table: str, *, batch_id: str, instance: str,
                    source: Sandbox, target: Sandbox) -> None:
    """Copy a batch landed in one sandbox into another (leaves the connection on `target`)."""
    columns = [c for c in raw_columns(conn, table) if c != BATCH_COLUMN]   # numbered in each sandbox
    use_sandbox(conn, target)
    ensure_columns(conn, table, [c for c in columns if not c.startswith("_")])
    _begin_batch(conn, table, batch_id, instance)
    run(conn, "raw/replicate_batch", {"batch_id": batch_id}, identifiers={
        "rows": rows_table(table), "columns": columns, "source_schema": source.schema}).close()


def recreate(sandbox: Sandbox) -> list[str]:
    """Drop a sandbox's schema with everything in it and migrate it afresh (tests, benchmarks)."""
    with connect() as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(sandbox.schema)))
    return migrate(sandbox)


def migrate(sandbox: Sandbox) -> list[str]:
    """Apply the numbered migrations in sql/migrations to a sandbox's schema; returns those applied."""
    applied: list[str] = []
    with connect() as conn:
        with conn.cursor() as cur:
            # One migrator at a time per schema, whichever process gets there first.
            cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (sandbox.schema,))
            cur.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(sandbox.schema)))
            cur.execute(sql.SQL("SET LOCAL search_path TO {}, public").format(sql.Identifier(sandbox.schema)))
            cur.execute("CREATE TABLE IF NOT EXISTS schema_migrations "
                        "(version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT clock_timestamp())")
            cur.execute("SELECT version FROM schema_migrations")
            done = {row[0] for row in cur.fetchall()}
            for path in sorted(MIGRATIONS_DIR.glob("*.sql")):
                if path.stem in done:
                    continue
                cur.execute(path.read_text(encoding="utf-8"))
                cur.execute("INSERT INTO schema_migrations (version) VALUES (%s)", (path.stem,))
                applied.append(path.stem)
    if applied:
        log.info("Migrated schema %s: %s", sandbox.schema, ", ".join(applied))
    return applied
