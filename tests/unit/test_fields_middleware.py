"""The field-encryption ASGI middleware: what the app sees, what each principal gets back."""

import json
from types import SimpleNamespace

import httpx
import pytest

from tests.unit.test_fields_support import FakeTransit
from zerotrust import Principal
from zerotrust.adapters.fields import FieldEncryptionMiddleware, may_decrypt, principal_of
from zerotrust.config import parse_config
from zerotrust.crypto import FieldEncryptor


class EchoApp:
    """Stores what it received; answers with the stored document (or a configured response)."""

    def __init__(self):
        self.seen: list[bytes] = []
        self.headers: list[dict] = []
        self.reply: tuple[bytes, list] | None = None
        self.stored: bytes = b"{}"

    async def __call__(self, scope, receive, send):
        body = b""
        while True:
            msg = await receive()
            body += msg.get("body", b"")
            if not msg.get("more_body"):
                break
        self.seen.append(body)
        self.headers.append({k.decode(): v.decode() for k, v in scope["headers"]})
        if scope["method"] == "POST":
            self.stored = body
        payload, headers = self.reply or (self.stored, [(b"content-type", b"application/json")])
        await send({"type": "http.response.start", "status": 200,
                    "headers": headers + [(b"content-length", str(len(payload)).encode()), (b"etag", b'"x"')]})
        half = len(payload) // 2  # two chunks, so the middleware has to reassemble
        await send({"type": "http.response.body", "body": payload[:half], "more_body": True})
        await send({"type": "http.response.body", "body": payload[half:]})


class AsPrincipal:
    """Stands in for the auth middleware: puts a principal where it would."""

    def __init__(self, app, scopes=None, via="user"):
        self.app, self.scopes, self.via = app, scopes, via

    async def __call__(self, scope, receive, send):
        if self.scopes is not None:
            p = Principal(subject="alice", issuer="test", kind="jwt", scopes=frozenset(self.scopes))
            if self.via == "user":
                scope["user"] = SimpleNamespace(principal=p)
            else:
                scope["zerotrust.decision"] = SimpleNamespace(allow=True, principal=p)
        await self.app(scope, receive, send)


@pytest.fixture
def stack():
    fake, app = FakeTransit(), EchoApp()
    enc = FieldEncryptor(fake, "k", context="t")
    mw = FieldEncryptionMiddleware(app, enc, request_paths=["$.ssn", "$.cards[*].pan"],
                                   response_paths=["$.ssn", "$.cards[*].pan"], decrypt_scopes=["pii:read"],
                                   mask="****")
    return SimpleNamespace(fake=fake, app=app, enc=enc, mw=mw)


def client(asgi, scopes=None, via="user"):
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=AsPrincipal(asgi, scopes, via)),
                             base_url="http://test")


DOC = {"ssn": "123-45-6789", "cards": [{"pan": "4111"}, {"pan": 5500}], "name": "Ada"}


async def test_request_fields_are_encrypted_before_the_app_sees_them(stack):
    async with client(stack.mw) as c:
        r = await c.post("/p", json=DOC)
    assert r.status_code == 200
    seen = json.loads(stack.app.seen[0])
    assert seen["name"] == "Ada"
    assert seen["ssn"].startswith("ztf1.e.k.1.") and seen["cards"][1]["pan"].startswith("ztf1.e.")
    assert b"123-45-6789" not in stack.app.seen[0] and b"4111" not in stack.app.seen[0]
    assert int(stack.app.headers[0]["content-length"]) == len(stack.app.seen[0])
    assert stack.enc.decrypt_document(seen, ["$.ssn", "$.cards[*].pan"]) == DOC


@pytest.mark.parametrize("scopes,via,expect", [
    (["pii:read", "other"], "user", "plain"),
    (["pii:read"], "decision", "plain"),
    (["other"], "user", "mask"),
    ([], "user", "mask"),
    (None, "user", "mask"),  # anonymous
])
async def test_response_fields_by_scope(stack, scopes, via, expect):
    async with client(stack.mw, ["w"]) as c:
        await c.post("/p", json=DOC)
    async with client(stack.mw, scopes, via) as c:
        r = await c.get("/p")
    body = r.json()
    assert r.headers["content-length"] == str(len(r.content))
    if expect == "plain":
        assert body == DOC
        assert r.headers["cache-control"] == "private, no-store" and "etag" not in r.headers
    else:
        assert body == {"ssn": "****", "cards": [{"pan": "****"}, {"pan": "****"}], "name": "Ada"}


