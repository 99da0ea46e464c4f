"""JWTVerifier vs a minimal hand-written verifier (split + base64 + json + one verify).

    python bench/bench_jwt.py [--rounds 7] [-n 2000]

The minimal verifier checks nothing but the signature; the target is that the
full verifier (all header/claim checks, Principal built, cache disabled) keeps
>= 0.9x its throughput. The cached path is reported separately.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric import ec, rsa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.tokens import b64int, minimal_verify, sign_jws  # noqa: E402
from zerotrust.config import JWTConfig  # noqa: E402
from zerotrust.credentials.jwt import JWTVerifier  # noqa: E402
from zerotrust.types import Credential  # noqa: E402

ISSUER = "https://idp.example"


def make_token(alg: str, key: Any, kid: str, sub: str = "user-1234567890") -> str:
    now = int(time.time())
    header = {"alg": alg, "typ": "at+jwt", "kid": kid}
    claims = {"iss": ISSUER, "sub": sub, "aud": "https://api.example", "client_id": "web-app",
              "iat": now, "exp": now + 3600, "jti": "0f6c2a9e-7d1b-4c3a-9b8e-5d4f3a2b1c0d",
              "scope": "openid profile orders:read orders:write", "auth_time": now - 60, "acr": "1",
              "amr": ["pwd", "otp"], "roles": ["admin"], "tid": "tenant-42"}
    return sign_jws(key, header, claims)


def jwks(rsa_key: Any, ec_key: Any) -> dict[str, Any]:
    rn = rsa_key.public_key().public_numbers()
    en = ec_key.public_key().public_numbers()
    return {"keys": [
        {"kty": "RSA", "kid": "r1", "use": "sig", "n": b64int(rn.n), "e": b64int(rn.e)},
        {"kty": "EC", "kid": "e1", "crv": "P-256", "x": b64int(en.x, 32), "y": b64int(en.y, 32)},
    ]}


async def timed(fn: Any, n: int, is_async: bool) -> float:
    start = time.process_time()
    if is_async:
        for i in range(n):
            await fn(i)
    else:
        for i in range(n):
            fn(i)
    return (time.process_time() - start) / n * 1e6


async def compare(minimal_fn: Any, ours_fn: Any, n: int, rounds: int, reset: Any) -> tuple[float, float]:
    """Interleave rounds and keep each side's best, so machine noise hits both alike."""
    base = ours = float("inf")
    for _ in range(rounds):
        base = min(base, await timed(minimal_fn, n, False))
        reset()
        ours = min(ours, await timed(ours_fn, n, True))
    return base, ours


async def main(rounds: int, n: int) -> None:
    rsa_key = rsa.generate_private_key(65537, 2048)
    ec_key = ec.generate_private_key(ec.SECP256R1())
    doc = jwks(rsa_key, ec_key)
    transport = httpx.MockTransport(lambda req: httpx.Response(200, json=doc))
    modes = (("uncached", 0, 1), ("cache-miss", 10**6, n), ("cache-hit", 10000, 1))
    for alg, key, kid in (("RS256", rsa_key, "r1"), ("ES256", ec_key, "e1")):
        pub = key.public_key()
        distinct = [make_token(alg, key, kid, f"user-{i}") for i in range(n)]
        for label, cache_size, variety in modes:
            cfg = JWTConfig.model_validate({"cache_size": cache_size, "issuers": [{
                "issuer": ISSUER, "audience": ["https://api.example"], "jwks_uri": ISSUER + "/jwks"}]})
            verifier = JWTVerifier.from_config(cfg, transport=transport)
            await verifier.verify(Credential("bearer", distinct[0]))  # fetch the JWKS
            if verifier.cache is not None:
                verifier.cache.clear()
            tokens = distinct[:variety]
            creds = [Credential("bearer", t) for t in tokens]
            cache = verifier.cache
            # cache-miss: every token is new to the cache (it is cleared before each round)
            reset = cache.clear if cache is not None and label == "cache-miss" else (lambda: None)
            base, ours = await compare(lambda i: minimal_verify(tokens[i % variety], pub),
                                       lambda i: verifier.verify(creds[i % variety]), n, rounds, reset)
            print(f"{alg} {label:10s} minimal {base:7.2f} us  JWTVerifier {ours:7.2f} us  "
                  f"ratio (minimal/ours) {base / ours:5.2f}x  token {len(tokens[0])} B")
            await verifier.aclose()


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("-n", type=int, default=1000, help="verifications per round (and distinct tokens)")
    args = ap.parse_args()
    asyncio.run(main(args.rounds, args.n))
