"""Start every system of a scenario, one HTTP server (own port) per instance, plus the file drops."""

from __future__ import annotations

import csv
import io
import json
import shutil
import tempfile
import threading
from datetime import datetime
from pathlib import Path

from . import faults as fault_catalog
from .clock import EmulatedClock
from .control import ControlApp
from .http import Server
from .linkedin import DEFAULT_ACCESS_TOKEN as LINKEDIN_ACCESS_TOKEN, READY_AFTER_SECONDS, LinkedInAds
from .marketo import DEFAULT_DAILY_QUOTA, RATE_LIMIT_CALLS, MarketoInstance
from .persist import atomic_write_text
from .salesforce import SalesforceOrg
from .scenario import Scenario, load_scenario
from .timeutil import format_salesforce

DEFAULT_CLIENT_ID = "cdp-emulator-client"
DEFAULT_CLIENT_SECRET = "cdp-emulator-secret"


class EmulatorFleet:
    def __init__(self, scenario: Scenario, *, state_dir: str | Path | None = None, host: str = "127.0.0.1",
                 client_id: str = DEFAULT_CLIENT_ID, client_secret: str = DEFAULT_CLIENT_SECRET,
                 clock_mode: str = "frozen", marketo_daily_quota: int = DEFAULT_DAILY_QUOTA,
                 marketo_rate_limit: int | None = RATE_LIMIT_CALLS,
                 linkedin_ready_after_seconds: float = READY_AFTER_SECONDS) -> None:
        self.scenario = scenario
        self.linkedin_ready_after_seconds = linkedin_ready_after_seconds
        self._clock = EmulatedClock(scenario.clock, clock_mode)
        self.marketo_daily_quota = marketo_daily_quota
        self.marketo_rate_limit = marketo_rate_limit
        self.fault_registry = fault_catalog.FaultRegistry()
        self.state_dir = Path(state_dir).resolve() if state_dir is not None else None
        self.host = host
        self.client_id, self.client_secret = client_id, client_secret
        self._instances: dict[str, MarketoInstance | SalesforceOrg | LinkedInAds] = {}
        self._servers: list[Server] = []
        self._urls: dict[str, str] = {}
        self._dropzone: Path | None = None
        self._temporary_dropzone = False

    @classmethod
    def from_scenario(cls, path: str | Path, state_dir: str | Path | None = None, host: str = "127.0.0.1", *,
                      client_id: str = DEFAULT_CLIENT_ID, client_secret: str = DEFAULT_CLIENT_SECRET,
                      clock_mode: str = "frozen", marketo_daily_quota: int = DEFAULT_DAILY_QUOTA,
                      marketo_rate_limit: int | None = RATE_LIMIT_CALLS,
                      linkedin_ready_after_seconds: float = READY_AFTER_SECONDS) -> "EmulatorFleet":
        return cls(load_scenario(path), state_dir=state_dir, host=host, client_id=client_id,
                   client_secret=client_secret, clock_mode=clock_mode, marketo_daily_quota=marketo_daily_quota,
                   marketo_rate_limit=marketo_rate_limit, linkedin_ready_after_seconds=linkedin_ready_after_seconds)

    # ------------------------------------------------------------------------------- properties

    @property
    def clock(self) -> datetime:
        """The scenario's "now" (UTC)."""
        return self.scenario.clock

    def now(self) -> datetime:
        """The emulated clock (UTC): starts at the scenario clock; frozen unless clock_mode="wall"."""
        return self._clock.now()

    @property
    def clock_mode(self) -> str:
        return self._clock.mode

    def set_clock(self, moment: datetime | str) -> datetime:
        """Jump the emulated clock to `moment` (naive = UTC); returns the new now."""
        return self._clock.set(moment)

    def advance(self, seconds: float) -> datetime:
        """Move the emulated clock on by `seconds` (may be negative); returns the new now."""
        return self._clock.advance(seconds)

    # ------------------------------------------------------------------------------- faults

    def inject(self, instance_key: str, fault: str, **params) -> dict:
        """Switch a fault on for one instance (names and parameters: faults.FAULTS); returns its entry."""
        instance = self.instance(instance_key)
        full = fault_catalog.validate(fault, params)
        if fault == "token_expiry":
            instance.expire_tokens()
        elif fault == "field_renamed":
            instance.rename_field(full["object"], full["old"], full["new"])
        return self.fault_registry.add(instance_key, fault, full, format_salesforce(self.now()))

    def faults(self) -> list[dict]:
        """The faults in force (counted ones disappear once used up)."""
        return self.fault_registry.list()

    def clear_faults(self, instance_key: str | None = None) -> int:
        """Switch every fault off (of one instance, or all); a field_renamed is renamed back."""
        if instance_key is not None:
            self.instance(instance_key)
        removed = self.fault_registry.remove(instance_key)
        for entry in reversed(removed):
            if entry["fault"] == "field_renamed":
                params = entry["params"]
                try:
                    self.instance(entry["instance"]).rename_field(params["object"], params["new"], params["old"])
                except (KeyError, ValueError):
                    pass
        return len(removed)

    # ------------------------------------------------------------------------------- mutations

    def mutate(self, instance_key: str, action: str, **args) -> dict:
        """A mutation by name: Marketo upsert_lead / delete_lead / add_activity, Salesforce upsert_record /
        delete_record / commit_late (the same methods exist on the instance objects)."""
        return self.instance(instance_key).mutate(action, args)

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
                                    state_dir=self.state_dir, clock=self.scenario.clock, faults=self.fault_registry,
                                    daily_quota=self.marketo_daily_quota, limiter_now=self._clock.limiter_now,
                                    rate_limit_calls=self.marketo_rate_limit)
                    for cfg in self.scenario.marketo]
            apps += [SalesforceOrg(cfg, client_id=self.client_id, client_secret=self.client_secret, now=self.now,
                                   faults=self.fault_registry, state_dir=self.state_dir)
                     for cfg in self.scenario.salesforce]
            # One LinkedIn Marketing API (Matched Audiences), whatever the scenario: a destination only.
            apps.append(LinkedInAds(access_token=LINKEDIN_ACCESS_TOKEN, faults=self.fault_registry, now=self.now,
                                    ready_after_seconds=self.linkedin_ready_after_seconds))
            url_host = "127.0.0.1" if self.host in ("", "0.0.0.0") else self.host
            for app in apps:
                server = Server(app, self.host, 0)
                self._servers.append(server)
                app.base_url = f"http://{url_host}:{server.port}"
                self._instances[app.key] = app
                self._urls[app.key] = app.base_url
            control = Server(ControlApp(self), self.host, 0)
            self._servers.append(control)
            self._urls["control"] = f"http://{url_host}:{control.port}"
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
        for app in self._instances.values():
            if isinstance(app, MarketoInstance):
                app.close()
        self.fault_registry.remove()
        if self._temporary_dropzone and self._dropzone is not None:
            shutil.rmtree(self._dropzone, ignore_errors=True)
            self._temporary_dropzone = False

    def __enter__(self) -> "EmulatorFleet":
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    # ------------------------------------------------------------------------------- file drops

    def write_mdm_drop(self, accounts: list[dict]) -> None:
        """The MDM's next cross-reference drop (accounts as in the scenario's `mdm.accounts`): it
        replaces the file in the drop zone, as a new export from the MDM would."""
        # The URN column only when some account has one: drops without URNs stay as they were.
        with_urn = any(account.get("linkedin_organization_urn") for account in accounts)
        buffer = io.StringIO()
        writer = csv.writer(buffer)   # RFC 4180: CRLF line ends, quotes only where needed
        writer.writerow(["mdm_id", "name", "member_source_key"] + ["linkedin_organization_urn"] * with_urn)
        for account in accounts:
            urn = [account.get("linkedin_organization_urn") or ""] * with_urn
            for member in account["members"]:
                writer.writerow([account["mdm_id"], account["name"] or "", member] + urn)
        atomic_write_text(self._dropzone / "mdm" / "crossref.csv", buffer.getvalue())

    def _write_drops(self) -> None:
        self.write_mdm_drop(self.scenario.mdm_accounts)
        if self.scenario.web_events:
            lines = "".join(json.dumps(event, separators=(",", ":")) + "\n" for event in self.scenario.web_events)
            atomic_write_text(self._dropzone / "web_events" / "events.jsonl", lines)
