"""The fleet's one emulated clock: every time-based behaviour of every emulator reads it.

Frozen by default (tests are deterministic: time moves only by set() / advance()); in "wall" mode
it runs in real time from wherever it was last set.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta, timezone

from .timeutil import ensure_aware, parse_datetime

CLOCK_MODES = ("frozen", "wall")


class EmulatedClock:
    def __init__(self, start: datetime, mode: str = "frozen") -> None:
        if mode not in CLOCK_MODES:
            raise ValueError(f"clock_mode must be one of {', '.join(CLOCK_MODES)}, got {mode!r}")
        self.mode = mode
        self._lock = threading.Lock()
        self._base = ensure_aware(start).astimezone(timezone.utc)
        self._anchor = time.monotonic()
        self._created = self._anchor

    def now(self) -> datetime:
        with self._lock:
            return self._now()

    def limiter_now(self) -> datetime:
        """The time short rate windows (Marketo's 20 s) are measured in: the emulated clock, plus, while
        it is frozen, the real time elapsed since the clock was made. So advancing the clock by 20 s
        clears a window, and a client that backs off in real time recovers too, instead of waiting
        forever on a clock that never moves."""
        with self._lock:
            if self.mode == "frozen":
                return self._base + timedelta(seconds=time.monotonic() - self._created)
            return self._now()

    def _now(self) -> datetime:
        if self.mode == "frozen":
            return self._base
        return self._base + timedelta(seconds=time.monotonic() - self._anchor)

    def set(self, moment: datetime | str) -> datetime:
        if isinstance(moment, str):
            moment = parse_datetime(moment)
        if not isinstance(moment, datetime):
            raise ValueError(f"expected a datetime or an ISO-8601 string, got {moment!r}")
        with self._lock:
            self._base = ensure_aware(moment).astimezone(timezone.utc)
            self._anchor = time.monotonic()
            return self._base

    def advance(self, seconds: float) -> datetime:
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
            raise ValueError(f"advance takes a number of seconds, got {seconds!r}")
        with self._lock:
            self._base = self._now() + timedelta(seconds=seconds)
            self._anchor = time.monotonic()
            return self._base
