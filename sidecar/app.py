"""Envoy ext_authz (HTTP service) and nginx ``auth_request`` as one pure ASGI app.

Each request that arrives IS the original request: its method, path and query
(after ``server.path_prefix``), and headers. The body is never read.

* allow: exactly ``200`` with the identity headers (they replace anything the client
  sent under those names) and ``x-envoy-auth-headers-to-remove`` listing the identity
  headers this decision did not set, so the client's copies are stripped too;
* deny: the decision's status with ``WWW-Authenticate`` and a small JSON body;
* every answer carries ``x-zerotrust-decision-id``; denials ``x-zerotrust-status``.

With ``server.forward_auth.enabled`` the listener serves Caddy/Traefik forward-auth
checks instead (see :mod:`.forward`): the request judged is the one described by the
trusted proxy's ``X-Forwarded-*`` headers; the answer is the same.

Anything unexpected is a 500 (fail closed) and the app keeps serving.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

from zerotrust import Config, Decision, Headers, Pipeline, ZeroTrustError, normalize_path
from zerotrust.adapters.asgi_request import bad_target, build_request, client_host, raw_target, rejected_request
from zerotrust.adapters.asgi_response import DECISION_ID_HEADER, denial, encode_headers

from .forward import ForwardAuth
from .metrics import SidecarMetrics
from .peers import PeerResolver

log = logging.getLogger("zerotrust.sidecar")

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

REMOVE_HEADER = b"x-envoy-auth-headers-to-remove"
_EMPTY_BODY = {"type": "http.response.body", "body": b""}


class ExtAuthzApp:
    def __init__(self, pipeline: Pipeline, *, path_prefix: str = "", path_mode: str = "strict",
                 peers: PeerResolver | None = None, metrics: SidecarMetrics | None = None,
                 forward: ForwardAuth | None = None):
        self.pipeline = pipeline
        self.prefix = path_prefix
        self.mode = path_mode
        self.peers = peers if peers is not None and peers.trusted else None
        self.forward = forward  # one mode per listener: a request line is never judged in forward mode
        self.inflight = metrics.inflight if metrics is not None else None
        self._identity_names = tuple(pipeline.identity.names)
        # Envoy drops '_' spellings itself (headers_with_underscores_action); the '.' ones it must be told to remove.
        self._twins = tuple(sorted(a for a in pipeline.identity.aliases if "." in a and "_" not in a))
        self._to_remove: dict[frozenset[str], list[tuple[bytes, bytes]]] = {}

    @classmethod
    def from_config(cls, config: Config, pipeline: Pipeline, metrics: SidecarMetrics | None = None) -> ExtAuthzApp:
        s = config.server
        peers = PeerResolver(s.trusted_proxies)
        forward = ForwardAuth(pipeline, peers, path=s.forward_auth.path, path_mode=s.path_mode) \
            if s.forward_auth.enabled else None
        return cls(pipeline, path_prefix=s.path_prefix, path_mode=s.path_mode, peers=peers, metrics=metrics,
                   forward=forward)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, send)
        elif kind == "lifespan":
            await answer_lifespan(receive, send)
        elif kind == "websocket":  # an ext_authz check is never a WebSocket; refuse before accept
            await send({"type": "websocket.close", "code": 1008})

    async def _http(self, scope: Scope, send: Send) -> None:
        gauge = self.inflight
        if gauge is not None:
            gauge.inc()
        try:
            try:
                decision = await self.decide(scope)
                status, headers, body = self.render(decision)
            except Exception:  # fail closed, keep serving
                log.exception("ext_authz request failed")
                status, headers, body = denial(self._internal_error(scope))
            try:
                await send({"type": "http.response.start", "status": status, "headers": headers})
                await send({"type": "http.response.body", "body": body} if body else _EMPTY_BODY)
            except Exception as exc:  # the proxy went away; nothing left to tell it
                log.debug("sending the ext_authz answer failed: %s", type(exc).__name__)
        finally:
            if gauge is not None:
                gauge.dec()

    async def decide(self, scope: Scope) -> Decision:
        if self.forward is not None:
            return await self.forward.decide(scope)
        raw = ""
        try:
            raw, query = raw_target(scope)
            path = self._strip_prefix(raw)
            normalised = normalize_path(path, self.mode)
            headers = Headers.from_raw(scope["headers"])
            peer = client_host(scope)
            scheme = None
            # Who the client is, and the scheme it used, are only believed from a trusted proxy: checked once.
            if self.peers is not None and peer is not None and self.peers.is_trusted(peer):
                peer = self.peers.forwarded_client(peer, headers)
                proto = headers.get("x-forwarded-proto")
                scheme = proto if proto in ("http", "https") else None
            request = build_request(scope, path=normalised, raw_path=path, query=query, headers=headers, peer=peer,
                                    scheme=scheme)
        except ZeroTrustError as err:
            return self.pipeline.reject(rejected_request(scope, raw), err)
        return await self.pipeline.evaluate(request)

    def _strip_prefix(self, raw: str) -> str:
        prefix = self.prefix
        if not prefix:
            return raw
        if raw.startswith(prefix) and raw[len(prefix):len(prefix) + 1] == "/":
            return raw[len(prefix):]
        raise bad_target("path is not under server.path_prefix")

    def render(self, decision: Decision) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        if not decision.allow:
            return denial(decision)
        headers = [(DECISION_ID_HEADER, decision.decision_id.encode("latin-1")), (b"content-length", b"0")]
        upstream = decision.upstream_headers
        if upstream:
            headers += encode_headers(upstream)
        headers += self._removals(frozenset(k.lower() for k, _ in upstream) if upstream else frozenset())
        return 200, headers, b""

    def _removals(self, present: frozenset[str]) -> list[tuple[bytes, bytes]]:
        """Identity headers this decision did not set: the client's copies must not reach the upstream."""
        key = present
        cached = self._to_remove.get(key)
        if cached is None:
            missing = [n for n in self._identity_names if n not in present] + list(self._twins)
            cached = [(REMOVE_HEADER, ",".join(missing).encode("latin-1"))] if missing else []
            if len(self._to_remove) < 64:
                self._to_remove[key] = cached
        return cached

    def _internal_error(self, scope: Scope) -> Decision:
        try:
            return self.pipeline.reject(rejected_request(scope), ZeroTrustError(detail="sidecar failure"))
        except Exception:
            return Decision(allow=False, status=500, reason="error.internal", decision_id=secrets.token_hex(8),
                            error_code="server_error")


async def answer_lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return

