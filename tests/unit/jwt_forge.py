"""Test helper: forge JWTs and run a fake identity provider, independently of zerotrust's JWT code.

Tokens are assembled by hand from ``json`` + ``base64`` + pyca/cryptography so that
a bug in the verifier's parser cannot also hide in the tokens it is tested with.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from zerotrust.config import JWTConfig
from zerotrust.credentials.jwt import JWTVerifier

NOW = 1_750_000_000  # fixed wall clock for unit tests
ISSUER_A = "https://issuer-a.example"
ISSUER_B = "https://issuer-b.example/tenant"
AUDIENCE = "https://api.example"


def b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64int(n: int, size: int | None = None) -> str:
    return b64u(n.to_bytes(size or (n.bit_length() + 7) // 8, "big"))


# --- keys (generated once per test session) ----------------------------------------------------

KEYS: dict[str, Any] = {
    "rsa-a": rsa.generate_private_key(65537, 2048),
    "rsa-a2": rsa.generate_private_key(65537, 2048),
    "ec-a": ec.generate_private_key(ec.SECP256R1()),
    "ec384-a": ec.generate_private_key(ec.SECP384R1()),
    "ed-a": ed25519.Ed25519PrivateKey.generate(),
    "rsa-small": rsa.generate_private_key(65537, 1024),
    "rsa-b": rsa.generate_private_key(65537, 2048),
}


def public_jwk(key: Any, kid: str | None, **extra: Any) -> dict[str, Any]:
    pub = key.public_key()
    if isinstance(pub, rsa.RSAPublicKey):
        nums = pub.public_numbers()
        jwk: dict[str, Any] = {"kty": "RSA", "n": b64int(nums.n), "e": b64int(nums.e)}
    elif isinstance(pub, ec.EllipticCurvePublicKey):
        size = (pub.curve.key_size + 7) // 8
        crv = {256: "P-256", 384: "P-384", 521: "P-521"}[pub.curve.key_size]
        nums = pub.public_numbers()
        jwk = {"kty": "EC", "crv": crv, "x": b64int(nums.x, size), "y": b64int(nums.y, size)}
    else:
        raw = pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        jwk = {"kty": "OKP", "crv": "Ed25519", "x": b64u(raw)}
    if kid is not None:
        jwk["kid"] = kid
    jwk.update(extra)
    return jwk


def rsa_public_pem(key: Any) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


# --- signing ---------------------------------------------------------------------------------------

_HASHES = {"256": hashes.SHA256(), "384": hashes.SHA384(), "512": hashes.SHA512()}


def raw_signature(alg: str, key: Any, data: bytes, *, der: bool = False) -> bytes:
    if alg == "none":
        return b""
    bits = alg[2:]
    if alg.startswith("HS"):
        return hmac.new(key, data, getattr(hashlib, f"sha{bits}")).digest()
    if alg.startswith("RS"):
        return key.sign(data, padding.PKCS1v15(), _HASHES[bits])
    if alg.startswith("PS"):
        return key.sign(data, padding.PSS(padding.MGF1(_HASHES[bits]), _HASHES[bits].digest_size), _HASHES[bits])
    if alg.startswith("ES"):
        sig = key.sign(data, ec.ECDSA(_HASHES[bits]))
        if der:
            return sig
        size = (key.curve.key_size + 7) // 8
        r, s = decode_dss_signature(sig)
        return r.to_bytes(size, "big") + s.to_bytes(size, "big")
    if alg == "EdDSA":
        return key.sign(data)
    raise ValueError(alg)


def encode_json(value: Any) -> bytes:
    return value.encode() if isinstance(value, str) else json.dumps(value, separators=(",", ":")).encode()


def sign_token(header: Any, payload: Any, key: Any, alg: str | None = None, *, der: bool = False) -> str:
    """``header``/``payload`` are dicts, or str for literal JSON text (duplicates, arrays, garbage)."""
    signing_input = f"{b64u(encode_json(header))}.{b64u(encode_json(payload))}"
    alg = alg or header["alg"]
    return f"{signing_input}.{b64u(raw_signature(alg, key, signing_input.encode(), der=der))}"


def base_claims(issuer: str = ISSUER_A, now: int = NOW, **overrides: Any) -> dict[str, Any]:
    claims = {"iss": issuer, "sub": "user-1", "aud": AUDIENCE, "client_id": "web", "iat": now,
              "exp": now + 300, "jti": "jti-1", "scope": "orders:read profile"}
    claims.update(overrides)
    return claims


def token(key_name: str = "rsa-a", alg: str = "RS256", *, kid: str | None = None, issuer: str = ISSUER_A,
          header: dict[str, Any] | None = None, **claims: Any) -> str:
    h = {"alg": alg, "typ": "at+jwt", "kid": kid or key_name}
    h.update(header or {})
    return sign_token(h, base_claims(issuer, **claims), KEYS[key_name], alg)


# --- a fake identity provider ------------------------------------------------------------------------


@dataclass
class FakeIdP:
    """Serves metadata and JWKS for issuers A and B; ``down`` makes every request fail."""

    jwks: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: {
        f"{ISSUER_A}/jwks": [public_jwk(KEYS["rsa-a"], "rsa-a"), public_jwk(KEYS["ec-a"], "ec-a"),
                             public_jwk(KEYS["ec384-a"], "ec384-a"), public_jwk(KEYS["ed-a"], "ed-a"),
                             public_jwk(KEYS["rsa-small"], "rsa-small")],
        # issuer B publishes its key under the SAME kid as issuer A's RSA key
        "https://issuer-b.example/keys": [public_jwk(KEYS["rsa-b"], "rsa-a")],
    })
    metadata: dict[str, Any] = field(default_factory=lambda: {
        "https://issuer-b.example/.well-known/oauth-authorization-server/tenant": {
            "issuer": ISSUER_B, "jwks_uri": "https://issuer-b.example/keys"},
    })
    down: bool = False
    delay: float = 0.0
    requests: list[str] = field(default_factory=list)
    on_request: Callable[[httpx.Request], httpx.Response | None] | None = None

    async def handler(self, request: httpx.Request) -> httpx.Response:
        url = str(request.url)
        self.requests.append(url)
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.on_request is not None:
            override = self.on_request(request)
            if override is not None:
                return override
        if self.down:
            raise httpx.ConnectError("IdP is down", request=request)
        if url in self.jwks:
            return httpx.Response(200, json={"keys": self.jwks[url]})
        if url in self.metadata:
            return httpx.Response(200, json=self.metadata[url])
        return httpx.Response(404, json={"error": "not found"})

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handler)

    def count(self, suffix: str) -> int:
        return sum(1 for u in self.requests if u.endswith(suffix))


class FakeClock:
    """Wall clock (``time``) and monotonic clock (``mono``) that only move when told."""

    def __init__(self, now: float = NOW):
        self.now = float(now)
        self.monotonic = 1000.0

    def time(self) -> float:
        return self.now

    def mono(self) -> float:
        return self.monotonic

    def advance(self, seconds: float) -> None:
        self.now += seconds
        self.monotonic += seconds


def make_verifier(idp: FakeIdP, clock: FakeClock, **overrides: Any) -> JWTVerifier:
    return JWTVerifier.from_config(jwt_config(**overrides), transport=idp.transport(), now=clock.time,
                                   clock=clock.mono)


def jwt_config(**overrides: Any) -> JWTConfig:
    a = {"issuer": ISSUER_A, "audience": [AUDIENCE, "urn:other"], "jwks_uri": f"{ISSUER_A}/jwks",
         "algorithms": ["RS256", "PS256", "ES256", "ES384", "EdDSA"], "leeway": 30, "max_token_age": 3600,
         "jwks_min_refetch_interval": 30, "jwks_cache_ttl": 300}
    a.update(overrides.pop("issuer_a", {}))
    b = {"issuer": ISSUER_B, "audience": [AUDIENCE], "profile": "compat"}
    b.update(overrides.pop("issuer_b", {}))
    return JWTConfig.model_validate({"issuers": [a, b], **overrides})
