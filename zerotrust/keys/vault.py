"""VaultClient: one hvac session with auth, token renewal, retries and a circuit breaker.

Every Vault call in this project goes through :meth:`VaultClient.request`, which

* logs in lazily (so the process starts and serves 503s while Vault is down),
* retries connection errors and 5xx a bounded number of times with exponential
  backoff and full jitter, never 4xx (Vault answered; asking again changes nothing),
* fails fast while the :class:`CircuitBreaker` is open,
* turns every failure into :class:`DependencyError` (503); a 4xx becomes its
  subclass :class:`VaultRejected` so callers can map e.g. a bad ciphertext to 400.

Redirects are not followed: a standby or a hostile server could otherwise bounce our
``X-Vault-Token`` to another host. Token renewal runs in :mod:`.vault_renew`.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from typing import Any

import hvac
import hvac.exceptions
import requests
import requests.adapters

from ..config import VaultConfig
from ..errors import DependencyError
from .breaker import CircuitBreaker
from .vault_auth import Lease, VaultAuth, auth_from_config
from .vault_renew import TokenRenewer

log = logging.getLogger("zerotrust.vault")

_BACKOFF_BASE = 0.05
_BACKOFF_CAP = 1.0


class VaultRejected(DependencyError):
    """Vault answered 4xx. Still a 503 for the client unless the caller knows better."""

    reason = "error.vault_rejected"

    def __init__(self, status: int, errors: list[str], path: str):
        self.vault_status = status
        self.errors = errors
        super().__init__(detail=f"vault {status} on {path}: {'; '.join(errors)[:300]}")


def _status(exc: hvac.exceptions.VaultError) -> int:
    for status, cls in ((400, hvac.exceptions.InvalidRequest), (401, hvac.exceptions.Unauthorized),
                        (403, hvac.exceptions.Forbidden), (404, hvac.exceptions.InvalidPath),
                        (429, hvac.exceptions.RateLimitExceeded), (501, hvac.exceptions.VaultNotInitialized),
                        (503, hvac.exceptions.VaultDown), (502, hvac.exceptions.BadGateway)):
        if isinstance(exc, cls):
            return status
    return 500


def _errors(exc: hvac.exceptions.VaultError) -> list[str]:
    """Vault's error strings. A failed batch lists them per item next to the items that
    succeeded, which may hold plaintext: take the ``error`` strings and nothing else."""
    if exc.errors:
        return [str(e)[:200] for e in exc.errors]
    body = exc.json if isinstance(exc.json, dict) else {}
    items = (body.get("data") or {}).get("batch_results") if isinstance(body.get("data"), dict) else None
    found = [str(i["error"])[:200] for i in items or [] if isinstance(i, dict) and i.get("error")]
    return found or [type(exc).__name__]


class VaultClient:
    def __init__(self, config: VaultConfig, *, auth: VaultAuth | None = None, renew: bool = True,
                 session: requests.Session | None = None, sleep: Callable[[float], None] = time.sleep):
        self.config = config
        self.breaker = CircuitBreaker(config.breaker_failures, config.breaker_reset)
        self._auth = auth or auth_from_config(config)
        self._sleep = sleep
        verify: bool | str = config.ca_cert or config.verify_tls
        if session is None:
            session = requests.Session()
            # Room for every to_thread worker; retries are ours, not urllib3's.
            http = requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=32, max_retries=0)
            session.mount("https://", http)
            session.mount("http://", http)
        # hvac prefers a given session's own ``verify`` over its argument: set it, or ca_cert is ignored.
        session.verify = verify
        # token="" stops hvac from picking up VAULT_TOKEN or ~/.vault-token behind our back.
        self._hvac = hvac.Client(url=config.addr, token="", verify=verify, timeout=config.timeout,
                                 namespace=config.namespace, allow_redirects=False, session=session)
        self._adapter = self._hvac.adapter
        self._login_lock = threading.Lock()
        self._lease: Lease | None = None
        self._last_login = 0.0
        self.renewer = TokenRenewer(self) if renew else None

    @classmethod
    def from_config(cls, config: VaultConfig) -> VaultClient:
        return cls(config)

    # --- raw transport ---------------------------------------------------------------------

    def send(self, method: str, path: str, json: dict[str, Any] | None = None, token: str | None = None,
             *, retry: bool = True) -> dict[str, Any]:
        """One logical call with retries and the breaker; ``token`` overrides the session token."""
        attempts = 1 + (self.config.retries if retry else 0)
        headers = {"X-Vault-Token": token} if token else {}
        last = "no attempt"
        for attempt in range(attempts):
            if attempt:
                self._sleep(random.uniform(0, min(_BACKOFF_CAP, _BACKOFF_BASE * 2 ** attempt)))
            if not self.breaker.allow():
                raise DependencyError(reason="error.vault_unavailable",
                                      detail=f"vault circuit open ({last}); next probe in {self.breaker.retry_in():.1f}s")
            try:
                resp = self._adapter.request(method, f"/v1/{path}", json=json, headers=headers or None)
            except requests.RequestException as exc:
                self.breaker.failure()
                last = f"{type(exc).__name__} on {path}"
                continue
            except hvac.exceptions.VaultError as exc:
                status = _status(exc)
                errors = _errors(exc)
                if status >= 500 or status == 429:
                    self.breaker.failure()
                    last = f"vault {status} on {path}: {'; '.join(errors)[:200]}"
                    if status in (501, 503):  # uninitialised or sealed: retrying now will not help
                        break
                    continue
                self.breaker.success()
                raise VaultRejected(status, errors, path) from None
            self.breaker.success()
            if isinstance(resp, dict):
                return resp
            if resp.status_code == 204:
                return {}
            # A redirect (not followed, see above) or a 200 that is not JSON: not Vault talking.
            raise DependencyError(reason="error.vault_garbage", detail=f"vault {resp.status_code} on {path}: not JSON")
        log.warning("vault unavailable: %s", last)
        raise DependencyError(reason="error.vault_unavailable", detail=last)

    # --- authenticated calls --------------------------------------------------------------

    def request(self, method: str, path: str, json: dict[str, Any] | None = None, *,
                retry: bool = True) -> dict[str, Any]:
        lease = self.lease()
        try:
            return self.send(method, path, json, lease.token, retry=retry)
        except VaultRejected as exc:
            # A 403 with a login-capable method may just be an expired or revoked token.
            if exc.vault_status != 403 or not self._auth.can_login or time.monotonic() - self._last_login < 1:
                raise
            log.info("vault: 403 on %s, logging in again", path)
            lease = self.login()
            return self.send(method, path, json, lease.token, retry=retry)

    def _usable(self, lease: Lease | None) -> bool:
        if lease is None:
            return False
        expires = lease.expires_at
        # An expired token-auth token is still "usable": Vault's 403 is the honest answer.
        return expires is None or time.monotonic() < expires or not self._auth.can_login

    def lease(self) -> Lease:
        lease = self._lease
        if self._usable(lease):
            return lease  # type: ignore[return-value]
        with self._login_lock:  # many threads may find no token at once: one logs in
            if self._usable(self._lease):
                return self._lease  # type: ignore[return-value]
            return self._login_locked()

    def login(self) -> Lease:
        with self._login_lock:
            return self._login_locked()

    def _login_locked(self) -> Lease:
        lease = self._auth.login(lambda m, p, j, t: self.send(m, p, j, t or None))
        self._set_lease(lease)
        self._last_login = time.monotonic()
        log.info("vault: authenticated with %s; token ttl %.0fs renewable=%s", self._auth.method,
                 lease.ttl, lease.renewable)
        return lease

    def _set_lease(self, lease: Lease) -> None:
        self._lease = lease
        if self.renewer is not None:
            self.renewer.schedule(lease)

    @property
    def can_login(self) -> bool:
        return self._auth.can_login

    def close(self) -> None:
        if self.renewer is not None:
            self.renewer.stop()
        self._adapter.close()
