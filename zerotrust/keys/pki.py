"""Short-lived listener certificates from Vault PKI, rotated in place.

``rotating_server_context(config)`` issues a certificate from ``<mount>/issue/<role>``
and loads it into an :class:`ssl.SSLContext`, then re-issues at ``renew_fraction`` of
the lifetime and calls ``load_cert_chain`` on that SAME context. New handshakes get the
new certificate; established connections keep theirs (OpenSSL copies the certificate
into each connection at accept time), so nothing is dropped.

Where the reload runs matters: ``load_cert_chain`` sets the certificate and then the
key, and a handshake accepted in between would see a certificate without its key. When
called inside a running event loop (the sidecar), the Vault call runs in a worker
thread but the reload runs on the loop thread, where no handshake can interleave.
Without a loop, a daemon thread does both (a microseconds-wide window; fine for tests
and tools).

If Vault fails, the current certificate stays in use and issuance is retried with
capped exponential backoff, logged at ERROR with the time left before expiry. PEM files
exist only for the instant ``load_cert_chain`` needs them, in a private 0700 directory.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import shutil
import ssl
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import Config, VaultPKIConfig
from ..errors import ConfigError, DependencyError
from .vault import VaultClient

log = logging.getLogger("zerotrust.pki")

_RETRY_MIN, _RETRY_MAX = 1.0, 30.0


@dataclass(frozen=True)
class Issued:
    certificate: str
    chain: tuple[str, ...]
    private_key: str = field(repr=False)
    issuing_ca: str
    serial: str
    not_after: float
    issued_at: float


class RotatingSSLContext(ssl.SSLContext):
    """An ``SSLContext`` that knows its :class:`CertificateRotation` (for stop and metrics)."""

    rotation: CertificateRotation


class CertificateRotation:
    def __init__(self, client: VaultClient, pki: VaultPKIConfig, context: ssl.SSLContext, *,
                 client_ca_file: str | None = None):
        self.client, self.pki, self.context = client, pki, context
        self.client_ca_file = client_ca_file
        self.current: Issued | None = None
        self.rotations = 0
        self.failures = 0
        self._dir = Path(tempfile.mkdtemp(prefix="zerotrust-pki-"))  # mkdtemp: mode 0700
        self._stop = threading.Event()
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._trusted_cas: set[str] = set()

    # --- one rotation -------------------------------------------------------------------

    def fetch(self) -> Issued:
        body: dict[str, Any] = {"common_name": self.pki.common_name, "ttl": self.pki.ttl, "format": "pem"}
        if self.pki.alt_names:
            body["alt_names"] = ",".join(self.pki.alt_names)
        if self.pki.ip_sans:
            body["ip_sans"] = ",".join(self.pki.ip_sans)
        now = time.time()
        data = self.client.request("POST", f"{self.pki.mount.strip('/')}/issue/{self.pki.role}", body
                                   ).get("data") or {}
        try:
            chain = tuple(c for c in data.get("ca_chain") or [data["issuing_ca"]])
            return Issued(data["certificate"], chain, data["private_key"], data["issuing_ca"],
                          str(data["serial_number"]), float(data["expiration"]), now)
        except (KeyError, TypeError, ValueError):
            raise DependencyError(reason="error.vault_garbage", detail="PKI issue answer is incomplete") from None

    def install(self, issued: Issued) -> None:
        """Load ``issued`` into the shared context (call where no handshake can interleave)."""
        tag = secrets.token_hex(8)
        cert_path, key_path = self._dir / f"{tag}.crt", self._dir / f"{tag}.key"
        try:
            self._write(cert_path, "\n".join((issued.certificate, *issued.chain)) + "\n")
            self._write(key_path, issued.private_key + "\n")
            self.context.load_cert_chain(cert_path, key_path)
            if self.pki.require_client_cert and not self.client_ca_file and issued.issuing_ca not in self._trusted_cas:
                self.context.load_verify_locations(cadata=issued.issuing_ca)  # CA rotation: old one stays trusted
                self._trusted_cas.add(issued.issuing_ca)
        finally:
            for p in (cert_path, key_path):
                p.unlink(missing_ok=True)
        previous, self.current = self.current, issued
        if previous is not None:
            self.rotations += 1
        log.info("pki: serving certificate serial %s for %s, expires in %.0fs", issued.serial,
                 self.pki.common_name, issued.not_after - time.time())

    @staticmethod
    def _write(path: Path, text: str) -> None:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(text)

    # --- scheduling ---------------------------------------------------------------------

    def next_delay(self) -> float:
        c = self.current
        assert c is not None
        return max(0.0, c.issued_at + (c.not_after - c.issued_at) * self.pki.renew_fraction - time.time())

    def _retry_delay(self, attempt: int) -> float:
        assert self.current is not None
        left = self.current.not_after - time.time()
        return max(_RETRY_MIN / 2, min(_RETRY_MAX, _RETRY_MIN * 2 ** attempt, max(left, 0) / 4))

    def _failed(self, exc: BaseException, attempt: int) -> float:
        self.failures += 1
        delay = self._retry_delay(attempt)
        left = self.current.not_after - time.time() if self.current else 0
        log.error("pki: cannot renew the %s certificate (%s); keeping serial %s which expires in %.0fs; "
                  "retrying in %.1fs", self.pki.common_name, getattr(exc, "detail", None) or type(exc).__name__,
                  self.current.serial if self.current else "-", left, delay)
        return delay

    async def run_async(self) -> None:
        attempt = 0
        delay = self.next_delay()
        while not self._stop.is_set():
            await asyncio.sleep(delay)
            try:
                issued = await asyncio.to_thread(self.fetch)
                self.install(issued)  # on the loop thread: no handshake in between
                attempt, delay = 0, self.next_delay()
            except Exception as exc:  # noqa: BLE001 - any failure keeps the current certificate
                delay = self._failed(exc, attempt)
                attempt += 1

    def run_thread(self) -> None:
        attempt = 0
        delay = self.next_delay()
        while not self._stop.wait(delay):
            try:
                self.install(self.fetch())
                attempt, delay = 0, self.next_delay()
            except Exception as exc:  # noqa: BLE001
                delay = self._failed(exc, attempt)
                attempt += 1

    def start(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        if loop is not None:
            self._loop = loop
            self._task = loop.create_task(self.run_async(), name="zerotrust-pki-rotation")
        else:
            self._thread = threading.Thread(target=self.run_thread, name="zerotrust-pki-rotation", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._task is not None and self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._task.cancel)  # stop() may come from another thread
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)
        shutil.rmtree(self._dir, ignore_errors=True)


def rotating_server_context(config: Config, *, client: VaultClient | None = None) -> RotatingSSLContext:
    """A TLS server context whose certificate comes from Vault PKI and rotates in place."""
    tls = config.server.tls
    if tls is None or tls.vault_pki is None or config.vault is None:
        raise ConfigError("server.tls.vault_pki needs both server.tls.vault_pki and vault:")
    ctx = RotatingSSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if tls.client_ca_file:
        ctx.load_verify_locations(cafile=tls.client_ca_file)
    if tls.vault_pki.require_client_cert or tls.client_ca_file:
        ctx.verify_mode = ssl.CERT_REQUIRED
    rotation = CertificateRotation(client or VaultClient(config.vault), tls.vault_pki, ctx,
                                   client_ca_file=tls.client_ca_file)
    try:
        rotation.install(rotation.fetch())  # no certificate, no listener: fail start-up loudly
    except Exception:
        rotation.stop()
        raise
    rotation.start()
    ctx.rotation = rotation
    return ctx
