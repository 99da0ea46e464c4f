"""Baselines for the sidecar benchmark, served by the same server stack as the sidecar.

``hello``: a bare pure-ASGI hello world. ``minimal``: a minimal hand-written JWT verifier (split, base64, json, one
pyca/cryptography verify with a preloaded key, exp check) and nothing else: no policy, no audit, no metrics. The key
comes from the PEM file named by ``ZT_BENCH_PUBKEY``.
"""

from __future__ import annotations

import os
import time

from cryptography.hazmat.primitives import serialization

from bench.tokens import minimal_verify

_OK = {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"0")]}
_DENY = {"type": "http.response.start", "status": 401, "headers": [(b"content-length", b"0")]}
_BODY = {"type": "http.response.body", "body": b""}


async def hello(scope, receive, send):
    if scope["type"] != "http":
        return
    await send(_OK)
    await send(_BODY)


_KEY = None
if os.environ.get("ZT_BENCH_PUBKEY"):
    with open(os.environ["ZT_BENCH_PUBKEY"], "rb") as f:
        _KEY = serialization.load_pem_public_key(f.read())


def verify_minimal(token: str) -> bool:
    try:
        return minimal_verify(token, _KEY)["exp"] > time.time()
    except Exception:
        return False


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