async def test_without_mask_others_get_the_ciphertext(stack):
    mw = FieldEncryptionMiddleware(stack.app, stack.enc, request_paths=["$.ssn"], response_paths=["$.ssn"],
                                   decrypt_scopes=["pii:read"])
    async with client(mw, ["x"]) as c:
        await c.post("/p", json={"ssn": "1"})
        r = await c.get("/p")
    assert r.json()["ssn"].startswith("ztf1.e.") and r.content == stack.app.stored


async def test_no_decrypt_scopes_means_nobody_gets_plaintext(stack):
    mw = FieldEncryptionMiddleware(stack.app, stack.enc, request_paths=["$.ssn"], response_paths=["$.ssn"],
                                   mask="x")
    async with client(mw, ["pii:read"]) as c:
        await c.post("/p", json={"ssn": "1"})
        assert (await c.get("/p")).json() == {"ssn": "x"}


async def test_denied_decision_never_decrypts():
    p = Principal(subject="a", issuer="i", kind="jwt", scopes=frozenset({"pii:read"}))
    scope = {"zerotrust.decision": SimpleNamespace(allow=False, principal=p)}
    assert principal_of(scope) is None
    assert principal_of({"user": SimpleNamespace(principal=p)}) is p
    assert principal_of({"user": object()}) is None
    assert may_decrypt(SimpleNamespace(scopes="a b"), ["a"]) and not may_decrypt(SimpleNamespace(scopes="ab"), ["a"])
    assert not may_decrypt(p, []) and not may_decrypt(None, ["pii:read"])


@pytest.mark.parametrize("ctype,body", [
    ("text/plain", b'{"ssn": "plain"}'),
    ("application/x-www-form-urlencoded", b"ssn=plain"),
    ("multipart/form-data; boundary=x", b"--x--"),
    (None, b"ssn=plain"),  # untyped and not JSON
])
async def test_non_json_requests_pass_through_untouched(stack, ctype, body):
    headers = {"content-type": ctype} if ctype else {}
    async with client(stack.mw) as c:
        r = await c.post("/p", content=body, headers=headers)
    assert r.status_code == 200 and stack.app.seen == [body]
    assert stack.fake.calls == []


async def test_untyped_json_is_encrypted(stack):
    async with client(stack.mw) as c:
        await c.post("/p", content=b'{"ssn": "plain"}')
    assert b"plain" not in stack.app.seen[0]


@pytest.mark.parametrize("ctype", ["application/json", "application/merge-patch+json", "Application/JSON; charset=utf-8"])
async def test_invalid_json_is_400_and_never_reaches_the_app(stack, ctype):
    async with client(stack.mw) as c:
        r = await c.post("/p", content=b'{"ssn": "123-45-6789",', headers={"content-type": ctype})
    assert r.status_code == 400 and r.json()["error"] == "invalid_request"
    assert stack.app.seen == [] and b"123" not in r.content


async def test_key_store_down_is_503_and_the_plaintext_never_reaches_the_app(stack):
    stack.fake.down = True
    async with client(stack.mw) as c:
        r = await c.post("/p", json=DOC)
    assert r.status_code == 503 and r.json()["error"] == "temporarily_unavailable"
    assert stack.app.seen == []


async def test_key_store_down_on_response_is_503_not_ciphertext_or_plaintext(stack):
    async with client(stack.mw, ["pii:read"]) as c:
        await c.post("/p", json=DOC)
        stack.enc.clear_cache()
        stack.fake.down = True
        r = await c.get("/p")
    assert r.status_code == 503 and b"ztf1" not in r.content


