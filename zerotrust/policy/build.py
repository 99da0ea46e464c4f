"""Assemble the policy layer from ``policy:`` config: engine -> decision cache -> shadow.

Shadow sits outside the cache so candidates see every request (the enforced answer
may come from the cache; the candidate's never does).
"""

from __future__ import annotations

from collections.abc import Iterable

from ..config import OPAConfig, PolicyConfig, RegoConfig, RuleConfig
from ..interfaces import PolicyEngine
from .builtin import BuiltinPolicyEngine
from .cache import DecisionCache
from .input import InputBuilder
from .shadow import ShadowCandidate, ShadowPolicyEngine


def build_engine(kind: str, *, rules: Iterable[RuleConfig], opa: OPAConfig, rego: RegoConfig,
                 builder: InputBuilder) -> PolicyEngine:
    if kind == "builtin":
        return BuiltinPolicyEngine.from_config(list(rules))
    if kind == "opa":
        from .opa import OPAPolicyEngine

        return OPAPolicyEngine(opa.url, decision_path=opa.decision_path, timeout=opa.timeout, builder=builder)
    if kind == "rego":
        try:
            from .rego import RegoPolicyEngine
        except ImportError as exc:  # pragma: no cover - depends on the install
            from ..errors import ConfigError

            raise ConfigError("policy.engine 'rego' needs regopy: pip install 'zerotrust[rego]'") from exc
        return RegoPolicyEngine.from_paths(rego.paths, package=rego.package, builder=builder, workers=rego.workers)
    raise ValueError(f"unknown policy engine {kind!r}")


def build_policy_engine(policy: PolicyConfig, *, credential_headers: Iterable[str] = ()) -> PolicyEngine:
    """``credential_headers``: extra header names (e.g. the API-key header) never given to a policy."""
    builder = InputBuilder(policy.input_headers, forbidden=credential_headers)
    engine = build_engine(policy.engine, rules=policy.rules, opa=policy.opa, rego=policy.rego, builder=builder)
    # Built-in rules decide in ~3.4 us; a hit costs 2.4-5.9 us (docs/performance.md): not worth caching.
    if policy.cache.enabled and policy.engine != "builtin":
        engine = DecisionCache(engine, builder, ttl=policy.cache.ttl, max_entries=policy.cache.max_entries)
    if policy.shadow:
        candidates = [
            ShadowCandidate.for_globs(s.id, build_engine(s.engine, rules=s.rules, opa=s.opa or policy.opa,
                                                         rego=s.rego or policy.rego, builder=builder), s.paths)
            for s in policy.shadow
        ]
        engine = ShadowPolicyEngine(engine, candidates, builder)
    return engine
