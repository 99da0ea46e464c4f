"""Token helpers shared by the benchmarks: a JWS signer, and THE minimal verifier every baseline uses.

The minimal verifier is deliberately bare (split, base64, json, one pyca/cryptography verify with a preloaded
key); the benchmarks compare the project against it, so there is exactly one definition of it.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64int(n: int, size: int | None = None) -> str:
    return b64(n.to_bytes(size or (n.bit_length() + 7) // 8, "big"))


def _unb64(s: str) -> bytes:
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def sign_jws(key: Any, header: dict[str, Any], claims: dict[str, Any]) -> str:
    """Compact JWS with RS256 (RSA key) or ES256 (P-256 key, raw r||s signature)."""
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}".encode()
    if isinstance(key, rsa.RSAPrivateKey):
        sig = key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
    else:
        r, s = decode_dss_signature(key.sign(signing_input, ec.ECDSA(hashes.SHA256())))
        sig = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    return f"{signing_input.decode()}.{b64(sig)}"


def minimal_verify(token: str, key: Any) -> dict[str, Any]:
    """Return the payload if the signature verifies with ``key``; raise otherwise. Nothing else is checked."""
    h, p, s = token.split(".")
    json.loads(_unb64(h))
    payload: dict[str, Any] = json.loads(_unb64(p))
    sig, data = _unb64(s), f"{h}.{p}".encode()
    if isinstance(key, rsa.RSAPublicKey):
        key.verify(sig, data, padding.PKCS1v15(), hashes.SHA256())
    else:
        key.verify(encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big")),
                   data, ec.ECDSA(hashes.SHA256()))
    return payload
