"""One process, one event loop, two listeners: ext_authz and admin.

uvicorn (httptools + uvloop) is the default: on one core it serves a pure ASGI app
as fast as granian (docs/performance.md, "Server stack"), it takes an
``ssl.SSLContext`` object (Vault PKI rotation reloads it in place) and it lets us
put the client certificate into the scope. granian is available for plain-TCP
listeners. SIGTERM/SIGINT: readiness goes to 503, listeners stop accepting,
in-flight requests finish, then the pipeline's plugins are closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from zerotrust import Config, ConfigError, Pipeline, PolicyCollector, build_pipeline

from .admin import AdminApp
from .app import ExtAuthzApp
from .metrics import SidecarMetrics
from .tls import server_context, tls_protocol_class

log = logging.getLogger("zerotrust.sidecar.server")

KEEP_ALIVE_SECONDS = 120  # longer than the proxies' upstream idle timeouts, so we never close first
GRACEFUL_SECONDS = 10


@dataclass(frozen=True)
class Address:
    host: str
    port: int

    @classmethod
    def parse(cls, text: str, what: str) -> Address:
        host, sep, port = text.rpartition(":")
        host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
        if not sep or not host or not port.isdigit() or int(port) > 65535:
            raise ConfigError(f"{what}: {text!r} is not HOST:PORT")
        return cls(host, int(port))

    def url(self, scheme: str = "http") -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{host}:{self.port}"


def bind(address: Address) -> socket.socket:
    family = socket.AF_INET6 if ":" in address.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((address.host, address.port))
    except OSError as exc:
        sock.close()
        raise ConfigError(f"cannot listen on {address.url()}: {exc.strerror}") from None
    sock.set_inheritable(True)
    return sock


class Sidecar:
    """The apps, their listeners and the shutdown sequence."""

    def __init__(self, config: Config, listen: Address, admin_listen: Address, *,
                 announce: Callable[[str], None] | None = None, pipeline: Pipeline | None = None,
                 handle_signals: bool = True):
        self.config = config
        self._pipeline = pipeline  # tests inject one; otherwise built from the config inside the loop
        self.handle_signals = handle_signals
        self.listen, self.admin_listen = listen, admin_listen
        self.announce = announce or (lambda line: print(line, file=sys.stderr, flush=True))
        self.metrics = SidecarMetrics()
        self.admin = AdminApp(self.metrics)
        self.bound: tuple[Address, Address] | None = None  # actual addresses (port 0 resolved) once serving
        self._stoppers: list[Callable[[], None]] = []
        self._stopping = False

    async def run(self) -> None:
        if self.config.server.tls is not None and self.config.server.stack == "granian":
            raise ConfigError("server.stack: granian cannot serve server.tls here (it takes no SSLContext and does "
                              "not expose the client certificate); use stack: uvicorn")
        if self.handle_signals:
            self._install_signals()
        keys = self.config.api_keys
        if keys is not None and keys.enabled and not self.config.server.trusted_proxies:
            log.warning("api_keys throttling is keyed by the TCP peer and server.trusted_proxies is empty: behind a "
                        "proxy every client shares the proxy's bucket, so a few bad keys throttle everyone; list the "
                        "proxy networks in server.trusted_proxies")
        ssl_ctx = await server_context(self.config)
        try:
            if self._pipeline is not None:
                pipeline = self._pipeline
                pipeline.sinks.append(self.metrics)
            else:
                pipeline = build_pipeline(self.config, sinks=[self.metrics])
            self.metrics.registry.register(PolicyCollector(pipeline.policy))  # cache hit rate, shadow disagreements
            gc.collect()
            gc.freeze()  # start-up objects (modules, config, keys) leave the collector's working set: shorter pauses
            try:
                self.admin.pipeline = pipeline
                await self.serve_app(ExtAuthzApp.from_config(self.config, pipeline, self.metrics), ssl_ctx)
            finally:
                await pipeline.aclose()
        finally:
            rotation = getattr(ssl_ctx, "rotation", None)  # Vault PKI: stop re-issuing certificates
            if rotation is not None:
                rotation.stop()

    async def serve_app(self, app: Any, ssl_ctx: Any = None) -> None:
        """Serve ``app`` on the ext_authz listener and the admin app beside it until stopped."""
        runner = _run_granian if self.config.server.stack == "granian" else _run_uvicorn
        await runner(self, app, ssl_ctx)

    def started(self, listen: Address, admin: Address, tls: bool) -> None:
        self.bound = (listen, admin)
        self.admin.serving = not self._stopping
        fwd = self.config.server.forward_auth
        mode, prefix = ("forward-auth", fwd.path) if fwd.enabled else ("ext_authz", self.config.server.path_prefix)
        self.announce(f"zerotrust: {mode} on {listen.url('https' if tls else 'http')}{prefix} "
                      f"admin on {admin.url()} (stack {self.config.server.stack})")

    def stop(self) -> None:
        self.admin.serving = False
        if not self._stopping:
            self._stopping = True
            for stopper in self._stoppers:
                stopper()

    def on_stop(self, stopper: Callable[[], Any]) -> None:
        """Register how to stop a listener; a signal that came during start-up is honoured at once."""
        self._stoppers.append(stopper)
        if self._stopping:
            stopper()

    def _install_signals(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(sig, self.stop)


async def _run_uvicorn(sidecar: Sidecar, app: Any, ssl_ctx: Any) -> None:
    import uvicorn

    class _Server(uvicorn.Server):
        def capture_signals(self) -> contextlib.AbstractContextManager[None]:  # type: ignore[override]
            return contextlib.nullcontext()  # one handler for both listeners: Sidecar.stop

    def server(asgi: Any, http: Any, ssl: Any) -> _Server:
        # proxy_headers off: uvicorn would otherwise rewrite the client address from X-Forwarded-For for any
        # loopback peer; who the client is is decided by server.trusted_proxies alone.
        cfg = uvicorn.Config(asgi, http=http, ws="none", lifespan="off", access_log=False, log_config=None,
                             proxy_headers=False, server_header=False, timeout_keep_alive=KEEP_ALIVE_SECONDS,
                             timeout_graceful_shutdown=GRACEFUL_SECONDS, backlog=2048)
        cfg.load()
        cfg.ssl = ssl
        return _Server(cfg)

    main_sock, admin_sock = bind(sidecar.listen), bind(sidecar.admin_listen)
    main = server(app, tls_protocol_class() if ssl_ctx is not None else "httptools", ssl_ctx)
    admin = server(sidecar.admin, "httptools", None)

    def stop() -> None:
        for s in (main, admin):
            if s.should_exit:
                s.force_exit = True
            s.should_exit = True

    sidecar.on_stop(stop)
    listen = Address(sidecar.listen.host, main_sock.getsockname()[1])
    admin_addr = Address(sidecar.admin_listen.host, admin_sock.getsockname()[1])
    tasks = [asyncio.ensure_future(main.serve(sockets=[main_sock])),
             asyncio.ensure_future(admin.serve(sockets=[admin_sock]))]
    while not (main.started and admin.started) and not any(t.done() for t in tasks):
        await asyncio.sleep(0.01)
    if main.started and admin.started:
        sidecar.started(listen, admin_addr, ssl_ctx is not None)
    await _until_both(tasks, stop)


async def _run_granian(sidecar: Sidecar, app: Any, ssl_ctx: Any) -> None:
    from granian.constants import Interfaces
    from granian.server.embed import Server

    def server(asgi: Any, address: Address) -> Any:
        return Server(asgi, address=address.host, port=address.port, interface=Interfaces.ASGINL, websockets=False,
                      log_enabled=False, log_access=False, backlog=2048)

    main, admin = server(app, sidecar.listen), server(sidecar.admin, sidecar.admin_listen)
    sidecar.on_stop(lambda: (main.stop(), admin.stop()))
    tasks = [asyncio.ensure_future(main.serve()), asyncio.ensure_future(admin.serve())]
    await _wait_listening((sidecar.listen, sidecar.admin_listen), tasks)
    if not any(t.done() for t in tasks):
        sidecar.started(sidecar.listen, sidecar.admin_listen, False)
    await _until_both(tasks, sidecar.stop)


async def _wait_listening(addresses: tuple[Address, ...], tasks: list[asyncio.Future[Any]]) -> None:
    # granian binds inside serve() and does not say when it is done
    for address in addresses:
        for _ in range(500):
            if any(t.done() for t in tasks):
                return
            try:
                _, writer = await asyncio.open_connection(address.host, address.port)
                writer.close()
                break
            except OSError:
                await asyncio.sleep(0.01)


async def _until_both(tasks: list[asyncio.Future[Any]], stop: Callable[[], Any]) -> None:
    """If one listener dies, stop the other: never serve ext_authz without its health endpoint or vice versa."""
    done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    stop()
    await asyncio.gather(*tasks, return_exceptions=True)
    for task in done:
        exc = task.exception()
        if exc is not None and not isinstance(exc, SystemExit):
            raise exc


def run(config: Config, listen: str | None = None, admin_listen: str | None = None) -> None:
    """Blocking entry point used by ``zerotrust serve``."""
    sidecar = Sidecar(config, Address.parse(listen or config.server.listen, "listen"),
                      Address.parse(admin_listen or config.server.admin_listen, "admin_listen"))
    try:
        import uvloop

        runner = asyncio.Runner(loop_factory=uvloop.new_event_loop)
    except ImportError:
        runner = asyncio.Runner()
    with runner:
        runner.run(sidecar.run())
