"""Every way a JWT access token is refused, with its fixed client-facing text.

The reason id is stable (dashboards and alerts key on it); the description is the
only text a client sees and never contains token bytes. ``detail`` goes to logs and
names the failed check, never a claim value taken from the token.
"""

from __future__ import annotations

from ..errors import InvalidToken

DESCRIPTIONS: dict[str, str] = {
    "too_large": "The token is too large",
    "malformed": "The token is malformed",
    "encrypted": "Encrypted tokens are not accepted",
    "serialization": "Only compact JWS tokens are accepted",
    "header": "The token header is not acceptable",
    "algorithm": "The token algorithm is not acceptable",
    "typ": "The token type is not acceptable",
    "issuer": "The token issuer is not trusted",
    "unknown_key": "The token signing key is unknown",
    "signature": "The token signature is invalid",
    "expired": "The token is expired",
    "not_yet_valid": "The token is not valid yet",
    "issued_in_future": "The token was issued in the future",
    "too_old": "The token is too old",
    "audience": "The token audience is not accepted",
    "missing_claim": "The token lacks a required claim",
    "claim_type": "The token has a claim of the wrong type",
}


def deny(kind: str, detail: str | None = None) -> InvalidToken:
    """Build the :class:`InvalidToken` for ``kind`` (a key of :data:`DESCRIPTIONS`)."""
    return InvalidToken(DESCRIPTIONS[kind], reason=f"deny.jwt.{kind}", detail=detail or kind)
