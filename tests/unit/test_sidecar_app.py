"""The ext_authz HTTP contract: what Envoy and nginx send in, what they get back."""

from __future__ import annotations

import httpx
import pytest

from zerotrust.sidecar.app import ExtAuthzApp
from zerotrust.sidecar.metrics import SidecarMetrics
from zerotrust.sidecar.peers import PeerResolver

from .asgi_call import call
from .sidecar_fakes import bearer, make_pipeline

IDENTITY = {"x-auth-subject", "x-auth-scopes", "x-auth-issuer"}
# '.' spellings of each identity header: upstreams folding punctuation would read them as the real one
TWINS = {"x.auth-subject", "x-auth.subject", "x.auth.subject", "x.auth-scopes", "x-auth.scopes", "x.auth.scopes",
         "x.auth-issuer", "x-auth.issuer", "x.auth.issuer"}
TENANT_TWINS = {"x.auth-tenant", "x-auth.tenant", "x.auth.tenant"}


def removed(reply) -> set[str]:
    return set(reply.header("x-envoy-auth-headers-to-remove").split(","))


@pytest.fixture
def parts():
    metrics = SidecarMetrics()
    pipeline, verifier, audit = make_pipeline(sinks=[metrics])
    return ExtAuthzApp(pipeline, metrics=metrics), verifier, audit, metrics


@pytest.fixture
def app(parts):
    return parts[0]


def assert_denial(reply, status: int) -> dict:
    assert reply.status == status
    assert reply.header("x-zerotrust-status") == str(status)
    assert reply.header("content-type") == "application/json"
    body = reply.json()
    assert set(body) == {"error", "error_description", "decision_id"}
    assert body["decision_id"] == reply.header("x-zerotrust-decision-id")
    assert not IDENTITY & {k for k, _ in reply.headers}
    return body


async def test_allow_is_exactly_200_with_identity_headers_that_replace_the_clients(app):
    reply = await call(app, "GET", "/api/items?x=1", {**bearer("good-api.read"), "X-Auth-Subject": "admin"})
    assert reply.status == 200
    assert reply.all("x-auth-subject") == ["alice"]  # Envoy overwrites the client's header with this one
    assert reply.header("x-auth-scopes") == "api:read"
    assert reply.header("x-auth-issuer") == "https://idp.test"
    assert reply.header("x-zerotrust-decision-id")
    assert reply.header("x-zerotrust-status") is None
    assert removed(reply) == TWINS  # every identity header was set: only the twins go
    assert reply.body == b""
    assert "admin" not in repr(reply.headers)


async def test_anonymous_allow_tells_envoy_to_strip_client_identity_headers(app):
    reply = await call(app, "GET", "/public/page", {"X-Auth-Subject": "admin", "X-Auth-Scopes": "api:admin"})
    assert reply.status == 200
    assert removed(reply) == IDENTITY | TWINS
    assert not IDENTITY & {k for k, _ in reply.headers}


async def test_identity_header_not_set_by_this_decision_is_removed_too():
    pipeline, _, _ = make_pipeline(extra_identity={"X-Auth-Tenant": "tenant"})
    app = ExtAuthzApp(pipeline)
    without = await call(app, "GET", "/api/x", {**bearer("good-api.read"), "X-Auth-Tenant": "victim"})
    assert without.status == 200
    assert removed(without) == {"x-auth-tenant"} | TWINS | TENANT_TWINS
    with_claim = await call(app, "GET", "/api/x", bearer("good-api.read+tenant"))
    assert with_claim.header("x-auth-tenant") == "t1"
    assert removed(with_claim) == TWINS | TENANT_TWINS


async def test_identity_values_cannot_inject_headers(app):
    reply = await call(app, "GET", "/public/x", bearer("evil"))
    assert reply.status == 200
    subject = reply.header("x-auth-subject")
    assert "\r" not in subject and "\n" not in subject
    assert reply.header("x-injected") is None


async def test_missing_credential_is_401_with_a_bare_bearer_challenge(app):
    reply = await call(app, "GET", "/api/items")
    body = assert_denial(reply, 401)
    assert reply.header("www-authenticate") == 'Bearer realm="test"'
    assert body["error"] == "unauthorized"


async def test_invalid_token_is_401_invalid_token_and_never_downgraded_to_anonymous(app):
    reply = await call(app, "GET", "/public/page", bearer("forged"))
    body = assert_denial(reply, 401)
    assert body["error"] == "invalid_token"
    assert 'error="invalid_token"' in reply.header("www-authenticate")
    assert "forged" not in reply.body.decode() + repr(reply.headers)


