"""Caddy 2.6 in front of a recording upstream, asking the real sidecar in forward-auth mode.

Caddy runs ``sidecar/caddy/Caddyfile`` as shipped. It asks with GET at ``/forward-auth``
and describes the client's request in ``X-Forwarded-Method``/``-Uri``/``-Host``/``-Proto``;
these tests pin that the sidecar judges that request (a reader's POST is a POST), that
the body reaches only the upstream, that a client cannot describe the request itself,
and that identity is stripped and failures fail closed like with Envoy and nginx.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.integration.conftest import Keys, Sidecar
from tests.support.forward_auth import forward_mode_config
from tests.support.proxies import RunningProxy, send_raw, start_caddy
from tests.support.upstream import UPSTREAM_MARK, RecordingUpstream, SilentServer
from zerotrust.credentials.api_key_format import generate_key

pytestmark = pytest.mark.integration

IDENTITY = ("x-auth-subject", "x-auth-scopes", "x-auth-issuer")
FORGED = [("X-Auth-Subject", "apikey:admin"), ("x-auth-subject", "root"), ("X-Auth-Scopes", "api:admin"),
          ("X-Auth-Issuer", "https://evil.example"), ("X_Auth_Subject", "root"), ("X-Auth_Scopes", "api:admin"),
          ("X-Zerotrust-Decision-Id", "forged")]


def mark() -> str:
    return secrets.token_hex(6)


def key(value: str) -> dict[str, str]:
    return {"X-API-Key": value}


def assert_never_reached(upstream: RecordingUpstream, token: str, response: httpx.Response) -> None:
    assert response.headers.get(UPSTREAM_MARK) is None
    assert upstream.requests(token) == []


@pytest.fixture(scope="module")
def forward_sidecar(sidecar_setup: tuple[Sidecar, Keys],
                    tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sidecar]:
    """The session sidecar's policy and keys, in forward-auth mode (Caddy's loopback address is trusted)."""
    process = Sidecar(*forward_mode_config(sidecar_setup[0].config, tmp_path_factory.mktemp("caddy-forward")))
    process.start()
    yield process
    process.stop()


@pytest.fixture(scope="module")
def caddy(forward_sidecar: Sidecar, upstream: RecordingUpstream) -> Iterator[RunningProxy]:
    """The shipped Caddyfile asking the forward-mode sidecar (overrides conftest's, made for ext_authz)."""
    proxy = start_caddy(forward_sidecar.port, upstream.port)
    yield proxy
    proxy.stop()


@pytest.fixture(scope="module")
def naive_authz() -> Iterator[RecordingUpstream]:
    """An authz service that allows everything, sets no identity, and records the checks it gets."""
    with RecordingUpstream() as naive:
        yield naive


@pytest.fixture(scope="module")
def caddy_naive_authz(naive_authz: RecordingUpstream, upstream: RecordingUpstream) -> Iterator[RunningProxy]:
    """The shipped Caddyfile in front of the naive authz service."""
    proxy = start_caddy(naive_authz.port, upstream.port, name="caddy-naive-authz")
    yield proxy
    proxy.stop()


@pytest.fixture(scope="module")
def caddy_hung_authz(upstream: RecordingUpstream) -> Iterator[RunningProxy]:
    """The shipped config in front of an authorization service that accepts and never answers."""
    with SilentServer() as silent:
        proxy = start_caddy(silent.port, upstream.port, name="caddy-hung-authz")
        yield proxy
        proxy.stop()


def test_allow_reaches_upstream_with_identity(caddy: RunningProxy, upstream: RecordingUpstream, keys: Keys,
                                              forward_sidecar: Sidecar, client: httpx.Client) -> None:
    token = mark()
    r = client.get(f"{caddy.url}/items/{token}?page=2&sort=a", headers=key(keys.reader))
    assert r.status_code == 200 and r.headers[UPSTREAM_MARK] == "1"
    [seen] = upstream.requests(token)
    assert (seen.method, seen.target) == ("GET", f"/items/{token}?page=2&sort=a")
    assert seen.values("x-auth-subject") == ["apikey:reader"]
    assert seen.values("x-auth-scopes") == ["api:read"]
    assert seen.values("x-auth-issuer") == ["zerotrust:api-key"]
    [decision_id] = seen.values("x-zerotrust-decision-id")
    record = forward_sidecar.decision(decision_id)
    assert record is not None
    assert (record["method"], record["path"], record["allow"]) == ("GET", f"/items/{token}", True)


def test_head_is_judged_as_head(caddy: RunningProxy, upstream: RecordingUpstream, keys: Keys,
                                forward_sidecar: Sidecar, client: httpx.Client) -> None:
    token = mark()
    assert client.head(f"{caddy.url}/items/{token}", headers=key(keys.reader)).status_code == 200
    [seen] = upstream.requests(token)
    assert seen.method == "HEAD"
    record = forward_sidecar.decision(seen.values("x-zerotrust-decision-id")[0])
    assert record is not None and record["method"] == "HEAD"


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
def test_a_reader_cannot_write(caddy: RunningProxy, upstream: RecordingUpstream, keys: Keys,
                               forward_sidecar: Sidecar, client: httpx.Client, method: str) -> None:
    # forward_auth asks with GET: without forward-auth mode this would be judged as a read.
    token = mark()
    r = client.request(method, f"{caddy.url}/items/{token}", headers=key(keys.reader), content=b'{"n":1}')
    assert r.status_code == 403 and r.json()["error"] == "insufficient_scope"
    challenge = r.headers["www-authenticate"]
    assert 'error="insufficient_scope"' in challenge and 'scope="api:write"' in challenge
    assert_never_reached(upstream, token, r)
    record = forward_sidecar.decision(r.headers["x-zerotrust-decision-id"])
    assert record is not None and (record["method"], record["path"]) == (method, f"/items/{token}")


def test_a_writer_posts_and_the_body_reaches_only_the_upstream(caddy: RunningProxy, upstream: RecordingUpstream,
                                                              keys: Keys, forward_sidecar: Sidecar,
                                                              client: httpx.Client) -> None:
    token = mark()
    body = b'{"n":1,"pad":"' + secrets.token_hex(64 * 1024).encode() + b'"}'  # 128 kB, more than one read
    r = client.post(f"{caddy.url}/items/{token}?v=1", content=body,
                    headers={**key(keys.writer), "Content-Type": "application/json"})
    assert r.status_code == 200 and r.headers[UPSTREAM_MARK] == "1"
    [seen] = upstream.requests(token)
    assert (seen.method, seen.target, seen.body) == ("POST", f"/items/{token}?v=1", body)
    assert seen.values("x-auth-subject") == ["apikey:writer"]
    assert seen.values("x-auth-scopes") == ["api:read api:write"]
    record = forward_sidecar.decision(seen.values("x-zerotrust-decision-id")[0])
    assert record is not None
    assert (record["method"], record["path"], record["allow"]) == ("POST", f"/items/{token}", True)


def test_a_client_cannot_describe_the_request_itself(caddy: RunningProxy, upstream: RecordingUpstream, keys: Keys,
                                                     forward_sidecar: Sidecar, client: httpx.Client) -> None:
    # Caddy replaces X-Forwarded-Method/-Uri and, for a client it does not trust, -Host and -Proto.
    token = mark()
    lies = {"X-Forwarded-Method": "GET", "X-Forwarded-Uri": f"/public/{token}", "X-Forwarded-Host": "evil.example",
            "X-Forwarded-Proto": "https"}
    r = client.delete(f"{caddy.url}/admin/{token}", headers={**key(keys.writer), **lies})
    assert r.status_code == 403
    assert_never_reached(upstream, token, r)
    record = forward_sidecar.decision(r.headers["x-zerotrust-decision-id"])
    assert record is not None
    assert (record["method"], record["path"], record["host"]) == ("DELETE", f"/admin/{token}",
                                                                  f"127.0.0.1:{caddy.port}")


def test_absolute_form_target_is_judged_as_the_path_caddy_forwards(caddy: RunningProxy, upstream: RecordingUpstream,
                                                                   keys: Keys, forward_sidecar: Sidecar) -> None:
    # Caddy's {uri} is origin-form even for "GET http://host/x": the sidecar and the upstream agree.
    token = mark()
    denied = send_raw(caddy.port, "GET", f"http://127.0.0.1:{caddy.port}/admin/{token}", key(keys.reader))
    assert denied.status == 403 and upstream.requests(token) == []
    allowed = send_raw(caddy.port, "GET", f"http://evil.example/items/{token}?a=1", key(keys.reader))
    assert allowed.status == 200
    [seen] = upstream.requests(token)
    assert seen.target == f"/items/{token}?a=1"
    record = forward_sidecar.decision(seen.values("x-zerotrust-decision-id")[0])
    assert record is not None and (record["path"], record["host"]) == (f"/items/{token}", "evil.example")


def test_the_check_carries_the_request_in_single_headers_and_nothing_else(caddy_naive_authz: RunningProxy,
                                                                          naive_authz: RecordingUpstream,
                                                                          upstream: RecordingUpstream,
                                                                          client: httpx.Client) -> None:
    # What the sidecar receives, on the wire: GET at /forward-auth, no body, no cookie, and each
    # X-Forwarded-* exactly once with Caddy's value, whatever the client sent under those names.
    token = mark()
    r = client.put(f"{caddy_naive_authz.url}/items/{token}?x=%20y", content=b"secret body",
                   headers=[("Cookie", "session=s3cret"), ("X-Forwarded-Method", "GET"),
                            ("X-Forwarded-Uri", "/public/x"), ("X-Forwarded-Host", "evil.example"),
                            ("X-Forwarded-Proto", "https"), ("X-Forwarded-Uri", "/public/y")])
    assert r.status_code == 200
    [check] = [c for c in naive_authz.requests("/forward-auth") if token in "".join(c.values("x-forwarded-uri"))]
    assert check.method == "GET" and check.target.split("?")[0] == "/forward-auth" and check.body == b""
    assert check.values("cookie") == []
    assert check.values("x-forwarded-method") == ["PUT"]
    assert check.values("x-forwarded-uri") == [f"/items/{token}?x=%20y"]
    assert check.values("x-forwarded-host") == [f"127.0.0.1:{caddy_naive_authz.port}"]
    assert check.values("x-forwarded-proto") == ["http"]
    [seen] = upstream.requests(token)
    assert seen.body == b"secret body" and seen.values("cookie") == ["session=s3cret"]


def test_forged_identity_replaced_on_authenticated_allow(caddy: RunningProxy, upstream: RecordingUpstream,
                                                         keys: Keys, client: httpx.Client) -> None:
    token = mark()
    r = client.get(f"{caddy.url}/items/{token}", headers=[("X-API-Key", keys.reader), *FORGED])
    assert r.status_code == 200
    [seen] = upstream.requests(token)
    assert seen.values("x-auth-subject") == ["apikey:reader"]
    assert seen.values("x-auth-scopes") == ["api:read"]
    assert seen.values("x-auth-issuer") == ["zerotrust:api-key"]
    assert [k for k, _ in seen.headers if "_" in k] == []  # no underscore twin got through
    assert "forged" not in seen.values("x-zerotrust-decision-id")


@pytest.mark.parametrize("proxy", ["caddy", "caddy_naive_authz"])
def test_forged_identity_removed_on_anonymous_allow(request: pytest.FixtureRequest, upstream: RecordingUpstream,
                                                    client: httpx.Client, proxy: str) -> None:
    # Caddy 2.6's copy_headers would put its own placeholder text here: the Caddyfile must not use it.
    token = mark()
    r = client.get(f"{request.getfixturevalue(proxy).url}/public/{token}", headers=FORGED)
    assert r.status_code == 200
    [seen] = upstream.requests(token)
    assert [(k, v) for k, v in seen.headers if k.lower().replace("_", "-") in IDENTITY] == []
    assert "forged" not in seen.values("x-zerotrust-decision-id")


def test_no_credential_is_401_with_a_bare_challenge(caddy: RunningProxy, upstream: RecordingUpstream,
                                                    client: httpx.Client) -> None:
    token = mark()
    r = client.get(f"{caddy.url}/items/{token}")
    assert r.status_code == 401
    assert r.headers.get_list("www-authenticate") == ['Bearer realm="zerotrust"']
    assert r.headers["x-zerotrust-decision-id"] == r.json()["decision_id"]
    assert_never_reached(upstream, token, r)


def test_unknown_key_is_401_invalid_token(caddy: RunningProxy, upstream: RecordingUpstream,
                                          client: httpx.Client) -> None:
    token = mark()
    r = client.get(f"{caddy.url}/items/{token}", headers=key(generate_key("zt")))
    assert r.status_code == 401 and 'error="invalid_token"' in r.headers["www-authenticate"]
    assert_never_reached(upstream, token, r)


def test_missing_scope_is_403_with_the_scopes_needed(caddy: RunningProxy, upstream: RecordingUpstream, keys: Keys,
                                                     client: httpx.Client) -> None:
    token = mark()
    r = client.get(f"{caddy.url}/admin/{token}", headers=key(keys.reader))
    assert r.status_code == 403
    challenge = r.headers["www-authenticate"]
    assert 'error="insufficient_scope"' in challenge and 'scope="api:read api:admin"' in challenge
    assert_never_reached(upstream, token, r)


def test_two_credentials_are_400(caddy: RunningProxy, upstream: RecordingUpstream, keys: Keys,
                                 client: httpx.Client) -> None:
    token = mark()
    r = client.get(f"{caddy.url}/items/{token}",
                   headers={"X-API-Key": keys.reader, "Authorization": f"Bearer {keys.admin}"})
    assert r.status_code == 400 and 'error="invalid_request"' in r.headers["www-authenticate"]
    assert_never_reached(upstream, token, r)


@pytest.mark.parametrize("target", [
    "/public/../admin/{t}", "/public/%2e%2e/admin/{t}", "//admin/{t}", "/public/..%2Fadmin/{t}",
])
def test_non_canonical_paths_are_400_and_never_reach_upstream(caddy: RunningProxy, upstream: RecordingUpstream,
                                                              keys: Keys, target: str) -> None:
    token = mark()
    r = send_raw(caddy.port, "GET", target.format(t=token), key(keys.admin))
    assert r.status == 400
    assert r.values(UPSTREAM_MARK) == [] and upstream.requests(token) == []


def test_hung_sidecar_times_out_closed(caddy_hung_authz: RunningProxy, upstream: RecordingUpstream, keys: Keys,
                                        client: httpx.Client) -> None:
    token = mark()
    started = time.monotonic()
    r = client.get(f"{caddy_hung_authz.url}/items/{token}", headers=key(keys.reader))
    assert r.status_code == 503
    assert time.monotonic() - started < 3  # the config's 1 s check timeout, not the client's 5 s
    assert_never_reached(upstream, token, r)


def test_sidecar_down_is_503_and_recovers(caddy: RunningProxy, upstream: RecordingUpstream, keys: Keys,
                                          forward_sidecar: Sidecar, client: httpx.Client) -> None:
    token = mark()
    forward_sidecar.stop()
    try:
        for path in (f"/items/{token}", f"/public/{token}"):
            r = client.get(f"{caddy.url}{path}", headers=key(keys.reader))
            assert r.status_code == 503 and r.json()["error"] == "temporarily_unavailable"
            assert_never_reached(upstream, token, r)
    finally:
        forward_sidecar.start()
    deadline = time.monotonic() + 10
    while (r := client.get(f"{caddy.url}/items/{token}", headers=key(keys.reader))).status_code != 200:
        assert r.status_code == 503 and time.monotonic() < deadline
        time.sleep(0.1)
    assert len(upstream.requests(token)) == 1
