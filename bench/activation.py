"""Benchmark: first activation of a large audience to a Marketo static list, then a no-change re-run.

    python bench/activation.py [--members 100000] [--report build/bench/activation.json]

The emulated Marketo 111-AAA-111 gets N synthetic leads; the warehouse gets N profiles stitched from
those leads (as if ingested from the instance), all current members of the shipped segment
high_value_new_product_visitors, activated to its static list 9001
(destination marketo_111_aaa_111). The emulator keeps Marketo's real limits (100 calls per 20 s,
300 leads per call) and the client takes the instance's whole budget (rate_limit_calls 100: one
activation task, no ingestion running). Reported: members/s against the 1,500/s ceiling the rate
limit allows for list adds alone (100 calls x 300 / 20 s), the calls spent adding them (and
looking up any lead the graph does not hold), the 606 errors the instance answered, and the API calls of a re-run with no change
(must be 0). The issue's full size is --members 1000000.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from _shared import ROOT, fresh_sandbox, machine, workspace, write_report

RATE_LIMIT_CALLS, RATE_LIMIT_SECONDS, BATCH = 100, 20, 300
CEILING = RATE_LIMIT_CALLS * BATCH / RATE_LIMIT_SECONDS      # members/s if every call were a list add
DESTINATION, SEGMENT, LIST_ID = "marketo_111_aaa_111", "high_value_new_product_visitors", 9001
FIRST_LEAD_ID = 5_000_000


def seed_marketo(instance, members: int) -> None:
    """N leads in the emulated instance, as a scenario would hold them."""
    stamp = "2026-01-01T00:00:00Z"
    with instance.lock:
        for n in range(members):
            lead = {"id": FIRST_LEAD_ID + n, "email": f"member{n}@bench.example", "firstName": "Bench",
                    "lastName": str(n), "createdAt": stamp, "updatedAt": stamp}
            instance.leads.append(lead)
            instance.leads_by_id[lead["id"]] = lead


def seed_warehouse(sandbox, members: int) -> None:
    """N profiles, all current members of the segment (COPY, as stitching and segmentation leave them),
    each stitched from its lead of the instance (ingested from it, as most members of a list are)."""
    from b2b_cdp import warehouse

    entered = datetime(2026, 11, 20, tzinfo=timezone.utc)
    lead_key = "{}@111-AAA-111.Marketo".format
    with warehouse.connect(sandbox) as conn:
        warehouse.copy_rows(conn, "core_person", ["source_key", "system", "instance", "record_type", "email",
                                                  "extracted_at"],
                            ((lead_key(FIRST_LEAD_ID + n), "Marketo", "111-AAA-111", "lead", f"member{n}@bench.example",
                              entered) for n in range(members)))
        warehouse.copy_rows(conn, "identity_record_person", ["record_key", "person_id"],
                            ((lead_key(FIRST_LEAD_ID + n), f"bench-{n}") for n in range(members)))
        warehouse.copy_rows(conn, "profile_person", ["person_id", "email", "unsubscribed", "source_keys",
                                                     "identity_map"],
                            ((f"bench-{n}", f"member{n}@bench.example", False, "{}", "{}") for n in range(members)))
        warehouse.copy_rows(conn, "audience_membership", ["segment_id", "person_id", "entered_at"],
                            ((SEGMENT, f"bench-{n}", entered) for n in range(members)))


def errors_606(base_url: str) -> int:
    """606 answers counted by the instance today (its own stats endpoint)."""
    from b2b_cdp.sources.marketo import MarketoClient

    client = MarketoClient.from_connection(DESTINATION)
    body = client.call("GET", "/rest/v1/stats/errors.json")
    return sum(int(entry.get("count", 0)) for day in body.get("result", [])
               for entry in day.get("errors", []) if str(entry.get("errorCode")) == "606")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=100_000)
    parser.add_argument("--report", type=Path, default=ROOT / "build" / "bench" / "activation.json")
    args = parser.parse_args()
    work = workspace("cdp-activation-")

    from emulators import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, EmulatorFleet

    from b2b_cdp import activation
    from b2b_cdp.demo import DEFAULT_SCENARIO, connect_emulators
    from b2b_cdp.embedded import warehouse_configured

    configured = warehouse_configured()
    with EmulatorFleet.from_scenario(DEFAULT_SCENARIO, clock_mode="wall",
                                     marketo_rate_limit=RATE_LIMIT_CALLS) as fleet:
        connect_emulators(fleet.urls, DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET,
                          extra={"rate_limit_calls": RATE_LIMIT_CALLS, "rate_limit_seconds": RATE_LIMIT_SECONDS})
        instance = fleet.instance("marketo:111-AAA-111")
        sandbox = fresh_sandbox(work)
        started = time.perf_counter()
        seed_marketo(instance, args.members)
        seed_warehouse(sandbox, args.members)
        seed_seconds = time.perf_counter() - started

        calls_before = instance.call_count
        started = time.perf_counter()
        first = activation.activate_destination(DESTINATION, "bench-1")[str(LIST_ID)]
        first_seconds = time.perf_counter() - started
        answered = instance.call_count - calls_before
        held = len(instance.list_members(LIST_ID))

        started = time.perf_counter()
        again = activation.activate_destination(DESTINATION, "bench-2")[str(LIST_ID)]
        again_seconds = time.perf_counter() - started
        refused = errors_606(fleet.urls["marketo:111-AAA-111"])
        report = {
            "members": args.members,
            "rate_limit": f"{RATE_LIMIT_CALLS} calls / {RATE_LIMIT_SECONDS} s, {BATCH} per call",
            "seed_seconds": round(seed_seconds, 1),
            "first_activation": {
                "seconds": round(first_seconds, 1), "added": first["added"], "skipped": first["skipped"],
                "list_holds": held, "api_calls": first["api_calls"], "calls_answered_by_instance": answered,
                "members_per_s": round(first["added"] / first_seconds, 1),
                "ceiling_members_per_s": CEILING,
                "share_of_ceiling": round(first["added"] / first_seconds / CEILING, 3),
                "note": "members whose graph holds their lead of the instance cost a share of a list add "
                        "call only (300 per call); the others add a share of an email lookup call"},
            "errors_606": refused,
            "no_change_rerun": {"seconds": round(again_seconds, 2), "api_calls": again["api_calls"],
                                "added": again["added"], "removed": again["removed"]},
            "machine": machine(sandbox, configured),
        }
    write_report(args.report, report)
    ok = first["added"] == args.members == held and again["api_calls"] == 0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
