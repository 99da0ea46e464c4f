"""ASGI scope -> :class:`zerotrust.RequestContext`.

Shared by the middleware and the ext_authz sidecar. The path is taken from
``raw_path`` (the bytes that arrived), never from the percent-decoded ``path``,
so that ``%2e%2e`` or ``%2f`` cannot be hidden from :func:`zerotrust.normalize_path`.
"""

from __future__ import annotations

import base64
import hashlib
import ssl
from collections.abc import Mapping
from typing import Any

from zerotrust import Headers, InvalidRequest, RequestContext, TLSInfo

_TLS_CACHE: dict[str, TLSInfo] = {}
_TLS_CACHE_MAX = 1024


def bad_target(why: str) -> InvalidRequest:
    return InvalidRequest("The request path is not acceptable", reason="deny.bad_path", detail=why)


def raw_target(scope: Mapping[str, Any]) -> tuple[str, str]:
    """Return ``(raw path, query)`` exactly as received.

    Some clients (httpx's ASGI transport) put the query into ``raw_path``; a ``?``
    can never be part of a path, so splitting on it is safe.
    """
    raw = scope.get("raw_path")
    if raw is None:  # servers without raw_path: re-encode what we cannot see, do not trust a decoded path
        raise bad_target("server gave no raw_path")
    if not raw.isascii():
        raise bad_target("non-ASCII bytes in the path")  # RFC 3986 requires percent-encoding
    path = raw.decode("ascii")
    query = scope.get("query_string", b"").decode("latin-1")
    if "?" in path:
        path, _, query = path.partition("?")
    return path, query


def host_of(headers: Headers) -> str:
    hosts = headers.getall("host")
    if len(hosts) > 1:  # RFC 9112 section 3.2: more than one Host is a 400
        raise InvalidRequest(reason="deny.multiple_host", detail="more than one Host header")
    return headers.get(":authority") or (hosts[0] if hosts else "")


def tls_info(scope: Mapping[str, Any]) -> TLSInfo | None:
    """Read the ASGI TLS extension: the client certificate's x5t#S256 thumbprint (RFC 8705 section 3.1)."""
    ext = scope.get("extensions")
    tls = ext.get("tls") if ext else None
    if tls is None:
        return None
    chain = tls.get("client_cert_chain") or ()
    if not chain:
        return TLSInfo(verified=False)
    pem = chain[0]
    info = _TLS_CACHE.get(pem)
    if info is None:
        der = ssl.PEM_cert_to_DER_cert(pem)
        thumb = base64.urlsafe_b64encode(hashlib.sha256(der).digest()).rstrip(b"=").decode()
        info = TLSInfo(verified=tls.get("client_cert_error") is None, peer_certificate_sha256=thumb,
                       peer_subject=tls.get("client_cert_name"))
        if len(_TLS_CACHE) >= _TLS_CACHE_MAX:
            _TLS_CACHE.clear()
        _TLS_CACHE[pem] = info
    return info


def client_host(scope: Mapping[str, Any]) -> str | None:
    client = scope.get("client")
    return client[0] if client else None


def build_request(scope: Mapping[str, Any], *, path: str, raw_path: str, query: str, headers: Headers,
                  peer: str | None, scheme: str | None = None) -> RequestContext:
    return RequestContext(
        method=scope["method"] if scope["type"] == "http" else "GET",
        path=path,
        headers=headers,
        query=query,
        raw_path=raw_path,
        host=host_of(headers),
        scheme=scheme or ("https" if scope.get("scheme") in ("https", "wss") else "http"),
        peer=peer,
        tls=tls_info(scope),
    )


def rejected_request(scope: Mapping[str, Any], raw_path: str = "") -> RequestContext:
    """A minimal context for auditing a request refused before it could be fully read."""
    return RequestContext(method=str(scope.get("method", "GET"))[:16], path=raw_path[:1024], headers=Headers(),
                          raw_path=raw_path[:1024], peer=client_host(scope))
