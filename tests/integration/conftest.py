"""Fixtures for the integration tests."""

from __future__ import annotations

import pytest

from emulators import EmulatorFleet
from tests.integration.emulator_clients import BODEA


@pytest.fixture
def fleet():
    """The Bodea fleet on its frozen clock, nothing persisted (test modules may define their own)."""
    with EmulatorFleet.from_scenario(BODEA) as running:
        yield running
