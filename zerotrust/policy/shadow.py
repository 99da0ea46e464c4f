"""Shadow mode: evaluate candidate policies beside the enforced one, on live traffic.

The enforced engine answers the request; each candidate whose ``paths`` select the
request is evaluated afterwards in a background task, and a different outcome
(allow / deny / step_up) is counted and logged with the input hashed. A candidate
can never change a response: its result is not returned, its exceptions are
swallowed and counted, and when ``max_pending`` evaluations are already queued new
ones are dropped (counted) rather than letting tasks pile up behind a slow candidate.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..interfaces import PolicyEngine
from ..types import PolicyResult, Principal, RequestContext
from .builtin import compile_glob
from .input import InputBuilder, encode, input_hash

log = logging.getLogger("zerotrust.policy.shadow")

_LOGS_PER_SECOND = 10  # disagreements are all counted; only this many per second are logged


@dataclass
class ShadowCandidate:
    id: str
    engine: PolicyEngine
    paths: tuple[re.Pattern[str], ...] = (compile_glob("/**"),)

    @classmethod
    def for_globs(cls, id: str, engine: PolicyEngine, globs: Sequence[str]) -> ShadowCandidate:
        return cls(id, engine, tuple(compile_glob(g) for g in globs))

    def selects(self, path: str) -> bool:
        return any(p.match(path) for p in self.paths)


def outcome(result: PolicyResult) -> str:
    """What the client would see, coarsely: the thing a disagreement is about."""
    return "allow" if result.allow else ("step_up" if result.step_up else "deny")


class ShadowPolicyEngine:
    def __init__(self, inner: PolicyEngine, candidates: Sequence[ShadowCandidate], builder: InputBuilder, *,
                 max_pending: int = 256) -> None:
        self.inner = inner
        self.name = inner.name
        self.candidates = tuple(candidates)
        self.builder = builder
        self.max_pending = max_pending
        self._pending: set[asyncio.Task[None]] = set()
        self.evaluations: Counter[str] = Counter()
        self.disagreements: Counter[tuple[str, str, str]] = Counter()  # (shadow, enforced, candidate)
        self.errors: Counter[str] = Counter()
        self.dropped: Counter[str] = Counter()
        self._log_window = (0.0, 0)

    @property
    def revision(self) -> str:
        return getattr(self.inner, "revision", "")

    async def decide(self, request: RequestContext, principal: Principal | None,
                     context: dict[str, Any] | None = None) -> PolicyResult:
        result = await self.inner.decide(request, principal, context)
        for candidate in self.candidates:
            try:
                if candidate.selects(request.path):
                    self._schedule(candidate, request, principal, context, result)
            except Exception:  # shadowing must never touch the response
                self.errors[candidate.id] += 1
        return result

    def _schedule(self, candidate: ShadowCandidate, request: RequestContext, principal: Principal | None,
                  context: dict[str, Any] | None, enforced: PolicyResult) -> None:
        if len(self._pending) >= self.max_pending:
            self.dropped[candidate.id] += 1
            return
        task = asyncio.get_running_loop().create_task(
            self._compare(candidate, request, principal, dict(context) if context else None, enforced))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _compare(self, candidate: ShadowCandidate, request: RequestContext, principal: Principal | None,
                       context: dict[str, Any] | None, enforced: PolicyResult) -> None:
        self.evaluations[candidate.id] += 1
        try:
            shadow = await candidate.engine.decide(request, principal, context)
        except Exception as exc:
            self.errors[candidate.id] += 1
            log.debug("shadow %s failed: %s", candidate.id, type(exc).__name__)
            return
        if outcome(shadow) == outcome(enforced):
            return
        self.disagreements[(candidate.id, outcome(enforced), outcome(shadow))] += 1
        if self._may_log():
            ihash = enforced.input_hash or shadow.input_hash or input_hash(
                encode(self.builder.build(request, principal, context)))
            log.warning(json.dumps({
                "event": "shadow_disagreement", "shadow": candidate.id, "input_hash": ihash,
                "method": request.method, "path": request.path,
                "enforced": {"outcome": outcome(enforced), "reason": enforced.reason, "engine": enforced.engine,
                             "revision": enforced.revision},
                "candidate": {"outcome": outcome(shadow), "reason": shadow.reason, "engine": shadow.engine,
                              "revision": shadow.revision},
            }, separators=(",", ":")))

    def _may_log(self) -> bool:
        second = time.monotonic() // 1
        start, count = self._log_window
        if start != second:
            self._log_window = (second, 1)
            return True
        self._log_window = (start, count + 1)
        return count < _LOGS_PER_SECOND

    async def drain(self) -> None:
        """Wait for the shadow evaluations in flight (tests, graceful shutdown)."""
        while self._pending:
            await asyncio.gather(*list(self._pending), return_exceptions=True)

    def stats(self) -> dict[str, Any]:
        return {"evaluations": dict(self.evaluations), "disagreements": dict(self.disagreements),
                "errors": dict(self.errors), "dropped": dict(self.dropped)}

    async def ready(self) -> bool:
        # Candidates never answer requests, so they never make the process unready.
        check = getattr(self.inner, "ready", None)
        return True if check is None else bool(await check())

    async def aclose(self) -> None:
        for task in list(self._pending):
            task.cancel()
        await asyncio.gather(*list(self._pending), return_exceptions=True)
        for part in (self.inner, *(c.engine for c in self.candidates)):
            close = getattr(part, "aclose", None)
            if close is not None:
                await close()
