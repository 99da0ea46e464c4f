"""Public JSON Web Keys (RFC 7517, RFC 7518 section 6, RFC 8037) turned into verification keys.

Only public members are read: a JWK that also carries ``d``/``p``/``q`` still
yields just its public half, and ``oct`` (symmetric) keys are never usable. A key
that cannot be parsed is skipped with a logged reason, so one odd key in an
issuer's set cannot take the others down.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from .jws import b64url_decode

log = logging.getLogger("zerotrust.jwt.jwks")

MIN_RSA_BITS = 2048
MAX_RSA_BITS = 16384  # a larger modulus is a verification-time DoS, not extra security
RSA_ALGS = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"})
_CURVES: dict[str, tuple[ec.EllipticCurve, int, str]] = {
    "P-256": (ec.SECP256R1(), 32, "ES256"),
    "P-384": (ec.SECP384R1(), 48, "ES384"),
    "P-521": (ec.SECP521R1(), 66, "ES512"),
}
_PRIVATE_MEMBERS = ("d", "p", "q", "dp", "dq", "qi", "oth", "k")


class KeyRejected(ValueError):
    """A JWK we will not use; the message is safe to log (it names no key material)."""


@dataclass(frozen=True, slots=True)
class VerificationKey:
    kid: str | None
    algorithms: frozenset[str]  # what this key may verify: its type's algorithms, narrowed by "alg"
    public_key: Any
    thumbprint: str  # RFC 7638 SHA-256 thumbprint: identity across refreshes and safe to log

    @property
    def ident(self) -> tuple[str | None, str, frozenset[str]]:
        return (self.kid, self.thumbprint, self.algorithms)


def _b64(jwk: Mapping[str, Any], name: str) -> bytes:
    value = jwk.get(name)
    if type(value) is not str or not value:
        raise KeyRejected(f"member {name} missing or not a string")
    try:
        return b64url_decode(value.rstrip("="))  # tolerate padding from an issuer, never bad characters
    except ValueError:
        raise KeyRejected(f"member {name} is not base64url") from None


def _thumbprint(members: dict[str, str]) -> str:
    canonical = json.dumps(members, sort_keys=True, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(hashlib.sha256(canonical).digest()).rstrip(b"=").decode()


def _rsa_key(jwk: Mapping[str, Any]) -> tuple[Any, frozenset[str], str]:
    n = int.from_bytes(_b64(jwk, "n"), "big")
    e = int.from_bytes(_b64(jwk, "e"), "big")
    if not MIN_RSA_BITS <= n.bit_length() <= MAX_RSA_BITS:
        raise KeyRejected(f"RSA modulus of {n.bit_length()} bits (need {MIN_RSA_BITS}..{MAX_RSA_BITS})")
    try:
        key = rsa.RSAPublicNumbers(e, n).public_key()
    except ValueError as exc:
        raise KeyRejected(f"invalid RSA public numbers: {exc}") from None
    return key, RSA_ALGS, _thumbprint({"e": jwk["e"], "kty": "RSA", "n": jwk["n"]})


def _ec_key(jwk: Mapping[str, Any]) -> tuple[Any, frozenset[str], str]:
    crv = jwk.get("crv")
    if crv not in _CURVES:
        raise KeyRejected("unsupported EC curve")
    curve, size, alg = _CURVES[crv]
    x, y = _b64(jwk, "x"), _b64(jwk, "y")
    if len(x) != size or len(y) != size:  # RFC 7518 section 6.2.1.2: full-length coordinates
        raise KeyRejected("EC coordinate of the wrong length")
    try:  # from_encoded_point checks that the point is on the curve
        key = ec.EllipticCurvePublicKey.from_encoded_point(curve, b"\x04" + x + y)
    except ValueError:
        raise KeyRejected("EC point is not on the curve") from None
    return key, frozenset({alg}), _thumbprint({"crv": crv, "kty": "EC", "x": jwk["x"], "y": jwk["y"]})


def _okp_key(jwk: Mapping[str, Any]) -> tuple[Any, frozenset[str], str]:
    if jwk.get("crv") != "Ed25519":
        raise KeyRejected("unsupported OKP curve")
    x = _b64(jwk, "x")
    if len(x) != 32:
        raise KeyRejected("Ed25519 key of the wrong length")
    key = ed25519.Ed25519PublicKey.from_public_bytes(x)
    return key, frozenset({"EdDSA"}), _thumbprint({"crv": "Ed25519", "kty": "OKP", "x": jwk["x"]})


_BUILDERS = {"RSA": _rsa_key, "EC": _ec_key, "OKP": _okp_key}


def parse_jwk(jwk: Any) -> VerificationKey:
    """One JWK to a :class:`VerificationKey`, or :class:`KeyRejected`."""
    if not isinstance(jwk, dict):
        raise KeyRejected("not a JSON object")
    use = jwk.get("use")
    if use is not None and use != "sig":
        raise KeyRejected("use is not sig")
    ops = jwk.get("key_ops")
    if ops is not None and (type(ops) is not list or "verify" not in ops):
        raise KeyRejected("key_ops does not allow verify")
    kid = jwk.get("kid")
    if kid is not None and type(kid) is not str:
        raise KeyRejected("kid is not a string")
    kty = jwk.get("kty")
    builder = _BUILDERS.get(kty) if type(kty) is str else None
    if builder is None:
        raise KeyRejected("unsupported kty (symmetric keys are never used)")
    key, algorithms, thumbprint = builder(jwk)
    alg = jwk.get("alg")
    if alg is not None:
        if alg not in algorithms:
            raise KeyRejected("alg does not fit the key type")
        algorithms = frozenset({alg})
    return VerificationKey(kid, algorithms, key, thumbprint)


def parse_jwks(document: Any, issuer: str = "") -> list[VerificationKey]:
    """A JWK Set (RFC 7517 section 5). Raises ``ValueError`` only if it is not a set at all."""
    if not isinstance(document, dict) or type(document.get("keys")) is not list:
        raise ValueError("not a JWK Set")
    keys: list[VerificationKey] = []
    for index, jwk in enumerate(document["keys"]):
        try:
            keys.append(parse_jwk(jwk))
        except KeyRejected as exc:
            log.info("issuer %s: JWKS key #%d skipped: %s", issuer, index, exc)
            continue
        if any(m in jwk for m in _PRIVATE_MEMBERS):
            log.warning("issuer %s: JWKS key #%d publishes private key material; only its public part is used",
                        issuer, index)
    return keys
