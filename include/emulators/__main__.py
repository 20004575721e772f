"""python -m emulators --scenario FILE [--state-dir DIR] [--host 127.0.0.1] [--clock-mode frozen|wall]
                       [--marketo-daily-quota N] [--marketo-export-quota-mb N] [--fault INSTANCE:FAULT[:param=value,...]]...

Prints the fleet's URLs (the instances, "dropzone" and "control") as one JSON line first, then serves
until SIGINT or SIGTERM.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading

from .faults import parse_fault_spec
from .fleet import EmulatorFleet
from .marketo import DEFAULT_DAILY_QUOTA


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m emulators", description="Serve a scenario's emulated systems.")
    parser.add_argument("--scenario", required=True, help="scenario file (YAML or JSON)")
    parser.add_argument("--state-dir", default=None, help="where state survives restarts (default: none)")
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default: 127.0.0.1)")
    parser.add_argument("--clock-mode", choices=("frozen", "wall"), default="frozen",
                        help="frozen (default): the emulated clock moves only through the control API; "
                             "wall: it runs in real time from the scenario clock")
    parser.add_argument("--marketo-daily-quota", type=int, default=DEFAULT_DAILY_QUOTA,
                        help=f"API calls per Central day per Marketo instance (default {DEFAULT_DAILY_QUOTA})")
    parser.add_argument("--marketo-export-quota-mb", type=int, default=None,
                        help="Bulk Extract bytes per Central day per Marketo instance, in MB (default 500 MiB)")
    parser.add_argument("--fault", action="append", default=[], metavar="INSTANCE:FAULT[:param=value,...]",
                        help="switch a fault on from the start, e.g. marketo:111-AAA-111:latency:seconds=0.5 "
                             "(repeatable)")
    args = parser.parse_args(argv)

    try:
        faults = [parse_fault_spec(spec) for spec in args.fault]
        fleet = EmulatorFleet.from_scenario(args.scenario, state_dir=args.state_dir, host=args.host,
                                            clock_mode=args.clock_mode,
                                            marketo_daily_quota=args.marketo_daily_quota)
    except (OSError, ValueError) as exc:
        print(f"emulators: {exc}", file=sys.stderr)
        return 2

    stopping = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopping.set())
    with fleet:
        if args.marketo_export_quota_mb is not None:
            for key in (k for k in fleet.urls if k.startswith("marketo:")):
                fleet.instance(key).exports.daily_quota_bytes = args.marketo_export_quota_mb * 1_000_000
        try:
            for key, fault, params in faults:
                fleet.inject(key, fault, **params)
        except (KeyError, ValueError) as exc:
            message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
            print(f"emulators: --fault: {message}", file=sys.stderr)
            return 2
        print(json.dumps(fleet.urls), flush=True)
        while not stopping.wait(0.5):
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
