import asyncio
import json
import logging

from prometheus_client import CollectorRegistry, generate_latest

from zerotrust.pipeline import Pipeline
from zerotrust.policy.builtin import BuiltinPolicyEngine, Rule, compile_glob
from zerotrust.policy.cache import DecisionCache
from zerotrust.policy.input import InputBuilder
from zerotrust.policy.metrics import PolicyCollector
from zerotrust.policy.shadow import ShadowCandidate, ShadowPolicyEngine
from zerotrust.types import Headers, PolicyResult, Principal, RequestContext

SECRET = "s3cr3t-token-value"


class Fixed:
    def __init__(self, allow, name="cand", step_up=None, delay=0.0):
        self.name, self.allow, self.step_up, self.delay, self.calls = name, allow, step_up, delay, 0

    async def decide(self, request, principal, context=None):
        self.calls += 1
        if self.delay:
            await asyncio.sleep(self.delay)
        return PolicyResult(self.allow, "fixed", step_up=self.step_up, engine=self.name)


class Crashing:
    name = "crash"

    async def decide(self, request, principal, context=None):
        raise RuntimeError("candidate bug")


def enforced():
    return BuiltinPolicyEngine([Rule("read", (compile_glob("/**"),), frozenset({"GET"}), ("api.read",))])


def shadow(*candidates, max_pending=256):
    return ShadowPolicyEngine(enforced(), list(candidates), InputBuilder(), max_pending=max_pending)


def req(path="/x", method="GET"):
    return RequestContext(method, path, Headers([("authorization", f"Bearer {SECRET}")]))


P = Principal("alice", "iss", "jwt", frozenset({"api.read"}))


async def test_disagreement_is_counted_and_logged_with_hashed_input(caplog):
    s = shadow(ShadowCandidate.for_globs("deny-all", Fixed(False), ["/**"]))
    caplog.set_level(logging.WARNING, "zerotrust.policy.shadow")
    result = await s.decide(req(), P)
    await s.drain()
    assert result.allow and result.engine == "builtin"
    assert s.disagreements == {("deny-all", "allow", "deny"): 1}
    record = json.loads(caplog.records[-1].getMessage())
    assert record["event"] == "shadow_disagreement" and record["shadow"] == "deny-all"
    assert len(record["input_hash"]) == 32 and "principal" not in record
    assert SECRET not in caplog.text and "alice" not in caplog.text


async def test_agreement_is_not_a_disagreement():
    s = shadow(ShadowCandidate.for_globs("same", Fixed(True), ["/**"]))
    await s.decide(req(), P)
    await s.drain()
    assert not s.disagreements and s.evaluations["same"] == 1


async def test_step_up_is_its_own_outcome():
    s = shadow(ShadowCandidate.for_globs("mfa", Fixed(False, step_up={"acr_values": "mfa"}), ["/**"]))
    await s.decide(req(), None)  # enforced: deny (anonymous)
    await s.drain()
    assert s.disagreements == {("mfa", "deny", "step_up"): 1}


async def test_only_selected_routes_are_shadowed():
    cand = Fixed(False)
    s = shadow(ShadowCandidate.for_globs("admin-only", cand, ["/admin/**"]))
    await s.decide(req("/x"), P)
    await s.decide(req("/admin"), P)
    await s.decide(req("/admin/users"), P)
    await s.drain()
    assert cand.calls == 2


async def test_candidate_crash_is_swallowed_and_counted():
    s = shadow(ShadowCandidate.for_globs("broken", Crashing(), ["/**"]))
    result = await s.decide(req(), P)
    await s.drain()
    assert result.allow and s.errors["broken"] == 1


async def test_pending_tasks_are_bounded():
    slow = Fixed(False, delay=0.05)
    s = shadow(ShadowCandidate.for_globs("slow", slow, ["/**"]), max_pending=3)
    for _ in range(10):
        await s.decide(req(), P)
    assert len(s._pending) == 3 and s.dropped["slow"] == 7
    await s.drain()
    assert slow.calls == 3


async def test_responses_are_identical_with_and_without_shadow():
    class Verifier:
        kind = "fake"

        def accepts(self, credential):
            return True

        async def verify(self, credential, request):
            return Principal("alice", "iss", "jwt", frozenset({"api." + credential.value}))

    from zerotrust.credentials import AuthorizationExtractor

    def pipeline(policy):
        return Pipeline(extractors=[AuthorizationExtractor()], verifiers=[Verifier()], policy=policy)

    plain = pipeline(enforced())
    shadowed_engine = shadow(ShadowCandidate.for_globs("opposite", Fixed(False), ["/**"]),
                             ShadowCandidate.for_globs("broken", Crashing(), ["/**"]))
    shadowed = pipeline(shadowed_engine)
    for method in ("GET", "POST"):
        for auth in ((), (("authorization", "Bearer read"),), (("authorization", "Bearer write"),)):
            r = RequestContext(method, "/x", Headers(auth))
            a, b = await plain.evaluate(r), await shadowed.evaluate(r)
            assert (a.allow, a.status, a.reason, a.response_headers, a.upstream_headers) == \
                   (b.allow, b.status, b.reason, b.response_headers, b.upstream_headers)
    await shadowed_engine.drain()
    assert sum(shadowed_engine.disagreements.values()) == 1  # only the allowed GET differs
    assert shadowed_engine.errors["broken"] == 6


async def test_metrics_are_exposed_through_a_collector():
    s = ShadowPolicyEngine(DecisionCache(enforced(), InputBuilder()),
                           [ShadowCandidate.for_globs("deny-all", Fixed(False), ["/**"])], InputBuilder())
    await s.decide(req(), P)
    await s.decide(req(), P)
    await s.drain()
    registry = CollectorRegistry()
    registry.register(PolicyCollector(s))
    text = generate_latest(registry).decode()
    assert 'zerotrust_shadow_disagreements_total{candidate="deny",enforced="allow",shadow="deny-all"} 2.0' in text
    assert 'zerotrust_shadow_evaluations_total{shadow="deny-all"} 2.0' in text
    assert "zerotrust_policy_cache_hits_total 1.0" in text
    assert "zerotrust_policy_cache_misses_total 1.0" in text


async def test_aclose_cancels_pending_and_closes_candidates():
    closed = []

    class Closable(Fixed):
        async def aclose(self):
            closed.append(self.name)

    s = shadow(ShadowCandidate.for_globs("c", Closable(False, name="c", delay=10), ["/**"]))
    await s.decide(req(), P)
    await s.aclose()
    assert closed == ["c"] and not s._pending


async def test_readiness_ignores_candidates():
    class Unready(Fixed):
        async def ready(self):
            return False

    s = shadow(ShadowCandidate.for_globs("c", Unready(False), ["/**"]))
    assert await s.ready()
