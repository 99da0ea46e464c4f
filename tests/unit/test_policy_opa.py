"""OPA engine and its HTTP transport against fakes; the real OPA is in tests/integration/test_opa_engine.py."""

import asyncio
import json

import pytest

from zerotrust.errors import ConfigError, DependencyError
from zerotrust.pipeline import Pipeline
from zerotrust.policy.opa import OPAPolicyEngine, data_path
from zerotrust.policy.opa_http import KeepAlivePool, ProtocolError, transport_for
from tests.support.procs import free_port
from zerotrust.types import Headers, Principal, RequestContext

REQ = RequestContext("GET", "/x", Headers())
P = Principal("alice", "iss", "jwt", frozenset({"api:read"}))


class FakeTransport:
    def __init__(self, *answers):
        self.answers = list(answers)
        self.bodies: list[bytes] = []
        self.paths: list[str] = []

    async def post(self, path, body, timeout):
        self.paths.append(path)
        self.bodies.append(body)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, BaseException):
            raise answer
        status, payload = answer
        return status, payload if isinstance(payload, bytes) else json.dumps(payload).encode()

    async def aclose(self):
        pass


def engine(*answers):
    return OPAPolicyEngine("http://127.0.0.1:1", transport=FakeTransport(*answers))


async def test_decision_is_parsed_and_input_is_the_contract():
    e = engine((200, {"result": {"allow": True, "reason": "read:allow", "required_scopes": ["api:read"]}}))
    r = await e.decide(REQ, P)
    assert r.allow and r.reason == "read:allow" and r.engine == "opa" and len(r.input_hash) == 32
    sent = json.loads(e.transport.bodies[0])
    assert sent["input"]["version"] == 1 and sent["input"]["principal"]["scopes"] == ["api:read"]
    assert e.transport.paths[0] == "/v1/data/zerotrust/authz/decision?provenance"


@pytest.mark.parametrize("answer", [
    ConnectionRefusedError(), TimeoutError(), asyncio.IncompleteReadError(b"", 10), ProtocolError("x"),
    (500, {"code": "internal_error"}), (404, {}), (400, {"code": "invalid_parameter"}),
    (200, b"not json"), (200, b"[1, 2]"), (200, {"result": "yes"}), (200, {"result": {"allow": "true"}}),
    (200, {"result": {"allow": True, "obligations": {"headers": {"X": "a\r\nb"}}}}),
])
async def test_every_failure_is_a_503_never_an_allow(answer):
    e = engine(answer)
    with pytest.raises(DependencyError) as info:
        await e.decide(REQ, P)
    assert info.value.status == 503 and e.errors == 1


async def test_undefined_decision_is_a_deny():
    e = engine((200, {}))
    r = await e.decide(REQ, P)
    assert not r.allow and r.reason == "policy.undefined" and e.undefined == 1


async def test_recovers_without_restart():
    e = engine(ConnectionRefusedError(), (200, {"result": True}))
    with pytest.raises(DependencyError):
        await e.decide(REQ, P)
    assert (await e.decide(REQ, P)).allow


async def test_bundle_revision_comes_from_provenance():
    e = engine((200, {"result": True, "provenance": {"version": "1", "bundles": {"authz": {"revision": "v7"}}}}))
    r = await e.decide(REQ, P)
    assert r.revision == e.revision == "authz@v7"


async def test_dependency_failure_is_503_through_the_pipeline():
    e = engine(ConnectionRefusedError())
    d = await Pipeline(extractors=[], verifiers=[], policy=e).evaluate(REQ)
    assert (d.allow, d.status, d.reason) == (False, 503, "error.policy_engine")


@pytest.mark.parametrize("path", ["zerotrust/authz/../x", "a/b c", "", "a//b", "a/1b", "a?b"])
def test_decision_path_must_be_rego_identifiers(path):
    with pytest.raises(ConfigError):
        data_path(path)


def test_urls():
    with pytest.raises(ValueError):
        transport_for("ftp://127.0.0.1")
    pool, prefix = transport_for("http://127.0.0.1:8181/opa/")
    assert isinstance(pool, KeepAlivePool) and prefix == "/opa" and pool.port == 8181


# -- the keep-alive transport against a scripted HTTP server ------------------------------------

