"""A tiny upstream HTTP server that records every request it receives.

Proxy tests need to assert what reached the protected service and, just as much,
what never did. The server keeps each request's method, raw target and headers as
they arrived (case and duplicates preserved) and answers 200 with a marker header,
so a test can also tell an upstream answer from one the proxy made up.
"""

from __future__ import annotations

import socket
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from .procs import LOOPBACK

UPSTREAM_MARK = "x-test-upstream"


@dataclass(frozen=True)
class SeenRequest:
    method: str
    target: str
    headers: tuple[tuple[str, str], ...]
    body: bytes

    def values(self, name: str) -> list[str]:
        """Every value of a header, case-insensitively (``X_Auth_Subject`` is a different name)."""
        return [v for k, v in self.headers if k.lower() == name.lower()]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _RecordingServer
    timeout = 30  # a proxy's idle keep-alive connection must not pin a thread forever

    def _body(self) -> bytes:
        if "chunked" in self.headers.get("transfer-encoding", "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("content-length") or 0)
        return self.rfile.read(length) if length else b""

    def _record_and_answer(self) -> None:
        seen = SeenRequest(self.command, self.path, tuple(self.headers.items()), self._body())
        self.server.record(seen)
        payload = b'{"upstream":true}'
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header(UPSTREAM_MARK, "1")
        self.send_header("content-length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = _record_and_answer

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        pass


class _RecordingServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__((LOOPBACK, 0), _Handler)
        self._lock = threading.Lock()
        self.seen: list[SeenRequest] = []

    def record(self, request: SeenRequest) -> None:
        with self._lock:
            self.seen.append(request)


class RecordingUpstream:
    """Serve on 127.0.0.1 in a background thread; ``with RecordingUpstream() as up: ...``."""

    def __init__(self) -> None:
        self._server = _RecordingServer()
        self._thread = threading.Thread(target=self._server.serve_forever, name="recording-upstream", daemon=True)

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    def start(self) -> RecordingUpstream:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def requests(self, marker: str = "") -> list[SeenRequest]:
        """Requests whose target contains ``marker`` (tests put a unique token in the path)."""
        with self._server._lock:
            return [r for r in self._server.seen if marker in r.target]

    def __enter__(self) -> RecordingUpstream:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class SilentServer:
    """Accepts connections, reads what arrives and never answers: a hung authorization service."""

    def __init__(self) -> None:
        self._sock = socket.create_server((LOOPBACK, 0))
        self._held: list[socket.socket] = []
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._accept, name="silent-server", daemon=True)

    @property
    def port(self) -> int:
        return self._sock.getsockname()[1]

    def _accept(self) -> None:
        self._sock.settimeout(0.2)
        while not self._stopped.is_set():
            try:
                conn, _ = self._sock.accept()
            except (TimeoutError, OSError):
                continue
            self._held.append(conn)  # keep it open, say nothing

    def __enter__(self) -> SilentServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopped.set()
        self._thread.join(2)
        for conn in self._held:
            conn.close()
        self._sock.close()
