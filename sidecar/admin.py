"""The admin listener: ``/healthz``, ``/readyz``, ``/metrics``. Never on the ext_authz port.

* ``/healthz``: the process and its event loop answer.
* ``/readyz``: the pipeline is built, the ext_authz listener is serving and not
  draining, and every plugin that has a ``ready()`` (sync or async) says so. A
  verifier that has never fetched its JWKS is not ready: a load balancer should not
  send it traffic it can only answer with 503.
* ``/metrics``: Prometheus text format.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from zerotrust import Pipeline

from .app import answer_lifespan
from .metrics import SidecarMetrics

log = logging.getLogger("zerotrust.sidecar.admin")

Send = Callable[[dict[str, Any]], Awaitable[None]]
READY_TIMEOUT = 1.0


class AdminApp:
    def __init__(self, metrics: SidecarMetrics, pipeline: Pipeline | None = None):
        self.metrics = metrics
        self.pipeline = pipeline
        self.serving = False  # set by the server once the ext_authz listener accepts, cleared when draining

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Send) -> None:
        if scope["type"] == "lifespan":
            await answer_lifespan(receive, send)
            return
        if scope["type"] != "http":
            await send({"type": "websocket.close", "code": 1008})
            return
        if scope["method"] not in ("GET", "HEAD"):
            await _reply(send, 405, b"method not allowed\n", extra=[(b"allow", b"GET, HEAD")])
            return
        path = scope["path"]
        if path == "/healthz":
            await _reply(send, 200, b"ok\n")
        elif path == "/readyz":
            problems = await self.problems()
            body = json.dumps({"ready": not problems, "problems": problems}).encode() + b"\n"
            await _reply(send, 503 if problems else 200, body, b"application/json")
        elif path == "/metrics":
            await _reply(send, 200, self.metrics.render(), self.metrics.content_type.encode())
        else:
            await _reply(send, 404, b"not found\n")

    async def problems(self) -> list[str]:
        """Names of what is not ready (plugin kinds, never their error text)."""
        if self.pipeline is None:
            return ["pipeline"]
        out = [] if self.serving else ["listener"]
        parts = [*self.pipeline.verifiers, self.pipeline.policy]
        for part in parts:
            if not await _ready(part):
                out.append(str(getattr(part, "kind", None) or getattr(part, "name", None) or type(part).__name__))
        return out


async def _ready(part: Any) -> bool:
    check = getattr(part, "ready", None)
    if check is None:
        return True
    try:
        result = check()
        if inspect.isawaitable(result):
            result = await asyncio.wait_for(result, READY_TIMEOUT)
        return bool(result)
    except Exception as exc:
        log.warning("readiness check of %s failed: %s", type(part).__name__, type(exc).__name__)
        return False


async def _reply(send: Send, status: int, body: bytes, content_type: bytes = b"text/plain; charset=utf-8",
                 extra: list[tuple[bytes, bytes]] | None = None) -> None:
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode()),
               (b"cache-control", b"no-store"), *(extra or [])]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
