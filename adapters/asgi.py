"""``ZeroTrustMiddleware``: pure ASGI (not ``BaseHTTPMiddleware``), for Starlette, FastAPI or any ASGI app.

* ``enforce=True``: every HTTP request and WebSocket handshake is judged by the
  pipeline; a denial is answered here (status, ``WWW-Authenticate``, JSON body; a
  WebSocket is closed with 1008 before accept) and the app never runs.
* ``enforce=False``: authentication only. A bad credential is still refused (401,
  never downgraded to anonymous); no credential gives an anonymous user; routes
  decide with :func:`zerotrust.adapters.fastapi.require_scopes`.

The app sees ``scope["user"]`` / ``scope["auth"]`` (Starlette-compatible),
``scope["zerotrust.decision"]`` and ``scope["zerotrust.principal"]``. The body is never read.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, Iterable
from typing import Any
from urllib.parse import unquote

from zerotrust import (
    Config, Decision, Headers, Pipeline, PolicyResult, Principal, RequestContext, ZeroTrustError, build_pipeline,
    load_config, normalize_path,
)

from .asgi_request import build_request, client_host, raw_target, rejected_request
from .asgi_response import denial, send_response
from .asgi_user import ANONYMOUS, NO_CREDENTIALS, user_for

ASGIApp = Callable[[dict[str, Any], Callable[[], Awaitable[dict[str, Any]]],
                    Callable[[dict[str, Any]], Awaitable[None]]], Awaitable[None]]


class AuthenticateOnly:
    """The policy for ``enforce=False``: whoever authenticated (or nobody) may pass; routes decide."""

    name = "authenticate-only"

    async def decide(self, request: RequestContext, principal: Principal | None,
                     context: dict[str, Any] | None = None) -> PolicyResult:
        return PolicyResult(True, "authenticated" if principal else "anonymous", engine=self.name)


class ZeroTrustMiddleware:
    def __init__(self, app: ASGIApp, pipeline: Pipeline, *, enforce: bool = True,
                 exclude_paths: Iterable[str] = (), realm: str | None = None, path_mode: str = "strict"):
        self.app = app
        self.enforce = enforce
        self.path_mode = path_mode
        self._owned: Pipeline | None = None
        if enforce and (realm is None or realm == pipeline.realm):
            self.pipeline = pipeline
        else:  # same plugins, another policy or realm; never mutate the caller's pipeline
            self.pipeline = Pipeline(extractors=pipeline.extractors, verifiers=pipeline.verifiers,
                                     policy=pipeline.policy if enforce else AuthenticateOnly(), sinks=pipeline.sinks,
                                     realm=pipeline.realm if realm is None else realm, identity=pipeline.identity)
        exact, prefixes = set(), []
        for p in exclude_paths:
            if p.endswith("/**"):
                prefixes.append(p[:-3])
            else:
                exact.add(p)
        self._exact, self._prefixes = frozenset(exact), tuple(prefixes)
        # A client's own X-Auth-Subject (or X_Auth.Subject...) never reaches the app, as behind the sidecar.
        self._strip = frozenset(a.encode("latin-1") for a in self.pipeline.identity.aliases)

    @classmethod
    def from_config(cls, app: ASGIApp, config: Config | str | os.PathLike[str], **kwargs: Any) -> ZeroTrustMiddleware:
        """Build the pipeline from a config (file); it is closed at lifespan shutdown."""
        if not isinstance(config, Config):
            config = load_config(config)
        pipeline = build_pipeline(config)
        kwargs.setdefault("path_mode", config.server.path_mode)
        mw = cls(app, pipeline, **kwargs)
        mw._owned = pipeline
        return mw

    def _excluded(self, path: str) -> bool:
        return path in self._exact or any(path == p or path.startswith(p + "/") for p in self._prefixes)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        kind = scope["type"]
        if kind not in ("http", "websocket"):
            if kind == "lifespan" and self._owned is not None:
                send = self._closing_send(send)
            await self.app(scope, receive, send)
            return
        scope["zerotrust.pipeline"] = self.pipeline  # route-level checks record their denials through it
        request, decision = await self._judge(scope)
        if decision is None:  # excluded path
            scope["user"], scope["auth"] = ANONYMOUS, NO_CREDENTIALS
            await self.app(scope, receive, send)
            return
        if not decision.allow:
            if kind == "websocket":
                await send({"type": "websocket.close", "code": 1008})  # policy violation, before accept
            else:
                await send_response(send, *denial(decision))
            return
        scope["user"], scope["auth"] = user_for(decision.principal)
        strip = self._strip
        scope["headers"] = [(k, v) for k, v in scope["headers"] if k.lower() not in strip]
        scope["zerotrust.decision"] = decision
        scope["zerotrust.principal"] = decision.principal
        scope["zerotrust.request"] = request
        await self.app(scope, receive, send)

    async def _judge(self, scope: dict[str, Any]) -> tuple[RequestContext | None, Decision | None]:
        raw = ""
        try:
            raw, query = raw_target(scope)
            path = normalize_path(raw, self.path_mode)
            if path != raw:  # normalize mode: the app must route on exactly the path that was judged
                scope["raw_path"] = path.encode("ascii")
                scope["path"] = unquote(path)
            if self._excluded(path):
                return None, None
            request = build_request(scope, path=path, raw_path=raw, query=query,
                                    headers=Headers.from_raw(scope["headers"]), peer=client_host(scope))
        except ZeroTrustError as err:
            return None, self.pipeline.reject(rejected_request(scope, raw), err)
        return request, await self.pipeline.evaluate(request)

    def _closing_send(self, send: Any) -> Any:
        async def closing_send(message: dict[str, Any]) -> None:
            if message["type"] in ("lifespan.shutdown.complete", "lifespan.shutdown.failed") and self._owned:
                owned, self._owned = self._owned, None
                await owned.aclose()
            await send(message)

        return closing_send
