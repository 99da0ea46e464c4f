"""Envoy 1.40 in front of a recording upstream, asking the real sidecar (HTTP ext_authz).

Envoy runs ``sidecar/envoy/envoy.yaml`` exactly as shipped, rendered the way
docs/deployment-proxies.md tells users to. Every denial is also checked on the
upstream side: it must never have seen the request.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.integration.conftest import Keys, Sidecar
from tests.support.proxies import RunningProxy, send_raw, start_envoy
from tests.support.upstream import UPSTREAM_MARK, RecordingUpstream, SilentServer
from zerotrust.credentials.api_key_format import generate_key

pytestmark = pytest.mark.integration

IDENTITY = ("x-auth-subject", "x-auth-scopes", "x-auth-issuer")
# What a client may try in order to pass as someone else; X_Auth_Subject is the CGI-mangling twin.
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


def _sidecar_only(text: str) -> str:
    """The shipped config minus its header_mutation filter: the sidecar's own stripping must suffice."""
    start = text.index("          - name: envoy.filters.http.header_mutation")
    end = text.index("          # 2. Ask the sidecar")
    return text[:start] + text[end:]


@pytest.fixture(scope="module")
def envoy_sidecar_only(sidecar: Sidecar, upstream: RecordingUpstream) -> Iterator[RunningProxy]:
    proxy = start_envoy(sidecar.port, upstream.port, edit=_sidecar_only, name="envoy-sidecar-only")
    yield proxy
    proxy.stop()


@pytest.fixture(scope="module")
def envoy_naive_authz(upstream: RecordingUpstream) -> Iterator[RunningProxy]:
    """The shipped config in front of an authz service that allows everything and strips nothing."""
    with RecordingUpstream() as naive:
        proxy = start_envoy(naive.port, upstream.port, name="envoy-naive-authz")
        yield proxy
        proxy.stop()


@pytest.fixture(params=["shipped", "sidecar-only"])
def any_envoy(request: pytest.FixtureRequest) -> RunningProxy:
    return request.getfixturevalue("envoy" if request.param == "shipped" else "envoy_sidecar_only")


@pytest.fixture(scope="module")
def envoy_hung_authz(upstream: RecordingUpstream) -> Iterator[RunningProxy]:
    """The shipped config in front of an authorization service that accepts and never answers."""
    with SilentServer() as silent:
        proxy = start_envoy(silent.port, upstream.port, name="envoy-hung-authz")
        yield proxy
        proxy.stop()


# --- allow -------------------------------------------------------------------------------


def test_allow_reaches_upstream_with_identity(envoy: RunningProxy, upstream: RecordingUpstream, keys: Keys,
                                              sidecar: Sidecar, client: httpx.Client) -> None:
    token = mark()
    r = client.get(f"{envoy.url}/items/{token}?page=2&sort=a", headers=key(keys.reader))
    assert r.status_code == 200 and r.headers[UPSTREAM_MARK] == "1"
    [seen] = upstream.requests(token)
    assert (seen.method, seen.target) == ("GET", f"/items/{token}?page=2&sort=a")
    assert seen.values("x-auth-subject") == ["apikey:reader"]
    assert seen.values("x-auth-scopes") == ["api:read"]
    assert seen.values("x-auth-issuer") == ["zerotrust:api-key"]
    assert seen.values("x-zerotrust-decision-id") == [r.headers["x-zerotrust-decision-id"]]
    record = sidecar.decision(r.headers["x-zerotrust-decision-id"])
    assert record is not None and (record["method"], record["path"], record["allow"]) == ("GET", f"/items/{token}", True)


@pytest.mark.parametrize(("who", "method", "status"), [
    ("reader", "GET", 200), ("reader", "HEAD", 200), ("reader", "POST", 403), ("reader", "DELETE", 403),
    ("writer", "POST", 200), ("writer", "PUT", 200), ("writer", "DELETE", 200),
])
def test_the_original_method_is_judged(envoy: RunningProxy, upstream: RecordingUpstream, keys: Keys,
                                       client: httpx.Client, who: str, method: str, status: int) -> None:
    token = mark()
    body = b'{"n":1}' if method in ("POST", "PUT") else None
    r = client.request(method, f"{envoy.url}/items/{token}", headers=key(getattr(keys, who)), content=body)
    assert r.status_code == status
    if status == 200:
        [seen] = upstream.requests(token)
        assert seen.method == method and seen.body == (body or b"")  # the check never consumed the body
    else:
        assert 'error="insufficient_scope"' in r.headers["www-authenticate"]
        assert 'scope="api:write"' in r.headers["www-authenticate"]
        assert_never_reached(upstream, token, r)


