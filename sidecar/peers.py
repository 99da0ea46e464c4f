"""Who the client is when the sidecar sits behind a proxy.

By default the peer is the TCP client. Behind Envoy or nginx that is the proxy
itself, which would make every per-client limit (API-key throttling) global. When
``server.trusted_proxies`` lists the proxies' networks, and only when the TCP
client is one of them, the client is read from ``X-Forwarded-For`` right to left:
the first address that is not a trusted proxy. A client can prepend anything it
likes to that header; it cannot forge what the trusted hops appended.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from zerotrust import Headers

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class PeerResolver:
    def __init__(self, trusted: Iterable[str] = ()):
        self.trusted: tuple[Network, ...] = tuple(ipaddress.ip_network(n, strict=False) for n in trusted)

    def is_trusted(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in net for net in self.trusted)

    def resolve(self, tcp_peer: str | None, headers: Headers) -> str | None:
        if not self.trusted or tcp_peer is None or not self.is_trusted(tcp_peer):
            return tcp_peer
        return self.forwarded_client(tcp_peer, headers)

    def forwarded_client(self, tcp_peer: str, headers: Headers) -> str:
        """The client behind ``tcp_peer``, which the caller has already found trusted."""
        hops = [h.strip() for value in headers.getall("x-forwarded-for") for h in value.split(",")]
        if not hops:
            external = headers.getall("x-envoy-external-address")
            if len(external) == 1 and _valid(external[0].strip()):
                return external[0].strip()
            return tcp_peer
        nearest = tcp_peer
        for hop in reversed(hops):
            if not _valid(hop):
                return nearest  # garbage is the client's doing: blame the last hop we trust
            if not self.is_trusted(hop):
                return hop
            nearest = hop
        return nearest


def _valid(address: str) -> bool:
    try:
        ipaddress.ip_address(address)
    except ValueError:
        return False
    return True
