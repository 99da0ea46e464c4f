"""API-key verification: format check, keyed-hash lookup, revocation, expiry, throttling.

Hot path (a key seen before): throttle check, checksum, one HMAC, ``PRAGMA data_version``
and a dict lookup. The cache holds rows, not decisions: it is dropped whenever any
other connection commits (the CLI revoking a key in another process), and expiry is
re-checked against the clock on every hit, so neither needs a restart or a TTL.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from ..config import Config
from ..errors import ConfigError, DependencyError, InvalidToken
from ..types import Credential, Principal, RequestContext
from .api_key_format import is_well_formed
from .api_key_pepper import PepperSource, key_digest, load_pepper, pepper_check
from .api_key_record import APIKeyRecord
from .api_key_store import APIKeyStore
from .api_key_throttle import FailureThrottle

log = logging.getLogger("zerotrust.api_key")

_DUMMY_HASH = bytes(32)  # compared against when no row matched, so unknown costs what revoked costs
_DESCRIPTIONS = {
    "malformed": "The API key is malformed",
    "unknown": "The API key is not valid",
    "revoked": "The API key has been revoked",
    "expired": "The API key has expired",
}


def _reject(why: str, detail: str) -> InvalidToken:
    return InvalidToken(_DESCRIPTIONS[why], reason=f"deny.api_key.{why}", detail=detail)


@dataclass(slots=True)
class _Entry:
    record: APIKeyRecord
    principal: Principal | None  # built on first success, so a revoked row costs what an unknown one does
    last_used: float  # last time we wrote (or the row said) last_used_at


class APIKeyVerifier:
    kind = "api_key"

    def __init__(self, *, prefix: str, database: str, pepper: bytes | PepperSource, issuer: str,
                 throttle: FailureThrottle, last_used_resolution: float = 60, cache_size: int = 10000,
                 busy_timeout: float = 0.05, reopen_interval: float = 1.0,
                 clock: Callable[[], float] = time.time):
        self.prefix = prefix
        self.database = database
        self.issuer = issuer
        self.throttle = throttle
        if isinstance(pepper, bytes):
            fixed = pepper
            self._pepper = PepperSource(lambda: fixed)
            self._pepper.value = fixed
        else:
            self._pepper = pepper
        self._pepper_check: bytes | None = None  # scrypt: computed once, not per reopen
        self._marker = prefix + "_"
        self._resolution = last_used_resolution
        self._cache_size = cache_size
        self._busy_timeout = busy_timeout
        self._reopen_interval = reopen_interval
        self._clock = clock
        self._lock = threading.Lock()  # one SQLite connection, shared by whichever thread calls
        self._cache: dict[bytes, _Entry] = {}
        self._version: int | None = None
        self._store: APIKeyStore | None = None
        self._open_error: str | None = None
        self._next_open = 0.0

    @classmethod
    def from_config(cls, config: Config, *, clock: Callable[[], float] = time.time) -> APIKeyVerifier:
        ak = config.api_keys
        if ak is None:
            raise ConfigError("api_keys is not configured")
        pepper = PepperSource(lambda: load_pepper(config))
        pepper.try_load()  # a ConfigError stops start-up; Vault being down only makes API keys 503 until it is back
        verifier = cls(prefix=ak.prefix, database=ak.database, pepper=pepper, issuer=ak.issuer,
                       throttle=FailureThrottle(ak.throttle_failures, ak.throttle_window),
                       last_used_resolution=ak.last_used_resolution, clock=clock)
        if pepper.value is not None:
            try:
                verifier._open(pepper.value)  # fail loudly at start-up (logged), keep serving 503 until it works
            except DependencyError:
                pass
        return verifier

    def accepts(self, credential: Credential) -> bool:
        if credential.kind == "api_key":
            return True
        return credential.kind == "bearer" and credential.value.startswith(self._marker)

    async def verify(self, credential: Credential, request: RequestContext) -> Principal:
        client = request.peer or "unknown"
        self.throttle.check(client)
        try:
            key = credential.value
            if not is_well_formed(self.prefix, key):
                raise _reject("malformed", f"API key from {credential.source} malformed (fp {credential.fingerprint})")
            pepper = self._pepper.value or await self._pepper.get()
            store = self._store or await asyncio.to_thread(self._open, pepper)
            return self._check(store, key_digest(pepper, key))
        except InvalidToken:
            self.throttle.failure(client)
            raise

    def _check(self, store: APIKeyStore, digest: bytes) -> Principal:
        with self._lock:
            version = store.data_version()
            if version != self._version:  # another connection committed: any cached row may be stale
                self._cache.clear()
                self._version = version
            entry = self._cache.get(digest)
            if entry is None:
                entry = self._load(store, digest)
            record = entry.record
            if record.revoked_at is not None:
                raise _reject("revoked", f"API key {record.id} is revoked")
            now = self._clock()
            if record.expires_at is not None and now >= record.expires_at:
                raise _reject("expired", f"API key {record.id} expired")
            if now - entry.last_used >= self._resolution:
                self._touch(store, entry, now)
            if entry.principal is None:
                entry.principal = Principal(
                    subject=f"apikey:{record.name}", issuer=self.issuer, kind="api_key",
                    scopes=frozenset(record.scopes), claims={"key_id": record.id, "name": record.name},
                    expires_at=record.expires_at, credential_id=record.id)
            return entry.principal

    def _load(self, store: APIKeyStore, digest: bytes) -> _Entry:
        record = store.find(digest)
        if not hmac.compare_digest(record.key_hash if record else _DUMMY_HASH, digest) or record is None:
            raise _reject("unknown", "API key not found")
        entry = _Entry(record, None, record.last_used_at or 0.0)
        if len(self._cache) >= self._cache_size:
            del self._cache[next(iter(self._cache))]  # oldest first; a miss only costs one indexed read
        self._cache[digest] = entry
        return entry

    def _touch(self, store: APIKeyStore, entry: _Entry, now: float) -> None:
        entry.last_used = now  # set first: a failing write is retried after one resolution, not per request
        try:
            store.touch(entry.record.id, now)
        except DependencyError as exc:
            log.warning("could not record last use of API key %s: %s", entry.record.id, exc.detail)

    def _open(self, pepper: bytes) -> APIKeyStore:
        """Open the database (first use, or after a failure), at most once per ``reopen_interval``."""
        with self._lock:
            if self._store is not None:
                return self._store
            if time.monotonic() < self._next_open:
                raise DependencyError(reason="error.api_key.database", detail=self._open_error)
            try:
                if self._pepper_check is None:
                    self._pepper_check = pepper_check(pepper)
                self._store = APIKeyStore.open(self.database, self._pepper_check, busy_timeout=self._busy_timeout)
            except DependencyError as exc:
                self._open_error = exc.detail
                self._next_open = time.monotonic() + self._reopen_interval
                log.error("%s", exc.detail)
                raise
            return self._store

    async def aclose(self) -> None:
        with self._lock:
            if self._store is not None:
                self._store.close()
                self._store = None
            self._cache.clear()
