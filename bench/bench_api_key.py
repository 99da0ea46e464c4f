"""API-key verify cost: cache hit vs cold database lookup, and what the hit is made of.

    python bench/bench_api_key.py [--seconds 1] [--keys 10000]

Creates a temporary database with ``--keys`` keys, then times ``APIKeyVerifier.verify``
on one event loop: with the row cache warm, with the cache dropped before every call
(a cold indexed lookup), and a whole ``Pipeline.evaluate`` on the warm path.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from zerotrust.config import parse_config
from zerotrust.credentials.api_key import APIKeyVerifier
from zerotrust.credentials.api_key_format import generate_key, is_well_formed
from zerotrust.credentials.api_key_pepper import key_digest, pepper_check
from zerotrust.credentials.api_key_record import APIKeyRecord, new_key_id
from zerotrust.credentials.api_key_store import APIKeyStore
from zerotrust.credentials.api_key_throttle import FailureThrottle
from zerotrust.factory import build_pipeline
from zerotrust.types import Credential, Headers, RequestContext

PEPPER = b"bench-pepper-bench-pepper-bench-pepper"


def populate(db: Path, n: int) -> str:
    store = APIKeyStore.open(db, pepper_check(PEPPER))
    now = time.time()
    key = ""
    for i in range(n):
        key = generate_key("zt")
        store.insert(APIKeyRecord(id=new_key_id(), name=f"k{i}", key_hash=key_digest(PEPPER, key),
                                  scopes=("api:read",), created_at=now))
    store.close()
    return key  # the last one


async def timed(label: str, seconds: float, op: Callable[[], Awaitable[object]]) -> None:
    for _ in range(200):
        await op()
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for _ in range(200):
            await op()
        n += 200
    per = (time.perf_counter() - start) / n
    print(f"{label:<44} {per * 1e6:8.2f} us/op  {1 / per:>10,.0f} ops/s")


async def main(seconds: float, keys: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "keys.db"
        key = populate(db, keys)
        verifier = APIKeyVerifier(prefix="zt", database=str(db), pepper=PEPPER, issuer="bench",
                                  throttle=FailureThrottle(10, 60), last_used_resolution=60)
        cred = Credential(kind="api_key", value=key, source="x-api-key")
        req = RequestContext(method="GET", path="/x", headers=Headers([("x-api-key", key)]), peer="127.0.0.1")
        await verifier.verify(cred, req)
        store = verifier._store
        assert store is not None

        async def sync(fn: Callable[[], object]) -> object:
            return fn()

        print(f"{keys} keys in the database, SQLite {__import__('sqlite3').sqlite_version}")
        await timed("  harness overhead (included in every line)", seconds, lambda: sync(lambda: None))
        await timed("  part: checksum (is_well_formed)", seconds, lambda: sync(lambda: is_well_formed("zt", key)))
        await timed("  part: HMAC-SHA256 (key_digest)", seconds, lambda: sync(lambda: key_digest(PEPPER, key)))
        await timed("  part: PRAGMA data_version", seconds, lambda: sync(store.data_version))
        await timed("verify, cache hit", seconds, lambda: verifier.verify(cred, req))

        async def cold() -> object:
            verifier._cache.clear()
            return await verifier.verify(cred, req)

        await timed("verify, cold (indexed SQLite lookup)", seconds, cold)
        await verifier.aclose()

        config = parse_config(f"""
api_keys: {{prefix: zt, database: "{db}", pepper: "{PEPPER.decode()}"}}
audit: {{output: none}}
policy:
  rules: [{{id: read, methods: [GET], paths: ["/**"], scopes: [api:read]}}]
""", env={})
        pipeline = build_pipeline(config)
        await timed("Pipeline.evaluate (API key, cache hit)", seconds, lambda: pipeline.evaluate(req))
        await pipeline.aclose()


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=1.0)
    ap.add_argument("--keys", type=int, default=10000)
    a = ap.parse_args()
    asyncio.run(main(a.seconds, a.keys))
