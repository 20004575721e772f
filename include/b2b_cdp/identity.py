"""Identity stitching: person and account components computed set-based in the warehouse.

Persons: records sharing a normalised email or a CRM record are one person. Accounts: Marketo
companies join the CRM accounts they sync with, and the MDM joins CRM accounts across orgs. Both
use min-label propagation in SQL, one UPDATE per round, until nothing changes.
"""

from __future__ import annotations

import logging

import psycopg

from b2b_cdp import warehouse
from b2b_cdp.config import Sandbox

log = logging.getLogger(__name__)

MAX_ROUNDS = 1000


def _components(conn: psycopg.Connection, graph_sql: str, ids_sql: str) -> int:
    warehouse.run(conn, graph_sql).close()
    for round_number in range(1, MAX_ROUNDS + 1):
        with warehouse.run(conn, "identity/propagate_labels") as cur:
            if cur.rowcount == 0:
                break
    else:
        raise RuntimeError(f"{graph_sql}: labels still changing after {MAX_ROUNDS} rounds")
    warehouse.run(conn, ids_sql).close()
    return round_number


PROFILE_WINDOW_SECONDS = 600  # a source change should reach the profile within 10 minutes


def stitch(sandbox: Sandbox, run_id: str = "manual") -> dict[str, int]:
    """Rebuild the identity graph and the profiles of one sandbox in one transaction."""
    with warehouse.connect(sandbox) as conn:
        warehouse.run(conn, "identity/person_links").close()
        person_rounds = _components(conn, "identity/person_graph", "identity/assign_person_ids")
        account_rounds = _components(conn, "identity/account_graph", "identity/assign_account_ids")
        warehouse.run(conn, "identity/build_profiles").close()
        persons, accounts = warehouse.fetch_all(conn, "identity/profile_counts")[0]
        warehouse.run(conn, "identity/record_profile_freshness",
                      {"run_id": run_id, "window_s": PROFILE_WINDOW_SECONDS}).close()
    log.info("%s: %d persons (%d rounds), %d accounts (%d rounds)", sandbox.schema, persons,
             person_rounds, accounts, account_rounds)
    return {"persons": persons, "accounts": accounts}
