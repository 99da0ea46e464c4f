"""Fixtures for the proxy end-to-end tests: one real sidecar, one recording upstream, real proxies.

The sidecar runs ``examples/quickstart.yaml`` (API keys in SQLite, built-in policy)
plus one anonymous rule for ``/public/**``, with a temporary key database and keys
made by the real ``zerotrust apikey create`` CLI. Processes start once per session
(sidecar, upstream) or per module (Envoy, nginx, Caddy) to keep the suite fast.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.support.procs import LOOPBACK, Service, free_port
from tests.support.proxies import RunningProxy, start_caddy, start_envoy, start_nginx
from tests.support.upstream import RecordingUpstream

QUICKSTART = Path(__file__).resolve().parents[2] / "examples" / "quickstart.yaml"
PUBLIC_RULE = {"id": "public", "paths": ["/public/**"], "anonymous": True}
# Small, so a test can provoke 429 quickly and the throttle forgets the client within a second.
THROTTLE = {"throttle_failures": 5, "throttle_window": 1.0}


def write_sidecar_config(directory: Path, port: int, admin_port: int) -> Path:
    """The quickstart, made concrete for one test session."""
    config = yaml.safe_load(QUICKSTART.read_text())
    config["server"].update(listen=f"{LOOPBACK}:{port}", admin_listen=f"{LOOPBACK}:{admin_port}",
                            trusted_proxies=["127.0.0.0/8"])
    config["api_keys"].update(database=str(directory / "keys.db"), pepper=secrets.token_urlsafe(36), **THROTTLE)
    config["policy"]["rules"].insert(0, PUBLIC_RULE)
    config["audit"]["output"] = str(directory / "audit.jsonl")
    config["audit"]["flush_interval"] = 0  # decision() reads the log right after each request
    path = directory / "zerotrust.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def create_keys(config: Path, wanted: dict[str, tuple[str, ...]]) -> dict[str, str]:
    """Run ``zerotrust apikey create`` once per key, concurrently; the key is the last stdout line."""
    procs = {}
    for name, scopes in wanted.items():
        argv = [sys.executable, "-m", "zerotrust", "apikey", "create", "--config", str(config), "--name", name]
        for scope in scopes:
            argv += ["--scope", scope]
        procs[name] = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    keys = {}
    for name, proc in procs.items():
        out, err = proc.communicate(timeout=30)
        if proc.returncode != 0:
            raise RuntimeError(f"apikey create {name} failed: {err}")
        keys[name] = out.strip().splitlines()[-1]
    return keys


@dataclass
class Keys:
    reader: str   # api:read
    writer: str   # api:read api:write
    admin: str    # api:read api:write api:admin


class Sidecar:
    """``zerotrust serve`` on fixed ports, so that it can be killed and restarted under the proxies."""

    def __init__(self, config: Path, port: int, admin_port: int):
        self.config, self.port, self.admin_port = config, port, admin_port
        self.service: Service | None = None

    def start(self) -> None:
        argv = [sys.executable, "-m", "zerotrust", "serve", "--config", str(self.config)]
        self.service = Service("sidecar", argv, env=dict(os.environ)).start()
        self.service.wait_http(f"http://{LOOPBACK}:{self.admin_port}/readyz", ok=lambda r: r.status_code == 200)
        self.service.wait_port(self.port)

    def stop(self) -> None:
        if self.service is not None:
            self.service.stop()

    def alive(self) -> bool:
        return self.service is not None and self.service.alive()

    def decision(self, decision_id: str) -> dict[str, Any] | None:
        """The audit record of one decision: what the sidecar actually judged (method, normalised path)."""
        audit = self.config.parent / "audit.jsonl"
        for line in audit.read_text().splitlines():
            record = json.loads(line)
            if record.get("decision_id") == decision_id:
                return record
        return None


@pytest.fixture(scope="session")
def sidecar_setup(tmp_path_factory: pytest.TempPathFactory) -> tuple[Sidecar, Keys]:
    directory = tmp_path_factory.mktemp("sidecar")
    config = write_sidecar_config(directory, free_port(), free_port())
    keys = Keys(**create_keys(config, {"reader": ("api:read",), "writer": ("api:read", "api:write"),
                                       "admin": ("api:read", "api:write", "api:admin")}))
    loaded = yaml.safe_load(config.read_text())["server"]
    port, admin_port = (int(loaded[k].rsplit(":", 1)[1]) for k in ("listen", "admin_listen"))
    return Sidecar(config, port, admin_port), keys


@pytest.fixture(scope="session")
def sidecar(sidecar_setup: tuple[Sidecar, Keys]) -> Iterator[Sidecar]:
    process = sidecar_setup[0]
    process.start()
    yield process
    process.stop()


@pytest.fixture(scope="session")
def keys(sidecar_setup: tuple[Sidecar, Keys]) -> Keys:
    return sidecar_setup[1]


@pytest.fixture(scope="session")
def upstream() -> Iterator[RecordingUpstream]:
    with RecordingUpstream() as server:
        yield server


@pytest.fixture(scope="module")
def envoy(sidecar: Sidecar, upstream: RecordingUpstream) -> Iterator[RunningProxy]:
    proxy = start_envoy(sidecar.port, upstream.port)
    yield proxy
    proxy.stop()


@pytest.fixture(scope="module")
def nginx(sidecar: Sidecar, upstream: RecordingUpstream) -> Iterator[RunningProxy]:
    proxy = start_nginx(sidecar.port, upstream.port)
    yield proxy
    proxy.stop()


@pytest.fixture(scope="module")
def caddy(sidecar: Sidecar, upstream: RecordingUpstream) -> Iterator[RunningProxy]:
    proxy = start_caddy(sidecar.port, upstream.port)
    yield proxy
    proxy.stop()


@pytest.fixture()
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=5) as c:
        yield c
