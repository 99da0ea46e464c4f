"""Per-issuer header and claim rules: RFC 9068 (JWT access tokens) and RFC 7519 section 4.1.

Runs only after the signature has verified. Every claim we interpret must have
its JSON type; time checks use a bounded leeway, and the returned validity window
lets the verified-token cache never outlive ``exp``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from ..types import Principal
from .jwt_principal import principal_from_claims
from .jwt_errors import deny

# RFC 9068 section 2.1 (header) and 2.2 (claims); "compat" is for issuers that predate it.
PROFILE_TYPS: dict[str, frozenset[str | None]] = {
    "rfc9068": frozenset({"at+jwt", "application/at+jwt"}),
    "compat": frozenset({None, "jwt", "at+jwt", "application/at+jwt"}),
}
PROFILE_CLAIMS: dict[str, tuple[str, ...]] = {
    "rfc9068": ("iss", "exp", "aud", "sub", "client_id", "iat", "jti"),
    "compat": ("iss", "exp", "aud", "sub"),
}
_STRINGS = ("sub", "client_id", "jti", "acr", "scope")
_STRING_LISTS = ("scp", "roles", "amr")
_NO = object()  # "claim absent"; distinct from a JSON null, which is the wrong type
_NEVER = float("-inf")


_MAX_DATE = 2**53  # I-JSON (RFC 7493) safe integers; year ~285 million is far enough


def _number(v: Any) -> bool:
    # bool is an int subclass and is excluded on purpose; 1e400 parses to inf and is excluded too;
    # a 400-digit integer is a number in JSON but not a date anyone issues.
    return (type(v) is int or (type(v) is float and math.isfinite(v))) and -_MAX_DATE <= v <= _MAX_DATE


def _string_list(v: Any) -> bool:
    if type(v) is not list:
        return False
    try:
        "".join(v)  # raises TypeError on the first non-string; far cheaper than a generator
    except TypeError:
        return False
    return True


class IssuerPolicy:
    """What one configured issuer's tokens must look like."""

    def __init__(self, issuer: str, audiences: Iterable[str], algorithms: Iterable[str], *,
                 profile: str = "rfc9068", leeway: int = 30, max_token_age: int | None = None,
                 required_claims: Iterable[str] = ()):
        self.issuer = issuer
        self.audiences = frozenset(audiences)
        # HMAC and "none" can never be configured; the filter is a second lock on that door.
        self.algorithms = frozenset(a for a in algorithms if a[:2] != "HS" and a.lower() != "none")
        self.profile = profile
        self.typs = PROFILE_TYPS[profile]
        self.leeway = leeway
        self.max_token_age = max_token_age
        required = list(PROFILE_CLAIMS[profile]) + [c for c in required_claims]
        if max_token_age is not None:
            required.append("iat")
        self.required = tuple(dict.fromkeys(required))
        self._present = frozenset(self.required)
        self._not_null = tuple(n for n in self.required if n not in PROFILE_CLAIMS[profile] and n != "iat")

    def check_header(self, header: dict[str, Any]) -> None:
        alg = header["alg"]
        if alg not in self.algorithms:
            raise deny("algorithm", "alg not allowed for this issuer")
        typ = header.get("typ")
        if (typ.lower() if typ is not None else None) not in self.typs:
            raise deny("typ", f"typ not allowed by profile {self.profile}")

    def validate(self, c: dict[str, Any], now: float) -> tuple[Principal, float, float]:
        """Return the principal and the window [not_before, not_after) in which it stays valid.

        Written straight-line on purpose: this runs for every uncached token.
        """
        if not c.keys() >= self._present:
            raise deny("missing_claim", "claim {} is required".format(next(n for n in self.required if n not in c)))
        for name in self._not_null:  # configured required_claims: null counts as missing
            if c[name] is None:
                raise deny("missing_claim", f"claim {name} is required")
        get = c.get
        leeway = self.leeway
        if type(c["iss"]) is not str or type(c["sub"]) is not str or not c["sub"]:
            raise deny("claim_type", "iss or sub is not a non-empty string")
        exp, nbf, iat, auth_time = c["exp"], get("nbf", _NO), get("iat", _NO), get("auth_time", _NO)
        if not _number(exp) or (nbf is not _NO and not _number(nbf)) or (iat is not _NO and not _number(iat)) \
                or (auth_time is not _NO and not _number(auth_time)):
            raise deny("claim_type", "a time claim is not a number")
        for name in _STRINGS:
            v = get(name, _NO)
            if v is not _NO and type(v) is not str:
                raise deny("claim_type", f"{name} is not a string")
        for name in _STRING_LISTS:
            v = get(name, _NO)
            if v is not _NO and not _string_list(v):
                raise deny("claim_type", f"{name} is not an array of strings")

        if now >= exp + leeway:
            raise deny("expired", "exp has passed")
        not_after = exp
        not_before = _NEVER if nbf is _NO else nbf - leeway
        if now < not_before:
            raise deny("not_yet_valid", "nbf is in the future")
        if iat is not _NO:
            if iat > now + leeway:
                raise deny("issued_in_future", "iat is in the future")
            if self.max_token_age is not None:
                too_old_at = iat + self.max_token_age + leeway
                if now >= too_old_at:
                    raise deny("too_old", "iat is older than max_token_age")
                not_after = min(not_after, too_old_at)

        aud = c["aud"]
        if type(aud) is str:
            if aud not in self.audiences:
                raise deny("audience", "aud does not name this resource")
        elif type(aud) is list and aud and _string_list(aud):
            if self.audiences.isdisjoint(aud):
                raise deny("audience", "aud does not name this resource")
        else:
            raise deny("claim_type", "aud is not a string or array of strings")
        return principal_from_claims(self.issuer, c, None if auth_time is _NO else auth_time), not_before, not_after
