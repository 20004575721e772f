"""The one HTTP policy every connector uses: timeouts, retries with backoff and jitter, call counts.

API-specific clients decide which answers are retryable (Marketo reports errors inside HTTP 200
bodies); this module owns how long to wait and how many times to try.
"""

from __future__ import annotations

import collections
import logging
import random
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from typing import Any, Callable

import requests

log = logging.getLogger(__name__)

RETRYABLE_STATUS = {429, 500, 502, 503, 504}


class RetryableError(Exception):
    """An answer worth trying again after a pause (rate limit, transient fault). `may_have_applied`:
    the answer does not say the call was refused (a 5xx: the service may have done the work)."""

    def __init__(self, message: str, retry_after: float | None = None, may_have_applied: bool = False):
        super().__init__(message)
        self.retry_after = retry_after
        self.may_have_applied = may_have_applied


def _surely_not_applied(exc: Exception) -> bool:
    """The service cannot have acted on the call: it was never connected to, or it said it refused it."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    return isinstance(exc, RetryableError) and not exc.may_have_applied


@dataclass
class HttpPolicy:
    connect_timeout: float = 10.0
    read_timeout: float = 120.0
    max_attempts: int = 6
    backoff_base: float = 1.0
    backoff_max: float = 60.0
    sleep: Callable[[float], None] = time.sleep
    session: requests.Session = field(default_factory=requests.Session)
    calls: int = 0
    _server_clock: tuple[datetime, float] | None = None

    @property
    def knows_server_clock(self) -> bool:
        return self._server_clock is not None

    def server_now(self) -> datetime:
        """The remote service's clock, from the Date header of its latest answer. Quota days and
        freshness are measured on the source's clock, not the warehouse's (clients ask the service
        before reading it: this machine's clock is only the fallback for a service without Date)."""
        if self._server_clock is None:
            return datetime.now(timezone.utc)
        seen, at = self._server_clock
        return seen + timedelta(seconds=time.monotonic() - at)

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Exponential backoff with full jitter; a server's Retry-After wins when longer."""
        ceiling = min(self.backoff_max, self.backoff_base * (2 ** (attempt - 1)))
        wait = random.uniform(0, ceiling)
        return max(wait, retry_after or 0.0)

    def request(self, method: str, url: str, *, check: Callable[[requests.Response], Any] | None = None,
                before_each_attempt: Callable[[], None] | None = None, idempotent: bool = True, **kwargs) -> Any:
        """Send a request, retrying transient failures; `check` turns a response into a result
        or raises RetryableError to try again. `before_each_attempt` runs before every attempt,
        retries included (a rate limiter: the service counts a retry as a call). A call that must
        not be applied twice (`idempotent=False`: an upsert that can create a second record) is sent
        again only when it surely was not applied; a timeout, a dropped connection or a 5xx is raised."""
        kwargs.setdefault("timeout", (self.connect_timeout, self.read_timeout))
        for attempt in range(1, self.max_attempts + 1):
            try:
                if before_each_attempt is not None:
                    before_each_attempt()
                self.calls += 1
                response = self.session.request(method, url, **kwargs)
                date = response.headers.get("Date")
                if date:
                    try:
                        self._server_clock = (parsedate_to_datetime(date), time.monotonic())
                    except (TypeError, ValueError):
                        pass
                if response.status_code in RETRYABLE_STATUS:
                    retry_after = response.headers.get("Retry-After")
                    raise RetryableError(f"HTTP {response.status_code} from {_path(url)}",
                                         float(retry_after) if retry_after and retry_after.isdigit() else None,
                                         may_have_applied=response.status_code != 429)
                return check(response) if check else response
            except (requests.ConnectionError, requests.Timeout, RetryableError) as exc:
                if attempt == self.max_attempts or not (idempotent or _surely_not_applied(exc)):
                    raise
                wait = self.delay(attempt, getattr(exc, "retry_after", None))
                log.warning("%s %s failed (%s); retry %d/%d in %.1fs", method, _path(url), exc,
                            attempt, self.max_attempts - 1, wait)
                self.sleep(wait)
        raise AssertionError("unreachable")


class SlidingWindowLimiter:
    """At most `calls` requests in any `seconds`-long window: waits before a call rather than
    letting the service refuse it (Marketo: 100 calls per 20 s per instance, 606 beyond). A call is
    stamped when sent, the service counts it when received, up to a request's latency later: calls
    are kept `seconds + latency_margin` apart so that a slow request never lands in the next window."""

    def __init__(self, calls: int, seconds: float, *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep, latency_margin: float = 0.5):
        self.calls, self.seconds = calls, seconds + latency_margin
        self.clock, self.sleep = clock, sleep
        self._sent: collections.deque[float] = collections.deque()
        self._lock = threading.Lock()
        self.waited = 0.0

    def acquire(self) -> None:
        with self._lock:
            while True:
                now = self.clock()
                while self._sent and now - self._sent[0] >= self.seconds:
                    self._sent.popleft()
                if len(self._sent) < self.calls:
                    self._sent.append(now)
                    return
                wait = self.seconds - (now - self._sent[0]) + 0.01
                if self.waited == 0.0 or wait > 1:
                    log.info("Rate limit: %d calls in %.1fs reached; waiting %.1fs", self.calls,
                             self.seconds, wait)
                self.waited += wait
                self.sleep(wait)


_limiters: dict[tuple, SlidingWindowLimiter] = {}
_limiters_lock = threading.Lock()


def shared_limiter(key: str, calls: int, seconds: float) -> SlidingWindowLimiter:
    """One limiter per service instance in this process, whichever client asks for it."""
    with _limiters_lock:
        return _limiters.setdefault((key, calls, seconds), SlidingWindowLimiter(calls, seconds))


def _path(url: str) -> str:
    """The URL without its query string, which may carry credentials."""
    return url.split("?", 1)[0]
