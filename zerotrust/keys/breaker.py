"""A circuit breaker: after N consecutive failures, fail fast for a while, then probe.

Closed: calls pass; each dependency failure counts, any success resets the count.
Open: calls fail at once (no socket, no timeout) for ``reset_after`` seconds.
Half-open: exactly one probe call passes; its success closes the breaker, its
failure opens it again. Failing fast is what keeps a Vault outage from turning
every request into a ``timeout``-long wait and piling up worker threads.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class CircuitBreaker:
    def __init__(self, failures: int, reset_after: float, *, clock: Callable[[], float] = time.monotonic):
        self.threshold = failures
        self.reset_after = reset_after
        self._clock = clock
        self._lock = threading.Lock()
        self._failures = 0
        self._opened_at: float | None = None
        self._probing = False
        self._probe_started = 0.0

    @property
    def state(self) -> str:
        with self._lock:
            return self._state()

    def _state(self) -> str:
        if self._opened_at is None:
            return "closed"
        if self._clock() - self._opened_at < self.reset_after:
            return "open"
        return "half-open"

    def allow(self) -> bool:
        """May a call go out now? In half-open, only the first caller gets to probe."""
        with self._lock:
            state = self._state()
            if state == "closed":
                return True
            # A probe that never reported back (its thread died) must not wedge the breaker.
            stale = self._probing and self._clock() - self._probe_started > self.reset_after
            if state == "half-open" and (not self._probing or stale):
                self._probing = True
                self._probe_started = self._clock()
                return True
            return False

    def success(self) -> None:
        with self._lock:
            self._failures = 0
            self._opened_at = None
            self._probing = False

    def failure(self) -> None:
        with self._lock:
            self._failures += 1
            if self._probing or self._failures >= self.threshold:
                self._opened_at = self._clock()
            self._probing = False

    def retry_in(self) -> float:
        """Seconds until the next probe is allowed (0 when closed or half-open)."""
        with self._lock:
            if self._opened_at is None:
                return 0.0
            return max(0.0, self.reset_after - (self._clock() - self._opened_at))
