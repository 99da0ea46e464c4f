"""Shadow mode on live traffic with a real OPA candidate that deliberately disagrees.

Enforced: the built-in quickstart rules (scopes). Candidate: the RBAC example package
served by OPA (roles). Every response must be exactly what the built-in engine alone
gives, and each disagreement must be counted.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from tests.support.procs import LOOPBACK, Service, free_port, require_binary
from zerotrust.config import parse_config
from zerotrust.credentials import AuthorizationExtractor
from zerotrust.pipeline import Pipeline
from zerotrust.policy.builtin import BuiltinPolicyEngine
from zerotrust.policy.input import InputBuilder
from zerotrust.policy.metrics import PolicyCollector
from zerotrust.policy.opa import OPAPolicyEngine
from zerotrust.policy.shadow import ShadowCandidate, ShadowPolicyEngine, outcome
from zerotrust.types import Headers, Principal, RequestContext

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
TOKENS = {  # bearer token -> (scopes, roles)
    "reader": ({"api:read"}, {"viewer"}),
    "writer": ({"api:read", "api:write"}, {"viewer"}),  # scopes allow writes, the role does not
    "editor": ({"api:read"}, {"editor"}),                # the role allows writes, scopes do not
    "root": ({"api:read", "api:write", "api:admin"}, {"admin"}),
}


class TokenVerifier:
    kind = "jwt"

    def accepts(self, credential):
        return credential.value in TOKENS

    async def verify(self, credential, request):
        scopes, roles = TOKENS[credential.value]
        return Principal(credential.value, "https://idp.example.com", "jwt", frozenset(scopes), roles=frozenset(roles))


@pytest.fixture(scope="module")
def opa_url():
    opa = require_binary("opa", "go install github.com/open-policy-agent/opa@v1.22.4")
    port = free_port()
    svc = Service("opa-shadow", [opa, "run", "--server", "--addr", f"{LOOPBACK}:{port}", "--log-level", "error",
                                 str(ROOT / "policies")]).start()
    svc.wait_http(f"http://{LOOPBACK}:{port}/health")
    yield f"http://{LOOPBACK}:{port}"
    svc.stop()


def builtin():
    config = parse_config((ROOT / "examples" / "quickstart.yaml").read_text(), env={})
    return BuiltinPolicyEngine.from_config(config.policy.rules)


async def test_candidate_disagreements_are_counted_and_responses_unchanged(opa_url):
    builder = InputBuilder()
    candidate = OPAPolicyEngine(opa_url, decision_path="zerotrust/examples/rbac/decision", builder=builder)
    reference = OPAPolicyEngine(opa_url, decision_path="zerotrust/examples/rbac/decision", builder=builder)
    shadow = ShadowPolicyEngine(builtin(), [ShadowCandidate.for_globs("rbac", candidate, ["/**"])], builder)

    def pipeline(policy):
        return Pipeline(extractors=[AuthorizationExtractor()], verifiers=[TokenVerifier()], policy=policy)

    plain, shadowed = pipeline(builtin()), pipeline(shadow)
    expected = 0
    try:
        for method, path, token in itertools.product(["GET", "POST", "DELETE"], ["/orders", "/admin/users"],
                                                     [None, *TOKENS]):
            headers = Headers([("authorization", f"Bearer {token}")] if token else [])
            r = RequestContext(method, path, headers)
            a, b = await plain.evaluate(r), await shadowed.evaluate(r)
            assert (a.allow, a.status, a.reason, a.rule, a.response_headers, a.upstream_headers) == \
                   (b.allow, b.status, b.reason, b.rule, b.response_headers, b.upstream_headers)
            p = None if token is None else await TokenVerifier().verify(type("C", (), {"value": token})(), r)
            enforced = await builtin().decide(r, p)
            expected += outcome(enforced) != outcome(await reference.decide(r, p))
        await shadow.drain()
        assert expected > 0
        assert sum(shadow.disagreements.values()) == expected
        assert not shadow.errors and not shadow.dropped
        registry = CollectorRegistry()
        registry.register(PolicyCollector(shadow))
        assert "zerotrust_shadow_disagreements_total{" in generate_latest(registry).decode()
    finally:
        await shadowed.aclose()
        await reference.aclose()


async def test_candidate_outage_changes_nothing():
    dead = OPAPolicyEngine(f"http://{LOOPBACK}:{free_port()}", timeout=0.2)
    shadow = ShadowPolicyEngine(builtin(), [ShadowCandidate.for_globs("dead", dead, ["/**"])], InputBuilder())
    pipeline = Pipeline(extractors=[AuthorizationExtractor()], verifiers=[TokenVerifier()], policy=shadow)
    d = await pipeline.evaluate(RequestContext("GET", "/x", Headers([("authorization", "Bearer reader")])))
    await shadow.drain()
    assert (d.allow, d.status) == (True, 200) and shadow.errors["dead"] == 1
    await pipeline.aclose()
