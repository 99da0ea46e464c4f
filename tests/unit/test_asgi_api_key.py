"""The middleware with the real API-key verifier, built from a config file, keys made by the real CLI."""

from __future__ import annotations

import subprocess
import sys

import pytest
from fastapi import Depends, FastAPI
from starlette.testclient import TestClient

from zerotrust import Principal
from zerotrust.adapters.asgi import ZeroTrustMiddleware
from zerotrust.adapters.fastapi import current_principal, install_error_handlers, require_scopes

CONFIG = """
version: 1
server: {{realm: shop}}
api_keys: {{database: "{db}", pepper: "unit-test-pepper-0123456789abcdef0123"}}
policy:
  rules:
    - {{id: read, methods: [GET], paths: ["/**"], scopes: [api:read]}}
    - {{id: write, paths: ["/**"], scopes: [api:write]}}
audit: {{output: none}}
"""


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("apikey")
    cfg = tmp / "zt.yaml"
    cfg.write_text(CONFIG.format(db=tmp / "keys.db"))
    out = subprocess.run([sys.executable, "-m", "zerotrust", "apikey", "create", "--config", str(cfg), "--name",
                          "reader", "--scope", "api:read"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return cfg, out.stdout.strip().splitlines()[-1]


def make(cfg) -> TestClient:
    app = FastAPI()
    app.add_middleware(ZeroTrustMiddleware.from_config, config=str(cfg))
    install_error_handlers(app)

    @app.get("/me")
    def me(who: Principal = Depends(current_principal)):
        return {"kind": who.kind, "scopes": sorted(who.scopes)}

    @app.get("/admin", dependencies=[Depends(require_scopes("api:admin"))])
    def admin():
        return "secret"

    return TestClient(app)


def test_real_api_key_end_to_end(setup):
    cfg, key = setup
    with make(cfg) as client:
        me = client.get("/me", headers={"X-API-Key": key})
        assert me.status_code == 200 and me.json() == {"kind": "api_key", "scopes": ["api:read"]}
        admin = client.get("/admin", headers={"X-API-Key": key})
        assert admin.status_code == 403 and 'scope="api:admin"' in admin.headers["www-authenticate"]
        wrong = client.get("/me", headers={"X-API-Key": key[:-1] + ("A" if key[-1] != "A" else "B")})
        assert wrong.status_code == 401 and 'error="invalid_token"' in wrong.headers["www-authenticate"]
        assert key not in wrong.text
        both = client.get("/me", headers={"X-API-Key": key, "Authorization": "Bearer abc"})
        assert both.status_code == 400 and both.json()["error"] == "invalid_request"
        assert client.delete("/me", headers={"X-API-Key": key}).status_code == 403  # the policy wants api:write
