"""A real OPA (``opa run --server policies/``) against the built-in engine and embedded Rego.

The same grid of requests gets the same decisions from all three; OPA stopped
mid-run means 503 through the Pipeline (which keeps serving) and decisions resume
once it is back, with no restart of anything on our side.
"""

from __future__ import annotations

import itertools
import subprocess
from pathlib import Path

import pytest

from tests.support.procs import LOOPBACK, Service, free_port, require_binary
from zerotrust.config import parse_config
from zerotrust.credentials import AuthorizationExtractor
from zerotrust.pipeline import Pipeline
from zerotrust.policy.builtin import BuiltinPolicyEngine
from zerotrust.policy.input import InputBuilder
from zerotrust.policy.opa import OPAPolicyEngine
from zerotrust.types import Headers, Principal, RequestContext

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
POLICIES = ROOT / "policies"
METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
PATHS = ["/", "/x", "/x/y", "/admin", "/admin/", "/admin/x", "/admin/x/y", "/administrator", "/a/admin"]
SCOPES = [None, (), ("api:read",), ("api:write",), ("api:admin",), ("api:read", "api:admin"),
          ("api:write", "api:admin"), ("api:read", "api:write"), ("api:read", "api:write", "api:admin"),
          ("api:readx", "api:admin")]


def start_opa(port: int) -> Service:
    opa = require_binary("opa", "go install github.com/open-policy-agent/opa@v1.22.4")
    svc = Service("opa", [opa, "run", "--server", "--addr", f"{LOOPBACK}:{port}", "--log-level", "error",
                          str(POLICIES)]).start()
    svc.wait_http(f"http://{LOOPBACK}:{port}/health")
    return svc


@pytest.fixture(scope="module")
def opa_url():
    port = free_port()
    svc = start_opa(port)
    yield f"http://{LOOPBACK}:{port}"
    svc.stop()


def principal(scopes, **kw):
    return None if scopes is None else Principal("alice", "https://idp.example.com", "jwt", frozenset(scopes), **kw)


