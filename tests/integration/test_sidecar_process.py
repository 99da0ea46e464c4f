"""`zerotrust serve` as a real process: the contract the Envoy and nginx tests build on."""

from __future__ import annotations

import signal
import sys

import httpx
import pytest

from tests.support.procs import Service, free_port

pytestmark = pytest.mark.integration

CONFIG = """
version: 1
server: {{realm: it, path_prefix: /authz}}
api_keys: {{database: "{db}", pepper: "integration-test-pepper-0123456789abcdef"}}
policy:
  rules:
    - {{id: public, methods: [GET], paths: ["/public/**"], anonymous: true}}
    - {{id: read, methods: [GET], paths: ["/**"], scopes: [api:read]}}
audit: {{output: none}}
"""


@pytest.fixture(scope="module")
def sidecar(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sidecar")
    cfg = tmp / "zt.yaml"
    cfg.write_text(CONFIG.format(db=tmp / "keys.db"))
    port, admin = free_port(), free_port()
    svc = Service("zerotrust-serve", [sys.executable, "-m", "zerotrust", "serve", "--config", str(cfg),
                                      "--listen", f"127.0.0.1:{port}", "--admin-listen", f"127.0.0.1:{admin}"])
    svc.start()
    try:
        svc.wait_http(f"http://127.0.0.1:{admin}/readyz", ok=lambda r: r.status_code == 200)
        yield svc, f"http://127.0.0.1:{port}", f"http://127.0.0.1:{admin}"
    finally:
        svc.stop()


def test_allow_deny_and_metrics_over_real_sockets(sidecar):
    svc, url, admin = sidecar
    ok = httpx.get(f"{url}/authz/public/page", headers={"X-Auth-Subject": "admin"})
    assert ok.status_code == 200 and ok.headers["x-zerotrust-decision-id"]
    assert "x-auth-subject" in ok.headers["x-envoy-auth-headers-to-remove"]
    denied = httpx.get(f"{url}/authz/private")
    assert denied.status_code == 401 and denied.headers["www-authenticate"] == 'Bearer realm="it"'
    assert denied.headers["x-zerotrust-status"] == "401"
    assert httpx.get(f"{url}/public/page").status_code == 400  # not under the prefix
    bad = httpx.get(f"{url}/authz/public/%2e%2e/private")
    assert bad.status_code == 400 and bad.json()["error"] == "invalid_request"
    metrics = httpx.get(f"{admin}/metrics").text
    assert 'zerotrust_decisions_total{allow="true",reason="allow",status="200"}' in metrics
    assert 'zerotrust_decisions_total{allow="false",reason="deny.no_credential",status="401"}' in metrics
    assert "zerotrust_policy_engine_errors_total" in metrics  # the policy collector is exported too
    assert httpx.get(f"{admin}/healthz").status_code == 200
    assert "zerotrust: ext_authz on http://127.0.0.1:" in svc.log()


def test_sigterm_stops_gracefully(tmp_path):
    cfg = tmp_path / "zt.yaml"
    cfg.write_text(CONFIG.format(db=tmp_path / "keys.db"))
    admin = free_port()
    svc = Service("zerotrust-serve-term", [sys.executable, "-m", "zerotrust", "serve", "--config", str(cfg),
                                           "--listen", f"127.0.0.1:{free_port()}",
                                           "--admin-listen", f"127.0.0.1:{admin}"]).start()
    try:
        svc.wait_http(f"http://127.0.0.1:{admin}/healthz")
        svc.proc.send_signal(signal.SIGTERM)
        assert svc.proc.wait(15) == 0, svc.log()
    finally:
        svc.stop()


def test_config_errors_exit_2_with_every_problem(tmp_path):
    import subprocess

    cfg = tmp_path / "bad.yaml"
    cfg.write_text("version: 1\nserver: {path_mode: lax, stack: tomcat}\npolicy: {rules: []}\n")
    r = subprocess.run([sys.executable, "-m", "zerotrust", "serve", "--config", str(cfg)], capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 2
    assert "server.path_mode" in r.stderr and "server.stack" in r.stderr
