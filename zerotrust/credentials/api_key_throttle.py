"""Per-client failure throttling for API keys.

A client that fails ``max_failures`` times within one ``window`` gets 429 for the
rest of that window, before any work is spent on its requests. Only failures
count, so a client that keeps succeeding is never throttled. The table of
clients is capped and evicts the least recently failing one, so a flood of
source addresses costs bounded memory (at worst it lets some of them start over).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from ..errors import TooManyRequests


class FailureThrottle:
    def __init__(self, max_failures: int, window: float, *, max_clients: int = 10000,
                 clock: Callable[[], float] = time.monotonic):
        if max_failures < 1 or window <= 0 or max_clients < 1:
            raise ValueError("max_failures and max_clients must be >= 1 and window > 0")
        self.max_failures = max_failures
        self.window = window
        self.max_clients = max_clients
        self._clock = clock
        # client -> [window start, failures in this window]
        self._clients: OrderedDict[str, list[float]] = OrderedDict()
        self._lock = threading.Lock()  # failures may be recorded from several threads (sync adapters)

    def check(self, client: str) -> None:
        """Raise :class:`TooManyRequests` if ``client`` is throttled. A dict lookup on the common path."""
        entry = self._clients.get(client)
        if entry is None or entry[1] < self.max_failures:
            return
        if self._clock() - entry[0] < self.window:
            raise TooManyRequests(reason="deny.api_key.throttled", detail=f"client {client} throttled")
        self._clients.pop(client, None)  # window over: start clean

    def failure(self, client: str) -> None:
        now = self._clock()
        with self._lock:
            entry = self._clients.get(client)
            if entry is None or now - entry[0] >= self.window:
                self._clients[client] = [now, 1]
            else:
                entry[1] += 1
            self._clients.move_to_end(client)
            while len(self._clients) > self.max_clients:
                self._clients.popitem(last=False)

    def __len__(self) -> int:
        return len(self._clients)