def test_api_key_as_bearer_token(envoy: RunningProxy, upstream: RecordingUpstream, keys: Keys,
                                 client: httpx.Client) -> None:
    token = mark()
    r = client.get(f"{envoy.url}/items/{token}", headers={"Authorization": f"Bearer {keys.writer}"})
    assert r.status_code == 200
    assert upstream.requests(token)[0].values("x-auth-subject") == ["apikey:writer"]


def test_forged_identity_replaced_on_authenticated_allow(any_envoy: RunningProxy, upstream: RecordingUpstream,
                                                         keys: Keys, client: httpx.Client) -> None:
    token = mark()
    r = client.get(f"{any_envoy.url}/items/{token}", headers=[("X-API-Key", keys.reader), *FORGED])
    assert r.status_code == 200
    [seen] = upstream.requests(token)
    assert seen.values("x-auth-subject") == ["apikey:reader"]
    assert seen.values("x-auth-scopes") == ["api:read"]
    assert seen.values("x-auth-issuer") == ["zerotrust:api-key"]
    assert [k for k, _ in seen.headers if "_" in k] == []  # no underscore twin got through
    assert seen.values("x-zerotrust-decision-id") == [r.headers["x-zerotrust-decision-id"]]


def test_forged_identity_removed_on_anonymous_allow(any_envoy: RunningProxy, upstream: RecordingUpstream,
                                                    client: httpx.Client) -> None:
    token = mark()
    r = client.get(f"{any_envoy.url}/public/{token}", headers=FORGED)
    assert r.status_code == 200
    [seen] = upstream.requests(token)
    assert [k for k, _ in seen.headers if k.lower().replace("_", "-") in IDENTITY] == []
    assert "forged" not in seen.values("x-zerotrust-decision-id")


def test_config_alone_strips_forged_identity(envoy_naive_authz: RunningProxy, upstream: RecordingUpstream,
                                            client: httpx.Client) -> None:
    token = mark()
    r = client.get(f"{envoy_naive_authz.url}/items/{token}", headers=FORGED)
    assert r.status_code == 200
    [seen] = upstream.requests(token)
    assert [k for k, _ in seen.headers if k.lower().replace("_", "-") in IDENTITY] == []
    assert "forged" not in seen.values("x-zerotrust-decision-id")


# --- deny --------------------------------------------------------------------------------


def test_no_credential_is_401_with_a_bare_challenge(envoy: RunningProxy, upstream: RecordingUpstream,
                                                    client: httpx.Client) -> None:
    token = mark()
    r = client.get(f"{envoy.url}/items/{token}")
    assert r.status_code == 401
    assert r.headers.get_list("www-authenticate") == ['Bearer realm="zerotrust"']  # RFC 6750 3.1: no error code
    assert r.headers["content-type"] == "application/json" and r.json()["decision_id"]
    assert r.headers["x-zerotrust-decision-id"] == r.json()["decision_id"]
    assert_never_reached(upstream, token, r)


@pytest.mark.parametrize("header", ["X-API-Key", "Authorization"])
def test_unknown_key_is_401_invalid_token(envoy: RunningProxy, upstream: RecordingUpstream, client: httpx.Client,
                                          header: str) -> None:
    token = mark()
    wrong = generate_key("zt")  # well formed, checksum valid, not in the database
    r = client.get(f"{envoy.url}/items/{token}", headers={header: wrong if header == "X-API-Key" else f"Bearer {wrong}"})
    assert r.status_code == 401
    assert 'error="invalid_token"' in r.headers["www-authenticate"]
    assert r.json()["error"] == "invalid_token"
    assert_never_reached(upstream, token, r)


def test_missing_scope_is_403_with_the_scopes_needed(envoy: RunningProxy, upstream: RecordingUpstream, keys: Keys,
                                                     client: httpx.Client) -> None:
    token = mark()
    r = client.get(f"{envoy.url}/admin/{token}", headers=key(keys.reader))
    assert r.status_code == 403
    challenge = r.headers["www-authenticate"]
    assert 'error="insufficient_scope"' in challenge and 'scope="api:read api:admin"' in challenge
    assert_never_reached(upstream, token, r)
    assert client.get(f"{envoy.url}/admin/{token}", headers=key(keys.admin)).status_code == 200


def test_two_credentials_are_400(envoy: RunningProxy, upstream: RecordingUpstream, keys: Keys,
                                 client: httpx.Client) -> None:
    token = mark()
    r = client.get(f"{envoy.url}/items/{token}",
                   headers={"X-API-Key": keys.reader, "Authorization": f"Bearer {keys.admin}"})
    assert r.status_code == 400
    assert 'error="invalid_request"' in r.headers["www-authenticate"]
    assert_never_reached(upstream, token, r)


