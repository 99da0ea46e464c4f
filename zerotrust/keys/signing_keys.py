"""Signing-key versions: their ``kid``, their public JWK, and which ones are published.

``kid`` scheme: the RFC 7638 JWK SHA-256 thumbprint (base64url) of the version's
public key. It changes with every key version, is identical whether Transit or the
local file holds the key, survives restarts, and any verifier can recompute it from
the JWK, so a ``kid`` can never be made to point at a different key.

Rotation with overlap, computed from key metadata alone (so every replica agrees):

* the *signing* version is the newest one created at least ``activate_after`` seconds
  ago, which lets verifiers see a new key in the JWKS before any token uses it;
* a version is *retired* when a newer version becomes the signing version; it stays in
  the JWKS until ``retired + token_ttl + leeway``, after which no unexpired token can
  carry its ``kid``; versions not yet active are published already.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec, ed25519

PublicKey = ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def public_jwk(public_key: PublicKey, alg: str) -> dict[str, str]:
    """The JWK members of RFC 7518 section 6.2 / RFC 8037 section 2, plus kid/alg/use."""
    if isinstance(public_key, ed25519.Ed25519PublicKey):
        from cryptography.hazmat.primitives import serialization

        raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        members = {"crv": "Ed25519", "kty": "OKP", "x": b64url(raw)}
    else:
        if not isinstance(public_key.curve, ec.SECP256R1):
            raise ValueError("only P-256 signing keys are supported")
        numbers = public_key.public_numbers()
        members = {"crv": "P-256", "kty": "EC", "x": b64url(numbers.x.to_bytes(32, "big")),
                   "y": b64url(numbers.y.to_bytes(32, "big"))}
    return {**members, "kid": thumbprint(members), "alg": alg, "use": "sig"}


def thumbprint(members: dict[str, str]) -> str:
    """RFC 7638 section 3: required members only, lexicographic order, no whitespace."""
    required = {k: members[k] for k in ("crv", "e", "kty", "n", "x", "y") if k in members}
    canonical = json.dumps(required, sort_keys=True, separators=(",", ":")).encode()
    return b64url(hashlib.sha256(canonical).digest())


@dataclass(frozen=True)
class KeyVersion:
    version: int
    created: float  # unix seconds
    public_key: PublicKey = field(repr=False)
    jwk: dict[str, str] = field(repr=False, compare=False)

    @property
    def kid(self) -> str:
        return self.jwk["kid"]


@dataclass(frozen=True)
class Selection:
    signing: KeyVersion
    published: tuple[KeyVersion, ...]
    retire_at: dict[int, float]  # version -> unix time it leaves the JWKS


def select(versions: list[KeyVersion], now: float, *, token_ttl: float, leeway: float = 60,
           activate_after: float = 0) -> Selection:
    if not versions:
        raise ValueError("no key versions")
    ordered = sorted(versions, key=lambda v: v.version)
    active = [v for v in ordered if v.created <= now - activate_after] or ordered[:1]
    signing = active[-1]
    retire_at: dict[int, float] = {}
    for older, newer in zip(ordered, ordered[1:]):
        # ``older`` stopped signing when ``newer`` became active.
        retire_at[older.version] = newer.created + activate_after + token_ttl + leeway
    published = tuple(v for v in ordered if v.version >= signing.version or retire_at.get(v.version, now + 1) > now)
    return Selection(signing, published, retire_at)


def jwks(selection: Selection) -> dict[str, Any]:
    return {"keys": [dict(v.jwk) for v in sorted(selection.published, key=lambda v: -v.version)]}
