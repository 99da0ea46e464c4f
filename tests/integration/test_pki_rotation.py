"""Listener certificates from real OpenBao PKI, rotated in place under open connections."""

from __future__ import annotations

import asyncio
import socket
import ssl
import threading
import time

import pytest
from cryptography import x509

from tests.support.openbao import OpenBao
from zerotrust.config import Config, parse_config
from zerotrust.keys.pki import rotating_server_context

pytestmark = pytest.mark.integration

HOST = "sidecar.test"


def _config(bao: OpenBao, ttl: str, *, mount: str = "pki", extra: str = "") -> Config:
    return parse_config(f"""
api_keys: {{pepper: "{'p' * 32}"}}
policy: {{rules: [{{id: r, paths: ["/**"], anonymous: true}}]}}
vault: {{addr: "{bao.addr}", token: "{bao.root_token}", breaker_reset: 0.3, retries: 0, timeout: 1}}
server:
  tls:
    vault_pki: {{mount: {mount}, role: sidecar, common_name: {HOST}, ip_sans: ["127.0.0.1"], ttl: "{ttl}",
                renew_fraction: 0.5 {extra}}}
""")


def _serial(der: bytes | None) -> int:
    assert der is not None
    return x509.load_der_x509_certificate(der).serial_number


def _vault_serial(text: str) -> int:
    return int(text.replace(":", "").replace("-", ""), 16)


@pytest.fixture(scope="module")
def bao(tmp_path_factory):
    server = OpenBao.dev(tmp_path_factory.mktemp("bao-pki"))
    root = server.setup_pki(role="sidecar", domains=[HOST])
    server.root_ca = root  # type: ignore[attr-defined]
    yield server
    server.stop()


async def _wait(predicate, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def test_rotation_in_place_keeps_open_connections(bao):
    ctx = rotating_server_context(_config(bao, "4s"))  # in a running loop: rotation is a task
    rotation = ctx.rotation

    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while line := await reader.readline():
            writer.write(line)
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(echo, "127.0.0.1", 0, ssl=ctx)
    port = server.sockets[0].getsockname()[1]
    client_ctx = ssl.create_default_context(cadata=bao.root_ca)
    try:
        r1, w1 = await asyncio.open_connection("127.0.0.1", port, ssl=client_ctx, server_hostname=HOST)
        first = _serial(w1.get_extra_info("ssl_object").getpeercert(binary_form=True))
        assert first == _vault_serial(rotation.current.serial)
        w1.write(b"before\n")
        assert await r1.readline() == b"before\n"

        await _wait(lambda: rotation.rotations >= 1, timeout=8)

        r2, w2 = await asyncio.open_connection("127.0.0.1", port, ssl=client_ctx, server_hostname=HOST)
        second = _serial(w2.get_extra_info("ssl_object").getpeercert(binary_form=True))
        assert second != first and second == _vault_serial(rotation.current.serial)
        w1.write(b"old connection still works\n")  # established before the rotation
        assert await r1.readline() == b"old connection still works\n"
        assert _serial(w1.get_extra_info("ssl_object").getpeercert(binary_form=True)) == first
        w2.write(b"new\n")
        assert await r2.readline() == b"new\n"
        for w in (w1, w2):
            w.close()
    finally:
        rotation.stop()
        server.close()
        await server.wait_closed()


def _handshake_serial(port: int, cadata: str) -> int:
    client_ctx = ssl.create_default_context(cadata=cadata)
    with socket.create_connection(("127.0.0.1", port), timeout=3) as raw, \
            client_ctx.wrap_socket(raw, server_hostname=HOST) as tls:
        return _serial(tls.getpeercert(binary_form=True))


def _serve(listener: socket.socket, ctx: ssl.SSLContext, stop: threading.Event) -> threading.Thread:
    thread = threading.Thread(target=_serve_forever, args=(listener, ctx, stop), daemon=True)
    thread.start()
    return thread


def _serve_forever(listener: socket.socket, ctx: ssl.SSLContext, stop: threading.Event) -> None:
    listener.settimeout(0.2)
    while not stop.is_set():
        try:
            conn, _ = listener.accept()
        except TimeoutError:
            continue
        except OSError:  # listener closed
            return
        try:
            with ctx.wrap_socket(conn, server_side=True):
                pass
        except (ssl.SSLError, OSError):
            pass


def test_vault_outage_keeps_current_cert_then_recovers(tmp_path, caplog):
    bao = OpenBao.persistent(tmp_path / "bao")
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()
    ctx = None
    server: threading.Thread | None = None
    try:
        root = bao.setup_pki(role="sidecar", domains=[HOST])
        ctx = rotating_server_context(_config(bao, "6s"))  # no loop here: rotation runs in a thread
        rotation = ctx.rotation
        port = listener.getsockname()[1]
        server = _serve(listener, ctx, stop)
        first = _handshake_serial(port, root)

        bao.stop()
        deadline = time.monotonic() + 8
        while rotation.failures < 1:
            assert time.monotonic() < deadline, "renewal never attempted"
            time.sleep(0.05)
        assert rotation.rotations == 0
        assert _handshake_serial(port, root) == first  # still serving the current certificate
        assert "cannot renew" in caplog.text

        bao.start()  # restarts sealed; the helper unseals it
        deadline = time.monotonic() + 6
        while rotation.rotations < 1:
            assert time.monotonic() < deadline, f"no recovery:\n{caplog.text[-2000:]}"
            time.sleep(0.05)
        assert _handshake_serial(port, root) != first
    finally:
        stop.set()
        if server is not None:
            server.join(2)
        if ctx is not None:
            ctx.rotation.stop()
        listener.close()
        bao.stop()


def test_pem_files_do_not_linger_and_dir_is_private(bao):
    ctx = rotating_server_context(_config(bao, "10m"))
    try:
        private_dir = ctx.rotation._dir
        assert (private_dir.stat().st_mode & 0o777) == 0o700
        assert list(private_dir.iterdir()) == []  # keys were loaded, then removed
    finally:
        ctx.rotation.stop()
    assert not private_dir.exists()


def test_mtls_with_issuing_ca(bao):
    ctx = rotating_server_context(_config(bao, "10m", extra=", require_client_cert: true"))
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()
    server = _serve(listener, ctx, stop)
    port = listener.getsockname()[1]
    try:
        issued = bao.request("POST", "pki/issue/sidecar", {"common_name": HOST, "ttl": "5m"})["data"]
        cert_file, key_file = ctx.rotation._dir / "client.crt", ctx.rotation._dir / "client.key"
        cert_file.write_text(issued["certificate"])
        key_file.write_text(issued["private_key"])
        with_cert = ssl.create_default_context(cadata=bao.root_ca)
        with_cert.load_cert_chain(cert_file, key_file)
        with socket.create_connection(("127.0.0.1", port), timeout=3) as raw, \
                with_cert.wrap_socket(raw, server_hostname=HOST) as tls:
            tls.write(b"x")  # TLS 1.3: the server's verdict on our certificate arrives after the handshake
        without = ssl.create_default_context(cadata=bao.root_ca)
        with pytest.raises((ssl.SSLError, ConnectionError)):
            with socket.create_connection(("127.0.0.1", port), timeout=3) as raw, \
                    without.wrap_socket(raw, server_hostname=HOST) as tls:
                tls.write(b"x")
                tls.recv(1)
    finally:
        stop.set()
        server.join(2)
        ctx.rotation.stop()
        listener.close()
