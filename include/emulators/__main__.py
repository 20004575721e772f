"""python -m emulators --scenario FILE [--state-dir DIR] [--host 127.0.0.1]

Prints the fleet's URLs as one JSON line first, then serves until SIGINT or SIGTERM.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading

from .fleet import EmulatorFleet


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m emulators", description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", required=True, help="scenario file (YAML or JSON)")
    parser.add_argument("--state-dir", default=None, help="where state survives restarts (default: none)")
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default: 127.0.0.1)")
    args = parser.parse_args(argv)

    try:
        fleet = EmulatorFleet.from_scenario(args.scenario, state_dir=args.state_dir, host=args.host)
    except (OSError, ValueError) as exc:
        print(f"emulators: {exc}", file=sys.stderr)
        return 2

    stopping = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopping.set())
    with fleet:
        print(json.dumps(fleet.urls), flush=True)
        while not stopping.wait(0.5):
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
