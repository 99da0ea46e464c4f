"""Embedded Rego: the ``policies/`` files evaluated in-process by rego-cpp (``regopy``).

The engine compiles the modules once into a bundle with one entrypoint,
``<package>/decision`` (a plain ``query`` is ~10x slower, and a rule whose value
comes only from ``default`` answers *undefined* through it). Undefined is a deny;
an evaluation error (e.g. conflicting outputs) is a :class:`DependencyError`.

Where it runs: an interpreter is not thread-safe, so each thread gets its own
(interpreter, bundle). ``workers=0`` evaluates on the event loop (~0.2 ms that
block it); ``workers=N`` uses N threads: rego-cpp releases the GIL while it
evaluates, so decisions run in parallel on several cores and the loop stays free
(docs/performance.md has both).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import threading
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from ..errors import ConfigError, DependencyError
from ..types import PolicyResult, Principal, RequestContext
from .input import InputBuilder, encode, input_hash
from .output import MalformedDecision, parse_decision, undefined_decision

log = logging.getLogger("zerotrust.policy.rego")


def load_modules(paths: Iterable[str | Path]) -> dict[str, str]:
    """Every ``*.rego`` under ``paths`` except ``*_test.rego``, by path, in a stable order."""
    modules: dict[str, str] = {}
    for root in map(Path, paths):
        if not root.exists():
            raise ConfigError(f"policy.rego.paths: {root} does not exist")
        files = [root] if root.is_file() else sorted(root.rglob("*.rego"))
        for f in files:
            if not f.name.endswith("_test.rego"):
                modules[str(f)] = f.read_text()
    if not modules:
        raise ConfigError("policy.rego.paths holds no .rego module")
    return modules


class RegoPolicyEngine:
    name = "rego"

    def __init__(self, modules: Mapping[str, str], *, package: str = "zerotrust.authz",
                 builder: InputBuilder | None = None, workers: int = 0) -> None:
        import regopy  # optional extra: zerotrust[rego]

        from . import rego_native  # uses regopy's C library directly: fail at start-up, not per request

        self._regopy, self._native = regopy, rego_native
        self.package = package
        self.entrypoint = package.replace(".", "/") + "/decision"
        self.builder = builder or InputBuilder()
        self._local = threading.local()
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="zt-rego") if workers else None
        self.errors = 0
        self.undefined = 0
        self.load(modules)

    @classmethod
    def from_paths(cls, paths: Iterable[str | Path], **kw: Any) -> RegoPolicyEngine:
        return cls(load_modules(paths), **kw)

    def load(self, modules: Mapping[str, str]) -> None:
        """(Re)load the policy. The revision changes, which empties the decision cache."""
        modules = dict(modules)
        compiled = self._compile(modules)  # raises ConfigError before anything is replaced
        self.modules = modules
        self._local.state = (modules, *compiled)  # this thread (usually the event loop's) is ready now
        digest = hashlib.sha256(json.dumps(sorted(modules.items())).encode()).hexdigest()[:12]
        self.revision = f"rego:{digest}"

    def _compile(self, modules: Mapping[str, str]) -> tuple[Any, Any]:
        interpreter = self._regopy.Interpreter()
        try:
            for name, source in modules.items():
                interpreter.add_module(name, source)
            bundle = interpreter.build(None, [self.entrypoint])
        except self._regopy.RegoError as exc:
            raise ConfigError(f"policy.rego: the policy does not compile: {str(exc)[:500]}") from None
        if not bundle.ok():
            raise ConfigError("policy.rego: the policy does not compile")
        return interpreter, bundle

    def _compiled(self) -> tuple[Any, Any]:
        state = getattr(self._local, "state", None)
        if state is None or state[0] is not self.modules:
            state = (self.modules, *self._compile(self.modules))
            self._local.state = state
        return state[1], state[2]

    def evaluate(self, document: Mapping[str, Any], ihash: str = "") -> PolicyResult:
        """One decision, synchronously, on the calling thread."""
        try:
            value = self._native.to_input(document)
        except (self._native.UnrepresentableInput, RecursionError):
            return PolicyResult(False, "input.unrepresentable", engine=self.name, revision=self.revision,
                                input_hash=ihash)
        interpreter, bundle = self._compiled()
        try:
            interpreter.set_input(value)
            out = interpreter.query_bundle_entrypoint(bundle, self.entrypoint)
        except self._regopy.RegoError as exc:
            raise self._failed(f"Rego evaluation failed: {str(exc)[:300]}") from None
        if not out.ok():
            raise self._failed(f"Rego evaluation error: {str(out)[:300]}")
        results = out.results  # parsed once by regopy
        if not results or not results[0].expressions:
            return undefined_decision(self, self.entrypoint, ihash)
        try:
            return parse_decision(results[0].expressions[0], engine=self.name, revision=self.revision,
                                  input_hash=ihash)
        except MalformedDecision as exc:
            raise self._failed(f"Rego decision is malformed: {exc}") from None

    async def decide(self, request: RequestContext, principal: Principal | None,
                     context: dict[str, Any] | None = None) -> PolicyResult:
        document = self.builder.build(request, principal, context)
        ihash = input_hash(encode(document))
        if self._pool is None:
            return self.evaluate(document, ihash)
        return await asyncio.get_running_loop().run_in_executor(self._pool, self.evaluate, document, ihash)

    def _failed(self, detail: str) -> DependencyError:
        self.errors += 1
        return DependencyError(reason="error.policy_engine", detail=detail)

    async def aclose(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