async def test_tampered_stored_value_is_500_not_garbage(stack):
    stack.app.reply = (json.dumps({"ssn": "ztf1.e.k.1.AAAA.AAAA.AAAA"}).encode(),
                       [(b"content-type", b"application/json")])
    async with client(stack.mw, ["pii:read"]) as c:
        r = await c.get("/p")
    assert r.status_code == 500 and r.json() == {"error": "server_error", "error_description": "Internal error"}


async def test_limits_and_encodings(stack):
    stack.mw.max_request_body = 100
    async with client(stack.mw) as c:
        r = await c.post("/p", json={"ssn": "x" * 200})
        assert r.status_code == 413
        r = await c.post("/p", content=b"\x1f\x8b", headers={"content-type": "application/json",
                                                               "content-encoding": "gzip"})
        assert r.status_code == 415
    assert stack.app.seen == []
    stack.app.reply = (b"\x1f\x8b...", [(b"content-type", b"application/json"), (b"content-encoding", b"gzip")])
    async with client(stack.mw, ["pii:read"]) as c:
        assert (await c.get("/p")).status_code == 500  # cannot see the fields: refuse rather than guess


async def test_non_json_responses_and_other_fields_pass_through(stack):
    stack.app.reply = (b"ssn,123", [(b"content-type", b"text/csv")])
    async with client(stack.mw, ["x"]) as c:
        r = await c.get("/p")
    assert r.content == b"ssn,123" and r.headers["etag"] == '"x"'
    stack.app.reply = (b'{"other": 1}', [(b"content-type", b"application/json")])
    async with client(stack.mw, ["x"]) as c:
        r = await c.get("/p")
    assert r.content == b'{"other": 1}' and r.headers["etag"] == '"x"'  # nothing selected: byte for byte


async def test_lone_surrogates_elsewhere_survive_reserialisation(stack):
    raw = b'{"ssn": "1", "note": "\\ud800"}'
    async with client(stack.mw) as c:
        r = await c.post("/p", content=raw, headers={"content-type": "application/json"})
    assert r.status_code == 200 and json.loads(stack.app.seen[0])["note"] == "\ud800"
    async with client(stack.mw) as c:
        r = await c.post("/p", content=b'{"ssn": "\\ud800"}', headers={"content-type": "application/json"})
    assert r.status_code == 400 and len(stack.app.seen) == 1


async def test_request_without_selected_fields_is_forwarded_byte_for_byte(stack):
    raw = b'{ "name" : "Ada" }'
    async with client(stack.mw) as c:
        await c.post("/p", content=raw, headers={"content-type": "application/json"})
    assert stack.app.seen == [raw] and stack.fake.calls == []


async def test_deterministic_request_paths_follow_fields_paths():
    cfg = parse_config("""
api_keys: {pepper: "0123456789abcdef0123456789abcdef"}
policy: {rules: [{id: r, paths: ["/**"]}]}
fields:
  mode: local
  key: k
  paths: [{path: "$.email", deterministic: true}, {path: "$.ssn"}]
  request_paths: ["$.email", "$.ssn"]
""", env={})
    app = EchoApp()
    mw = FieldEncryptionMiddleware.from_config(app, cfg, encryptor=FieldEncryptor(FakeTransit(), "k"))
    async with client(mw) as c:
        for _ in range(2):
            await c.post("/p", json={"email": "a@x", "ssn": "1"})
    a, b = (json.loads(s) for s in app.seen)
    assert a["email"] == b["email"] and a["ssn"] != b["ssn"]


async def test_other_scope_types_pass_through(stack):
    called = []

    async def app(scope, receive, send):
        called.append(scope["type"])

    mw = FieldEncryptionMiddleware(app, stack.enc, request_paths=["$.a"])
    await mw({"type": "lifespan"}, None, None)
    await mw({"type": "websocket", "headers": []}, None, None)
    assert called == ["lifespan", "websocket"]


async def test_bodyless_requests_keep_their_headers(stack):
    async with client(stack.mw) as c:
        r = await c.get("/p")
    assert r.status_code == 200 and stack.app.seen == [b""]
    assert "content-length" not in stack.app.headers[0] and stack.fake.calls == []