class Server:
    """Answers each request with the next scripted bytes (or closes the connection on None)."""

    def __init__(self, *responses):
        self.responses = list(responses)
        self.connections = 0
        self.requests: list[bytes] = []

    async def handle(self, reader, writer):
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = int([ln for ln in head.split(b"\r\n") if ln.lower().startswith(b"content-length")][0]
                             .split(b":")[1])
                self.requests.append(head + await reader.readexactly(length))
                response = self.responses.pop(0) if len(self.responses) > 1 else self.responses[0]
                if response is None:
                    break
                if response == b"hang":
                    await asyncio.sleep(5)
                writer.write(response)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def __aenter__(self):
        self.server = await asyncio.start_server(self.handle, "127.0.0.1", 0)
        return KeepAlivePool("127.0.0.1", self.server.sockets[0].getsockname()[1])

    async def __aexit__(self, *exc):
        self.server.close()


def ok(body=b'{"result":true}', extra=b""):
    return b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n" + extra + \
        b"Content-Length: %d\r\n\r\n" % len(body) + body


async def test_connections_are_kept_alive():
    server = Server(ok())
    async with server as pool:
        for _ in range(5):
            assert await pool.post("/v1/data/p", b"{}", 1) == (200, b'{"result":true}')
        await pool.aclose()
    assert server.connections == 1 and len(server.requests) == 5
    assert server.requests[0].startswith(b"POST /v1/data/p HTTP/1.1\r\n")


async def test_chunked_response():
    chunked = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"5\r\n{\"res\r\nA;ext=1\r\nult\":true}\r\n0\r\n\r\n")
    async with Server(chunked) as pool:
        assert await pool.post("/", b"{}", 1) == (200, b'{"result":true}')
        assert await pool.post("/", b"{}", 1) == (200, b'{"result":true}')
        await pool.aclose()


async def test_connection_close_is_honoured():
    server = Server(ok(extra=b"Connection: close\r\n"), None)
    async with server as pool:
        await pool.post("/", b"{}", 1)
        assert pool._idle == []


async def test_stale_pooled_connection_is_retried_once_on_a_fresh_one():
    server = Server(ok(), None, ok())  # second request: the server drops the connection (OPA restarted)
    async with server as pool:
        await pool.post("/", b"{}", 1)
        assert await pool.post("/", b"{}", 1) == (200, b'{"result":true}')
        await pool.aclose()
    assert server.connections == 2


@pytest.mark.parametrize("response", [
    b"garbage\r\n\r\n",
    b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\n{}",
    b"HTTP/1.1 200 OK\r\n\r\n{}",
    b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    b"HTTP/1.1 200 OK\r\nbad header line\r\nContent-Length: 2\r\n\r\n{}",
    b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
])
async def test_malformed_responses_raise_and_drop_the_connection(response):
    async with Server(response) as pool:
        with pytest.raises((ProtocolError, asyncio.IncompleteReadError)):
            await pool.post("/", b"{}", 1)
        assert pool._idle == []


async def test_timeout():
    async with Server(b"hang") as pool:
        with pytest.raises(TimeoutError):
            await pool.post("/", b"{}", 0.05)
        assert pool._idle == []


async def test_refused():
    pool = KeepAlivePool("127.0.0.1", 1)
    with pytest.raises(OSError):
        await pool.post("/", b"{}", 1)


async def test_httpx_transport_speaks_the_same_interface():
    from zerotrust.policy.opa_http import HttpxTransport

    server = Server(ok())
    async with server as pool:
        t = HttpxTransport(f"http://127.0.0.1:{pool.port}")
        assert await t.post("/v1/data/p", b"{}", 1) == (200, b'{"result":true}')
        await t.aclose()


async def test_connections_are_bounded():
    server = Server(ok())
    async with server as pool:
        pool._slots = asyncio.Semaphore(2)
        answers = await asyncio.gather(*[pool.post("/", b"{}", 2) for _ in range(20)])
        await pool.aclose()
    assert all(a[0] == 200 for a in answers) and server.connections <= 2


async def test_ready_follows_opa_health():
    server = Server(ok(b"{}"))
    async with server as pool:
        e = OPAPolicyEngine(f"http://127.0.0.1:{pool.port}/opa")
        assert await e.ready()
        assert server.requests[-1].startswith(b"GET /opa/health?bundles HTTP/1.1\r\n")
        server.responses = [b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n"]
        assert not await e.ready()
        await e.aclose()
    assert not await OPAPolicyEngine(f"http://127.0.0.1:{free_port()}").ready()
