"""Offline, protocol-faithful emulators of the pipeline's source and destination systems.

    with EmulatorFleet.from_scenario("include/scenarios/bodea.yaml") as fleet:
        fleet.urls   # {"marketo:111-AAA-111": "http://127.0.0.1:PORT", ..., "dropzone": "file:///..."}
"""

from .fleet import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, EmulatorFleet
from .linkedin import DEFAULT_ACCESS_TOKEN as LINKEDIN_ACCESS_TOKEN
from .scenario import Scenario, load_scenario

__all__ = ["DEFAULT_CLIENT_ID", "DEFAULT_CLIENT_SECRET", "EmulatorFleet", "LINKEDIN_ACCESS_TOKEN", "Scenario",
           "load_scenario"]
