"""FastAPI dependencies: RFC 6750 challenges at route level, rendering, and no Starlette 400 trap."""

from __future__ import annotations

import pytest
from fastapi import Depends, FastAPI
from starlette.testclient import TestClient

from zerotrust import InvalidToken, Principal, TooManyRequests
from zerotrust.adapters.asgi import ZeroTrustMiddleware
from zerotrust.adapters.fastapi import current_principal, install_error_handlers, optional_principal, require_scopes

from .sidecar_fakes import bearer, make_pipeline


def make_app(*, handlers: bool = True, middleware: bool = True, enforce: bool = False):
    pipeline, _, audit = make_pipeline()
    app = FastAPI()

    @app.get("/api/items", dependencies=[Depends(require_scopes("api:read"))])
    def items():
        return ["a", "b"]

    @app.delete("/api/items/{n}")
    def delete(n: int, who: Principal = Depends(require_scopes("api:write", "api:admin"))):
        return {"deleted": n, "by": who.subject}

    @app.get("/me")
    def me(who: Principal = Depends(current_principal)):
        return {"sub": who.subject}

    @app.get("/maybe")
    def maybe(who: Principal | None = Depends(optional_principal)):
        return {"sub": who.subject if who else None}

    @app.get("/raises")
    def raises():
        raise TooManyRequests(detail="internal detail 1.2.3.4")

    @app.get("/raises-401")
    def raises_401():
        raise InvalidToken(detail="kid xyz unknown")

    if handlers:
        install_error_handlers(app)
    if middleware:
        app.add_middleware(ZeroTrustMiddleware, pipeline=pipeline, enforce=enforce)
    return TestClient(app, raise_server_exceptions=False), audit


def test_scope_dependency_allows_and_returns_the_principal():
    client, _ = make_app()
    assert client.get("/api/items", headers=bearer("good-api.read")).json() == ["a", "b"]
    r = client.delete("/api/items/3", headers=bearer("good-api.write+api.admin"))
    assert r.json() == {"deleted": 3, "by": "alice"}


def test_anonymous_gets_401_with_a_bare_bearer_challenge():
    client, audit = make_app()
    r = client.get("/api/items")
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == 'Bearer realm="test"'
    assert r.json()["error"] == "unauthorized"
    assert r.json()["decision_id"] == r.headers["x-zerotrust-decision-id"] == audit.records[-1]["decision_id"]
    assert audit.records[-1]["reason"] == "deny.no_credential"


def test_missing_scope_gets_403_insufficient_scope_with_the_scopes():
    client, audit = make_app()
    r = client.delete("/api/items/3", headers=bearer("good-api.write"))
    assert r.status_code == 403
    challenge = r.headers["www-authenticate"]
    assert 'error="insufficient_scope"' in challenge and 'scope="api:write api:admin"' in challenge
    assert r.json() == {"error": "insufficient_scope", "error_description": "The access token lacks a required scope",
                        "decision_id": r.headers["x-zerotrust-decision-id"]}
    assert audit.records[-1]["status"] == 403


def test_without_our_handlers_fastapi_still_keeps_status_and_challenge():
    client, _ = make_app(handlers=False)
    r = client.delete("/api/items/3", headers=bearer("good-api.write"))
    assert r.status_code == 403 and 'scope="api:write api:admin"' in r.headers["www-authenticate"]
    assert r.json() == {"detail": "The access token lacks a required scope"}


def test_bad_credential_never_reaches_the_dependency():
    client, _ = make_app()
    r = client.get("/api/items", headers=bearer("forged"))
    assert r.status_code == 401 and 'error="invalid_token"' in r.headers["www-authenticate"]


def test_current_and_optional_principal():
    client, _ = make_app()
    assert client.get("/me", headers=bearer("good-")).json() == {"sub": "alice"}
    assert client.get("/me").status_code == 401
    assert client.get("/maybe").json() == {"sub": None}
    assert client.get("/maybe", headers=bearer("good-")).json() == {"sub": "alice"}


@pytest.mark.parametrize("path,status", [("/raises", 429), ("/raises-401", 401)])
def test_errors_raised_by_routes_render_with_their_rfc_status_never_their_text(path, status):
    client, _ = make_app()
    r = client.get(path)
    assert r.status_code == status
    assert "1.2.3.4" not in r.text and "xyz" not in r.text
    assert r.headers["x-zerotrust-status"] == str(status)
    if status == 401:
        assert 'error="invalid_token"' in r.headers["www-authenticate"]


def test_without_the_middleware_dependencies_fail_closed():
    client, _ = make_app(middleware=False)
    r = client.get("/api/items", headers=bearer("good-api.read"))
    assert r.status_code == 500 and r.json()["error"] == "server_error"


def test_enforcing_middleware_and_dependencies_together():
    client, _ = make_app(enforce=True)
    assert client.get("/api/items").status_code == 401
    assert client.get("/api/items", headers=bearer("good-api.read")).status_code == 200
    # the policy lets api:write DELETE through; the route still insists on its own, stricter scopes
    r = client.delete("/api/items/1", headers=bearer("good-api.write"))
    assert r.status_code == 403 and 'scope="api:write api:admin"' in r.headers["www-authenticate"]
