"""ASGI middleware: encrypt request JSON fields before the app sees them, decrypt response
fields only for principals holding ``decrypt_scopes``.

Place it *inside* the authentication middleware, which leaves the principal at
``scope["user"].principal`` or ``scope["zerotrust.decision"].principal``::

    app = ZeroTrustMiddleware(FieldEncryptionMiddleware.from_config(app, config), ...)

Fail closed: a request whose fields cannot be encrypted (key store down, body not
JSON) never reaches the app; a response that cannot be processed is replaced by an
error, never sent half-done. Bodies that are not JSON pass through untouched.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from zerotrust import ConfigError, CryptoError, DependencyError, ZeroTrustError
from zerotrust.crypto import FieldEncryptor, FieldInputError, FieldSpec, field_specs
from zerotrust.crypto.jsonpath import WILDCARD

log = logging.getLogger("zerotrust.fields")

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

MAX_REQUEST_BODY = 1 << 20
MAX_RESPONSE_BODY = 8 << 20
_ERRORS = {400: ("invalid_request", "The request body is not valid JSON or cannot be encrypted"),
           413: ("invalid_request", "The request body is too large"),
           415: ("invalid_request", "Encoded JSON bodies are not accepted here"),
           500: ("server_error", "Internal error"),
           503: ("temporarily_unavailable", "A dependency is unavailable")}


class _Reject(Exception):
    def __init__(self, status: int, detail: str):
        self.status, self.detail = status, detail


def principal_of(scope: Scope) -> Any:
    """The authenticated principal, duck-typed: whatever the auth middleware left in the scope."""
    decision = scope.get("zerotrust.decision")
    if decision is not None and getattr(decision, "allow", True) is False:
        return None
    principal = getattr(scope.get("user"), "principal", None)
    return principal if principal is not None else getattr(decision, "principal", None)


def may_decrypt(principal: Any, required: Iterable[str]) -> bool:
    """Plaintext is opt-in: no principal, or no ``decrypt_scopes`` configured, means ciphertext."""
    required = set(required)
    scopes = getattr(principal, "scopes", None)
    if not required or scopes is None:
        return False
    return required <= set(scopes.split() if isinstance(scopes, str) else scopes)


def _header(scope: Scope, name: bytes) -> bytes | None:
    return next((v for k, v in scope.get("headers", ()) if k.lower() == name), None)


def _json_type(content_type: bytes | None) -> bool:
    media = (content_type or b"").split(b";", 1)[0].strip().lower()
    return media == b"application/json" or (media.startswith(b"application/") and media.endswith(b"+json"))


def _error(status: int) -> tuple[list[tuple[bytes, bytes]], bytes]:
    code, description = _ERRORS[status]
    body = json.dumps({"error": code, "error_description": description}).encode()
    return [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
            (b"cache-control", b"no-store")], body


def _dump(doc: Any) -> bytes:
    try:
        return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate ("\\ud800") elsewhere in the document: escape everything
        return json.dumps(doc, separators=(",", ":")).encode("ascii")


class FieldEncryptionMiddleware:
    def __init__(self, app: ASGIApp, encryptor: FieldEncryptor, *, request_paths: Iterable[Any] = (),
                 response_paths: Iterable[Any] = (), decrypt_scopes: Iterable[str] = (), mask: str | None = None,
                 context: Callable[[Scope], str | None] | None = None, max_request_body: int = MAX_REQUEST_BODY,
                 max_response_body: int = MAX_RESPONSE_BODY):
        self.app, self.encryptor, self.mask = app, encryptor, mask
        self.request_specs = field_specs(request_paths)
        self.response_specs = field_specs(response_paths)
        self.decrypt_scopes = frozenset(decrypt_scopes)
        if self.decrypt_scopes:
            _refuse_decryption_oracle(self.request_specs, self.response_specs)
        self.context = context  # per-request derivation context (e.g. the principal's tenant)
        self.max_request_body, self.max_response_body = max_request_body, max_response_body

    @classmethod
    def from_config(cls, app: ASGIApp, config: Any, encryptor: FieldEncryptor | None = None,
                    **kw: Any) -> FieldEncryptionMiddleware:
        f = config.fields
        # Request paths inherit the deterministic flag from the matching entry of fields.paths.
        det = {s.path.segments for s in field_specs(f.paths) if s.deterministic}
        return cls(app, encryptor or FieldEncryptor.from_config(config),
                   request_paths=[FieldSpec(s.path, s.path.segments in det) for s in field_specs(f.request_paths)],
                   response_paths=f.response_paths, decrypt_scopes=f.decrypt_scopes, mask=f.mask, **kw)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        try:
            if self.request_specs:
                scope, receive = await self._encrypt_request(scope, receive)
        except _Reject as r:
            log.warning("field encryption refused request (%d): %s", r.status, r.detail)
            headers, body = _error(r.status)
            await send({"type": "http.response.start", "status": r.status, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        # Decided before the app runs: a response nobody will rewrite streams through unbuffered.
        if self.response_specs and scope.get("method") != "HEAD" and (
                self.mask is not None or may_decrypt(principal_of(scope), self.decrypt_scopes)):
            send = _ResponseRewriter(self, scope, send)
        await self.app(scope, receive, send)

    def _ctx(self, scope: Scope) -> dict[str, Any]:
        return {} if self.context is None else {"context": self.context(scope)}

    async def _encrypt_request(self, scope: Scope, receive: Receive) -> tuple[Scope, Receive]:
        content_type = _header(scope, b"content-type")
        if content_type is not None and not _json_type(content_type):
            return scope, receive  # not JSON: not ours
        encoding = _header(scope, b"content-encoding")
        if encoding not in (None, b"identity"):
            raise _Reject(415, f"content-encoding {encoding!r} hides the JSON fields")
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise _Reject(400, "client disconnected before the body was complete")
            body += message.get("body", b"")
            if len(body) > self.max_request_body:
                raise _Reject(413, f"request body over {self.max_request_body} bytes")
            if not message.get("more_body", False):
                break
        original = bytes(body)
        if not original.strip():
            return scope, _replay(original, receive)
        try:
            doc = json.loads(original)
        except (ValueError, RecursionError):
            if content_type is None:
                return scope, _replay(original, receive)  # untyped and not JSON: not ours
            raise _Reject(400, "request body is not valid JSON") from None
        try:
            new = await self.encryptor.aencrypt_document(doc, self.request_specs, **self._ctx(scope))
        except DependencyError as exc:
            raise _Reject(503, f"key store: {exc.detail or exc.reason}") from None
        except ZeroTrustError as exc:
            raise _Reject(400, exc.detail or exc.reason) from None
        except Exception as exc:  # a bug must not let the plaintext through
            log.exception("field encryption failed")
            raise _Reject(500, type(exc).__name__) from None
        if new is doc:  # no configured field in this body: forward it byte for byte
            return scope, _replay(original, receive)
        new_body = _dump(new)
        headers = [(k, v) for k, v in scope["headers"] if k.lower() not in (b"content-length", b"transfer-encoding")]
        headers.append((b"content-length", str(len(new_body)).encode()))
        return {**scope, "headers": headers}, _replay(new_body, receive)

    async def render(self, scope: Scope, body: bytes) -> bytes | None:
        """The response body this principal may see, or ``None`` to keep it as it is."""
        try:
            doc = json.loads(body)
        except (ValueError, RecursionError):
            return None  # the app sent something else; nothing we configured can be in it
        if may_decrypt(principal_of(scope), self.decrypt_scopes):
            new = await self.encryptor.adecrypt_document(doc, self.response_specs, strict=False, **self._ctx(scope))
        elif self.mask is not None:
            new = _masked(doc, self.response_specs, self.mask)
        else:
            return None
        return None if new is doc else _dump(new)


def _refuse_decryption_oracle(request: tuple[FieldSpec, ...], response: tuple[FieldSpec, ...]) -> None:
    """Every decrypted response field must be encrypted on the way in, or a client holding the
    decrypt scopes posts a stolen ciphertext there and reads it back as plaintext."""
    for spec in response:
        if not any(_covers(r.path.segments, spec.path.segments) for r in request):
            raise ConfigError(f"fields.response_paths {spec.path.text!r} is not in request_paths: a client with "
                              "decrypt_scopes could post a stolen ciphertext there and read it back decrypted; "
                              "add it to request_paths")


def _covers(request: tuple[Any, ...], response: tuple[Any, ...]) -> bool:
    # A request path covers a response path when it matches the same place or an ancestor of it
    # (the whole ancestor is then encrypted, a ciphertext inside it included).
    return len(request) <= len(response) and all(r is WILDCARD or r == s for r, s in zip(request, response))


def _masked(doc: Any, specs: tuple[FieldSpec, ...], mask: str) -> Any:
    from zerotrust.crypto.jsonpath import assign

    return assign(doc, {loc: mask for spec in specs for loc in spec.path.find(doc)})


def _replay(body: bytes, receive: Receive) -> Receive:
    done = False

    async def replay() -> Message:
        nonlocal done
        if not done:
            done = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()  # after the body: wait for the disconnect as usual

    return replay


class _ResponseRewriter:
    """A ``send`` that holds back a JSON response until it has the whole body, then rewrites it."""

    def __init__(self, mw: FieldEncryptionMiddleware, scope: Scope, send: Send):
        self.mw, self.scope, self.send = mw, scope, send
        self.start: Message | None = None
        self.body = bytearray()
        self.passthrough = False

    async def __call__(self, message: Message) -> None:
        kind = message["type"]
        if self.passthrough:
            return await self.send(message)
        if kind == "http.response.start":
            headers = message.get("headers", [])
            ctype = next((v for k, v in headers if k.lower() == b"content-type"), None)
            if not _json_type(ctype):
                self.passthrough = True
                return await self.send(message)
            self.start = message
            return
        if kind != "http.response.body" or self.start is None:
            self.passthrough = True  # pathsend, trailers...: not a body we can rewrite
            if self.start is not None:
                await self.send(self.start)
                if self.body:
                    await self.send({"type": "http.response.body", "body": bytes(self.body), "more_body": True})
            return await self.send(message)
        self.body += message.get("body", b"")
        if len(self.body) > self.mw.max_response_body:
            return await self._fail(500, f"response body over {self.mw.max_response_body} bytes")
        if message.get("more_body", False):
            return
        await self._finish()

    async def _finish(self) -> None:
        assert self.start is not None
        headers = self.start.get("headers", [])
        if any(k.lower() == b"content-encoding" and v != b"identity" for k, v in headers):
            return await self._fail(500, "compressed JSON response: put compression outside this middleware")
        try:
            body = await self.mw.render(self.scope, bytes(self.body))
        except DependencyError as exc:
            return await self._fail(503, f"key store: {exc.detail or exc.reason}")
        except (CryptoError, FieldInputError) as exc:
            return await self._fail(500, f"stored ciphertext: {exc.detail or exc.reason}")
        except Exception as exc:
            log.exception("field decryption failed")
            return await self._fail(500, type(exc).__name__)
        if body is None:
            body = bytes(self.body)
        else:
            drop = (b"content-length", b"etag", b"cache-control")
            headers = [(k, v) for k, v in headers if k.lower() not in drop]
            headers += [(b"content-length", str(len(body)).encode()), (b"cache-control", b"private, no-store")]
        self.passthrough = True
        await self.send({**self.start, "headers": headers})
        await self.send({"type": "http.response.body", "body": body, "more_body": False})

    async def _fail(self, status: int, detail: str) -> None:
        log.warning("field decryption replaced a response with %d: %s", status, detail)
        headers, body = _error(status)
        self.passthrough = True
        self.body.clear()
        await self.send({"type": "http.response.start", "status": status, "headers": headers})
        await self.send({"type": "http.response.body", "body": body})
        self.send = _discard  # the app may keep sending; the client already has its answer


async def _discard(message: Message) -> None:
    return None
