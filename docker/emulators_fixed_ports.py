"""`python -m emulators` on fixed ports, for docker-compose.yaml (and Astro, through the host).

python docker/emulators_fixed_ports.py --port marketo:111-AAA-111=8101 [--port KEY=PORT]...
    [--public-host emulators] [every option of `python -m emulators`]

The emulators pick a free port per instance; containers need ports known in advance, because the
Airflow connections (AIRFLOW_CONN_*) are written before the emulators start. This wrapper hands each
instance the port given for its key (`control` for the control API; an instance without one keeps a
free port) and, as Salesforce returns its own base URL as `instance_url`, makes every instance
announce itself as http://<public host>:<port>: the name other containers reach it by, not the
address it binds. The emulators themselves are not changed.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "include"))

from emulators import __main__ as emulators_cli  # noqa: E402
from emulators import fleet as fleet_module  # noqa: E402
from emulators.control import ControlApp  # noqa: E402


def parse_ports(specs: list[str]) -> dict[str, int]:
    ports: dict[str, int] = {}
    for spec in specs:
        key, sep, port = spec.rpartition("=")
        if not sep or not key or not port.isdigit():
            raise ValueError(f"--port {spec!r}: expected KEY=PORT, e.g. marketo:111-AAA-111=8101")
        ports[key] = int(port)
    if len(set(ports.values())) != len(ports):
        raise ValueError(f"--port: a port is given twice: {ports}")
    return ports


def install(ports: dict[str, int], public_host: str | None) -> None:
    """Make EmulatorFleet bind `ports` and announce `public_host` (patches the fleet module only)."""
    base_server = fleet_module.Server

    class FixedPortServer(base_server):
        def __init__(self, app, host: str = "127.0.0.1", port: int = 0) -> None:
            key = "control" if isinstance(app, ControlApp) else getattr(app, "key", None)
            super().__init__(app, host, ports.get(key, port))

    fleet_module.Server = FixedPortServer
    if public_host:
        original_start = fleet_module.EmulatorFleet.start

        def start(self):
            original_start(self)
            for key, app in self.instances.items():
                port = int(self._urls[key].rsplit(":", 1)[1])
                app.base_url = self._urls[key] = f"http://{public_host}:{port}"
            port = int(self._urls["control"].rsplit(":", 1)[1])
            self._urls["control"] = f"http://{public_host}:{port}"
            return self

        fleet_module.EmulatorFleet.start = start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--port", action="append", default=[], metavar="KEY=PORT")
    parser.add_argument("--public-host", default=os.environ.get("EMULATORS_PUBLIC_HOST"))
    ours, rest = parser.parse_known_args(argv)
    try:
        ports = parse_ports(ours.port)
    except ValueError as exc:
        print(f"emulators: {exc}", file=sys.stderr)
        return 2
    install(ports, ours.public_host)
    return emulators_cli.main(rest)


if __name__ == "__main__":
    sys.exit(main())
