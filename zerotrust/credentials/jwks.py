"""One issuer's signing keys: fetched, cached, refreshed, and never mixed with another issuer's.

- Fresh for ``jwks_cache_ttl``; after that the next request refreshes in the
  background while the cached keys keep serving.
- An unknown ``kid`` triggers a refetch at most once per ``jwks_min_refetch_interval``;
  concurrent misses share one fetch (single-flight).
- A failed fetch keeps the previous keys (an IdP outage is not a revocation);
  with no keys ever fetched it is a :class:`DependencyError`.
- A successful fetch replaces the set, so a key the issuer removed is gone at once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

import httpx

from ..errors import DependencyError
from .discovery import FetchError, discover_jwks_uri, fetch_json
from .jwk import VerificationKey, parse_jwks

log = logging.getLogger("zerotrust.jwt.jwks")

MAX_KIDLESS_CANDIDATES = 3  # a token without kid is tried against at most this many keys
NO_KEYS_RETRY = 5.0  # with nothing cached, retry at most this often (fail fast in between)

Index = dict[tuple[str | None, str], tuple[VerificationKey, ...]]


def build_index(keys: list[VerificationKey]) -> Index:
    """(kid, alg) -> keys; (None, alg) -> every key for alg, for tokens without a kid."""
    index: dict[tuple[str | None, str], list[VerificationKey]] = {}
    for key in keys:
        for alg in key.algorithms:
            if key.kid is not None:
                index.setdefault((key.kid, alg), []).append(key)
            index.setdefault((None, alg), []).append(key)
    return {k: tuple(v[:MAX_KIDLESS_CANDIDATES] if k[0] is None else v) for k, v in index.items()}


class IssuerKeys:
    def __init__(self, issuer: str, client: httpx.AsyncClient, *, jwks_uri: str | None = None,
                 ttl: float = 300, min_refetch_interval: float = 30, timeout: float = 3.0,
                 clock: Callable[[], float] = time.monotonic):
        self.issuer = issuer
        self._client = client
        self._jwks_uri = jwks_uri
        self._discover = jwks_uri is None
        self.ttl = ttl
        self.min_refetch_interval = min_refetch_interval
        self.timeout = timeout
        self._clock = clock
        self._index: Index = {}
        self.idents: frozenset[tuple[object, ...]] = frozenset()
        self.loaded = False
        self.fetched_at = float("-inf")
        self.last_attempt = float("-inf")
        self.fetches = 0  # attempts, for tests and metrics
        self._inflight: asyncio.Task[bool] | None = None

    def candidates(self, kid: str | None, alg: str) -> tuple[VerificationKey, ...]:
        return self._index.get((kid, alg), ())

    @property
    def stale(self) -> bool:
        return self._clock() - self.fetched_at > self.ttl

    # -- refreshing -------------------------------------------------------------------------

    async def ensure_loaded(self) -> None:
        """Fetch the first key set or raise :class:`DependencyError` (fail closed)."""
        if not self.loaded and (self._inflight is not None  # join a fetch already under way
                                or self._clock() - self.last_attempt >= min(self.min_refetch_interval,
                                                                            NO_KEYS_RETRY)):
            await self._single_flight()
        if not self.loaded:
            raise DependencyError(reason="error.jwks", detail=f"no JWKS for issuer {self.issuer}")

    async def refetch_for_unknown_kid(self) -> bool:
        """Refetch unless one happened within ``min_refetch_interval``; True if a fetch succeeded."""
        if self._inflight is None and self._clock() - self.last_attempt < self.min_refetch_interval:
            return False
        return await self._single_flight()

    def refresh_in_background(self) -> None:
        """Called when stale: the current keys keep serving while this runs."""
        if self._inflight is None and self._clock() - self.last_attempt >= self.min_refetch_interval:
            self._start()

    def _start(self) -> asyncio.Task[bool]:
        task = asyncio.get_running_loop().create_task(self._fetch())
        self._inflight = task
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[bool]) -> None:
        if self._inflight is task:
            self._inflight = None

    async def _single_flight(self) -> bool:
        task = self._inflight or self._start()
        # shield: a cancelled request must not cancel the fetch other requests wait for
        return await asyncio.shield(task)

    async def _fetch(self) -> bool:
        self.last_attempt = self._clock()
        self.fetches += 1
        try:
            if self._jwks_uri is None:
                self._jwks_uri = await discover_jwks_uri(self._client, self.issuer, self.timeout)
            keys = parse_jwks(await fetch_json(self._client, self._jwks_uri, self.timeout), self.issuer)
        except (FetchError, ValueError) as exc:
            if self._discover:
                self._jwks_uri = None  # the issuer may have moved its keys: rediscover next time
            log.warning("issuer %s: JWKS refresh failed (%s); %s", self.issuer, exc,
                        "keeping cached keys" if self.loaded else "no keys yet")
            return False
        except Exception:  # a bug here must not kill the refresh task silently
            log.exception("issuer %s: JWKS refresh crashed", self.issuer)
            return False
        self.install(keys)
        return True

    def install(self, keys: list[VerificationKey]) -> None:
        idents = frozenset(k.ident for k in keys)
        if idents != self.idents:
            log.info("issuer %s: key set changed: %s", self.issuer, sorted(k.thumbprint[:12] for k in keys))
        self._index = build_index(keys)
        self.idents = idents
        self.loaded = True
        self.fetched_at = self._clock()

    async def aclose(self) -> None:
        task, self._inflight = self._inflight, None
        if task is not None and not task.done():
            task.cancel()
            try:
                await task
            except (asyncio.CancelledError, Exception):
                pass