async def test_insufficient_scope_is_403_with_the_rfc6750_challenge(app):
    reply = await call(app, "POST", "/api/items", bearer("good-api.read"))
    body = assert_denial(reply, 403)
    assert body["error"] == "insufficient_scope"
    challenge = reply.header("www-authenticate")
    assert challenge.startswith('Bearer realm="test", error="insufficient_scope"')
    assert 'scope="api:write"' in challenge


@pytest.mark.parametrize("headers", [
    [("authorization", "Bearer good-api.read"), ("authorization", "Bearer good-api.write")],
    [("authorization", "Bearer good-api.read,Bearer good-api.write")],
    [("host", "a.test"), ("host", "b.test")],
])
async def test_ambiguous_requests_are_400(app, headers):
    body = assert_denial(await call(app, "GET", "/api/items", headers), 400)
    assert body["error"] == "invalid_request"


@pytest.mark.parametrize("target", [
    "/api/../admin", "/public/../admin", "/public/%2e%2e/admin", "/public/%2E%2E/admin", "//admin", "/public//x",
    "/public/./x", "/public/%2fadmin", "/public/a%5cb", "/public/%00", "/%61dmin",
])
async def test_non_canonical_paths_are_400_in_strict_mode(app, target):
    reply = await call(app, "GET", target)
    body = assert_denial(reply, 400)
    assert body["error_description"] == "The request path is not acceptable"
    assert target not in reply.body.decode()


async def test_normalize_mode_judges_the_canonical_path():
    pipeline, _, _ = make_pipeline()
    app = ExtAuthzApp(pipeline, path_mode="normalize")
    assert (await call(app, "GET", "/public/../public/x")).status == 200
    assert (await call(app, "GET", "/public/../admin")).status == 401  # judged as /admin, which needs a token
    assert (await call(app, "GET", "/../admin")).status == 400


async def test_non_ascii_path_bytes_are_400(app):
    assert_denial(await call(app, "GET", "/public/x", raw=b"/public/\xc3\xa9"), 400)


async def test_dependency_down_is_503_and_the_app_keeps_serving(app):
    body = assert_denial(await call(app, "GET", "/api/items", bearer("down")), 503)
    assert body["error"] == "temporarily_unavailable"
    assert "jwks" not in body["error_description"]
    assert (await call(app, "GET", "/api/items", bearer("good-api.read"))).status == 200


async def test_verifier_bug_is_a_401_and_a_policy_bug_a_500_never_an_allow(app):
    assert_denial(await call(app, "GET", "/api/items", bearer("boom")), 401)
    body = assert_denial(await call(app, "GET", "/policy-bug/x", bearer("good-api.read")), 500)
    assert body == {"error": "server_error", "error_description": "Internal error",
                    "decision_id": body["decision_id"]}
    assert (await call(app, "GET", "/api/items", bearer("good-api.read"))).status == 200


async def test_unexpected_failure_in_the_app_itself_is_a_500_and_serving_continues(app, monkeypatch):
    import zerotrust.sidecar.app as mod

    def broken(*a, **kw):
        raise KeyError("bug in the adapter")

    monkeypatch.setattr(mod, "build_request", broken)
    reply = await call(app, "GET", "/api/items", bearer("good-api.read"))
    assert_denial(reply, 500)
    assert "KeyError" not in reply.body.decode()
    monkeypatch.undo()
    assert (await call(app, "GET", "/api/items", bearer("good-api.read"))).status == 200


async def test_path_prefix_is_stripped_and_required():
    pipeline, verifier, _ = make_pipeline()
    app = ExtAuthzApp(pipeline, path_prefix="/authz")
    reply = await call(app, "GET", "/authz/api/items?q=1", bearer("good-api.read"))
    assert reply.status == 200
    assert verifier.seen[-1].path == "/api/items" and verifier.seen[-1].query == "q=1"
    assert (await call(app, "GET", "/authz/public/page")).status == 200
    for target in ("/public/page", "/authzpublic/page", "/authz", "/authz/../public/page", "/authz/%2e%2e/x"):
        assert_denial(await call(app, "GET", target), 400)


async def test_request_context_carries_method_host_query_and_peer(parts):
    app, verifier, _, _ = parts
    await call(app, "DELETE", "/api/items/7?force=1", {**bearer("good-api.write"), "host": "shop.test"})
    seen = verifier.seen[-1]
    assert (seen.method, seen.path, seen.query, seen.host, seen.peer) == (
        "DELETE", "/api/items/7", "force=1", "shop.test", "10.1.2.3")
    assert seen.tls is None


