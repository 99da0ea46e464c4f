"""How we get a Vault token: a given token, AppRole, or a Kubernetes service account.

Each method returns a :class:`Lease` (token, TTL, renewable). Token auth cannot log in
again, so when its token expires we can only fail closed; AppRole and Kubernetes log in
afresh whenever renewal is impossible. The Kubernetes JWT is re-read on every login
because projected service-account tokens are rotated on disk by the kubelet.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from ..config import VaultConfig
from ..errors import ConfigError, DependencyError

# (method, path, json, token) -> response body; the client's retried, breaker-guarded call.
Send = Callable[[str, str, dict[str, Any] | None, str], dict[str, Any]]

RENEW_FRACTION = 2 / 3


@dataclass(frozen=True)
class Lease:
    token: str = field(repr=False)
    ttl: float  # seconds; 0 means the token never expires (e.g. a root token)
    renewable: bool
    obtained: float  # time.monotonic() when the TTL was read
    increment: float = 0  # TTL to ask for on renewal; 0: the TTL it was issued with

    @property
    def expires_at(self) -> float | None:
        return None if self.ttl <= 0 else self.obtained + self.ttl

    @property
    def renew_at(self) -> float | None:
        return None if self.ttl <= 0 else self.obtained + self.ttl * RENEW_FRACTION


def lease_from_auth(body: dict[str, Any], now: float) -> Lease:
    auth = body.get("auth") or {}
    token = auth.get("client_token")
    if not isinstance(token, str) or not token:
        raise DependencyError(detail="vault login answered without a client_token")
    return Lease(token, float(auth.get("lease_duration") or 0), bool(auth.get("renewable")), now)


class VaultAuth(Protocol):
    method: str
    can_login: bool  # True: may obtain a brand-new token when the old one cannot be renewed

    def login(self, send: Send) -> Lease: ...


class TokenAuth:
    method = "token"
    can_login = False

    def __init__(self, token: str):
        self._token = token

    def login(self, send: Send) -> Lease:
        # No login: look the token up to learn its remaining TTL and whether it renews.
        now = time.monotonic()
        data = send("GET", "auth/token/lookup-self", None, self._token).get("data") or {}
        return Lease(self._token, float(data.get("ttl") or 0), bool(data.get("renewable")), now,
                     float(data.get("creation_ttl") or 0))


class AppRoleAuth:
    method = "approle"
    can_login = True

    def __init__(self, role_id: str, secret_id: str | None, mount: str = "approle"):
        self._role_id, self._secret_id, self._mount = role_id, secret_id, mount

    def login(self, send: Send) -> Lease:
        body: dict[str, Any] = {"role_id": self._role_id}
        if self._secret_id:
            body["secret_id"] = self._secret_id
        now = time.monotonic()
        return lease_from_auth(send("POST", f"auth/{self._mount}/login", body, ""), now)


class KubernetesAuth:
    method = "kubernetes"
    can_login = True

    def __init__(self, role: str, jwt_path: str, mount: str = "kubernetes"):
        self._role, self._jwt_path, self._mount = role, Path(jwt_path), mount

    def login(self, send: Send) -> Lease:
        try:
            jwt = self._jwt_path.read_text().strip()
        except OSError as exc:
            raise DependencyError(detail=f"cannot read service-account token {self._jwt_path}: {exc.strerror}") from None
        now = time.monotonic()
        return lease_from_auth(send("POST", f"auth/{self._mount}/login", {"role": self._role, "jwt": jwt}, ""), now)


def auth_from_config(config: VaultConfig) -> VaultAuth:
    mount = config.auth_mount
    if config.auth == "token":
        if not config.token:
            raise ConfigError("vault.token is required when vault.auth is 'token'")
        return TokenAuth(config.token)
    if config.auth == "approle":
        if not config.role_id:
            raise ConfigError("vault.role_id is required when vault.auth is 'approle'")
        return AppRoleAuth(config.role_id, config.secret_id, mount or "approle")
    if not config.kubernetes_role:
        raise ConfigError("vault.kubernetes_role is required when vault.auth is 'kubernetes'")
    return KubernetesAuth(config.kubernetes_role, config.kubernetes_jwt_path, mount or "kubernetes")
