"""Connections kept between transactions: reused, reset in between, never handed out broken."""

import pytest

from b2b_cdp import warehouse


def backend(sandbox=None) -> int:
    with warehouse.connect(sandbox) as conn:
        return conn.execute("SELECT pg_backend_pid()").fetchone()[0]


def test_a_connection_is_reused_with_nothing_left_of_the_last_transaction(clean_sandboxes):
    sandbox = clean_sandboxes[0]
    with warehouse.connect(sandbox) as conn:
        first = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
        conn.execute("SET statement_timeout = '1234ms'")
        conn.execute("CREATE TEMP TABLE scratch (x int)")
        conn.execute("SELECT pg_advisory_lock(42)")
    with warehouse.connect() as conn:           # no sandbox: not left in the last one's schema
        assert conn.execute("SELECT pg_backend_pid()").fetchone()[0] == first
        assert conn.execute("SHOW statement_timeout").fetchone()[0] == "0"
        assert conn.execute("SELECT to_regclass('pg_temp.scratch')").fetchone()[0] is None
        assert conn.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
                            "AND pid = pg_backend_pid()").fetchone()[0] == 0
        assert conn.execute("SELECT current_schema()").fetchone()[0] == "public"


def test_a_failed_transaction_rolls_back_and_its_connection_is_not_kept(clean_sandboxes):
    sandbox = clean_sandboxes[0]
    first = backend(sandbox)
    with pytest.raises(RuntimeError):
        with warehouse.connect(sandbox) as conn:
            assert conn.execute("SELECT pg_backend_pid()").fetchone()[0] == first
            conn.execute("CREATE TABLE half_done (x int)")
            raise RuntimeError("task failed")
    with warehouse.connect(sandbox) as conn:
        assert conn.execute("SELECT pg_backend_pid()").fetchone()[0] != first
        assert conn.execute("SELECT to_regclass('half_done')").fetchone()[0] is None


def test_a_kept_connection_the_server_dropped_is_replaced(clean_sandboxes):
    sandbox = clean_sandboxes[0]
    with warehouse.connect(sandbox) as one, warehouse.connect(sandbox) as two:    # both kept after
        pids = {c.execute("SELECT pg_backend_pid()").fetchone()[0] for c in (one, two)}
    with warehouse.connect(sandbox) as conn:
        mine = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
        (dropped,) = pids - {mine}
        assert conn.execute("SELECT pg_terminate_backend(%s)", (dropped,)).fetchone()[0]
    with warehouse.connect(sandbox) as one, warehouse.connect(sandbox) as two:
        now = {c.execute("SELECT pg_backend_pid()").fetchone()[0] for c in (one, two)}
    assert mine in now and dropped not in now


def test_statements_the_client_prepared_still_run_on_a_kept_connection(clean_sandboxes):
    sandbox = clean_sandboxes[0]
    first = backend(sandbox)
    for _ in range(3):
        with warehouse.connect(sandbox) as conn:
            assert conn.execute("SELECT pg_backend_pid()").fetchone()[0] == first
            for n in range(8):      # psycopg prepares a statement run 5 times on one connection
                assert conn.execute("SELECT %s::int + 1", (n,)).fetchone()[0] == n + 1
