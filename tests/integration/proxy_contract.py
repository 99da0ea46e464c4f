"""The contract every shipped proxy config keeps, written once for Envoy, nginx, Caddy and Traefik.

Each ``test_<proxy>_e2e.py`` defines a module-scoped ``proxy`` fixture (a ``ProxyUnderTest``:
the running proxy, the sidecar it asks, how to start another copy, and the few answers in
which proxies legitimately differ), star-imports ``__all__`` below and imports by name the
opt-in tests that apply to it. pytest collects imported test functions as the module's own
(``collect_imported_tests`` defaults to true), in import order and with that module's
fixtures, so every process still starts once per module. Every denial is also checked on
the upstream side: it must never have seen the request.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.integration.conftest import Keys

pytest.register_assert_rewrite("tests.support.proxy_contract")  # its helpers' asserts report their values

from tests.support.proxy_contract import (IDENTITY, PathCase, ProxyUnderTest,  # noqa: E402
                                          assert_denied, assert_never_reached, assert_unavailable, identity_like,
                                          key, mark)
from tests.support.proxies import RunningProxy, send_raw  # noqa: E402
from tests.support.upstream import UPSTREAM_MARK, RecordingUpstream, SilentServer  # noqa: E402
from zerotrust.credentials.api_key_format import generate_key  # noqa: E402

# The fixtures and the tests every proxy keeps, in the order they run. Opt-ins, imported by name:
# test_throttled_client_gets_429_even_with_a_good_key, test_hung_sidecar_times_out_closed and, last
# in the module because it restarts the sidecar, test_sidecar_down_fails_closed_and_recovers.
__all__ = [
    "proxy_variant", "naive_authz", "naive_proxy", "hung_proxy",
    "test_allow_reaches_upstream_with_identity", "test_the_original_method_is_judged",
    "test_a_writer_posts_and_the_body_reaches_only_the_upstream", "test_api_key_as_bearer_token",
    "test_forged_identity_replaced_on_authenticated_allow", "test_forged_identity_removed_on_anonymous_allow",
    "test_config_alone_strips_forged_identity", "test_no_credential_is_401_with_a_bare_challenge",
    "test_unknown_key_is_401_invalid_token", "test_missing_scope_is_403_with_the_scopes_needed",
    "test_two_credentials_are_400", "test_path_tricks_are_judged_as_the_upstream_gets_them",
]

# --- variants of the proxy under test, started once per module and only if a test asks ----------


@pytest.fixture()
def proxy_variant(proxy: ProxyUnderTest) -> ProxyUnderTest:
    """Every config variant that must strip forged identity; a module overrides this to add some."""
    return proxy


@pytest.fixture(scope="module")
def naive_authz() -> Iterator[RecordingUpstream]:
    """An authz service that allows everything, sets no identity, and records the checks it gets."""
    with RecordingUpstream() as naive:
        yield naive


@pytest.fixture(scope="module")
def naive_proxy(proxy: ProxyUnderTest, naive_authz: RecordingUpstream,
                upstream: RecordingUpstream) -> Iterator[RunningProxy]:
    """The shipped config in front of the naive authz service: the config alone must protect."""
    running = proxy.start(naive_authz.port, upstream.port, name=f"{proxy.running.name}-naive-authz")
    yield running
    running.stop()


@pytest.fixture(scope="module")
def hung_proxy(proxy: ProxyUnderTest, upstream: RecordingUpstream) -> Iterator[RunningProxy]:
    """The shipped config in front of an authorization service that accepts and never answers."""
    with SilentServer() as silent:
        running = proxy.start(silent.port, upstream.port, name=f"{proxy.running.name}-hung-authz")
        yield running
        running.stop()


# --- allow -------------------------------------------------------------------------------------


def test_allow_reaches_upstream_with_identity(proxy: ProxyUnderTest, upstream: RecordingUpstream, keys: Keys,
                                              client: httpx.Client) -> None:
    token = mark()
    r = client.get(f"{proxy.url}/items/{token}?page=2&sort=a", headers=key(keys.reader))
    assert r.status_code == 200 and r.headers[UPSTREAM_MARK] == "1"
    [seen] = upstream.requests(token)
    assert (seen.method, seen.target) == ("GET", f"/items/{token}?page=2&sort=a")
    assert seen.values("x-auth-subject") == ["apikey:reader"]
    assert seen.values("x-auth-scopes") == ["api:read"]
    assert seen.values("x-auth-issuer") == ["zerotrust:api-key"]
    [decision_id] = seen.values("x-zerotrust-decision-id")  # the upstream gets it for its logs
    if proxy.decision_id_on_allow:
        assert r.headers["x-zerotrust-decision-id"] == decision_id
    record = proxy.sidecar.decision(decision_id)
    assert record is not None and (record["method"], record["path"], record["allow"]) == ("GET", f"/items/{token}", True)


_BODY = b'{"n":1}'


@pytest.mark.parametrize(("who", "method", "status", "body"), [
    ("reader", "GET", 200, None), ("reader", "HEAD", 200, None), ("reader", "POST", 403, _BODY),
    ("reader", "PUT", 403, _BODY), ("reader", "PATCH", 403, _BODY), ("reader", "DELETE", 403, None),
    ("reader", "DELETE", 403, _BODY), ("writer", "POST", 200, _BODY), ("writer", "PUT", 200, _BODY),
    ("writer", "DELETE", 200, None),
], ids=lambda v: "body" if v == _BODY else "no-body" if v is None else None)
def test_the_original_method_is_judged(proxy: ProxyUnderTest, upstream: RecordingUpstream, keys: Keys,
                                       client: httpx.Client, who: str, method: str, status: int,
                                       body: bytes | None) -> None:
    # nginx's subrequest and Caddy's and Traefik's checks are GETs: a reader's write must still be a write.
    token = mark()
    r = client.request(method, f"{proxy.url}/items/{token}", headers=key(getattr(keys, who)), content=body)
    if status == 200:
        assert r.status_code == 200
        [seen] = upstream.requests(token)
        assert seen.method == method and seen.body == (body or b"")  # the check never consumed the body
        record = proxy.sidecar.decision(seen.values("x-zerotrust-decision-id")[0])
    else:
        assert_denied(r, status, upstream, token)
        if proxy.relays_denial:
            assert r.json()["error"] == "insufficient_scope"
        assert r.headers.get_list("www-authenticate") == [
            'Bearer realm="zerotrust", error="insufficient_scope", '
            'error_description="The access token lacks a required scope", scope="api:write"']
        record = proxy.sidecar.decision(r.headers["x-zerotrust-decision-id"])
    assert record is not None and (record["method"], record["path"]) == (method, f"/items/{token}")


def test_a_writer_posts_and_the_body_reaches_only_the_upstream(proxy: ProxyUnderTest, upstream: RecordingUpstream,
                                                              keys: Keys, client: httpx.Client) -> None:
    token = mark()
    body = b'{"n":1,"pad":"' + secrets.token_hex(64 * 1024).encode() + b'"}'  # 128 kB, more than one read
    r = client.post(f"{proxy.url}/items/{token}?v=1", content=body,
                    headers={**key(keys.writer), "Content-Type": "application/json"})
    assert r.status_code == 200 and r.headers[UPSTREAM_MARK] == "1"
    [seen] = upstream.requests(token)
    assert (seen.method, seen.target, seen.body) == ("POST", f"/items/{token}?v=1", body)
    assert seen.values("x-auth-subject") == ["apikey:writer"]
    assert seen.values("x-auth-scopes") == ["api:read api:write"]
    record = proxy.sidecar.decision(seen.values("x-zerotrust-decision-id")[0])
    assert record is not None
    assert (record["method"], record["path"], record["allow"]) == ("POST", f"/items/{token}", True)


def test_api_key_as_bearer_token(proxy: ProxyUnderTest, upstream: RecordingUpstream, keys: Keys,
                                 client: httpx.Client) -> None:
    token = mark()
    r = client.get(f"{proxy.url}/items/{token}", headers={"Authorization": f"Bearer {keys.writer}"})
    assert r.status_code == 200
    assert upstream.requests(token)[0].values("x-auth-subject") == ["apikey:writer"]


# --- forged identity -----------------------------------------------------------------------------


def test_forged_identity_replaced_on_authenticated_allow(proxy_variant: ProxyUnderTest, upstream: RecordingUpstream,
                                                         keys: Keys, client: httpx.Client) -> None:
    token = mark()
    r = client.get(f"{proxy_variant.url}/items/{token}", headers=[("X-API-Key", keys.reader), *proxy_variant.forged])
    assert r.status_code == 200
    [seen] = upstream.requests(token)
    assert seen.values("x-auth-subject") == ["apikey:reader"]
    assert seen.values("x-auth-scopes") == ["api:read"]
    assert seen.values("x-auth-issuer") == ["zerotrust:api-key"]
    assert [k for k, _ in seen.headers if "_" in k] == []  # no underscore twin got through
    names = [k.lower() for k, _ in identity_like(seen.headers)]  # each once, no alias left
    assert sorted(names) == sorted([*IDENTITY, "x-zerotrust-decision-id"])
    [decision_id] = seen.values("x-zerotrust-decision-id")
    assert decision_id != "forged" and proxy_variant.sidecar.decision(decision_id) is not None
    if proxy_variant.decision_id_on_allow:
        assert r.headers["x-zerotrust-decision-id"] == decision_id


def assert_no_forged_identity(r: httpx.Response, upstream: RecordingUpstream, token: str) -> None:
    assert r.status_code == 200
    [seen] = upstream.requests(token)
    assert [(k, v) for k, v in identity_like(seen.headers) if k.lower() != "x-zerotrust-decision-id"] == []
    assert "forged" not in seen.values("x-zerotrust-decision-id")


def test_forged_identity_removed_on_anonymous_allow(proxy_variant: ProxyUnderTest, upstream: RecordingUpstream,
                                                    client: httpx.Client) -> None:
    # Caddy 2.6's copy_headers would put its own placeholder text here: the Caddyfile must not use it.
    token = mark()
    r = client.get(f"{proxy_variant.url}/public/{token}", headers=proxy_variant.forged)
    assert_no_forged_identity(r, upstream, token)


def test_config_alone_strips_forged_identity(proxy: ProxyUnderTest, naive_proxy: RunningProxy,
                                            upstream: RecordingUpstream, client: httpx.Client) -> None:
    for path in ("items", "public"):  # the naive service allows both; only the config can strip
        token = mark()
        r = client.get(f"{naive_proxy.url}/{path}/{token}", headers=proxy.forged)
        assert_no_forged_identity(r, upstream, token)


# --- deny ----------------------------------------------------------------------------------------


def test_no_credential_is_401_with_a_bare_challenge(proxy: ProxyUnderTest, upstream: RecordingUpstream,
                                                    client: httpx.Client) -> None:
    token = mark()
    r = client.get(f"{proxy.url}/items/{token}")
    assert_denied(r, 401, upstream, token)
    # RFC 6750 3.1: no error code; and one challenge (nginx's named location must not add a second).
    assert r.headers.get_list("www-authenticate") == ['Bearer realm="zerotrust"']


@pytest.mark.parametrize("header", ["X-API-Key", "Authorization"])
def test_unknown_key_is_401_invalid_token(proxy: ProxyUnderTest, upstream: RecordingUpstream, client: httpx.Client,
                                          header: str) -> None:
    token = mark()
    wrong = generate_key("zt")  # well formed, checksum valid, not in the database
    r = client.get(f"{proxy.url}/items/{token}", headers={header: wrong if header == "X-API-Key" else f"Bearer {wrong}"})
    assert_denied(r, 401, upstream, token)
    [challenge] = r.headers.get_list("www-authenticate")
    assert 'error="invalid_token"' in challenge
    if proxy.relays_denial:
        assert r.json()["error"] == "invalid_token"


def test_missing_scope_is_403_with_the_scopes_needed(proxy: ProxyUnderTest, upstream: RecordingUpstream, keys: Keys,
                                                     client: httpx.Client) -> None:
    # nginx's auth_request does not copy WWW-Authenticate on 403: zerotrust-server.conf must.
    token = mark()
    r = client.get(f"{proxy.url}/admin/{token}", headers=key(keys.reader))
    assert_denied(r, 403, upstream, token)
    [challenge] = r.headers.get_list("www-authenticate")
    assert 'error="insufficient_scope"' in challenge and 'scope="api:read api:admin"' in challenge
    assert client.get(f"{proxy.url}/admin/{token}", headers=key(keys.admin)).status_code == 200


def test_two_credentials_are_400(proxy: ProxyUnderTest, upstream: RecordingUpstream, keys: Keys,
                                 client: httpx.Client) -> None:
    # nginx turns any auth_request status but 2xx/401/403 into 500: the config maps it back.
    token = mark()
    r = client.get(f"{proxy.url}/items/{token}",
                   headers={"X-API-Key": keys.reader, "Authorization": f"Bearer {keys.admin}"})
    assert_denied(r, 400, upstream, token)
    assert 'error="invalid_request"' in r.headers["www-authenticate"]


def test_path_tricks_are_judged_as_the_upstream_gets_them(proxy: ProxyUnderTest, upstream: RecordingUpstream,
                                                          keys: Keys, path_case: PathCase) -> None:
    # Each module lists its path_case rows: what its proxy does to a path is its own (see there).
    token = mark()
    credential = key(getattr(keys, path_case.who)) if path_case.who else {}
    r = send_raw(proxy.port, "GET", path_case.target.format(t=token), credential)
    assert r.status == path_case.status
    judged = path_case.judged.format(t=token) if path_case.judged else None
    decision_ids = r.values("x-zerotrust-decision-id")
    if r.status == 200:
        [seen] = upstream.requests(token)
        assert seen.target == judged
        if not proxy.decision_id_on_allow:
            decision_ids = seen.values("x-zerotrust-decision-id")
    else:
        assert r.values(UPSTREAM_MARK) == [] and upstream.requests(token) == []
    if path_case.asked is False:
        assert decision_ids == []  # refused by the proxy, the sidecar was never asked
    elif path_case.asked:
        record = proxy.sidecar.decision(decision_ids[0])
        assert record is not None and (judged is None or record["path"] == judged)


def test_throttled_client_gets_429_even_with_a_good_key(proxy: ProxyUnderTest, upstream: RecordingUpstream,
                                                        keys: Keys, client: httpx.Client) -> None:
    token = mark()
    peer = f"203.0.113.{secrets.randbelow(250) + 1}"
    # See ProxyUnderTest.client_forwarded_for: with it this test has a throttle bucket of its own.
    forwarded = {"X-Forwarded-For": peer} if proxy.client_forwarded_for else {}
    statuses = []
    for _ in range(10):  # the throttle allows 5 failures per second per client
        r = client.get(f"{proxy.url}/items/{token}", headers={**key(generate_key("zt")), **forwarded})
        statuses.append(r.status_code)
        if r.status_code == 429:
            break
    assert statuses[0] == 401 and statuses[-1] == 429
    r = client.get(f"{proxy.url}/items/{token}", headers={**key(keys.reader), **forwarded})
    assert_denied(r, 429, upstream, token)
    if proxy.relays_denial:
        assert r.headers["x-zerotrust-status"] == "429"
    record = proxy.sidecar.decision(r.headers["x-zerotrust-decision-id"])
    assert record is not None and (not forwarded or record["peer"] == peer)
    if not forwarded:
        time.sleep(1.1)  # let the window pass: the other tests share this client address
        assert client.get(f"{proxy.url}/items/{token}", headers=key(keys.reader)).status_code == 200


# --- the sidecar does not answer -----------------------------------------------------------------


def test_hung_sidecar_times_out_closed(proxy: ProxyUnderTest, hung_proxy: RunningProxy, upstream: RecordingUpstream,
                                       keys: Keys, client: httpx.Client) -> None:
    token = mark()
    started = time.monotonic()
    r = client.get(f"{hung_proxy.url}/items/{token}", headers=key(keys.reader))
    assert_unavailable(proxy, r)
    assert time.monotonic() - started < 3  # the config's 1 s check timeout, not the client's 5 s
    assert_never_reached(upstream, token, r)


def test_sidecar_down_fails_closed_and_recovers(proxy: ProxyUnderTest, upstream: RecordingUpstream, keys: Keys,
                                                client: httpx.Client) -> None:
    # Import last: it stops and restarts the sidecar that the module's other tests share.
    token = mark()
    proxy.sidecar.stop()
    try:
        for path in (f"/items/{token}", f"/public/{token}"):  # no answer is no allow, not even for public routes
            r = client.get(f"{proxy.url}{path}", headers=key(keys.reader))
            assert_unavailable(proxy, r)
            assert_never_reached(upstream, token, r)
    finally:
        proxy.sidecar.start()
    deadline = time.monotonic() + 10
    while (r := client.get(f"{proxy.url}/items/{token}", headers=key(keys.reader))).status_code != 200:
        assert r.status_code == proxy.down_status and time.monotonic() < deadline
        time.sleep(0.1)
    assert len(upstream.requests(token)) == 1