# Envoy normalises first, so the sidecar judges exactly the path the upstream then gets;
# escaped slashes are refused by Envoy itself before any filter runs. RFC 3986 dot removal
# comes before slash merging: "/public//..//admin" is "/public/admin", for both of them.
@pytest.mark.parametrize(("target", "who", "status", "judged"), [
    ("/public/../admin/{t}", None, 401, "/admin/{t}"),
    ("/public/%2e%2e/admin/{t}", None, 401, "/admin/{t}"),
    ("/public/%2E%2E/admin/{t}", "reader", 403, "/admin/{t}"),
    ("/public/./../admin/{t}", "reader", 403, "/admin/{t}"),
    ("/public/..;/admin/{t}", "admin", 200, "/admin/{t}"),  # Envoy treats Tomcat's "..;" as ".."
    ("/public//..//admin/{t}", None, 200, "/public/admin/{t}"),
    ("//admin//{t}", None, 401, "/admin/{t}"),
    ("/public/..%2Fadmin/{t}", None, 400, None),
    ("/public/..%5Cadmin/{t}", None, 400, None),
    ("/public/%2e%2e%2fadmin/{t}", None, 400, None),
])
def test_path_tricks_are_judged_as_the_upstream_gets_them(
        envoy: RunningProxy, upstream: RecordingUpstream, keys: Keys, sidecar: Sidecar,
        target: str, who: str | None, status: int, judged: str | None) -> None:
    token = mark()
    r = send_raw(envoy.port, "GET", target.format(t=token), key(getattr(keys, who)) if who else {})
    assert r.status == status
    if status == 200:
        assert [s.target for s in upstream.requests(token)] == [judged.format(t=token)]
    else:
        assert r.values(UPSTREAM_MARK) == [] and upstream.requests(token) == []
    if judged is None:
        assert r.values("x-zerotrust-decision-id") == []  # refused by Envoy, the sidecar was never asked
    else:
        record = sidecar.decision(r.values("x-zerotrust-decision-id")[0])
        assert record is not None and record["path"] == judged.format(t=token)


def test_throttled_client_gets_429_even_with_a_good_key(envoy: RunningProxy, upstream: RecordingUpstream,
                                                        keys: Keys, client: httpx.Client) -> None:
    token = mark()
    statuses = []
    for _ in range(10):  # the throttle allows 5 failures per second per client
        statuses.append(client.get(f"{envoy.url}/items/{token}", headers=key(generate_key("zt"))).status_code)
        if statuses[-1] == 429:
            break
    assert statuses[0] == 401 and statuses[-1] == 429
    r = client.get(f"{envoy.url}/items/{token}", headers=key(keys.reader))
    assert r.status_code == 429 and r.headers["x-zerotrust-status"] == "429"
    assert_never_reached(upstream, token, r)
    time.sleep(1.1)  # let the window pass: the other tests share this client address
    assert client.get(f"{envoy.url}/items/{token}", headers=key(keys.reader)).status_code == 200


def test_hung_sidecar_times_out_closed(envoy_hung_authz: RunningProxy, upstream: RecordingUpstream, keys: Keys,
                                        client: httpx.Client) -> None:
    token = mark()
    started = time.monotonic()
    r = client.get(f"{envoy_hung_authz.url}/items/{token}", headers=key(keys.reader))
    assert r.status_code == 503
    assert time.monotonic() - started < 3  # the config's 1 s check timeout, not the client's 5 s
    assert_never_reached(upstream, token, r)


# --- the sidecar goes away (keep last: it restarts the shared sidecar) ----------------------


def test_sidecar_down_fails_closed_and_recovers(envoy: RunningProxy, upstream: RecordingUpstream, keys: Keys,
                                                sidecar: Sidecar, client: httpx.Client) -> None:
    token = mark()
    sidecar.stop()
    try:
        for path in (f"/items/{token}", f"/public/{token}"):  # no answer is no allow, not even for public routes
            r = client.get(f"{envoy.url}{path}", headers=key(keys.reader))
            assert r.status_code == 503  # status_on_error
            assert_never_reached(upstream, token, r)
    finally:
        sidecar.start()
    deadline = time.monotonic() + 10
    while (r := client.get(f"{envoy.url}/items/{token}", headers=key(keys.reader))).status_code != 200:
        assert r.status_code == 503 and time.monotonic() < deadline
        time.sleep(0.1)
    assert len(upstream.requests(token)) == 1
