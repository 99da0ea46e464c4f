"""The pipeline's failure semantics, with tiny fake plugins (real verifiers have their own tests)."""

from zerotrust import (
    DependencyError,
    Headers,
    InvalidToken,
    Pipeline,
    PolicyResult,
    Principal,
    RequestContext,
)
from zerotrust.audit import MemorySink
from zerotrust.config import RuleConfig
from zerotrust.credentials import AuthorizationExtractor, HeaderKeyExtractor
from zerotrust.policy import BuiltinPolicyEngine


class FakeVerifier:
    kind = "fake"

    def __init__(self, tokens, raise_on=None):
        self.tokens = tokens
        self.raise_on = raise_on or {}

    def accepts(self, credential):
        return credential.value.startswith("t")

    async def verify(self, credential, request):
        if credential.value in self.raise_on:
            raise self.raise_on[credential.value]
        if credential.value not in self.tokens:
            raise InvalidToken("The access token is invalid", reason="deny.fake")
        return self.tokens[credential.value]


ALICE = Principal(subject="alice\r\nX-Evil: 1", issuer="https://i", kind="fake", scopes=frozenset({"read"}))


def make(sink=None, raise_on=None, policy=None):
    rules = [RuleConfig(id="public", paths=["/public/**"], anonymous=True),
             RuleConfig(id="read", paths=["/**"], scopes=["read"]),]
    return Pipeline(
        extractors=[AuthorizationExtractor(), HeaderKeyExtractor()],
        verifiers=[FakeVerifier({"tok": ALICE}, raise_on)],
        policy=policy or BuiltinPolicyEngine.from_config(rules),
        sinks=[sink] if sink else [],
        realm="api",
    )


def req(path="/x", *headers):
    return RequestContext(method="GET", path=path, headers=Headers(headers))


async def test_allow_sets_identity_headers_and_removes_client_ones():
    d = await make().evaluate(req("/x", ("Authorization", "Bearer tok"), ("X-Auth-Subject", "root")))
    assert d.allow and d.status == 200 and d.principal is ALICE
    hdrs = dict(d.upstream_headers)
    assert hdrs["X-Auth-Scopes"] == "read" and hdrs["X-Auth-Issuer"] == "https://i"
    assert "\r" not in hdrs["X-Auth-Subject"] and "\n" not in hdrs["X-Auth-Subject"]
    assert "x-auth-subject" in d.remove_headers


async def test_anonymous_rule_allows_without_identity():
    d = await make().evaluate(req("/public/a", ("X-Auth-Subject", "root")))
    assert d.allow and d.upstream_headers == () and "x-auth-subject" in d.remove_headers


async def test_no_credential_gets_bare_challenge():
    d = await make().evaluate(req("/x"))
    assert (d.status, d.challenge, d.reason) == (401, 'Bearer realm="api"', "deny.no_credential")


async def test_bad_token_is_invalid_token():
    d = await make().evaluate(req("/x", ("Authorization", "Bearer tnope")))
    assert d.status == 401 and 'error="invalid_token"' in d.challenge


async def test_bad_token_on_public_route_still_401():
    # a presented credential that fails is never silently ignored
    d = await make().evaluate(req("/public/a", ("Authorization", "Bearer tnope")))
    assert not d.allow and d.status == 401


async def test_unknown_credential_kind_is_invalid_token():
    d = await make().evaluate(req("/x", ("Authorization", "Bearer zzz")))
    assert d.status == 401 and d.reason == "deny.unknown_credential"


async def test_two_credentials_are_invalid_request():
    d = await make().evaluate(req("/x", ("Authorization", "Bearer tok"), ("X-API-Key", "tok")))
    assert d.status == 400 and 'error="invalid_request"' in d.challenge


async def test_insufficient_scope():
    p = Principal(subject="bob", issuer="https://i", kind="fake")
    pipe = make()
    pipe.verifiers[0].tokens["tbob"] = p
    d = await pipe.evaluate(req("/x", ("Authorization", "Bearer tbob")))
    assert d.status == 403 and 'error="insufficient_scope"' in d.challenge and 'scope="read"' in d.challenge


async def test_dependency_down_is_503_without_challenge():
    d = await make(raise_on={"tok": DependencyError(detail="jwks down")}).evaluate(req("/x", ("Authorization", "Bearer tok")))
    assert (d.allow, d.status, d.reason) == (False, 503, "error.dependency") and d.challenge is None


async def test_verifier_bug_is_a_deny_not_a_crash():
    d = await make(raise_on={"tok": KeyError("boom")}).evaluate(req("/x", ("Authorization", "Bearer tok")))
    assert not d.allow and d.status == 401 and d.reason == "error.verifier"


async def test_policy_bug_is_500_deny():
    class Broken:
        name = "broken"

        async def decide(self, request, principal, context=None):
            raise RuntimeError("bug")

    d = await make(policy=Broken()).evaluate(req("/x", ("Authorization", "Bearer tok")))
    assert (d.allow, d.status, d.reason) == (False, 500, "error.internal")


async def test_step_up_obligation_becomes_rfc9470_challenge():
    class StepUp:
        name = "s"

        async def decide(self, request, principal, context=None):
            return PolicyResult(False, "needs_mfa", step_up={"acr_values": "urn:mfa", "max_age": 300})

    d = await make(policy=StepUp()).evaluate(req("/x", ("Authorization", "Bearer tok")))
    assert d.status == 401
    assert 'error="insufficient_user_authentication"' in d.challenge and 'acr_values="urn:mfa"' in d.challenge


async def test_audit_record_never_contains_the_secret():
    sink = MemorySink()
    pipe = make(sink)
    await pipe.evaluate(req("/x", ("Authorization", "Bearer tok")))
    await pipe.evaluate(req("/x", ("Authorization", "Bearer tsecretvalue")))
    a, b = sink.records
    assert a["allow"] and a["subject"] == ALICE.subject and a["engine"] == "builtin" and a["rule"] == "read:allow"
    assert not b["allow"] and b["reason"] == "deny.fake" and b["decision_id"] != a["decision_id"]
    assert "tsecretvalue" not in repr(sink.records) and len(b["credential"]) == 12


async def test_broken_sink_does_not_break_requests():
    class Bad:
        def emit(self, record):
            raise OSError("disk full")

    d = await make(Bad()).evaluate(req("/x", ("Authorization", "Bearer tok")))
    assert d.allow
