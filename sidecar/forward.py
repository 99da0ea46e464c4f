"""Forward-auth mode: the check that Caddy ``forward_auth`` and Traefik ``forwardAuth`` send.

These proxies do not send the original request. They ask with a GET (Caddy at a
rewritten URI, Traefik at a fixed address) and describe the original request in
``X-Forwarded-Method``, ``X-Forwarded-Uri``, ``X-Forwarded-Host`` and
``X-Forwarded-Proto``. Those headers then decide what is judged, so they are
believed only when the TCP peer is in ``server.trusted_proxies``, the check
arrives at ``server.forward_auth.path``, and each header is present exactly once
and well formed. Anything else is a 400: falling back to the GET the proxy sent
would let a client hide a POST behind it, and believing a client's own
``X-Forwarded-Uri`` would let it name any path it likes.

The forwarded path goes through the same :func:`zerotrust.normalize_path` as any
other, so ``server.path_mode`` applies unchanged. The answer is the ext_authz one.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from zerotrust import Decision, Headers, InvalidRequest, Pipeline, RequestContext, ZeroTrustError, normalize_path
from zerotrust import split_target
from zerotrust.adapters.asgi_request import bad_target, client_host, raw_target, tls_info

from .peers import PeerResolver

# RFC 9110 section 5.6.2 token, bounded: methods are case-sensitive and judged as sent.
_METHOD = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]{1,32}")
# RFC 9112 section 3.2.1 origin-form (absolute-path [ "?" query ]) in visible ASCII, no fragment.
_ORIGIN_FORM = re.compile(r"/[\x21\x22\x24-\x7e]*")
# RFC 9110 section 7.2 Host: reg-name or IP literal, optional port.
_HOST = re.compile(r"(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._~!$&'()*+,;=%-]+)(?::[0-9]{1,5})?")
_PROTO = re.compile(r"https?")
_MAX_URI = 16384
_MAX_HOST = 255


def _bad_header(name: str, why: str) -> InvalidRequest:
    return InvalidRequest(reason="deny.forward_header", detail=f"{name} {why}")


def _one(headers: Headers, name: str, shape: re.Pattern[str], limit: int) -> str:
    values = headers.getall(name)
    if not values:
        raise _bad_header(name, "missing")
    if len(values) > 1:
        raise _bad_header(name, "repeated")
    value = values[0]
    if len(value) > limit or not shape.fullmatch(value):
        raise _bad_header(name, "malformed")
    return value


class ForwardAuth:
    """Turns a forward-auth check into the :class:`RequestContext` of the request it describes."""

    def __init__(self, pipeline: Pipeline, peers: PeerResolver, *, path: str = "/forward-auth",
                 path_mode: str = "strict"):
        if not peers.trusted:
            raise ValueError("forward-auth mode needs trusted proxies")
        self.pipeline = pipeline
        self.peers = peers
        self.path = path
        self.mode = path_mode

    async def decide(self, scope: Mapping[str, Any]) -> Decision:
        headers = Headers.from_raw(scope["headers"])
        try:
            request = self.request(scope, headers)
        except ZeroTrustError as err:
            return self.pipeline.reject(self._rejected(scope, headers), err)
        return await self.pipeline.evaluate(request)

    def request(self, scope: Mapping[str, Any], headers: Headers) -> RequestContext:
        tcp_peer = client_host(scope)
        if tcp_peer is None or not self.peers.is_trusted(tcp_peer):
            raise InvalidRequest(reason="deny.forward_untrusted", detail="forward-auth check from an untrusted peer")
        check_path, _ = raw_target(scope)  # the check's own query is the proxy's, never the client's
        if check_path != self.path:
            raise bad_target("forward-auth check not at server.forward_auth.path")
        method = _one(headers, "x-forwarded-method", _METHOD, 32)
        uri = _one_uri(headers)
        host = _one(headers, "x-forwarded-host", _HOST, _MAX_HOST)
        scheme = _one(headers, "x-forwarded-proto", _PROTO, 5)
        raw_path, query = split_target(uri)
        return RequestContext(
            method=method, path=normalize_path(raw_path, self.mode), headers=headers, query=query,
            raw_path=raw_path, host=host, scheme=scheme, peer=self.peers.forwarded_client(tcp_peer, headers),
            tls=tls_info(scope),
        )

    def _rejected(self, scope: Mapping[str, Any], headers: Headers) -> RequestContext:
        """What the decision log records for a refused check: the forwarded target as far as it is readable."""
        methods, uris = headers.getall("x-forwarded-method"), headers.getall("x-forwarded-uri")
        method = methods[0] if len(methods) == 1 and _METHOD.fullmatch(methods[0]) else str(scope.get("method", ""))
        path = split_target(uris[0])[0][:1024] if len(uris) == 1 else ""
        return RequestContext(method=method[:32], path=path, raw_path=path, headers=Headers(), peer=client_host(scope))


def _one_uri(headers: Headers) -> str:
    # An absolute-form or asterisk-form target, or garbage, is a bad path like any other.
    values = headers.getall("x-forwarded-uri")
    if len(values) != 1:
        raise _bad_header("x-forwarded-uri", "missing" if not values else "repeated")
    uri = values[0]
    if len(uri) > _MAX_URI or not _ORIGIN_FORM.fullmatch(uri):
        raise bad_target("X-Forwarded-Uri is not an origin-form target")
    return uri
