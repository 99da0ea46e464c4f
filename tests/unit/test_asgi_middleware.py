"""ZeroTrustMiddleware in front of a Starlette app: enforce, authenticate-only, exclusions, WebSockets, lifespan."""

from __future__ import annotations

import contextlib

import pytest
from starlette.applications import Starlette
from starlette.authentication import requires
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route, WebSocketRoute
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from zerotrust.adapters.asgi import ZeroTrustMiddleware
from zerotrust.adapters.asgi_user import ZeroTrustUser

from .asgi_call import call
from .sidecar_fakes import bearer, make_pipeline

CALLS: list[str] = []


async def whoami(request):
    CALLS.append(request.url.path)
    user = request.user
    return JSONResponse({"authenticated": user.is_authenticated, "name": user.display_name,
                         "identity": user.identity, "scopes": list(request.auth.scopes),
                         "decision": request.scope["zerotrust.decision"].decision_id if
                         "zerotrust.decision" in request.scope else None,
                         "kind": user.principal.kind if user.principal else None})


@requires("api:write")
async def starlette_requires(request):
    return PlainTextResponse("written")


async def ws(websocket):
    await websocket.accept()
    await websocket.send_text(f"hello {websocket.user.display_name}")
    await websocket.close()


def make_app(**kw) -> tuple[TestClient, object]:
    pipeline, verifier, audit = make_pipeline()
    app = Starlette(routes=[Route("/public/me", whoami), Route("/api/me", whoami), Route("/health", whoami),
                            Route("/api/write", starlette_requires, methods=["GET", "POST"]),
                            WebSocketRoute("/api/ws", ws), WebSocketRoute("/public/ws", ws)])
    wrapped = ZeroTrustMiddleware(app, pipeline, **kw)
    return TestClient(wrapped, base_url="http://api.test"), audit


@pytest.fixture(autouse=True)
def _reset():
    CALLS.clear()


def test_enforced_denial_is_answered_by_the_middleware_and_the_app_never_runs():
    client, audit = make_app()
    r = client.get("/api/me")
    assert r.status_code == 401 and r.headers["www-authenticate"] == 'Bearer realm="test"'
    assert r.json()["error"] == "unauthorized" and r.json()["decision_id"] == r.headers["x-zerotrust-decision-id"]
    r = client.get("/api/me", headers=bearer("good-api.write"))  # GET needs api:read
    assert r.status_code == 403 and 'scope="api:read"' in r.headers["www-authenticate"]
    assert CALLS == []
    assert [rec["status"] for rec in audit.records] == [401, 403]


def test_allowed_request_sees_a_starlette_compatible_user():
    client, _ = make_app()
    r = client.get("/api/me", headers=bearer("good-api.read+api.write"))
    assert r.status_code == 200
    body = r.json()
    assert body["authenticated"] and body["name"] == body["identity"] == "alice"
    assert body["scopes"] == ["api:read", "api:write"] and body["kind"] == "fake" and body["decision"]
    assert client.get("/api/write", headers=bearer("good-api.read+api.write")).text == "written"


def test_starlette_requires_works_with_our_auth_scopes():
    client, _ = make_app(enforce=False)
    assert client.get("/api/write", headers=bearer("good-api.read")).status_code == 403
    assert client.get("/api/write", headers=bearer("good-api.write")).status_code == 200


def test_authenticate_only_lets_anonymous_through_but_never_a_bad_credential():
    client, audit = make_app(enforce=False)
    r = client.get("/api/me")
    assert r.status_code == 200 and r.json()["authenticated"] is False and r.json()["name"] == ""
    r = client.get("/api/me", headers=bearer("forged"))
    assert r.status_code == 401 and 'error="invalid_token"' in r.headers["www-authenticate"]
    assert client.get("/api/me", headers=bearer("down")).status_code == 503
    r = client.get("/api/me", headers=bearer("good-api.write"))  # the policy would say 403; routes decide here
    assert r.status_code == 200 and r.json()["authenticated"]
    assert CALLS == ["/api/me", "/api/me"]
    assert audit.records[0]["engine"] == "authenticate-only"


async def test_bad_paths_are_400_before_the_app_even_when_excluded():
    pipeline, _, _ = make_pipeline()
    seen = []

    async def app(scope, receive, send):
        seen.append(scope["path"])

    mw = ZeroTrustMiddleware(app, pipeline, exclude_paths=["/health", "/public/**"])
    for target in ("/health/../api/me", "/public/%2e%2e/api", "//api/me", "/public/%2fx"):
        reply = await call(mw, "GET", target)
        assert reply.status == 400 and reply.json()["error"] == "invalid_request"
    assert seen == []


def test_excluded_paths_skip_authentication_but_still_get_an_anonymous_user():
    client, audit = make_app(exclude_paths=["/health"])
    r = client.get("/health", headers=bearer("forged"))
    assert r.status_code == 200 and r.json()["authenticated"] is False and r.json()["decision"] is None
    assert client.get("/health/x").status_code == 401  # exact entries are exact
    assert audit.records[-1]["path"] == "/health/x"


def test_realm_override_does_not_touch_the_callers_pipeline():
    pipeline, _, _ = make_pipeline(realm="original")
    mw = ZeroTrustMiddleware(lambda *a: None, pipeline, realm="api")
    r = TestClient(mw).get("/api/me")
    assert r.headers["www-authenticate"] == 'Bearer realm="api"' and pipeline.realm == "original"


def test_websocket_denied_with_1008_before_accept_and_allowed_with_a_user():
    client, _ = make_app()
    with pytest.raises(WebSocketDisconnect) as exc:
        with client.websocket_connect("/api/ws"):
            pass
    assert exc.value.code == 1008
    with client.websocket_connect("/api/ws", headers=bearer("good-api.read")) as conn:
        assert conn.receive_text() == "hello alice"


def test_lifespan_passes_through_and_from_config_closes_its_pipeline(monkeypatch, tmp_path):
    import zerotrust.adapters.asgi as mod

    pipeline, _, _ = make_pipeline()
    closed = []

    async def aclose():
        closed.append(True)

    pipeline.aclose = aclose
    monkeypatch.setattr(mod, "build_pipeline", lambda config: pipeline)
    cfg = tmp_path / "zt.yaml"
    cfg.write_text("version: 1\napi_keys: {pepper: '0123456789abcdef0123456789abcdef'}\n"
                   "server: {path_mode: normalize}\n"
                   "policy: {rules: [{id: r, paths: ['/**'], anonymous: true}]}\n")
    events = []

    @contextlib.asynccontextmanager
    async def lifespan(app):
        events.append("startup")
        yield
        events.append("shutdown")

    app = Starlette(routes=[Route("/public/me", whoami)], lifespan=lifespan)
    app.add_middleware(ZeroTrustMiddleware.from_config, config=str(cfg))
    with TestClient(app) as client:
        assert events == ["startup"]
        assert client.get("/public/../public/me").status_code == 200  # path_mode taken from the config
        assert closed == []
    assert closed == [True] and events == ["startup", "shutdown"]


def test_user_object_is_duck_compatible():
    anon = ZeroTrustUser(None)
    assert (anon.is_authenticated, anon.display_name, anon.identity, anon.scopes) == (False, "", "", frozenset())
    assert "anonymous" in repr(anon)
