"""Baselines for the sidecar benchmark, served by the same server stack as the sidecar.

``hello``: a bare pure-ASGI hello world. ``minimal``: a minimal hand-written JWT verifier (split, base64, json, one
pyca/cryptography verify with a preloaded key, exp check) and nothing else: no policy, no audit, no metrics. The key
comes from the PEM file named by ``ZT_BENCH_PUBKEY``.
"""

from __future__ import annotations

import base64
import json
import os
import time

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

_OK = {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"0")]}
_DENY = {"type": "http.response.start", "status": 401, "headers": [(b"content-length", b"0")]}
_BODY = {"type": "http.response.body", "body": b""}


async def hello(scope, receive, send):
    if scope["type"] != "http":
        return
    await send(_OK)
    await send(_BODY)


def _b64(s: str) -> bytes:
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


_KEY = None
if os.environ.get("ZT_BENCH_PUBKEY"):
    with open(os.environ["ZT_BENCH_PUBKEY"], "rb") as f:
        _KEY = serialization.load_pem_public_key(f.read())


def verify_minimal(token: str) -> bool:
    h, p, s = token.split(".")
    header = json.loads(_b64(h))
    payload = json.loads(_b64(p))
    sig = _b64(s)
    data = f"{h}.{p}".encode()
    try:
        if isinstance(_KEY, rsa.RSAPublicKey):
            _KEY.verify(sig, data, padding.PKCS1v15(), hashes.SHA256())
        else:
            r, s_ = int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big")
            _KEY.verify(encode_dss_signature(r, s_), data, ec.ECDSA(hashes.SHA256()))
    except Exception:
        return False
    return header.get("alg") in ("RS256", "ES256") and payload["exp"] > time.time()


async def minimal(scope, receive, send):
    if scope["type"] != "http":
        return
    token = None
    for k, v in scope["headers"]:
        if k == b"authorization":
            token = v[7:].decode()
    ok = token is not None and verify_minimal(token)
    await send(_OK if ok else _DENY)
    await send(_BODY)
