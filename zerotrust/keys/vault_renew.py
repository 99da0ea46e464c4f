"""Keeps the Vault token alive: renew-self at 2/3 of its TTL, or log in again.

A background daemon thread, because a token must not lapse just because no request
needed Vault for a while. Renewable tokens are renewed (``auth/token/renew-self``)
with their original TTL as the increment; when a renewal comes back much shorter
(the token is reaching its max TTL) or the token is not renewable, AppRole and
Kubernetes log in afresh. Token auth cannot, so it logs, once, when its token will
lapse. While Vault is down the renewer retries with capped backoff, and logs in
again once Vault is back if the token expired meanwhile.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import replace
from typing import TYPE_CHECKING

from ..errors import DependencyError
from .vault_auth import Lease, lease_from_auth

if TYPE_CHECKING:
    from .vault import VaultClient

log = logging.getLogger("zerotrust.vault")

_RETRY_MIN, _RETRY_MAX = 0.5, 30.0


class TokenRenewer:
    def __init__(self, client: VaultClient):
        self._client = client
        self._cond = threading.Condition()
        self._lease: Lease | None = None
        self._due: float | None = None
        self._stopped = False
        self._thread: threading.Thread | None = None
        self.renewals = 0  # observable for tests and metrics
        self.logins = 0

    def schedule(self, lease: Lease) -> None:
        with self._cond:
            self._lease = lease
            self._due = lease.renew_at
            self._cond.notify()
            if self._thread is None and self._due is not None and not self._stopped:
                self._thread = threading.Thread(target=self._run, name="zerotrust-vault-renew", daemon=True)
                self._thread.start()

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)

    def _run(self) -> None:
        backoff = _RETRY_MIN
        while True:
            with self._cond:
                while not self._stopped and (self._due is None or self._due > time.monotonic()):
                    self._cond.wait(None if self._due is None else self._due - time.monotonic())
                if self._stopped:
                    return
                lease = self._lease
                self._due = None
            assert lease is not None
            try:
                self._renew(lease)
                backoff = _RETRY_MIN
            except DependencyError as exc:
                log.warning("vault token renewal failed, retrying in %.1fs: %s", backoff, exc.detail)
                with self._cond:
                    if self._lease is lease and self._due is None:
                        self._due = time.monotonic() + backoff
                backoff = min(_RETRY_MAX, backoff * 2)

    def _renew(self, lease: Lease) -> None:
        client = self._client
        expired = lease.expires_at is not None and time.monotonic() >= lease.expires_at
        if lease.renewable and not expired:
            increment = int(lease.increment or lease.ttl)
            now = time.monotonic()
            try:
                body = client.send("POST", "auth/token/renew-self", {"increment": f"{increment}s"}, lease.token)
            except DependencyError:
                if not client.can_login:
                    raise
                body = None  # revoked or refused: a fresh login is the cure
            if body is not None:
                fresh = replace(lease_from_auth(body, now), increment=increment)
                # Near its max TTL the renewal is granted only the remainder: log in before it lapses.
                if not (client.can_login and fresh.ttl < increment / 3):
                    self.renewals += 1
                    log.debug("vault token renewed; ttl %.0fs", fresh.ttl)
                    client._set_lease(fresh)
                    return
        if client.can_login:
            self.logins += 1
            client.login()
            return
        log.error("vault token is %s and token auth cannot log in again; Vault calls will fail with 503",
                  "expired" if expired else "not renewable")
