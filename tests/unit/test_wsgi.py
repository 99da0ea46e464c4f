"""The WSGI middleware: same decisions and denial format as the ASGI middleware, run from sync code."""

import json
import threading
from pathlib import Path
from wsgiref.util import setup_testing_defaults

import pytest

from zerotrust.adapters.wsgi import ZeroTrustWSGIMiddleware
from zerotrust.cli import main as cli

ROOT = Path(__file__).resolve().parents[2]


def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [f"hello {environ.get('REMOTE_USER')} {sorted(environ['zerotrust.principal'].scopes)}".encode()]


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    db = tmp_path_factory.mktemp("wsgi") / "keys.db"
    mp = pytest.MonkeyPatch()
    mp.setenv("ZT_API_KEY_DB", str(db))
    mp.setenv("ZT_AUDIT", "none")
    out = {}
    import contextlib
    import io
    for name, scope in (("reader", "api:read"), ("writer", "api:write")):
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            assert cli(["apikey", "create", "--config", str(ROOT / "examples/quickstart.yaml"), "--name", name,
                        "--scope", scope]) == 0
        out[name] = buf.getvalue().strip().splitlines()[-1]
    mw = ZeroTrustWSGIMiddleware.from_config(app, ROOT / "examples" / "quickstart.yaml")
    yield mw, out
    mw.close()
    mp.undo()


def call(mw, path="/items", method="GET", **headers):
    environ = {"REQUEST_METHOD": method, "PATH_INFO": path}
    for k, v in headers.items():
        environ[k] = v
    setup_testing_defaults(environ)
    got = {}

    def start_response(status, hdrs, exc_info=None):
        got["status"], got["headers"] = int(status.split()[0]), dict(hdrs)

    body = b"".join(mw(environ, start_response))
    return got["status"], got["headers"], body


def test_allow_sets_remote_user(keys):
    mw, k = keys
    status, _, body = call(mw, HTTP_X_API_KEY=k["reader"])
    assert status == 200 and body == b"hello apikey:reader ['api:read']"


def test_no_credential_is_bare_challenge(keys):
    status, headers, body = call(keys[0])
    assert status == 401 and headers["www-authenticate"] == 'Bearer realm="zerotrust"'
    assert json.loads(body)["decision_id"] == headers["x-zerotrust-decision-id"]


def test_scope_and_method(keys):
    mw, k = keys
    status, headers, _ = call(mw, method="POST", HTTP_X_API_KEY=k["reader"])
    assert status == 403 and 'scope="api:write"' in headers["www-authenticate"]
    assert call(mw, method="POST", HTTP_X_API_KEY=k["writer"])[0] == 200


def test_merged_duplicate_authorization_is_400(keys):
    # WSGI servers join repeated headers with ", ": the merged value is refused, never split and guessed
    status, _, _ = call(keys[0], HTTP_AUTHORIZATION=f"Bearer {keys[1]['reader']}, Bearer x")
    assert status == 400


@pytest.mark.parametrize("raw", ["/api/../admin", "/api/%2e%2e/admin", "//admin", "/public/..;/admin"])
def test_raw_uri_is_judged_strictly(keys, raw):
    assert call(keys[0], path="/ignored", RAW_URI=raw, HTTP_X_API_KEY=keys[1]["reader"])[0] == 400


def test_decoded_path_info_is_reencoded(keys):
    # without RAW_URI the decoded PATH_INFO is re-encoded: a space cannot smuggle anything
    assert call(keys[0], path="/a b", HTTP_X_API_KEY=keys[1]["reader"])[0] == 200


def test_many_threads_share_one_loop(keys):
    mw, k = keys
    results = []

    def worker():
        for _ in range(20):
            results.append(call(mw, HTTP_X_API_KEY=k["reader"])[0])

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [200] * 160


def test_slow_decision_is_503(keys):
    mw, k = keys

    class Slow:
        name = "slow"

        async def decide(self, request, principal, context=None):
            import asyncio
            await asyncio.sleep(1)

    slow = ZeroTrustWSGIMiddleware(app, mw.pipeline.__class__(
        extractors=mw.pipeline.extractors, verifiers=mw.pipeline.verifiers, policy=Slow(), realm="zerotrust"),
        timeout=0.05)
    try:
        assert call(slow, HTTP_X_API_KEY=k["reader"])[0] == 503
    finally:
        slow._loop.close()
