"""``ZeroTrustWSGIMiddleware``: the same pipeline for WSGI apps (Flask, Django, Falcon).

The pipeline is asynchronous (JWKS fetches, OPA calls); WSGI is not. One event loop
runs in a daemon thread owned by the middleware and every request's decision is
computed there, so verifier caches and connection pools are shared across the WSGI
server's worker threads. A decision that takes longer than ``timeout`` is a 503.

The app sees ``environ["zerotrust.principal"]``, ``environ["zerotrust.decision"]``
and ``REMOTE_USER`` (the subject). Denials are answered here with the same JSON body
and ``WWW-Authenticate`` challenge as the ASGI middleware and the sidecar.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import threading
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import quote, unquote_to_bytes

from zerotrust import (
    Config, Decision, DependencyError, Headers, Pipeline, RequestContext, ZeroTrustError, build_pipeline,
    load_config, normalize_path, split_target,
)

from .asgi_request import bad_target, rejected_request
from .asgi_response import denial

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
_REASONS = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 429: "Too Many Requests",
            500: "Internal Server Error", 503: "Service Unavailable"}


def _headers(environ: dict[str, Any]) -> Headers:
    pairs = []
    for key, value in environ.items():
        if key.startswith("HTTP_"):
            pairs.append((key[5:].replace("_", "-"), value))
        elif key in ("CONTENT_TYPE", "CONTENT_LENGTH") and value:
            pairs.append((key.replace("_", "-"), value))
    return Headers(pairs)


def _cgi(name: str) -> str:
    return name.upper().replace("-", "_").replace(".", "_")


def _raw_target(environ: dict[str, Any]) -> str:
    """The path as sent: gunicorn/uWSGI keep it in RAW_URI/REQUEST_URI; otherwise re-encode PATH_INFO."""
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    if raw:
        return str(raw)
    path = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
    # PEP 3333: PATH_INFO is bytes decoded as latin-1; an encoded slash is already lost here, so refuse any
    # path that would need one rather than guess.
    target = quote(path.encode("latin-1"), safe="/:@!$&'()*+,;=-._~") or "/"
    query = environ.get("QUERY_STRING", "")
    return f"{target}?{query}" if query else target


class _LoopThread:
    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="zerotrust-wsgi-loop", daemon=True)
        self.thread.start()

    def run(self, coro: Any, timeout: float) -> Any:
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()  # the decision is abandoned: do not leave it running on the loop
            raise

    def close(self) -> None:
        async def drain() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        try:
            asyncio.run_coroutine_threadsafe(drain(), self.loop).result(5)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(5)


class ZeroTrustWSGIMiddleware:
    def __init__(self, app: WSGIApp, pipeline: Pipeline, *, path_mode: str = "strict", timeout: float = 5.0):
        self.app = app
        self.pipeline = pipeline
        self.path_mode = path_mode
        self.timeout = timeout
        self._loop = _LoopThread()
        self._strip = frozenset(_cgi(a) for a in pipeline.identity.aliases)

    @classmethod
    def from_config(cls, app: WSGIApp, config: Config | str | os.PathLike[str], **kwargs: Any) -> ZeroTrustWSGIMiddleware:
        if not isinstance(config, Config):
            config = load_config(config)
        kwargs.setdefault("path_mode", config.server.path_mode)
        return cls(app, build_pipeline(config), **kwargs)

    def decide(self, environ: dict[str, Any]) -> Decision:
        raw = ""
        try:
            raw = _raw_target(environ)
            path, query = split_target(raw)
            if not path.isascii():
                raise bad_target("non-ASCII bytes in the path")
            canonical = normalize_path(path, self.path_mode)
            if canonical != path:  # normalize mode: the app must route on exactly the path that was judged
                environ["PATH_INFO"] = unquote_to_bytes(canonical).decode("latin-1")
                environ["SCRIPT_NAME"] = ""
                environ.pop("RAW_URI", None)
                environ.pop("REQUEST_URI", None)
            request = RequestContext(
                method=str(environ.get("REQUEST_METHOD", "GET")), path=canonical,
                headers=_headers(environ), query=query, raw_path=path, host=str(environ.get("HTTP_HOST", "")),
                scheme="https" if environ.get("wsgi.url_scheme") == "https" else "http",
                peer=environ.get("REMOTE_ADDR"))
        except ZeroTrustError as err:
            return self.pipeline.reject(rejected_request({"method": environ.get("REQUEST_METHOD", "GET")}, raw), err)
        try:
            return self._loop.run(self.pipeline.evaluate(request), self.timeout)
        except concurrent.futures.TimeoutError:
            return self.pipeline.reject(request, DependencyError(detail="decision timed out"))

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        decision = self.decide(environ)
        if not decision.allow:
            status, headers, body = denial(decision)
            start_response(f"{status} {_REASONS.get(status, 'Error')}",
                           [(k.decode("latin-1"), v.decode("latin-1")) for k, v in headers])
            return [body]
        for key in [k for k in environ if k.startswith("HTTP_") and _cgi(k[5:]) in self._strip]:
            del environ[key]  # a client's own X-Auth-Subject (or X.Auth.Subject) never reaches the app
        environ["zerotrust.decision"] = decision
        environ["zerotrust.principal"] = decision.principal
        if decision.principal is not None:
            environ["REMOTE_USER"] = decision.principal.subject
        return self.app(environ, start_response)

    def close(self) -> None:
        """Release the pipeline's resources and stop the loop thread."""
        try:
            self._loop.run(self.pipeline.aclose(), self.timeout)
        finally:
            self._loop.close()
