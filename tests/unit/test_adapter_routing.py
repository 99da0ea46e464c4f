"""The app routes on exactly the path that was judged, and never sees a client's own identity headers.

Found in review: in ``normalize`` mode the middleware judged ``/public/x`` for ``/admin/../public/x`` while
Starlette/Flask routed the raw path to the admin handler.
"""

from wsgiref.util import setup_testing_defaults

import pytest

from zerotrust import Headers, PolicyResult, Principal, RequestContext
from zerotrust.adapters.asgi import ZeroTrustMiddleware
from zerotrust.adapters.wsgi import ZeroTrustWSGIMiddleware
from zerotrust.config import RuleConfig
from zerotrust.credentials import AuthorizationExtractor
from zerotrust.pipeline import Pipeline, header_safe
from zerotrust.policy import BuiltinPolicyEngine

ALICE = Principal(subject="alice", issuer="https://i", kind="fake", scopes=frozenset({"read"}))


class Verifier:
    kind = "fake"

    def accepts(self, credential):
        return True

    async def verify(self, credential, request):
        return ALICE


def pipeline(policy=None):
    rules = [RuleConfig(id="public", paths=["/public/**"], anonymous=True),
             RuleConfig(id="admin", paths=["/admin/**"], scopes=["admin"]),
             RuleConfig(id="read", paths=["/**"], scopes=["read"])]
    return Pipeline(extractors=[AuthorizationExtractor()], verifiers=[Verifier()],
                    policy=policy or BuiltinPolicyEngine.from_config(rules), realm="api")


async def echo(scope, receive, send):
    names = sorted(k.decode() for k, _ in scope["headers"] if k.startswith(b"x"))
    body = f"{scope['path']}|{scope['raw_path'].decode()}|{','.join(names)}".encode()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


async def asgi_get(app, raw_path, headers=()):
    async def receive():
        return {"type": "http.request", "body": b""}

    out = {}

    async def send(msg):
        if msg["type"] == "http.response.start":
            out["status"] = msg["status"]
        else:
            out["body"] = msg.get("body", b"")

    scope = {"type": "http", "method": "GET", "path": raw_path, "raw_path": raw_path.encode(), "query_string": b"",
             "headers": [(k.encode(), v.encode()) for k, v in headers], "client": ("10.0.0.1", 1), "scheme": "http",
             "root_path": "", "http_version": "1.1", "asgi": {"version": "3.0"}, "server": ("h", 80)}
    await app(scope, receive, send)
    return out["status"], out.get("body", b"").decode()


@pytest.mark.parametrize("raw", ["/admin/../public/x", "/admin/%2e%2e/public/x", "/admin//../public/x"])
async def test_asgi_normalize_mode_routes_the_judged_path(raw):
    status, body = await asgi_get(ZeroTrustMiddleware(echo, pipeline(), path_mode="normalize"), raw)
    assert status == 200 and body.startswith("/public/x|/public/x|")


async def test_asgi_excluded_path_cannot_be_reached_by_traversal():
    mw = ZeroTrustMiddleware(echo, pipeline(), path_mode="normalize", exclude_paths=["/healthz"])
    status, body = await asgi_get(mw, "/admin/../healthz")
    assert status == 200 and body.startswith("/healthz|/healthz|")  # the app serves /healthz, not an admin route


async def test_asgi_strips_client_identity_headers_and_their_aliases():
    forged = [("X-Auth-Subject", "root"), ("X_Auth_Scopes", "admin"), ("X.Auth.Issuer", "evil"), ("x-other", "1")]
    status, body = await asgi_get(ZeroTrustMiddleware(echo, pipeline()), "/x",
                                  [("authorization", "Bearer t"), *forged])
    assert status == 200 and body.endswith("|x-other")


def wsgi_app(environ, start_response):
    start_response("200 OK", [])
    forged = sorted(k for k in environ if k.startswith("HTTP_X"))
    return [f"{environ['PATH_INFO']}|{','.join(forged)}".encode()]


def wsgi_get(mw, environ):
    setup_testing_defaults(environ)
    got = {}
    body = b"".join(mw(environ, lambda status, headers, exc=None: got.setdefault("status", int(status[:3]))))
    return got["status"], body.decode()


def test_wsgi_normalize_mode_routes_the_judged_path():
    mw = ZeroTrustWSGIMiddleware(wsgi_app, pipeline(), path_mode="normalize")
    try:
        status, body = wsgi_get(mw, {"REQUEST_METHOD": "GET", "PATH_INFO": "/admin/../public/x",
                                     "RAW_URI": "/admin/%2e%2e/public/x"})
        assert status == 200 and body.startswith("/public/x|")
        status, body = wsgi_get(mw, {"REQUEST_METHOD": "GET", "PATH_INFO": "/x", "HTTP_AUTHORIZATION": "Bearer t",
                                     "HTTP_X_AUTH_SUBJECT": "root", "HTTP_X.AUTH.SCOPES": "admin", "HTTP_X_OTHER": "1"})
        assert status == 200 and body == "/x|HTTP_X_OTHER"
    finally:
        mw.close()


async def test_a_deny_is_never_sent_as_2xx():
    class Sloppy:
        name = "sloppy"

        async def decide(self, request, principal, context=None):
            return PolicyResult(False, "nope", status=200)

    d = await pipeline(Sloppy()).evaluate(RequestContext(method="GET", path="/x", headers=Headers(
        [("authorization", "Bearer t")])))
    assert (d.allow, d.status) == (False, 403)


def test_identity_header_encoding_is_reversible():
    assert header_safe("alice") == "alice"
    assert header_safe("é") != header_safe("%C3%A9")
    assert header_safe("admin\n") != header_safe("admin%0A")
    from urllib.parse import unquote
    for v in ("é", "%C3%A9", "admin\n", "a%b", "ok"):
        assert unquote(header_safe(v)) == v