async def test_forwarded_for_is_only_believed_from_trusted_proxies():
    pipeline, verifier, _ = make_pipeline()
    app = ExtAuthzApp(pipeline, peers=PeerResolver(["10.0.0.0/8"]))
    xff = {**bearer("good-api.read"), "x-forwarded-for": "6.6.6.6, 203.0.113.9, 10.0.0.2", "x-forwarded-proto": "https"}
    await call(app, "GET", "/api/x", xff, client=("10.0.0.1", 1234))
    assert verifier.seen[-1].peer == "203.0.113.9"
    assert verifier.seen[-1].scheme == "https"
    await call(app, "GET", "/api/x", xff, client=("198.51.100.7", 1234))  # not a proxy: header ignored
    assert verifier.seen[-1].peer == "198.51.100.7"


def test_peer_resolver_walks_right_to_left():
    r = PeerResolver(["10.0.0.0/8", "fd00::/8"])
    from zerotrust import Headers

    def peer(tcp, **h):
        return r.resolve(tcp, Headers([(k.replace("_", "-"), v) for k, v in h.items()]))

    assert peer("10.0.0.1") == "10.0.0.1"
    assert peer("10.0.0.1", x_forwarded_for="1.1.1.1, 10.9.9.9") == "1.1.1.1"
    assert peer("10.0.0.1", x_forwarded_for="not-an-ip, 10.9.9.9") == "10.9.9.9"
    assert peer("10.0.0.1", x_forwarded_for="10.1.1.1") == "10.1.1.1"
    assert peer("fd00::1", x_envoy_external_address="2001:db8::5") == "2001:db8::5"
    assert peer("10.0.0.1", x_envoy_external_address="garbage") == "10.0.0.1"
    assert peer("8.8.8.8", x_forwarded_for="1.1.1.1") == "8.8.8.8"
    assert PeerResolver().resolve("8.8.8.8", Headers([("x-forwarded-for", "1.1.1.1")])) == "8.8.8.8"


async def test_client_certificate_from_the_asgi_tls_extension(parts):
    from .tls_material import make_pki

    pki = make_pki()
    app, verifier, _, _ = parts
    ext = {"tls": {"client_cert_chain": [pki.client_pem], "client_cert_name": "CN=client", "client_cert_error": None}}
    await call(app, "GET", "/api/x", bearer("good-api.read"), extensions=ext)
    tls = verifier.seen[-1].tls
    assert tls.verified and tls.peer_certificate_sha256 == pki.client_thumbprint and tls.peer_subject == "CN=client"


async def test_websocket_is_refused_and_lifespan_answered(app):
    reply = await call(app, "GET", "/api/x", kind="websocket")
    assert reply.events == [{"type": "websocket.close", "code": 1008}]
    messages = iter([{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}])
    sent = []

    async def receive():
        return next(messages)

    async def send(m):
        sent.append(m["type"])

    await app({"type": "lifespan"}, receive, send)
    assert sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"]


async def test_every_decision_is_audited_and_counted(parts):
    app, _, audit, metrics = parts
    await call(app, "GET", "/public/x")
    await call(app, "GET", "/api/x")
    await call(app, "GET", "/api/../admin")
    ids = [r["decision_id"] for r in audit.records]
    assert len(set(ids)) == 3
    assert [r["reason"] for r in audit.records] == ["allow", "deny.no_credential", "deny.bad_path"]
    value = metrics.registry.get_sample_value
    assert value("zerotrust_decisions_total", {"allow": "true", "status": "200", "reason": "allow"}) == 1
    assert value("zerotrust_decisions_total", {"allow": "false", "status": "400", "reason": "deny.bad_path"}) == 1
    assert value("zerotrust_decision_duration_seconds_count") == 3
    assert value("zerotrust_requests_in_flight") == 0


async def test_over_httpx_the_contract_holds(app):
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=("10.9.9.9", 1)),
                                 base_url="http://api.test") as client:
        ok = await client.get("/api/items", headers=bearer("good-api.read"))
        denied = await client.post("/api/items", headers=bearer("good-api.read"), content=b"x" * 1000)
    assert ok.status_code == 200 and ok.headers["x-auth-subject"] == "alice"
    assert denied.status_code == 403 and denied.json()["error"] == "insufficient_scope"
