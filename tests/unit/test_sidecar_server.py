"""The server: both listeners in one loop, TLS/mTLS with the client certificate in the request, clean stop."""

from __future__ import annotations

import asyncio
import ssl

import httpx
import pytest

from tests.support.procs import free_port
from zerotrust import ConfigError, parse_config
from zerotrust.sidecar.server import Address, Sidecar

from .sidecar_fakes import bearer, make_pipeline
from .tls_material import make_pki

BASE = """
version: 1
server: {{realm: test, stack: {stack}{tls}}}
api_keys: {{pepper: "0123456789abcdef0123456789abcdef"}}
policy: {{rules: [{{id: all, paths: ["/**"], anonymous: true}}]}}
"""  # the listeners, TLS and stack come from here; the pipeline is the fake one (tests/unit/sidecar_fakes.py)


def config(stack: str = "uvicorn", tls: str = ""):
    return parse_config(BASE.format(stack=stack, tls=tls), env={})


class Running:
    def __init__(self, sidecar: Sidecar, pipeline, verifier):
        self.sidecar, self.pipeline, self.verifier = sidecar, pipeline, verifier
        self.task: asyncio.Task | None = None
        self.lines: list[str] = []

    async def __aenter__(self) -> Running:
        self.sidecar.announce = self.lines.append
        self.task = asyncio.ensure_future(self.sidecar.run())
        for _ in range(500):
            if self.sidecar.bound or self.task.done():
                break
            await asyncio.sleep(0.01)
        if self.task.done():
            self.task.result()
        assert self.sidecar.bound, "sidecar did not start"
        return self

    async def __aexit__(self, *exc) -> None:
        self.sidecar.stop()
        await asyncio.wait_for(self.task, 15)

    def url(self, which: int = 0, scheme: str = "http") -> str:
        return self.sidecar.bound[which].url(scheme)


def start(cfg, listen: str = "127.0.0.1:0", admin: str = "127.0.0.1:0") -> Running:
    pipeline, verifier, _ = make_pipeline()
    closed = []

    async def aclose():
        closed.append(True)

    pipeline.policy.aclose = aclose  # the server must close the pipeline's plugins on the way out
    sidecar = Sidecar(cfg, Address.parse(listen, "listen"), Address.parse(admin, "admin_listen"),
                      pipeline=pipeline, handle_signals=False)
    running = Running(sidecar, pipeline, verifier)
    running.closed = closed
    return running


def test_address_parsing():
    assert Address.parse("127.0.0.1:8181", "listen") == Address("127.0.0.1", 8181)
    assert Address.parse("[::1]:80", "listen").url() == "http://[::1]:80"
    for bad in ("8181", "host:", ":80", "h:99999", "h:x"):
        with pytest.raises(ConfigError):
            Address.parse(bad, "listen")


async def test_uvicorn_serves_both_listeners_and_stops_cleanly():
    running = start(config())
    async with running:
        async with httpx.AsyncClient() as client:
            ok = await client.get(running.url() + "/public/x", headers={"X-Auth-Subject": "evil"})
            bad = await client.get(running.url() + "/x", headers=bearer("forged"))
            ready = await client.get(running.url(1) + "/readyz")
            metrics = await client.get(running.url(1) + "/metrics")
            not_here = await client.get(running.url() + "/metrics")  # admin endpoints are not on the ext_authz port
        assert ok.status_code == 200 and "x-auth-subject" in ok.headers["x-envoy-auth-headers-to-remove"]
        assert bad.status_code == 401
        assert ready.status_code == 200
        assert 'zerotrust_decisions_total{allow="true",reason="allow",status="200"} 1.0' in metrics.text
        assert not_here.status_code == 401 and "zerotrust_decisions_total" not in not_here.text
    assert running.lines and "ext_authz on http://127.0.0.1:" in running.lines[0]
    assert running.closed == [True]
    assert running.sidecar.admin.serving is False


async def test_busy_port_is_a_clear_error():
    port = free_port()
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", port))
        s.listen()
        running = start(config(), listen=f"127.0.0.1:{port}")
        with pytest.raises(ConfigError, match="cannot listen"):
            await running.sidecar.run()


async def test_mtls_listener_puts_the_client_certificate_thumbprint_into_the_request():
    pki = make_pki()
    tls = (f", tls: {{cert_file: '{pki.server_cert}', key_file: '{pki.server_key}', "
           f"client_ca_file: '{pki.ca_file}'}}")
    running = start(config(tls=tls))
    ctx = ssl.create_default_context(cafile=str(pki.ca_file))
    ctx.load_cert_chain(str(pki.client_cert), str(pki.client_key))
    async with running:
        url = running.url(0, "https")
        async with httpx.AsyncClient(verify=ctx) as client:
            reply = await client.get(url + "/x", headers=bearer("good-api.read"))
        assert reply.status_code == 200
        tls_info = running.verifier.seen[-1].tls
        assert tls_info.verified and tls_info.peer_certificate_sha256 == pki.client_thumbprint
        assert tls_info.peer_subject == "CN=client"
        no_cert = ssl.create_default_context(cafile=str(pki.ca_file))
        async with httpx.AsyncClient(verify=no_cert) as client:
            with pytest.raises(httpx.HTTPError):  # mTLS: no certificate, no request
                await client.get(url + "/x")
    assert running.lines[0].startswith("zerotrust: ext_authz on https://")


async def test_unreadable_tls_files_are_a_config_error(tmp_path):
    running = start(config(tls=f", tls: {{cert_file: '{tmp_path}/nope.pem', key_file: '{tmp_path}/nope.key'}}"))
    with pytest.raises(ConfigError, match="server.tls"):
        await running.sidecar.run()


async def test_granian_stack_serves_both_listeners():
    pytest.importorskip("granian")
    running = start(config("granian"), listen=f"127.0.0.1:{free_port()}", admin=f"127.0.0.1:{free_port()}")
    async with running:
        async with httpx.AsyncClient() as client:
            ok = await client.get(running.url() + "/public/x")
            health = await client.get(running.url(1) + "/healthz")
        assert ok.status_code == 200 and ok.headers["x-zerotrust-decision-id"]
        assert health.status_code == 200
    assert running.closed == [True]


async def test_granian_refuses_tls():
    pki = make_pki()
    running = start(config("granian", f", tls: {{cert_file: '{pki.server_cert}', key_file: '{pki.server_key}'}}"))
    with pytest.raises(ConfigError, match="granian"):
        await running.sidecar.run()


async def test_vault_pki_context_object_is_served_and_its_rotation_stopped(monkeypatch):
    """The context from zerotrust.keys.pki is used as is (rotation reloads it in place), then stopped."""
    import zerotrust.keys.pki as pki_module

    pki = make_pki()
    stopped = []

    class Rotation:
        def stop(self):
            stopped.append(True)

    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(str(pki.server_cert), str(pki.server_key))
    ctx.rotation = Rotation()
    seen = []
    monkeypatch.setattr(pki_module, "rotating_server_context", lambda config: seen.append(config) or ctx)
    cfg = parse_config(BASE.format(stack="uvicorn", tls=", tls: {vault_pki: {role: r, common_name: c}}")
                       + "vault: {addr: 'http://127.0.0.1:1', token: t}\n", env={})
    running = start(cfg)
    async with running:
        async with httpx.AsyncClient(verify=ssl.create_default_context(cafile=str(pki.ca_file))) as client:
            reply = await client.get(running.url(0, "https") + "/public/x")
        assert reply.status_code == 200
        assert seen == [cfg]
    assert stopped == [True]
