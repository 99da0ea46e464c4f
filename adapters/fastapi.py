"""FastAPI dependencies on top of :class:`zerotrust.adapters.asgi.ZeroTrustMiddleware`.

``require_scopes("a", "b")`` answers 401 with a bare ``Bearer`` challenge to an
anonymous caller and 403 ``insufficient_scope`` (RFC 6750 section 3.1, with
``scope="a b"``) to an authenticated one without the scopes. Each such denial is a
decision of its own: it gets an id and is written to the decision log.

Denials are ``HTTPException`` subclasses so that even without
:func:`install_error_handlers` FastAPI keeps the status and ``WWW-Authenticate``;
with it they render like the middleware's denials (the JSON error body). Unlike
Starlette's default authentication error handler, nothing here answers 400 with the
exception text or drops the challenge.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import HTTPException, Request
from starlette.responses import Response

from zerotrust import Decision, InsufficientScope, MissingCredential, Principal, ZeroTrustError

from .asgi_request import rejected_request
from .asgi_response import denial
from .asgi_user import ZeroTrustUser

log = logging.getLogger("zerotrust.adapters.fastapi")


class ZeroTrustHTTPException(HTTPException):
    def __init__(self, decision: Decision):
        headers = {k: v for k, v in decision.response_headers}
        headers["x-zerotrust-decision-id"] = decision.decision_id
        super().__init__(decision.status, detail=decision.description or "Access denied", headers=headers)
        self.decision = decision


def _decide_error(request: Request, err: ZeroTrustError) -> ZeroTrustHTTPException:
    pipeline = request.scope.get("zerotrust.pipeline")
    if pipeline is None:
        log.error("ZeroTrustMiddleware is not installed in front of %s: refusing", request.url.path)
        return ZeroTrustHTTPException(Decision(allow=False, status=500, reason="error.no_middleware",
                                               decision_id="-", error_code="server_error"))
    ctx = request.scope.get("zerotrust.request") or rejected_request(request.scope, request.scope.get("path", ""))
    return ZeroTrustHTTPException(pipeline.reject(ctx, err))


def _principal(request: Request) -> Principal | None:
    user = request.scope.get("user")
    if not isinstance(user, ZeroTrustUser):
        raise _decide_error(request, MissingCredential())
    return user.principal


def require_scopes(*scopes: str) -> Callable[[Request], Awaitable[Principal]]:
    """Dependency: the caller must be authenticated and hold every one of ``scopes``. Returns the principal."""
    required = tuple(scopes)

    async def dependency(request: Request) -> Principal:
        principal = _principal(request)
        if principal is None:
            raise _decide_error(request, MissingCredential())
        if not principal.has_scopes(required):
            raise _decide_error(request, InsufficientScope(required))
        return principal

    dependency.__name__ = f"require_scopes({' '.join(required)})"
    return dependency


async def current_principal(request: Request) -> Principal:
    """Dependency: the authenticated principal; anonymous callers get 401 with a bare ``Bearer`` challenge."""
    principal = _principal(request)
    if principal is None:
        raise _decide_error(request, MissingCredential())
    return principal


async def optional_principal(request: Request) -> Principal | None:
    """Dependency: the principal, or ``None`` for an anonymous caller."""
    return _principal(request)


async def _render_http(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ZeroTrustHTTPException)
    return _response(exc.decision)


async def _render_error(request: Request, exc: Exception) -> Response:
    """A ZeroTrustError raised by application code: its RFC status and challenge, never its text."""
    assert isinstance(exc, ZeroTrustError)
    return _response(_decide_error(request, exc).decision)


def _response(decision: Decision) -> Response:
    status, headers, body = denial(decision)
    response = Response(content=body, status_code=status)
    response.raw_headers = headers
    return response


def install_error_handlers(app: Any) -> None:
    """Render zerotrust denials and errors as the middleware does (JSON body, challenge, decision id)."""
    app.add_exception_handler(ZeroTrustHTTPException, _render_http)
    app.add_exception_handler(ZeroTrustError, _render_error)