def test_opa_test_passes():
    opa = require_binary("opa", "go install github.com/open-policy-agent/opa@v1.22.4")
    run = subprocess.run([opa, "test", str(POLICIES)], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "PASS" in run.stdout and "FAIL" not in run.stdout


async def test_the_same_grid_gets_the_same_decisions_everywhere(opa_url):
    pytest.importorskip("regopy")
    from zerotrust.policy.rego import RegoPolicyEngine

    config = parse_config((ROOT / "examples" / "quickstart.yaml").read_text(), env={})
    builtin = BuiltinPolicyEngine.from_config(config.policy.rules)
    builder = InputBuilder(["user-agent", "x-tenant-id"])
    opa = OPAPolicyEngine(opa_url, builder=builder)  # the default decision_path, nothing else configured
    rego = RegoPolicyEngine.from_paths([POLICIES], builder=builder)
    seen = set()
    try:
        for method, path, scopes in itertools.product(METHODS, PATHS, SCOPES):
            r = RequestContext(method, path, Headers([("user-agent", "grid"), ("authorization", "Bearer x")]))
            p = principal(scopes)
            answers = [(x.allow, x.reason, x.required_scopes)
                       for x in (await builtin.decide(r, p), await opa.decide(r, p), await rego.decide(r, p))]
            assert answers[0] == answers[1] == answers[2], (method, path, scopes, answers)
            seen.add(answers[0][0:2])
    finally:
        await opa.aclose()
    # the grid covers allows and every kind of deny
    reasons = {reason.split(":")[1] for _, reason in seen}
    assert reasons == {"allow", "scope", "unauthenticated"} and {a for a, _ in seen} == {True, False}


EXAMPLE_PRINCIPALS = [
    None,
    Principal("bob", "i", "jwt", roles=frozenset({"viewer"})),
    Principal("bob", "i", "jwt", roles=frozenset({"editor", "admin"})),
    Principal("bob", "i", "jwt", roles=frozenset({"auditor"}), tenant="acme"),
    Principal("carol", "i", "jwt", claims={"department": "sales", "iat": 1000}, auth_time=900, tenant="acme"),
    Principal("carol", "i", "jwt", claims={"department": "sales", "iat": 1000}, auth_time=900,
              acr="urn:zerotrust:acr:mfa", tenant="globex"),
    Principal("carol", "i", "jwt", claims={"department": "hr", "iat": 1000}, acr="urn:zerotrust:acr:mfa"),
]
EXAMPLE_REQUESTS = [(m, p, h, ctx) for m, p, h, ctx in itertools.product(
    ["GET", "POST"],
    ["/orders", "/admin/users", "/audit/log", "/departments/sales/q3", "/departments/hr/pay", "/tenants/acme/x",
     "/tenants/globex/x"],
    [(), (("x-tenant-id", "acme"),)],
    [None, {"risk_score": 0.9}, {"risk_score": 0.1}],
)]


@pytest.mark.parametrize("package", ["zerotrust.examples.rbac", "zerotrust.examples.abac",
                                     "zerotrust.examples.tenant"])
async def test_example_packages_agree_between_opa_and_rego(opa_url, package):
    pytest.importorskip("regopy")
    from zerotrust.policy.rego import RegoPolicyEngine

    builder = InputBuilder(["x-tenant-id"])
    opa = OPAPolicyEngine(opa_url, decision_path=package.replace(".", "/") + "/decision", builder=builder)
    rego = RegoPolicyEngine.from_paths([POLICIES], package=package, builder=builder)
    allowed = 0
    try:
        for (method, path, headers, ctx), p in itertools.product(EXAMPLE_REQUESTS, EXAMPLE_PRINCIPALS):
            r = RequestContext(method, path, Headers(headers))
            x, y = await opa.decide(r, p, ctx), await rego.decide(r, p, ctx)
            assert (x.allow, x.reason, x.headers, x.step_up, x.required_scopes, x.status) == \
                   (y.allow, y.reason, y.headers, y.step_up, y.required_scopes, y.status), (method, path, p, ctx)
            assert x.input_hash == y.input_hash  # one input document, whichever engine
            allowed += x.allow
    finally:
        await opa.aclose()
    assert 0 < allowed < len(EXAMPLE_REQUESTS) * len(EXAMPLE_PRINCIPALS)


class TokenVerifier:
    """Bearer 'read' -> a principal with api:read, etc. (the JWT verifier has its own tests)."""

    kind = "jwt"

    def accepts(self, credential):
        return True

    async def verify(self, credential, request):
        return Principal("alice", "https://idp.example.com", "jwt",
                         frozenset(f"api:{s}" for s in credential.value.split(".")))


async def test_opa_outage_is_503_and_decisions_resume_when_it_is_back():
    port = free_port()
    svc = start_opa(port)
    engine = OPAPolicyEngine(f"http://{LOOPBACK}:{port}", timeout=0.5)
    pipeline = Pipeline(extractors=[AuthorizationExtractor()], verifiers=[TokenVerifier()], policy=engine)
    read = RequestContext("GET", "/x", Headers([("authorization", "Bearer read")]))
    write = RequestContext("POST", "/x", Headers([("authorization", "Bearer read")]))
    try:
        assert (await pipeline.evaluate(read)).status == 200
        assert (await pipeline.evaluate(write)).status == 403
        svc.stop()
        for _ in range(3):  # the pipeline keeps answering, closed
            d = await pipeline.evaluate(read)
            assert (d.allow, d.status, d.reason) == (False, 503, "error.policy_engine")
            assert d.error_code == "temporarily_unavailable" and not d.upstream_headers
        svc = start_opa(port)
        d = await pipeline.evaluate(read)
        assert (d.allow, d.status) == (True, 200)
        assert (await pipeline.evaluate(write)).status == 403
    finally:
        svc.stop()
        await pipeline.aclose()


async def test_bundle_revision_reaches_the_result_and_keys_the_cache(tmp_path):
    from zerotrust.policy.cache import DecisionCache

    opa = require_binary("opa", "go install github.com/open-policy-agent/opa@v1.22.4")
    bundle = tmp_path / "bundle.tar.gz"
    subprocess.run([opa, "build", "-b", str(POLICIES), "--revision", "rev-1", "-o", str(bundle)], check=True,
                   capture_output=True, timeout=60)
    port = free_port()
    svc = Service("opa-bundle", [opa, "run", "--server", "--addr", f"{LOOPBACK}:{port}", "--log-level", "error",
                                 "-b", str(bundle)]).start()
    svc.wait_http(f"http://{LOOPBACK}:{port}/health?bundles", ok=lambda r: r.status_code == 200)
    engine = OPAPolicyEngine(f"http://{LOOPBACK}:{port}")
    cache = DecisionCache(engine, engine.builder)
    try:
        r = await cache.decide(RequestContext("GET", "/x", Headers()), principal(("api:read",)))
        assert r.allow and r.revision == f"{bundle}@rev-1" == cache.revision
    finally:
        svc.stop()
        await cache.aclose()
