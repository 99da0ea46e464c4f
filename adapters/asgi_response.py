"""Render a denying :class:`zerotrust.Decision` as an HTTP response.

The body is a small JSON object built only from values this project chose (the RFC
error code, a fixed description, the decision id): never request bytes, never a
stack trace. ``x-zerotrust-status`` repeats the status because nginx
``auth_request`` turns anything but 2xx/401/403 into a 500 and would lose it.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from zerotrust import Decision

Send = Callable[[dict[str, Any]], Awaitable[None]]

DECISION_ID_HEADER = b"x-zerotrust-decision-id"
STATUS_HEADER = b"x-zerotrust-status"

# Fallbacks for decisions whose error has no RFC code (a bare 401 challenge, a policy 403).
_ERROR_BY_STATUS = {400: "invalid_request", 401: "unauthorized", 403: "access_denied", 404: "not_found",
                    429: "too_many_requests", 500: "server_error", 503: "temporarily_unavailable"}
_DESCRIPTION_BY_STATUS = {400: "The request is malformed", 401: "Authentication is required",
                          403: "Access denied", 404: "Not found", 429: "Too many requests",
                          500: "Internal error", 503: "A dependency is unavailable"}


def error_body(decision: Decision) -> bytes:
    status = decision.status
    return json.dumps({
        "error": decision.error_code or _ERROR_BY_STATUS.get(status, "access_denied"),
        "error_description": decision.description or _DESCRIPTION_BY_STATUS.get(status, "Access denied"),
        "decision_id": decision.decision_id,
    }, separators=(",", ":")).encode()


def encode_headers(pairs: tuple[tuple[str, str], ...]) -> list[tuple[bytes, bytes]]:
    # latin-1 is what HTTP/1.1 puts on the wire; values were made header-safe by the pipeline.
    return [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in pairs]


def denial(decision: Decision) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    body = error_body(decision)
    headers = encode_headers(decision.response_headers)
    headers += [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"cache-control", b"no-store"),
        (DECISION_ID_HEADER, decision.decision_id.encode("latin-1")),
        (STATUS_HEADER, str(decision.status).encode()),
    ]
    return decision.status, headers, body


async def send_response(send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
