"""Start every system of a scenario, one HTTP server (own port) per instance, plus the file drops."""

from __future__ import annotations

import csv
import io
import json
import shutil
import tempfile
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path

from .http import Server
from .marketo import MarketoInstance
from .persist import atomic_write_text
from .salesforce import SalesforceOrg
from .scenario import Scenario, load_scenario

DEFAULT_CLIENT_ID = "cdp-emulator-client"
DEFAULT_CLIENT_SECRET = "cdp-emulator-secret"


class EmulatorFleet:
    def __init__(self, scenario: Scenario, *, state_dir: str | Path | None = None, host: str = "127.0.0.1",
                 client_id: str = DEFAULT_CLIENT_ID, client_secret: str = DEFAULT_CLIENT_SECRET) -> None:
        self.scenario = scenario
        self.state_dir = Path(state_dir).resolve() if state_dir is not None else None
        self.host = host
        self.client_id, self.client_secret = client_id, client_secret
        self._instances: dict[str, MarketoInstance | SalesforceOrg] = {}
        self._servers: list[Server] = []
        self._urls: dict[str, str] = {}
        self._dropzone: Path | None = None
        self._temporary_dropzone = False
        self._started_at: float | None = None

    @classmethod
    def from_scenario(cls, path: str | Path, state_dir: str | Path | None = None, host: str = "127.0.0.1", *,
                      client_id: str = DEFAULT_CLIENT_ID,
                      client_secret: str = DEFAULT_CLIENT_SECRET) -> "EmulatorFleet":
        return cls(load_scenario(path), state_dir=state_dir, host=host, client_id=client_id,
                   client_secret=client_secret)

    # ------------------------------------------------------------------------------- properties

    @property
    def clock(self) -> datetime:
        """The scenario's "now" (UTC)."""
        return self.scenario.clock

    def now(self) -> datetime:
        """The emulated wall clock: the scenario clock, advancing in real time once started."""
        if self._started_at is None:
            return self.scenario.clock
        return self.scenario.clock + timedelta(seconds=time.monotonic() - self._started_at)

    @property
    def urls(self) -> dict[str, str]:
        return dict(self._urls)

    @property
    def dropzone(self) -> Path | None:
        return self._dropzone

    def instance(self, key: str) -> MarketoInstance | SalesforceOrg:
        try:
            return self._instances[key]
        except KeyError:
            raise KeyError(f"no emulated instance {key!r}; known: {', '.join(self._instances)}") from None

    @property
    def instances(self) -> dict[str, MarketoInstance | SalesforceOrg]:
        return dict(self._instances)

    # ------------------------------------------------------------------------------- lifecycle

    def start(self) -> "EmulatorFleet":
        if self._servers:
            return self
        self._started_at = time.monotonic()
        if self.state_dir is not None:
            self.state_dir.mkdir(parents=True, exist_ok=True)
            self._dropzone = self.state_dir / "dropzone"
            self._dropzone.mkdir(exist_ok=True)
        else:
            self._dropzone = Path(tempfile.mkdtemp(prefix="emulator-dropzone-")).resolve()
            self._temporary_dropzone = True
        try:
            self._write_drops()
            apps = [MarketoInstance(cfg, now=self.now, client_id=self.client_id, client_secret=self.client_secret,
                                    state_dir=self.state_dir, clock=self.scenario.clock)
                    for cfg in self.scenario.marketo]
            apps += [SalesforceOrg(cfg, client_id=self.client_id, client_secret=self.client_secret)
                     for cfg in self.scenario.salesforce]
            url_host = "127.0.0.1" if self.host in ("", "0.0.0.0") else self.host
            for app in apps:
                server = Server(app, self.host, 0)
                self._servers.append(server)
                app.base_url = f"http://{url_host}:{server.port}"
                self._instances[app.key] = app
                self._urls[app.key] = app.base_url
            for server in self._servers:
                server.start()
        except BaseException:
            self.stop()
            raise
        self._urls["dropzone"] = self._dropzone.as_uri()
        return self

    def stop(self) -> None:
        # Shut servers down in parallel: each waits up to one poll interval for its loop to notice.
        stoppers = [threading.Thread(target=server.stop) for server in self._servers]
        for stopper in stoppers:
            stopper.start()
        for stopper in stoppers:
            stopper.join()
        self._servers = []
        if self._temporary_dropzone and self._dropzone is not None:
            shutil.rmtree(self._dropzone, ignore_errors=True)
            self._temporary_dropzone = False

    def __enter__(self) -> "EmulatorFleet":
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    # ------------------------------------------------------------------------------- file drops

    def _write_drops(self) -> None:
        buffer = io.StringIO()
        writer = csv.writer(buffer)   # RFC 4180: CRLF line ends, quotes only where needed
        writer.writerow(["mdm_id", "name", "member_source_key"])
        for account in self.scenario.mdm_accounts:
            for member in account["members"]:
                writer.writerow([account["mdm_id"], account["name"] or "", member])
        atomic_write_text(self._dropzone / "mdm" / "crossref.csv", buffer.getvalue())
        if self.scenario.web_events:
            lines = "".join(json.dumps(event, separators=(",", ":")) + "\n" for event in self.scenario.web_events)
            atomic_write_text(self._dropzone / "web_events" / "events.jsonl", lines)
