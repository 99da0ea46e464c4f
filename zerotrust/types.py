"""Neutral request, credential, principal and decision types.

Adapters translate native requests into :class:`RequestContext` and render a
:class:`Decision` back; nothing in the core ever sees a framework or proxy type.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any


class Headers:
    """Case-insensitive, multi-valued, read-only request headers.

    Keeps every occurrence so that duplicated security headers can be rejected
    instead of silently picking one of them.
    """

    __slots__ = ("_pairs", "_index")

    def __init__(self, pairs: Iterable[tuple[str, str]] = ()) -> None:
        self._pairs = [(k.lower(), v) for k, v in pairs]
        self._index: dict[str, list[str]] | None = None

    @classmethod
    def from_raw(cls, raw: Iterable[tuple[bytes, bytes]]) -> Headers:
        """Build from ASGI-style ``(name, value)`` byte pairs (latin-1, as HTTP/1.1 defines)."""
        h = cls.__new__(cls)
        h._pairs = [(k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in raw]
        h._index = None
        return h

    def _idx(self) -> dict[str, list[str]]:
        if self._index is None:
            idx: dict[str, list[str]] = {}
            for k, v in self._pairs:
                idx.setdefault(k, []).append(v)
            self._index = idx
        return self._index

    def get(self, name: str, default: str | None = None) -> str | None:
        values = self._idx().get(name.lower())
        return values[0] if values else default

    def getall(self, name: str) -> list[str]:
        return list(self._idx().get(name.lower(), ()))

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._idx()

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self._pairs)

    def __len__(self) -> int:
        return len(self._pairs)

    def __repr__(self) -> str:  # never print values: they may be credentials
        return f"Headers(names={sorted(self._idx())!r})"


@dataclass(frozen=True, slots=True)
class TLSInfo:
    """What the TLS terminator proved about the client (RFC 8705 needs the thumbprint)."""

    verified: bool = False
    peer_certificate_sha256: str | None = None  # base64url SHA-256 of the DER certificate (x5t#S256)
    peer_subject: str | None = None
    sni: str | None = None


@dataclass(frozen=True, slots=True)
class RequestContext:
    """The request being judged, as the upstream will see it.

    ``path`` is already normalised (see :mod:`zerotrust.paths`); ``raw_path`` is
    what arrived, kept for logs and for signature checks such as DPoP ``htu``.
    """

    method: str
    path: str
    headers: Headers
    query: str = ""
    raw_path: str = ""
    host: str = ""
    scheme: str = "https"
    peer: str | None = None
    tls: TLSInfo | None = None


@dataclass(frozen=True, slots=True)
class Credential:
    """A credential found on a request, before anyone has checked it."""

    kind: str  # "bearer" | "api_key" | later "dpop", "saml"
    value: str = field(repr=False)
    source: str = ""  # header it came from, e.g. "authorization" or "x-api-key"
    scheme: str | None = None  # auth scheme as sent ("Bearer", "DPoP")
    _digest: bytes | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def digest(self) -> bytes:
        """SHA-256 of the value, computed once: cache keys and the log fingerprint share it."""
        d = self._digest
        if d is None:
            d = hashlib.sha256(self.value.encode()).digest()
            object.__setattr__(self, "_digest", d)
        return d

    @property
    def fingerprint(self) -> str:
        """A short, non-reversible tag that is safe to log."""
        return self.digest[:6].hex()


@dataclass(frozen=True, slots=True)
class Principal:
    """Who the request is from, whatever credential proved it."""

    subject: str
    issuer: str
    kind: str  # "jwt" | "api_key" | "introspection" | "saml" | ...
    scopes: frozenset[str] = frozenset()
    claims: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)
    acr: str | None = None
    amr: tuple[str, ...] = ()
    auth_time: int | None = None
    expires_at: float | None = None  # epoch seconds; bounds every cache that holds this principal
    client_id: str | None = None
    roles: frozenset[str] = frozenset()
    credential_id: str | None = None  # API key id or token jti, for logs and revocation
    tenant: str | None = None

    def has_scopes(self, required: Iterable[str]) -> bool:
        return self.scopes.issuperset(required)


@dataclass(frozen=True, slots=True)
class PolicyResult:
    """What a policy engine answers. ``required_scopes`` feeds the RFC 6750 challenge."""

    allow: bool
    reason: str
    required_scopes: tuple[str, ...] = ()
    status: int | None = None
    headers: tuple[tuple[str, str], ...] = ()
    step_up: Mapping[str, Any] | None = field(default=None, compare=False)  # {"acr_values": "...", "max_age": 300} -> RFC 9470
    engine: str = ""
    revision: str = ""
    input_hash: str = field(default="", compare=False)  # hash of the policy input, for decision logs (OPA's "input")


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome for one request.

    ``upstream_headers`` are set on the request forwarded upstream (allow only),
    ``remove_headers`` are stripped from it, ``response_headers`` go back to the
    client (deny: ``WWW-Authenticate``).
    """

    allow: bool
    status: int
    reason: str
    decision_id: str
    principal: Principal | None = None
    upstream_headers: tuple[tuple[str, str], ...] = ()
    remove_headers: tuple[str, ...] = ()
    response_headers: tuple[tuple[str, str], ...] = ()
    error_code: str | None = None
    description: str | None = None
    rule: str | None = None  # what the policy engine matched, for logs

    @property
    def challenge(self) -> str | None:
        for k, v in self.response_headers:
            if k.lower() == "www-authenticate":
                return v
        return None
