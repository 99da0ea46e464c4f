"""VaultClient and VaultKeyProvider against a scripted transport: retries, breaker,
error mapping, auth methods. The real server is exercised in tests/integration/test_vault*.py."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from typing import Any

import pytest
import requests
from requests.adapters import BaseAdapter

from zerotrust.config import VaultConfig
from zerotrust.errors import ConfigError, CryptoError, DependencyError
from zerotrust.keys.breaker import CircuitBreaker
from zerotrust.keys.transit import VaultKeyProvider
from zerotrust.keys.vault import VaultClient, VaultRejected

Handler = Callable[[requests.PreparedRequest], "tuple[int, Any] | Exception"]


class Scripted(BaseAdapter):
    """A requests transport that answers from a function and records every request."""

    def __init__(self, handler: Handler):
        super().__init__()
        self.handler = handler
        self.calls: list[requests.PreparedRequest] = []

    def send(self, request, **kwargs):  # type: ignore[no-untyped-def,override]
        self.calls.append(request)
        result = self.handler(request)
        if isinstance(result, Exception):
            raise result
        status, body = result
        resp = requests.Response()
        resp.status_code, resp.request, resp.url = status, request, request.url
        if status in (301, 302, 307, 308):
            resp.headers["Location"] = "http://127.0.0.1:9/steal"
        if body is not None:
            resp._content = json.dumps(body).encode() if not isinstance(body, bytes) else body
            resp.headers["Content-Type"] = "application/json" if not isinstance(body, bytes) else "text/plain"
        else:
            resp._content = b""
        return resp

    def close(self) -> None:
        pass

    def paths(self) -> list[str]:
        return [r.path_url for r in self.calls]


def make(handler: Handler, **cfg: Any) -> tuple[VaultClient, Scripted]:
    transport = Scripted(handler)
    session = requests.Session()
    session.mount("http://", transport)
    config = VaultConfig(**{"addr": "http://127.0.0.1:8200", "token": "s.test", **cfg})
    return VaultClient(config, session=session, renew=False, sleep=lambda s: None), transport


def lookup_ok(request: requests.PreparedRequest) -> tuple[int, Any] | None:
    if request.path_url == "/v1/auth/token/lookup-self":
        return 200, {"data": {"ttl": 0, "renewable": False}}
    return None


def test_sends_token_not_env_token_and_no_redirects(monkeypatch):
    monkeypatch.setenv("VAULT_TOKEN", "s.from-env")

    def handler(r):
        return lookup_ok(r) or (307, None)

    client, transport = make(handler)
    with pytest.raises(DependencyError):
        client.request("GET", "transit/keys/k")
    assert all(r.headers["X-Vault-Token"] == "s.test" for r in transport.calls)
    assert transport.paths() == ["/v1/auth/token/lookup-self", "/v1/transit/keys/k"]  # never /steal


def test_connection_errors_retried_with_bound(monkeypatch):
    def handler(r):
        return lookup_ok(r) or requests.ConnectionError("refused")

    client, transport = make(handler, retries=2, breaker_failures=100)
    with pytest.raises(DependencyError) as info:
        client.request("GET", "transit/keys/k")
    assert info.value.status == 503
    assert transport.paths().count("/v1/transit/keys/k") == 3


def test_5xx_retried_then_success():
    answers = iter([(500, {"errors": ["boom"]}), (502, None), (200, {"data": {"ok": True}})])

    def handler(r):
        return lookup_ok(r) or next(answers)

    client, _ = make(handler, retries=2)
    assert client.request("GET", "x") == {"data": {"ok": True}}


@pytest.mark.parametrize("status", [400, 403, 404])
def test_4xx_not_retried(status):
    def handler(r):
        return lookup_ok(r) or (status, {"errors": ["permission denied"]})

    client, transport = make(handler, retries=3)
    with pytest.raises(VaultRejected) as info:
        client.request("GET", "x")
    assert info.value.status == 503 and info.value.vault_status == status
    assert transport.paths().count("/v1/x") == 1
    assert client.breaker.state == "closed"  # Vault answered: it is up


def test_sealed_is_dependency_error_without_retry():
    def handler(r):
        return (503, {"errors": ["Vault is sealed"]})

    client, transport = make(handler, retries=3)
    with pytest.raises(DependencyError) as info:
        client.request("GET", "x")
    assert "sealed" in info.value.detail
    assert len(transport.calls) == 1


def test_breaker_opens_fails_fast_then_half_opens():
    up = {"ok": False}

    def handler(r):
        if not up["ok"]:
            return requests.ConnectionError("refused")
        return lookup_ok(r) or (200, {"data": {}})

    now = [1000.0]
    client, transport = make(handler, retries=0, breaker_failures=3, breaker_reset=5)
    client.breaker = CircuitBreaker(3, 5, clock=lambda: now[0])
    for _ in range(3):
        with pytest.raises(DependencyError):
            client.request("GET", "x")
    assert client.breaker.state == "open"
    sent = len(transport.calls)
    with pytest.raises(DependencyError, match="circuit open"):
        client.request("GET", "x")
    assert len(transport.calls) == sent  # failed without touching the network
    now[0] += 5.1
    assert client.breaker.state == "half-open"
    up["ok"] = True
    assert client.request("GET", "x") == {"data": {}}
    assert client.breaker.state == "closed"


def test_half_open_allows_one_probe_and_failed_probe_reopens():
    now = [0.0]
    b = CircuitBreaker(2, 1, clock=lambda: now[0])
    b.failure(), b.failure()
    assert not b.allow()
    now[0] = 1.5
    assert b.allow() and not b.allow()  # one probe only
    b.failure()
    assert b.state == "open" and not b.allow()
    now[0] = 3.0
    assert b.allow()
    b.success()
    assert b.state == "closed" and b.allow() and b.allow()


def test_stale_probe_does_not_wedge_breaker():
    now = [0.0]
    b = CircuitBreaker(1, 1, clock=lambda: now[0])
    b.failure()
    now[0] = 1.5
    assert b.allow()  # the probe's thread dies without reporting
    now[0] = 2.0
    assert not b.allow()
    now[0] = 2.6
    assert b.allow()


def test_approle_login_and_relogin_on_403():
    state = {"tokens": 0, "revoked": set()}

    def handler(r):
        if r.path_url == "/v1/auth/approle/login":
            body = json.loads(r.body)
            assert body == {"role_id": "rid", "secret_id": "sid"}
            state["tokens"] += 1
            return 200, {"auth": {"client_token": f"s.{state['tokens']}", "lease_duration": 3600, "renewable": True}}
        token = r.headers.get("X-Vault-Token")
        if token in state["revoked"]:
            return 403, {"errors": ["permission denied"]}
        return 200, {"data": {"token": token}}

    client, transport = make(handler, auth="approle", role_id="rid", secret_id="sid", token=None)
    assert client.request("GET", "x")["data"]["token"] == "s.1"
    client._last_login -= 5
    state["revoked"].add("s.1")
    assert client.request("GET", "x")["data"]["token"] == "s.2"
    assert "s.1" not in json.dumps([dict(r.headers) for r in transport.calls if "login" in r.path_url])


def test_kubernetes_login_rereads_the_projected_token(tmp_path):
    jwt_file = tmp_path / "token"
    jwt_file.write_text("jwt-one\n")
    seen = []

    def handler(r):
        if r.path_url == "/v1/auth/k8s-prod/login":
            seen.append(json.loads(r.body))
            return 200, {"auth": {"client_token": "s.k", "lease_duration": 60, "renewable": False}}
        return 200, {"data": {}}

    client, _ = make(handler, auth="kubernetes", kubernetes_role="zt", kubernetes_jwt_path=str(jwt_file),
                     auth_mount="k8s-prod", token=None)
    client.login()
    jwt_file.write_text("jwt-two")
    client.login()
    assert seen == [{"role": "zt", "jwt": "jwt-one"}, {"role": "zt", "jwt": "jwt-two"}]


def test_kubernetes_missing_token_file_is_dependency_error(tmp_path):
    client, _ = make(lambda r: (200, {}), auth="kubernetes", kubernetes_role="zt",
                     kubernetes_jwt_path=str(tmp_path / "absent"), token=None)
    with pytest.raises(DependencyError):
        client.request("GET", "x")


def test_renewer_renews_renewable_token():
    renewals = []

    def handler(r):
        if r.path_url == "/v1/auth/token/lookup-self":
            return 200, {"data": {"ttl": 0.3, "creation_ttl": 0.3, "renewable": True}}
        if r.path_url == "/v1/auth/token/renew-self":
            renewals.append(json.loads(r.body))
            return 200, {"auth": {"client_token": "s.test", "lease_duration": 0.3, "renewable": True}}
        return 200, {}

    transport = Scripted(handler)
    session = requests.Session()
    session.mount("http://", transport)
    client = VaultClient(VaultConfig(addr="http://127.0.0.1:8200", token="s.test"), session=session)
    try:
        client.login()
        deadline = time.monotonic() + 3
        while len(renewals) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        client.close()
    assert len(renewals) >= 2 and client.renewer is not None and client.renewer.renewals >= 2


def test_renewer_logs_in_again_when_not_renewable():
    logins = []

    def handler(r):
        if r.path_url == "/v1/auth/approle/login":
            logins.append(time.monotonic())
            return 200, {"auth": {"client_token": f"s.{len(logins)}", "lease_duration": 0.3, "renewable": False}}
        return 200, {}

    transport = Scripted(handler)
    session = requests.Session()
    session.mount("http://", transport)
    client = VaultClient(VaultConfig(addr="http://127.0.0.1:8200", auth="approle", role_id="r"), session=session)
    try:
        client.login()
        deadline = time.monotonic() + 3
        while len(logins) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        client.close()
    assert len(logins) >= 3


# --- Transit mapping --------------------------------------------------------------------------


def transit_handler(extra: Callable[[requests.PreparedRequest], Any]) -> Handler:
    def handler(r):
        if r.path_url == "/v1/auth/token/lookup-self":
            return 200, {"data": {"ttl": 0, "renewable": False}}
        if r.path_url.startswith("/v1/transit/keys/"):
            return 200, {"data": {"latest_version": 3, "derived": r.path_url.endswith("/derived")}}
        return extra(r)
    return handler


def test_decrypt_400_is_crypto_error_and_never_leaks_other_items():
    body = {"data": {"batch_results": [{"plaintext": base64.b64encode(b"TOP-SECRET").decode()},
                                       {"error": "cipher: message authentication failed"}]}}
    client, _ = make(transit_handler(lambda r: (400, body)))
    provider = VaultKeyProvider(client)
    with pytest.raises(CryptoError) as info:
        provider.decrypt("k", ["vault:v1:AAAA", "vault:v1:BBBB"])
    assert "authentication failed" in info.value.detail
    assert "TOP-SECRET" not in str(info.value.detail) and "VE9QLVNFQ1JFVA" not in str(info.value.detail)


def test_malformed_ciphertext_never_reaches_vault():
    client, transport = make(transit_handler(lambda r: (200, {})))
    with pytest.raises(CryptoError):
        VaultKeyProvider(client).decrypt("k", ["vault:v1:AAAA", "vault:v1:../../sys/seal"])
    assert not any("decrypt" in p for p in transport.paths())


def test_encrypt_400_is_dependency_error():
    client, _ = make(transit_handler(lambda r: (400, {"errors": ["encryption key not found"]})))
    with pytest.raises(DependencyError) as info:
        VaultKeyProvider(client).encrypt("k", [b"x"])
    assert not isinstance(info.value, CryptoError) and info.value.status == 503


@pytest.mark.parametrize("answer", [
    {"data": {"batch_results": []}},
    {"data": {"batch_results": [{"plaintext": "%%%"}]}},
    {"data": {"batch_results": [{"ciphertext": "nope"}]}},
    {"data": {}},
    {},
])
def test_garbage_answers_fail_closed(answer):
    client, _ = make(transit_handler(lambda r: (200, answer)))
    with pytest.raises(DependencyError):
        VaultKeyProvider(client).decrypt("k", ["vault:v1:AAAA"])


def test_context_on_non_derived_key_is_refused_before_encrypting():
    client, transport = make(transit_handler(lambda r: (200, {"data": {"batch_results": [{"ciphertext": "vault:v1:x"}]}})))
    provider = VaultKeyProvider(client)
    with pytest.raises(DependencyError, match="not derived"):
        provider.encrypt("plain", [b"x"], b"tenant")
    assert not any("/encrypt/" in p for p in transport.paths())
    assert provider.encrypt("derived", [b"x"], b"tenant") == ["vault:v1:x"]
    sent = [json.loads(r.body) for r in transport.calls if "/encrypt/" in r.path_url][0]
    assert sent == {"batch_input": [{"plaintext": "eA==", "context": base64.b64encode(b"tenant").decode()}]}


def test_large_batches_are_chunked():
    seen = []

    def extra(r):
        items = json.loads(r.body)["batch_input"]
        seen.append(len(items))
        return 200, {"data": {"batch_results": [{"ciphertext": "vault:v1:AAAA"} for _ in items]}}

    client, _ = make(transit_handler(extra))
    out = VaultKeyProvider(client).encrypt("k", [b"x"] * 450)
    assert len(out) == 450 and seen == [200, 200, 50]


def test_invalid_key_name_is_rejected():
    client, transport = make(transit_handler(lambda r: (200, {})))
    with pytest.raises(ConfigError):
        VaultKeyProvider(client).encrypt("../sys/seal", [b"x"])
    assert not transport.calls


def test_concurrent_first_calls_log_in_once():
    import threading

    logins = []

    def handler(r):
        if r.path_url == "/v1/auth/approle/login":
            logins.append(1)
            time.sleep(0.05)
            return 200, {"auth": {"client_token": "s.1", "lease_duration": 3600, "renewable": False}}
        return 200, {"data": {}}

    client, _ = make(handler, auth="approle", role_id="r", token=None)
    threads = [threading.Thread(target=client.request, args=("GET", "x")) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(logins) == 1


def test_hmac_400_for_a_ciphertext_version_is_crypto_error_otherwise_dependency_error():
    refused = {"errors": ["key version does not exist; latest key version is 3"]}
    client, _ = make(transit_handler(lambda r: (400, refused)))
    with pytest.raises(CryptoError, match="key version 9"):
        VaultKeyProvider(client).hmac("k", b"x", 9)
    with pytest.raises(DependencyError) as info:  # no version: the key itself is wrong, an operator problem
        VaultKeyProvider(client).hmac("k", b"x")
    assert not isinstance(info.value, CryptoError) and info.value.status == 503
