"""Caddy 2.6 in front of a recording upstream, asking the real sidecar (forward-auth style).

Caddy runs ``sidecar/caddy/Caddyfile`` as shipped. Caddy can only ask with GET (any
other method would hand the request body to the sidecar and starve the upstream), so
the shipped file is read-only: these tests pin that it refuses other methods before
asking anyone, and that what does pass is judged and stripped like Envoy and nginx do.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.integration.conftest import Keys, Sidecar
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
def caddy_naive_authz(upstream: RecordingUpstream) -> Iterator[RunningProxy]:
    """The shipped Caddyfile in front of an authz service that allows everything and sets no identity."""
    with RecordingUpstream() as naive:
        proxy = start_caddy(naive.port, upstream.port, name="caddy-naive-authz")
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
                                              sidecar: Sidecar, client: httpx.Client) -> None:
    token = mark()
    r = client.get(f"{caddy.url}/items/{token}?page=2&sort=a", headers=key(keys.reader))
    assert r.status_code == 200 and r.headers[UPSTREAM_MARK] == "1"
    [seen] = upstream.requests(token)
    assert (seen.method, seen.target) == ("GET", f"/items/{token}?page=2&sort=a")
    assert seen.values("x-auth-subject") == ["apikey:reader"]
    assert seen.values("x-auth-scopes") == ["api:read"]
    assert seen.values("x-auth-issuer") == ["zerotrust:api-key"]
    [decision_id] = seen.values("x-zerotrust-decision-id")
    record = sidecar.decision(decision_id)
    assert record is not None and (record["method"], record["path"], record["allow"]) == ("GET", f"/items/{token}", True)


def test_head_passes_and_is_judged_as_get(caddy: RunningProxy, upstream: RecordingUpstream, keys: Keys,
                                          sidecar: Sidecar, client: httpx.Client) -> None:
    token = mark()
    assert client.head(f"{caddy.url}/items/{token}", headers=key(keys.reader)).status_code == 200
    [seen] = upstream.requests(token)
    assert seen.method == "HEAD"
    record = sidecar.decision(seen.values("x-zerotrust-decision-id")[0])
    assert record is not None and record["method"] == "GET"


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE", "OPTIONS"])
def test_methods_caddy_cannot_have_judged_are_refused(caddy: RunningProxy, upstream: RecordingUpstream, keys: Keys,
                                                      client: httpx.Client, method: str) -> None:
    # forward_auth asks with GET: a reader's POST would be judged as a read. Refuse instead.
    token = mark()
    r = client.request(method, f"{caddy.url}/items/{token}", headers=key(keys.admin), content=b'{"n":1}')
    assert r.status_code == 405 and r.json()["error"] == "method_not_allowed"
    assert_never_reached(upstream, token, r)


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
                                          sidecar: Sidecar, client: httpx.Client) -> None:
    token = mark()
    sidecar.stop()
    try:
        for path in (f"/items/{token}", f"/public/{token}"):
            r = client.get(f"{caddy.url}{path}", headers=key(keys.reader))
            assert r.status_code == 503 and r.json()["error"] == "temporarily_unavailable"
            assert_never_reached(upstream, token, r)
    finally:
        sidecar.start()
    deadline = time.monotonic() + 10
    while (r := client.get(f"{caddy.url}/items/{token}", headers=key(keys.reader))).status_code != 200:
        assert r.status_code == 503 and time.monotonic() < deadline
        time.sleep(0.1)
    assert len(upstream.requests(token)) == 1
