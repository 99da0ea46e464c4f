"""In-memory key caches for envelope and deterministic encryption, bounded by time, uses and size.

A cached data key saves a Transit round trip (~1 ms) per document; the bounds
limit what one leaked process image or one key holds: ``ttl`` seconds, at most
``max_uses`` encryptions (far below the 2**32 random-nonce limit of AES-GCM), and
an LRU cap on the number of entries. The clock is injectable for tests.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

V = TypeVar("V")
Clock = Callable[[], float]


@dataclass(slots=True)
class DataKey:
    """A data key for encryption: the AEAD object, its wrapped form, the Transit key version."""

    aead: AESGCM = field(repr=False)
    wrapped: bytes
    version: int
    expires: float
    uses_left: int


class DataKeyCache:
    """The current encryption data key per (key, context) slot; a new one replaces it when spent.

    Per-record contexts make one slot per record, so the slots are capped (``max_entries``)
    and expired keys are dropped on every call, not only when their own slot asks again.
    Slots stay in install order, which with one ``ttl`` is expiry order: the expired ones
    are always at the front, and the one evicted for room is the next to expire anyway.
    """

    def __init__(self, ttl: float, max_uses: int, clock: Clock = time.monotonic, max_entries: int = 1024):
        self.ttl, self.max_uses, self.clock, self.max_entries = ttl, max_uses, clock, max_entries
        self._slots: OrderedDict[Hashable, DataKey] = OrderedDict()
        self._lock = threading.Lock()

    def _purge(self) -> None:
        now = self.clock()
        while self._slots and next(iter(self._slots.values())).expires <= now:
            self._slots.popitem(last=False)

    def reserve(self, slot: Hashable, wanted: int) -> tuple[DataKey, int] | None:
        """Take up to ``wanted`` uses of the slot's key; ``None`` when it is missing, expired or spent."""
        with self._lock:
            self._purge()
            key = self._slots.get(slot)
            if key is None:
                return None
            if key.uses_left <= 0:
                del self._slots[slot]
                return None
            granted = min(wanted, key.uses_left)
            key.uses_left -= granted
            return key, granted

    def install(self, slot: Hashable, plaintext: bytes, wrapped: bytes, version: int) -> DataKey:
        """Cache a freshly generated key. Its uses are granted by :meth:`reserve`, like any other."""
        key = DataKey(AESGCM(plaintext), wrapped, version, self.clock() + self.ttl, self.max_uses)
        with self._lock:
            self._purge()
            self._slots.pop(slot, None)  # re-inserted at the end: install order stays expiry order
            self._slots[slot] = key
            while len(self._slots) > self.max_entries:
                self._slots.popitem(last=False)
        return key

    def clear(self) -> None:
        with self._lock:
            self._slots.clear()

    def __len__(self) -> int:
        return len(self._slots)


class TTLCache(Generic[V]):
    """A small LRU whose entries also expire; used for unwrapped keys and key versions."""

    def __init__(self, ttl: float, max_entries: int = 1024, clock: Clock = time.monotonic):
        self.ttl, self.max_entries, self.clock = ttl, max_entries, clock
        self._items: OrderedDict[Hashable, tuple[float, V]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, k: Hashable) -> V | None:
        with self._lock:
            item = self._items.get(k)
            if item is None:
                return None
            if self.clock() >= item[0]:
                del self._items[k]
                return None
            self._items.move_to_end(k)
            return item[1]

    def put(self, k: Hashable, value: V) -> V:
        with self._lock:
            self._items[k] = (self.clock() + self.ttl, value)
            self._items.move_to_end(k)
            while len(self._items) > self.max_entries:
                self._items.popitem(last=False)
        return value

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def __len__(self) -> int:
        return len(self._items)
