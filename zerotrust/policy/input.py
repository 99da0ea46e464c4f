"""The policy input document, version 1 (docs/policy.md, docs/policy-input.schema.json).

Every engine that is not the built-in one sees the request through this document
only, so it is the contract policies are written against. It holds no volatile
field (no time, no decision id): the same request from the same principal yields
the same document, which is what lets :mod:`.cache` key decisions by it.
The raw credential never enters it: credential headers cannot be allow-listed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any

from ..errors import ConfigError
from ..types import Principal, RequestContext

INPUT_VERSION = 1

# Headers that carry credentials or session secrets: never copied into the input.
CREDENTIAL_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "x-api-key", "dpop",
                                "x-amzn-oidc-accesstoken", "x-forwarded-access-token"})

_CLAIMS_MEMO_MAX = 4096
# Built once: json.dumps(..., default=...) makes a new encoder per call. No sort_keys: the same claims in
# another order only make a different (finer) key, never a wrong hit.
_claims_text = _json_text = json.JSONEncoder(separators=(",", ":"), default=str).encode


class InputBuilder:
    """Builds the input document and, for the cache, a hashable key equal to its content."""

    def __init__(self, headers: Iterable[str] = (), *, forbidden: Iterable[str] = ()) -> None:
        names = list(dict.fromkeys(h.strip().lower() for h in headers))
        refused = sorted(set(names) & (CREDENTIAL_HEADERS | {f.lower() for f in forbidden}))
        if refused:
            raise ConfigError(f"policy.input_headers: {', '.join(refused)} carries credentials and cannot be "
                              "given to the policy")
        self.headers = tuple(names)
        self._claims_memo: dict[int, tuple[Mapping[str, Any], str]] = {}

    # -- the document -----------------------------------------------------------------

    def build(self, request: RequestContext, principal: Principal | None,
              context: Mapping[str, Any] | None = None) -> dict[str, Any]:
        return {
            "version": INPUT_VERSION,
            "request": {
                "method": request.method,
                "path": request.path,
                "host": request.host,
                "headers": self._headers(request),
                "peer": request.peer,
            },
            "principal": None if principal is None else principal_document(principal),
            "context": context_document(context),
        }

    def _headers(self, request: RequestContext) -> dict[str, str]:
        out: dict[str, str] = {}
        for name in self.headers:
            values = request.headers.getall(name)
            if values:
                # RFC 9110 section 5.3: repeated fields combine as a list; a policy comparing
                # a duplicated x-tenant-id to one tenant then fails instead of picking one.
                out[name] = ", ".join(values)
        return out

    # -- the cache key ----------------------------------------------------------------------

    def key(self, request: RequestContext, principal: Principal | None,
            context: Mapping[str, Any] | None = None) -> tuple[Any, ...]:
        """Equal keys <=> equal documents. Much cheaper than building and serialising one."""
        h = request.headers
        return (request.method, request.path, request.host, request.peer,
                tuple(tuple(h.getall(n)) for n in self.headers) if self.headers else (),
                None if principal is None else (principal, self._claims_key(principal.claims)),
                _context_tuple(context) if context else None)

    def _claims_key(self, claims: Mapping[str, Any]) -> str:
        # Verifiers cache principals, so the same claims object comes back for every request
        # with one token; remember its serialisation by identity (holding it keeps the id valid).
        memo = self._claims_memo.get(id(claims))
        if memo is not None and memo[0] is claims:
            return memo[1]
        text = _claims_text(claims)
        if len(self._claims_memo) >= _CLAIMS_MEMO_MAX:
            self._claims_memo.clear()
        self._claims_memo[id(claims)] = (claims, text)
        return text


def principal_document(p: Principal) -> dict[str, Any]:
    return {
        "subject": p.subject,
        "issuer": p.issuer,
        "kind": p.kind,
        "scopes": sorted(p.scopes),
        "roles": sorted(p.roles),
        "claims": dict(p.claims),
        "acr": p.acr,
        "amr": list(p.amr),
        "auth_time": p.auth_time,
        "expires_at": p.expires_at,
        "client_id": p.client_id,
        "credential_id": p.credential_id,
        "tenant": p.tenant,
    }


def _context_tuple(context: Mapping[str, Any]) -> tuple[Any, ...]:
    return (context.get("route"), context.get("source"), context.get("risk_score"), context.get("risk_level"))


def context_document(context: Mapping[str, Any] | None) -> dict[str, Any]:
    """Only the context keys the contract names; anything else a caller passes is ignored."""
    route, source, score, level = _context_tuple(context) if context else (None, None, None, None)
    return {"route": route, "source": source, "risk": {"score": score, "level": level}}


def encode(document: Mapping[str, Any]) -> bytes:
    return _json_text(document).encode()


def input_hash(encoded: bytes) -> str:
    """What decision logs carry instead of the input itself (it holds claims)."""
    return hashlib.sha256(encoded).hexdigest()[:32]