def test_reads_the_objects_the_auth_middleware_really_sets():
    from zerotrust.adapters.asgi_user import ANONYMOUS, user_for

    p = Principal(subject="a", issuer="i", kind="jwt", scopes=frozenset({"pii:read"}))
    user, _ = user_for(p)
    assert principal_of({"user": user}) is p and may_decrypt(principal_of({"user": user}), ["pii:read"])
    assert principal_of({"user": ANONYMOUS}) is None


async def test_overlong_member_name_under_a_wildcard_is_400_and_never_reaches_the_app():
    app = EchoApp()
    mw = FieldEncryptionMiddleware(app, FieldEncryptor(FakeTransit(), "k"), request_paths=["$.cards.*"])
    async with client(mw) as c:
        r = await c.post("/p", json={"cards": {"x" * 257: "4111"}})
        ok = await c.post("/p", json={"cards": {"x" * 256: "4111"}})
    assert r.status_code == 400 and r.json()["error"] == "invalid_request"
    assert ok.status_code == 200 and len(app.seen) == 1 and b"4111" not in app.seen[0]


@pytest.mark.parametrize("request_paths,response_paths", [
    (["$.ssn"], ["$.ssn", "$.email"]),
    ([], ["$.ssn"]),
    (["$.users[0].ssn"], ["$.users[*].ssn"]),  # index 0 only: a ciphertext posted at index 1 would come back
    (["$.profile.dob"], ["$.profile"]),
    (["$.a.*"], ["$.*.b"]),
])
def test_decrypted_response_paths_must_be_encrypted_on_the_way_in(request_paths, response_paths):
    from zerotrust import ConfigError

    enc = FieldEncryptor(FakeTransit(), "k")
    with pytest.raises(ConfigError, match="not in request_paths.*stolen ciphertext"):
        FieldEncryptionMiddleware(EchoApp(), enc, request_paths=request_paths, response_paths=response_paths,
                                  decrypt_scopes=["pii:read"])


@pytest.mark.parametrize("request_paths,response_paths,scopes", [
    (["$.ssn", "$.email"], ["$.ssn"], ["pii:read"]),
    (["$.users[*].ssn"], ["$.users[3].ssn", "$.users[*].ssn"], ["pii:read"]),
    (["$.profile"], ["$.profile.dob"], ["pii:read"]),  # the whole ancestor is encrypted
    (["$.*"], ["$.ssn"], ["pii:read"]),
    ([], ["$.ssn"], []),  # mask only: nothing is ever decrypted
])
def test_covered_or_mask_only_response_paths_are_accepted(request_paths, response_paths, scopes):
    FieldEncryptionMiddleware(EchoApp(), FieldEncryptor(FakeTransit(), "k"), request_paths=request_paths,
                              response_paths=response_paths, decrypt_scopes=scopes, mask="****")


@pytest.mark.parametrize("scopes,streamed", [(["other"], True), (None, True), (["pii:read"], False)])
async def test_response_nobody_rewrites_streams_through_unbuffered(scopes, streamed):
    sent: list[dict] = []
    at_first_chunk: list[int] = []
    messages = [{"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]},
                {"type": "http.response.body", "body": b'{"ssn": "ztf1.e', "more_body": True},
                {"type": "http.response.body", "body": b'.not-json-yet"}', "more_body": False}]

    async def app(scope, receive, send):
        for n, message in enumerate(messages):
            await send(message)
            if n == 1:
                at_first_chunk.append(len(sent))

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def collect(message):
        sent.append(message)

    mw = FieldEncryptionMiddleware(app, FieldEncryptor(FakeTransit(), "k"), request_paths=["$.ssn"],
                                   response_paths=["$.ssn"], decrypt_scopes=["pii:read"])
    scope = {"type": "http", "method": "GET", "path": "/p", "headers": []}
    if scopes is not None:
        scope["user"] = SimpleNamespace(principal=Principal(subject="bob", issuer="t", kind="jwt",
                                                            scopes=frozenset(scopes)))
    await mw(scope, receive, collect)
    if streamed:
        assert at_first_chunk == [2] and sent == messages  # the client had the start and first chunk already
    else:
        assert at_first_chunk == [0]  # a principal who may decrypt: buffered to be rewritten
