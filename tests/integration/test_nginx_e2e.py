"""nginx 1.22 ``auth_request`` in front of a recording upstream, asking the real sidecar.

nginx runs ``sidecar/nginx/nginx.conf`` and its three ``zerotrust-*.conf`` includes
exactly as shipped. nginx itself only passes 2xx/401/403 through ``auth_request``
and turns anything else into 500; these tests pin the mapping back to the sidecar's
real status (``X-Zerotrust-Status``) and the 503 when the sidecar does not answer.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.integration.conftest import Keys, Sidecar
from tests.support.proxies import RunningProxy, send_raw, start_nginx
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


def assert_denied(r: httpx.Response, status: int, upstream: RecordingUpstream, token: str) -> None:
    assert r.status_code == status
    assert r.headers.get(UPSTREAM_MARK) is None and upstream.requests(token) == []
    assert r.headers["content-type"] == "application/json" and r.headers["cache-control"] == "no-store"
    assert r.json()["decision_id"] == r.headers.get("x-zerotrust-decision-id", "")


@pytest.fixture(scope="module")
def nginx_naive_authz(upstream: RecordingUpstream) -> Iterator[RunningProxy]:
    """The shipped config in front of an authz service that allows everything and sets no identity."""
    with RecordingUpstream() as naive:
        proxy = start_nginx(naive.port, upstream.port, name="nginx-naive-authz")
        yield proxy
        proxy.stop()


@pytest.fixture(scope="module")
def nginx_hung_authz(upstream: RecordingUpstream) -> Iterator[RunningProxy]:
    """The shipped config in front of an authorization service that accepts and never answers."""
    with SilentServer() as silent:
        proxy = start_nginx(silent.port, upstream.port, name="nginx-hung-authz")
        yield proxy
        proxy.stop()


# --- allow -------------------------------------------------------------------------------


def test_allow_reaches_upstream_with_identity(nginx: RunningProxy, upstream: RecordingUpstream, keys: Keys,
                                              sidecar: Sidecar, client: httpx.Client) -> None:
    token = mark()
    r = client.get(f"{nginx.url}/items/{token}?page=2&sort=a", headers=key(keys.reader))
    assert r.status_code == 200 and r.headers[UPSTREAM_MARK] == "1"
    [seen] = upstream.requests(token)
    assert (seen.method, seen.target) == ("GET", f"/items/{token}?page=2&sort=a")
    assert seen.values("x-auth-subject") == ["apikey:reader"]
    assert seen.values("x-auth-scopes") == ["api:read"]
    assert seen.values("x-auth-issuer") == ["zerotrust:api-key"]
    [decision_id] = seen.values("x-zerotrust-decision-id")  # nginx hands it to the upstream for its logs
    record = sidecar.decision(decision_id)
    assert record is not None and (record["method"], record["path"], record["allow"]) == ("GET", f"/items/{token}", True)


@pytest.mark.parametrize(("who", "method", "status"), [
    ("reader", "GET", 200), ("reader", "HEAD", 200), ("reader", "POST", 403), ("reader", "DELETE", 403),
    ("writer", "POST", 200), ("writer", "PUT", 200), ("writer", "DELETE", 200),
])
def test_the_original_method_is_judged(nginx: RunningProxy, upstream: RecordingUpstream, keys: Keys,
                                       client: httpx.Client, who: str, method: str, status: int) -> None:
    # Without proxy_method the subrequest would be a GET and a reader could write.
    token = mark()
    body = b'{"n":1}' if method in ("POST", "PUT") else None
    r = client.request(method, f"{nginx.url}/items/{token}", headers=key(getattr(keys, who)), content=body)
    assert r.status_code == status
    if status == 200:
        [seen] = upstream.requests(token)
        assert seen.method == method and seen.body == (body or b"")  # the check never consumed the body
    else:
        assert r.headers.get_list("www-authenticate") == [
            'Bearer realm="zerotrust", error="insufficient_scope", '
            'error_description="The access token lacks a required scope", scope="api:write"']
        assert upstream.requests(token) == []


def test_api_key_as_bearer_token(nginx: RunningProxy, upstream: RecordingUpstream, keys: Keys,
                                 client: httpx.Client) -> None:
    token = mark()
    r = client.get(f"{nginx.url}/items/{token}", headers={"Authorization": f"Bearer {keys.writer}"})
    assert r.status_code == 200
    assert upstream.requests(token)[0].values("x-auth-subject") == ["apikey:writer"]


def test_forged_identity_replaced_on_authenticated_allow(nginx: RunningProxy, upstream: RecordingUpstream,
                                                         keys: Keys, sidecar: Sidecar, client: httpx.Client) -> None:
    token = mark()
    r = client.get(f"{nginx.url}/items/{token}", headers=[("X-API-Key", keys.reader), *FORGED])
    assert r.status_code == 200
    [seen] = upstream.requests(token)
    assert seen.values("x-auth-subject") == ["apikey:reader"]
    assert seen.values("x-auth-scopes") == ["api:read"]
    assert seen.values("x-auth-issuer") == ["zerotrust:api-key"]
    assert [k for k, _ in seen.headers if "_" in k] == []  # no underscore twin got through
    [decision_id] = seen.values("x-zerotrust-decision-id")
    assert sidecar.decision(decision_id) is not None


def test_forged_identity_removed_on_anonymous_allow(nginx: RunningProxy, upstream: RecordingUpstream,
                                                    client: httpx.Client) -> None:
    token = mark()
    r = client.get(f"{nginx.url}/public/{token}", headers=FORGED)
    assert r.status_code == 200
    [seen] = upstream.requests(token)
    assert [k for k, _ in seen.headers if k.lower().replace("_", "-") in IDENTITY] == []
    assert "forged" not in seen.values("x-zerotrust-decision-id")


def test_config_alone_strips_forged_identity(nginx_naive_authz: RunningProxy, upstream: RecordingUpstream,
                                            client: httpx.Client) -> None:
    token = mark()
    r = client.get(f"{nginx_naive_authz.url}/items/{token}", headers=FORGED)
    assert r.status_code == 200
    [seen] = upstream.requests(token)
    assert [k for k, _ in seen.headers if k.lower().replace("_", "-") in IDENTITY] == []
    assert "forged" not in seen.values("x-zerotrust-decision-id")


def test_the_check_location_is_internal(nginx: RunningProxy, upstream: RecordingUpstream, keys: Keys,
                                        client: httpx.Client) -> None:
    r = client.get(f"{nginx.url}/_zerotrust/authz", headers=key(keys.admin))
    assert r.status_code == 404 and r.headers.get(UPSTREAM_MARK) is None


# --- deny --------------------------------------------------------------------------------


def test_no_credential_is_401_with_one_bare_challenge(nginx: RunningProxy, upstream: RecordingUpstream,
                                                      client: httpx.Client) -> None:
    token = mark()
    r = client.get(f"{nginx.url}/items/{token}")
    assert_denied(r, 401, upstream, token)
    # nginx copies the 401 challenge itself; the named location must not add a second one.
    assert r.headers.get_list("www-authenticate") == ['Bearer realm="zerotrust"']


@pytest.mark.parametrize("header", ["X-API-Key", "Authorization"])
def test_unknown_key_is_401_invalid_token(nginx: RunningProxy, upstream: RecordingUpstream, client: httpx.Client,
                                          header: str) -> None:
    token = mark()
    wrong = generate_key("zt")
    r = client.get(f"{nginx.url}/items/{token}", headers={header: wrong if header == "X-API-Key" else f"Bearer {wrong}"})
    assert_denied(r, 401, upstream, token)
    [challenge] = r.headers.get_list("www-authenticate")
    assert 'error="invalid_token"' in challenge


def test_missing_scope_is_403_with_the_challenge(nginx: RunningProxy, upstream: RecordingUpstream, keys: Keys,
                                                 client: httpx.Client) -> None:
    # auth_request does not copy WWW-Authenticate on 403: zerotrust-server.conf must.
    token = mark()
    r = client.get(f"{nginx.url}/admin/{token}", headers=key(keys.reader))
    assert_denied(r, 403, upstream, token)
    [challenge] = r.headers.get_list("www-authenticate")
    assert 'error="insufficient_scope"' in challenge and 'scope="api:read api:admin"' in challenge
    assert client.get(f"{nginx.url}/admin/{token}", headers=key(keys.admin)).status_code == 200


def test_two_credentials_are_400_not_500(nginx: RunningProxy, upstream: RecordingUpstream, keys: Keys,
                                         client: httpx.Client) -> None:
    token = mark()
    r = client.get(f"{nginx.url}/items/{token}",
                   headers={"X-API-Key": keys.reader, "Authorization": f"Bearer {keys.admin}"})
    assert_denied(r, 400, upstream, token)
    assert 'error="invalid_request"' in r.headers["www-authenticate"]


# nginx forwards the raw request URI to both the sidecar and the upstream (proxy_pass without a
# URI part), so the sidecar's strict mode refuses every non-canonical form with 400.
@pytest.mark.parametrize("target", [
    "/public/../admin/{t}", "/public/%2e%2e/admin/{t}", "/public/./admin/{t}", "//admin/{t}",
    "/public//admin/{t}", "/public/..%2Fadmin/{t}", "/public/..%5Cadmin/{t}", "/public/%2E/admin/{t}",
])
def test_non_canonical_paths_are_400_and_never_reach_upstream(nginx: RunningProxy, upstream: RecordingUpstream,
                                                              keys: Keys, target: str) -> None:
    token = mark()
    r = send_raw(nginx.port, "GET", target.format(t=token), key(keys.admin))
    assert r.status == 400
    assert r.values(UPSTREAM_MARK) == [] and upstream.requests(token) == []
    assert r.values("x-zerotrust-decision-id")


def test_tomcat_path_parameter_dot_segment_is_refused(nginx: RunningProxy, upstream: RecordingUpstream) -> None:
    token = mark()
    r = send_raw(nginx.port, "GET", f"/public/..;/admin/{token}")
    assert r.status == 400 and upstream.requests(token) == []


def test_throttled_client_gets_429_not_500(nginx: RunningProxy, upstream: RecordingUpstream, keys: Keys,
                                           sidecar: Sidecar, client: httpx.Client) -> None:
    # The sidecar trusts 127.0.0.0/8 as proxies, and the test client is on loopback too, so a
    # forwarded address gives this test a throttle bucket of its own.
    token = mark()
    peer = f"203.0.113.{secrets.randbelow(250) + 1}"
    statuses = []
    for _ in range(10):
        r = client.get(f"{nginx.url}/items/{token}", headers={"X-API-Key": generate_key("zt"), "X-Forwarded-For": peer})
        statuses.append(r.status_code)
        if r.status_code == 429:
            break
    assert statuses[0] == 401 and statuses[-1] == 429
    r = client.get(f"{nginx.url}/items/{token}", headers={"X-API-Key": keys.reader, "X-Forwarded-For": peer})
    assert_denied(r, 429, upstream, token)
    record = sidecar.decision(r.headers["x-zerotrust-decision-id"])
    assert record is not None and record["peer"] == peer


def test_hung_sidecar_times_out_closed(nginx_hung_authz: RunningProxy, upstream: RecordingUpstream, keys: Keys,
                                        client: httpx.Client) -> None:
    token = mark()
    started = time.monotonic()
    r = client.get(f"{nginx_hung_authz.url}/items/{token}", headers=key(keys.reader))
    assert r.status_code == 503
    assert time.monotonic() - started < 3  # the config's 1 s check timeout, not the client's 5 s
    assert r.headers.get(UPSTREAM_MARK) is None and upstream.requests(token) == []


# --- the sidecar goes away (keep last: it restarts the shared sidecar) ----------------------


def test_sidecar_down_is_503_and_recovers(nginx: RunningProxy, upstream: RecordingUpstream, keys: Keys,
                                          sidecar: Sidecar, client: httpx.Client) -> None:
    token = mark()
    sidecar.stop()
    try:
        for path in (f"/items/{token}", f"/public/{token}"):
            r = client.get(f"{nginx.url}{path}", headers=key(keys.reader))
            assert r.status_code == 503 and r.json()["error"] == "temporarily_unavailable"
            assert r.headers.get(UPSTREAM_MARK) is None and upstream.requests(token) == []
            assert "www-authenticate" not in r.headers
    finally:
        sidecar.start()
    deadline = time.monotonic() + 10
    while (r := client.get(f"{nginx.url}/items/{token}", headers=key(keys.reader))).status_code != 200:
        assert r.status_code == 503 and time.monotonic() < deadline
        time.sleep(0.1)
    assert len(upstream.requests(token)) == 1
