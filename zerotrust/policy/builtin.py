"""The built-in, zero-dependency policy engine: ordered rules, first match wins, default deny.

A rule matches on method and path glob (``*`` stays within one segment, ``**``
spans segments; a trailing ``/**`` also matches the bare prefix) and then requires
scopes, a subject, a role, or nothing at all (``anonymous``). Paths are already
normalised by the time they get here (:mod:`zerotrust.paths`).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..types import PolicyResult, Principal, RequestContext


def compile_glob(glob: str) -> re.Pattern[str]:
    out = []
    i = 0
    if glob.endswith("/**"):
        body, tail = glob[:-3], "(?:/.*)?"
    else:
        body, tail = glob, ""
    while i < len(body):
        if body.startswith("**", i):
            out.append(".*")
            i += 2
        elif body[i] == "*":
            out.append("[^/]*")
            i += 1
        else:
            out.append(re.escape(body[i]))
            i += 1
    return re.compile("".join(out) + tail + r"\Z")


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    paths: tuple[re.Pattern[str], ...]
    methods: frozenset[str] = frozenset()
    scopes: tuple[str, ...] = ()
    subjects: frozenset[str] = frozenset()
    roles: frozenset[str] = frozenset()
    anonymous: bool = False
    deny: bool = False

    @classmethod
    def from_config(cls, rc: Any) -> Rule:
        return cls(id=rc.id, paths=tuple(compile_glob(p) for p in rc.paths), methods=frozenset(rc.methods),
                   scopes=tuple(rc.scopes), subjects=frozenset(rc.subjects), roles=frozenset(rc.roles),
                   anonymous=rc.anonymous, deny=rc.deny)

    def matches(self, method: str, path: str) -> bool:
        return (not self.methods or method in self.methods) and any(p.match(path) for p in self.paths)

    def judge(self, principal: Principal | None) -> tuple[bool, str]:
        if self.deny:
            return False, f"{self.id}:deny"
        if self.anonymous:
            return True, f"{self.id}:anonymous"
        if principal is None:
            return False, f"{self.id}:unauthenticated"
        if self.subjects and principal.subject not in self.subjects:
            return False, f"{self.id}:subject"
        if self.roles and not (self.roles & principal.roles):
            return False, f"{self.id}:role"
        if not principal.has_scopes(self.scopes):
            return False, f"{self.id}:scope"
        return True, f"{self.id}:allow"


class BuiltinPolicyEngine:
    name = "builtin"

    def __init__(self, rules: Sequence[Rule], revision: str | None = None):
        self.rules = tuple(rules)
        self.revision = revision or hashlib.sha256(
            json.dumps([[r.id, sorted(r.methods), [p.pattern for p in r.paths], r.scopes, sorted(r.subjects),
                         sorted(r.roles), r.anonymous, r.deny] for r in self.rules]).encode()).hexdigest()[:12]
        self._no_rule = PolicyResult(False, "no_rule", engine=self.name, revision=self.revision)
        self._results: dict[tuple[int, str], PolicyResult] = {}  # (rule, outcome): bounded by the rules

    @classmethod
    def from_config(cls, rules: Sequence[Any]) -> BuiltinPolicyEngine:
        return cls([Rule.from_config(r) for r in rules])

    def match(self, method: str, path: str) -> Rule | None:
        for rule in self.rules:
            if rule.matches(method, path):
                return rule
        return None

    async def decide(self, request: RequestContext, principal: Principal | None,
                     context: dict[str, Any] | None = None) -> PolicyResult:
        return self.decide_sync(request.method, request.path, principal)

    def decide_sync(self, method: str, path: str, principal: Principal | None) -> PolicyResult:
        rule = self.match(method, path)
        if rule is None:
            return self._no_rule
        allow, reason = rule.judge(principal)
        # Results are immutable and few (rule x outcome): build each once, not per request.
        key = (id(rule), reason)
        result = self._results.get(key)
        if result is None:
            result = PolicyResult(allow, reason, required_scopes=rule.scopes, engine=self.name,
                                  revision=self.revision)
            self._results[key] = result
        return result
