"""Embedded Rego (regopy) against the built-in engine and against its own failure modes."""

import itertools
from pathlib import Path

import pytest

pytest.importorskip("regopy")

from zerotrust.config import parse_config  # noqa: E402
from zerotrust.errors import ConfigError, DependencyError  # noqa: E402
from zerotrust.policy.builtin import BuiltinPolicyEngine  # noqa: E402
from zerotrust.policy.rego import RegoPolicyEngine, load_modules  # noqa: E402
from zerotrust.types import Headers, Principal, RequestContext  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
POLICIES = ROOT / "policies"
METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]
PATHS = ["/", "/x", "/x/y", "/admin", "/admin/", "/admin/x", "/administrator", "/a/admin"]
SCOPES = [None, (), ("api:read",), ("api:write",), ("api:admin",), ("api:read", "api:admin"),
          ("api:write", "api:admin"), ("api:read", "api:write", "api:admin")]


def builtin():
    config = parse_config((ROOT / "examples" / "quickstart.yaml").read_text(), env={})
    return BuiltinPolicyEngine.from_config(config.policy.rules)


@pytest.fixture(scope="module")
def rego():
    return RegoPolicyEngine.from_paths([POLICIES])


def principal(scopes):
    return None if scopes is None else Principal("alice", "iss", "jwt", frozenset(scopes))


async def test_same_decisions_as_the_builtin_engine(rego):
    b = builtin()
    for method, path, scopes in itertools.product(METHODS, PATHS, SCOPES):
        r = RequestContext(method, path, Headers())
        x, y = await b.decide(r, principal(scopes)), await rego.decide(r, principal(scopes))
        assert (x.allow, x.reason, x.required_scopes) == (y.allow, y.reason, y.required_scopes), (method, path, scopes)
    assert y.engine == "rego" and y.revision.startswith("rego:") and len(y.input_hash) == 32


async def test_thread_workers_give_the_same_answers():
    threaded = RegoPolicyEngine.from_paths([POLICIES], workers=2)
    try:
        for scopes in SCOPES:
            r = await threaded.decide(RequestContext("GET", "/admin/x", Headers()), principal(scopes))
            assert r.allow == (scopes is not None and {"api:read", "api:admin"} <= set(scopes))
    finally:
        await threaded.aclose()


def test_test_files_are_not_loaded():
    modules = load_modules([POLICIES])
    assert modules and not any(name.endswith("_test.rego") for name in modules)


def test_missing_or_empty_paths_are_config_errors(tmp_path):
    with pytest.raises(ConfigError):
        load_modules([tmp_path / "nope"])
    with pytest.raises(ConfigError):
        load_modules([tmp_path])


def test_policy_that_does_not_compile_is_a_config_error():
    with pytest.raises(ConfigError, match="compile"):
        RegoPolicyEngine({"bad.rego": "package zerotrust.authz\n decision := "})


async def test_undefined_decision_is_a_deny():
    e = RegoPolicyEngine({"p.rego": "package zerotrust.authz\ndecision := {\"allow\": true} if input.x\n"})
    r = await e.decide(RequestContext("GET", "/", Headers()), None)
    assert not r.allow and r.reason == "policy.undefined" and e.undefined == 1


async def test_default_only_value_is_not_undefined():
    # The known rego-cpp quirk: a plain query of a default-only rule answers undefined. Entrypoints do not.
    e = RegoPolicyEngine({"p.rego": "package t\ndefault decision := {\"allow\": false, \"reason\": \"dflt\"}\n"},
                         package="t")
    r = await e.decide(RequestContext("GET", "/", Headers()), None)
    assert r.reason == "dflt"


async def test_evaluation_error_is_503():
    conflict = ("package zerotrust.authz\n"
                "decision := {\"allow\": true}\n"
                "decision := {\"allow\": false} if input.request.method == \"GET\"\n")
    e = RegoPolicyEngine({"p.rego": conflict})
    with pytest.raises(DependencyError):
        await e.decide(RequestContext("GET", "/", Headers()), None)
    assert e.errors == 1


async def test_malformed_decision_is_503():
    e = RegoPolicyEngine({"p.rego": "package zerotrust.authz\ndecision := {\"allow\": \"yes\"}\n"})
    with pytest.raises(DependencyError):
        await e.decide(RequestContext("GET", "/", Headers()), None)


@pytest.mark.parametrize("claims", [{"tenant": "acme\x00evil"}, {"n": 2 ** 64}, {"k": "\ud800"}])
async def test_values_rego_cpp_cannot_hold_exactly_are_denied(claims):
    # rego-cpp takes C strings: "acme\0evil" would silently become "acme".
    e = RegoPolicyEngine({"p.rego": "package zerotrust.authz\ndecision := {\"allow\": true}\n"})
    p = Principal("alice", "iss", "jwt", claims=claims)
    r = await e.decide(RequestContext("GET", "/", Headers()), p)
    assert not r.allow and r.reason == "input.unrepresentable"


async def test_reload_changes_the_revision_and_the_answer():
    allow = {"p.rego": "package zerotrust.authz\ndecision := {\"allow\": true}\n"}
    deny = {"p.rego": "package zerotrust.authz\ndecision := {\"allow\": false}\n"}
    e = RegoPolicyEngine(allow)
    before = e.revision
    assert (await e.decide(RequestContext("GET", "/", Headers()), None)).allow
    e.load(deny)
    assert e.revision != before
    assert not (await e.decide(RequestContext("GET", "/", Headers()), None)).allow
    with pytest.raises(ConfigError):
        e.load({"p.rego": "package zerotrust.authz\n decision := "})
    assert not (await e.decide(RequestContext("GET", "/", Headers()), None)).allow  # old policy kept


async def test_example_packages_load_and_decide():
    tenant = RegoPolicyEngine.from_paths([POLICIES], package="zerotrust.examples.tenant")
    p = Principal("dave", "iss", "jwt", tenant="acme")
    ok = await tenant.decide(RequestContext("GET", "/tenants/acme/orders", Headers()), p)
    assert ok.allow and ok.headers == (("X-Tenant-Id", "acme"),)
    assert not (await tenant.decide(RequestContext("GET", "/tenants/globex/orders", Headers()), p)).allow
    abac = RegoPolicyEngine.from_paths([POLICIES], package="zerotrust.examples.abac")
    carol = Principal("carol", "iss", "jwt", claims={"department": "sales", "iat": 1000}, auth_time=900)
    step = await abac.decide(RequestContext("POST", "/departments/sales/x", Headers()), carol)
    assert step.step_up == {"acr_values": "urn:zerotrust:acr:mfa", "max_age": 600}
