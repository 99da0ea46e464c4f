"""A decision cache in front of any :class:`PolicyEngine`.

Key: the policy input itself (:meth:`InputBuilder.key` is equal exactly when the
input documents are, and the document has no volatile field), under the engine's
current revision and the cache generation.

An entry lives at most ``ttl`` seconds and never past the credential's expiry
(``principal.expires_at``). Everything is dropped when

* the engine's ``revision`` changes (policy reload, a new OPA bundle), checked on every call;
* :func:`bump_generation` is called: by whatever changes what a live principal means (a
  plugin that edits a credential's scopes). One counter for the whole process, so that code
  needs no reference to this object. API-key revocation and signing-key rotation do not
  call it: they fail in the verifier, before this cache (docs/policy.md says why);
* :meth:`DecisionCache.invalidate` is called on this instance (admin endpoint, tests).

Concurrent identical misses share one evaluation (single flight), keyed like the entries
under the generation and revision: a request that arrives after an invalidation never joins
an evaluation started before it. Errors are never cached.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from ..interfaces import PolicyEngine
from ..types import PolicyResult, Principal, RequestContext
from .input import InputBuilder

_generation = 0


def bump_generation() -> int:
    """Invalidate every decision cache in this process. Cheap; call it on any revocation."""
    global _generation
    _generation += 1
    return _generation


def generation() -> int:
    return _generation


class DecisionCache:
    def __init__(self, inner: PolicyEngine, builder: InputBuilder, *, ttl: float = 60, max_entries: int = 50000,
                 clock: Callable[[], float] = time.monotonic, wall: Callable[[], float] = time.time) -> None:
        self.inner = inner
        self.name = inner.name
        self.builder = builder
        self.ttl = ttl
        self.max_entries = max_entries
        self._clock, self._wall = clock, wall
        self._entries: OrderedDict[tuple[Any, ...], tuple[float, PolicyResult]] = OrderedDict()
        # (generation, local generation, revision, key): see the module docstring.
        self._inflight: dict[tuple[Any, ...], asyncio.Future[PolicyResult]] = {}
        self._generation = _generation
        self._local_generation = 0
        self._revision = getattr(inner, "revision", "")
        self.hits = self.misses = self.collapsed = self.evictions = self.invalidations = 0

    @property
    def revision(self) -> str:
        return getattr(self.inner, "revision", "")

    def invalidate(self) -> None:
        self._local_generation += 1
        self._reset()

    def _reset(self) -> None:
        self._entries.clear()
        self._generation = _generation
        self._revision = getattr(self.inner, "revision", "")
        self.invalidations += 1

    async def decide(self, request: RequestContext, principal: Principal | None,
                     context: dict[str, Any] | None = None) -> PolicyResult:
        if self._generation != _generation or self._revision != getattr(self.inner, "revision", ""):
            self._reset()
        key = self.builder.key(request, principal, context)
        entry = self._entries.get(key)
        if entry is not None:
            if entry[0] > self._clock():
                self._entries.move_to_end(key)
                self.hits += 1
                return entry[1]
            del self._entries[key]
        flight = (_generation, self._local_generation, self._revision, key)
        waiting = self._inflight.get(flight)
        if waiting is not None:
            self.collapsed += 1
            return await asyncio.shield(waiting)
        self.misses += 1
        return await self._evaluate(flight, request, principal, context)

    async def _evaluate(self, flight: tuple[Any, ...], request: RequestContext, principal: Principal | None,
                        context: dict[str, Any] | None) -> PolicyResult:
        # The evaluation is a task of its own: a cancelled first caller must not cancel it
        # for the callers that joined it.
        task = asyncio.ensure_future(self._run(flight, request, principal, context))
        task.add_done_callback(_consume)
        self._inflight[flight] = task
        return await asyncio.shield(task)

    async def _run(self, flight: tuple[Any, ...], request: RequestContext, principal: Principal | None,
                   context: dict[str, Any] | None) -> PolicyResult:
        try:
            result = await self.inner.decide(request, principal, context)
        finally:
            self._inflight.pop(flight, None)
        # Store only if nothing was invalidated meanwhile: the answer may predate it.
        if flight[:3] == (_generation, self._local_generation, getattr(self.inner, "revision", "")):
            self._store(flight[3], result, principal)
        return result

    def _store(self, key: tuple[Any, ...], result: PolicyResult, principal: Principal | None) -> None:
        ttl = self.ttl
        if principal is not None and principal.expires_at is not None:
            ttl = min(ttl, principal.expires_at - self._wall())
        if ttl <= 0:
            return
        self._entries[key] = (self._clock() + ttl, result)
        if len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)
            self.evictions += 1

    def stats(self) -> dict[str, int]:
        return {"hits": self.hits, "misses": self.misses, "collapsed": self.collapsed,
                "evictions": self.evictions, "invalidations": self.invalidations, "entries": len(self._entries)}

    async def ready(self) -> bool:
        check = getattr(self.inner, "ready", None)
        return True if check is None else bool(await check())

    async def aclose(self) -> None:
        close = getattr(self.inner, "aclose", None)
        if close is not None:
            await close()


def _consume(task: asyncio.Future[Any]) -> None:
    # Every caller may have gone (cancelled); the error is theirs, not the loop's to report.
    if not task.cancelled():
        task.exception()
