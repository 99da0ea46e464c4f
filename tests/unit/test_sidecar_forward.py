"""Forward-auth mode (Caddy forward_auth, Traefik forwardAuth): the judged request is the one the trusted
proxy describes in X-Forwarded-*, never the GET it asks with, and never one a client describes."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from zerotrust.config import Config, ServerConfig
from zerotrust.sidecar.app import ExtAuthzApp
from zerotrust.sidecar.forward import ForwardAuth
from zerotrust.sidecar.peers import PeerResolver

from .asgi_call import call
from .sidecar_fakes import bearer, make_pipeline

PROXY = ("127.0.0.1", 51000)        # in trusted_proxies
STRANGER = ("198.51.100.7", 51000)  # not
CHECK = "/forward-auth"
IDENTITY = {"x-auth-subject", "x-auth-scopes", "x-auth-issuer"}


def forwarded(method: str = "GET", uri: str = "/api/items", host: str = "api.example",
              proto: str = "https") -> dict[str, str]:
    return {"x-forwarded-method": method, "x-forwarded-uri": uri, "x-forwarded-host": host,
            "x-forwarded-proto": proto}


@pytest.fixture
def parts():
    pipeline, verifier, audit = make_pipeline()
    forward = ForwardAuth(pipeline, PeerResolver(["127.0.0.0/8"]))
    return ExtAuthzApp(pipeline, forward=forward), verifier, audit


@pytest.fixture
def app(parts):
    return parts[0]


def assert_400(reply, reason: str, audit) -> None:
    assert reply.status == 400
    assert 'error="invalid_request"' in reply.header("www-authenticate")
    assert reply.json()["error"] == "invalid_request"
    assert not IDENTITY & {k for k, _ in reply.headers}
    assert audit.records[-1]["reason"] == reason and audit.records[-1]["allow"] is False


async def test_post_is_judged_as_post_not_as_the_get_the_proxy_asks_with(parts):
    app, verifier, audit = parts
    reader = await call(app, "GET", CHECK, {**bearer("good-api.read"), **forwarded("POST")}, client=PROXY)
    assert reader.status == 403 and 'error="insufficient_scope"' in reader.header("www-authenticate")
    assert (audit.records[-1]["method"], audit.records[-1]["path"]) == ("POST", "/api/items")
    writer = await call(app, "GET", CHECK, {**bearer("good-api.write"), **forwarded("POST")}, client=PROXY)
    assert writer.status == 200 and writer.header("x-auth-subject") == "alice"
    assert verifier.seen[-1].method == "POST"


async def test_the_described_request_is_what_the_pipeline_sees(parts):
    app, verifier, _ = parts
    headers = {**bearer("good-api.read"), **forwarded("GET", "/api/items?page=2&q=a%20b", "api.example:8443"),
               "x-forwarded-for": "203.0.113.9"}
    reply = await call(app, "GET", CHECK + "?from=proxy", headers, client=PROXY)
    assert reply.status == 200
    seen = verifier.seen[-1]
    assert (seen.method, seen.path, seen.raw_path, seen.query) == ("GET", "/api/items", "/api/items", "page=2&q=a%20b")
    assert (seen.host, seen.scheme, seen.peer) == ("api.example:8443", "https", "203.0.113.9")


async def test_answers_keep_the_ext_authz_format(app):
    anonymous = await call(app, "GET", CHECK, {**forwarded("GET", "/public/x"), "x-auth-subject": "root"},
                           client=PROXY)
    assert anonymous.status == 200 and anonymous.body == b""
    assert IDENTITY <= set(anonymous.header("x-envoy-auth-headers-to-remove").split(","))
    assert anonymous.header("x-zerotrust-decision-id")
    denied = await call(app, "GET", CHECK, forwarded("GET", "/api/items"), client=PROXY)
    assert denied.status == 401 and denied.header("www-authenticate") == 'Bearer realm="test"'
    assert denied.header("x-zerotrust-status") == "401"
    assert denied.json()["decision_id"] == denied.header("x-zerotrust-decision-id")


@pytest.mark.parametrize("peer", [STRANGER, ("::1", 51000), ("10.0.0.1", 1)])
async def test_untrusted_peer_is_400_even_with_perfect_headers(parts, peer):
    app, verifier, audit = parts
    reply = await call(app, "GET", CHECK, {**bearer("good-api.write"), **forwarded("POST", "/api/x")}, client=peer)
    assert_400(reply, "deny.forward_untrusted", audit)
    assert verifier.seen == []


@pytest.mark.parametrize("name", ["x-forwarded-method", "x-forwarded-uri", "x-forwarded-host", "x-forwarded-proto"])
async def test_a_missing_header_is_400_never_a_fallback_to_the_check(parts, name):
    app, verifier, audit = parts
    headers = {k: v for k, v in forwarded("POST", "/api/x").items() if k != name}
    reply = await call(app, "GET", CHECK, {**bearer("good-api.write"), **headers}, client=PROXY)
    assert_400(reply, "deny.forward_header", audit)
    assert verifier.seen == []


@pytest.mark.parametrize("name,extra", [
    ("x-forwarded-method", "GET"), ("x-forwarded-uri", "/public/x"), ("x-forwarded-host", "api.example"),
    ("x-forwarded-proto", "https"),
])
async def test_a_repeated_header_is_400(parts, name, extra):
    # A client-sent copy next to the proxy's: which one is the truth cannot be known.
    app, _, audit = parts
    headers = [*bearer("good-api.write").items(), *forwarded("POST", "/api/x").items(), (name, extra)]
    assert_400(await call(app, "GET", CHECK, headers, client=PROXY), "deny.forward_header", audit)


@pytest.mark.parametrize("name,value", [
    ("x-forwarded-method", ""), ("x-forwarded-method", "GET, POST"), ("x-forwarded-method", "GET POST"),
    ("x-forwarded-method", "GE\tT"), ("x-forwarded-method", "P" * 33), ("x-forwarded-method", "PO(ST"),
    ("x-forwarded-host", ""), ("x-forwarded-host", "api.example/admin"), ("x-forwarded-host", "a b"),
    ("x-forwarded-host", "api.example:80:81"), ("x-forwarded-host", "h" * 256), ("x-forwarded-host", "[::1"),
    ("x-forwarded-proto", "ftp"), ("x-forwarded-proto", "HTTPS"), ("x-forwarded-proto", "https, http"),
    ("x-forwarded-proto", ""),
])
async def test_garbage_method_host_or_proto_is_400(parts, name, value):
    app, _, audit = parts
    headers = {**bearer("good-api.write"), **forwarded("GET", "/api/x"), name: value}
    assert_400(await call(app, "GET", CHECK, headers, client=PROXY), "deny.forward_header", audit)


@pytest.mark.parametrize("uri", [
    "http://api.example/api/x", "https://evil.example/public/x", "//evil.example/public/x", "*", "public/x", "",
    "/public/x#frag", "/public/a b", "/public/\u00e9", "/public/x\r\nX-Injected: 1", "/" + "a" * 16384,
])
async def test_a_uri_that_is_not_origin_form_is_400(parts, uri):
    app, verifier, audit = parts
    headers = {**bearer("good-api.write"), **forwarded("GET"), "x-forwarded-uri": uri}
    assert_400(await call(app, "GET", CHECK, headers, client=PROXY), "deny.bad_path", audit)
    assert verifier.seen == []


@pytest.mark.parametrize("uri", [
    "/public/../api/x", "/public/%2e%2e/api/x", "/public/%2E%2E/api/x", "/public/./x", "/public//x",
    "/public/..;/api/x", "/public/x;jsessionid=1", "/public/..%2Fapi/x", "/public/%2fx", "/public/%5cx",
    "/public/x%00", "/public/%70ath", "/public/x\\..\\api",
])
async def test_path_tricks_in_the_uri_are_refused_by_strict_mode(parts, uri):
    app, verifier, audit = parts
    reply = await call(app, "GET", CHECK, forwarded("GET", uri), client=PROXY)
    assert_400(reply, "deny.bad_path", audit)
    assert verifier.seen == []


async def test_normalize_mode_judges_the_canonical_forwarded_path():
    pipeline, verifier, audit = make_pipeline()
    app = ExtAuthzApp(pipeline, forward=ForwardAuth(pipeline, PeerResolver(["127.0.0.1/32"]), path_mode="normalize"))
    reply = await call(app, "GET", CHECK, {**bearer("good-api.read"), **forwarded("POST", "/public/../api/x")},
                       client=PROXY)
    assert reply.status == 403  # judged as POST /api/x, not as the anonymous /public/...
    assert (audit.records[-1]["method"], audit.records[-1]["path"]) == ("POST", "/api/x")


@pytest.mark.parametrize("target", ["/", "/api/items", "/forward-auth/", "/forward-auth/x", "/Forward-Auth",
                                    "/authz/forward-auth"])
async def test_checks_elsewhere_than_the_forward_path_are_400(parts, target):
    # An ext_authz-style proxy (nginx sends the client's URI) pointed at a forward-mode sidecar must not work.
    app, _, audit = parts
    reply = await call(app, "GET", target, {**bearer("good-api.write"), **forwarded("GET", "/public/x")}, client=PROXY)
    assert_400(reply, "deny.bad_path", audit)


async def test_refusals_are_audited_with_the_described_request(parts):
    app, _, audit = parts
    await call(app, "GET", CHECK, forwarded("DELETE", "/public/../api/x?y=1"), client=STRANGER)
    record = audit.records[-1]
    assert (record["method"], record["path"], record["peer"]) == ("DELETE", "/public/../api/x", STRANGER[0])


async def test_the_check_method_does_not_matter_only_the_described_one(parts):
    # Traefik's preserveRequestMethod sends the original method; the header still decides.
    app, _, audit = parts
    reply = await call(app, "POST", CHECK, {**bearer("good-api.read"), **forwarded("GET", "/api/x")}, client=PROXY)
    assert reply.status == 200 and audit.records[-1]["method"] == "GET"


async def test_ext_authz_mode_ignores_forwarded_method_and_uri():
    # Without forward_auth the request line is the request: a client's X-Forwarded-* changes nothing.
    pipeline, _, audit = make_pipeline()
    app = ExtAuthzApp(pipeline, peers=PeerResolver(["127.0.0.0/8"]))
    reply = await call(app, "POST", "/api/x", {**bearer("good-api.read"), **forwarded("GET", "/public/x")},
                       client=PROXY)
    assert reply.status == 403 and (audit.records[-1]["method"], audit.records[-1]["path"]) == ("POST", "/api/x")


def test_from_config_switches_the_listener_to_forward_mode():
    pipeline, _, _ = make_pipeline()
    base = {"version": 1, "api_keys": {"pepper": "p" * 40},
            "policy": {"rules": [{"id": "all", "paths": ["/**"]}]}}
    on = Config.model_validate({**base, "server": {"trusted_proxies": ["127.0.0.1/32"],
                                                   "forward_auth": {"enabled": True, "path": "/check"}}})
    app = ExtAuthzApp.from_config(on, pipeline)
    assert app.forward is not None and app.forward.path == "/check"
    assert ExtAuthzApp.from_config(Config.model_validate(base), pipeline).forward is None


@pytest.mark.parametrize("server", [
    {"forward_auth": {"enabled": True}},                                            # nobody to trust
    {"forward_auth": {"enabled": True}, "trusted_proxies": ["10.0.0.0/8"], "path_prefix": "/authz"},
    {"forward_auth": {"path": "forward-auth"}}, {"forward_auth": {"path": "/a/../b"}},
    {"forward_auth": {"path": "/a?b"}}, {"forward_auth": {"path": "//x"}},
])
def test_config_refuses_forward_mode_that_cannot_be_safe(server):
    with pytest.raises(ValidationError):
        ServerConfig.model_validate(server)


def test_forward_auth_without_trusted_proxies_cannot_be_built():
    pipeline, _, _ = make_pipeline()
    with pytest.raises(ValueError):
        ForwardAuth(pipeline, PeerResolver([]))
