"""Key-layer latencies against a real OpenBao dev server on loopback.

    python bench/bench_keys.py [-n 300]

Reports p50/p99 per call and per field for Transit encrypt/decrypt (single and batched),
data keys, HMAC, the async twins under concurrency, Transit signing, the local provider,
and how fast a call fails once Vault is gone (circuit breaker). Runs in ~15 s.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.support.openbao import OpenBao  # noqa: E402
from zerotrust.config import VaultConfig  # noqa: E402
from zerotrust.errors import DependencyError  # noqa: E402
from zerotrust.keys import LocalKeyProvider, TransitSigner, VaultKeyProvider  # noqa: E402


def timed(label: str, fn: Callable[[], object], n: int, per: int = 1) -> None:
    fn()  # warm up: connection, key metadata
    samples = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1e6)
    samples.sort()
    p50, p99 = statistics.median(samples), samples[min(len(samples) - 1, int(len(samples) * 0.99))]
    extra = f"   per field p50 {p50 / per:8.1f} us" if per > 1 else ""
    print(f"{label:44s} p50 {p50:8.1f} us   p99 {p99:8.1f} us{extra}")


async def concurrent(provider: VaultKeyProvider, cts: list[str], total: int, width: int) -> float:
    sem = asyncio.Semaphore(width)

    async def one() -> None:
        async with sem:
            await provider.adecrypt("fields", cts)

    start = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(total)))
    return total / (time.perf_counter() - start)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=300)
    n = ap.parse_args().n
    work = Path(tempfile.mkdtemp(prefix="bench-keys-"))
    bao = OpenBao.dev(work / "bao")
    try:
        bao.enable_transit()
        bao.create_key("fields")
        bao.create_key("tenant", derived=True)
        bao.create_key("sign-es", "ecdsa-p256")
        bao.create_key("sign-ed", "ed25519")
        provider = VaultKeyProvider.from_config(VaultConfig(addr=bao.addr, token=bao.root_token))
        one = provider.encrypt("fields", [b"alice@example.com"])
        timed("transit encrypt, 1 field", lambda: provider.encrypt("fields", [b"alice@example.com"]), n)
        timed("transit decrypt, 1 field", lambda: provider.decrypt("fields", one), n)
        timed("transit encrypt, 1 field, derived context",
              lambda: provider.encrypt("tenant", [b"alice@example.com"], b"tenant-42"), n)
        for size in (10, 100, 1000):
            values = [b"x" * 32] * size
            cts = provider.encrypt("fields", values)
            rounds = max(10, n // size * 3)
            timed(f"transit encrypt, batch of {size}", lambda v=values: provider.encrypt("fields", v), rounds, size)
            timed(f"transit decrypt, batch of {size}", lambda c=cts: provider.decrypt("fields", c), rounds, size)
        timed("transit datakey (256-bit)", lambda: provider.generate_data_key("fields"), n)
        timed("transit hmac", lambda: provider.hmac("fields", b"data"), n)
        for width in (1, 8, 32):
            rate = asyncio.run(concurrent(provider, one, 600, width))
            print(f"{'async adecrypt, ' + str(width) + ' concurrent':44s} {rate:8.0f} calls/s")
        for key, alg in (("sign-es", "ES256"), ("sign-ed", "EdDSA")):
            signer = TransitSigner(provider.client, key, alg, issuer="https://zt.example")
            timed(f"TransitSigner {alg} issue()", lambda s=signer: s.issue("svc", "api"), n)

        local = LocalKeyProvider(work / "local.json", quiet=True)
        lone = local.encrypt("fields", [b"alice@example.com"])
        timed("local encrypt, 1 field", lambda: local.encrypt("fields", [b"alice@example.com"]), n)
        timed("local decrypt, 1 field", lambda: local.decrypt("fields", lone), n)

        fast = VaultKeyProvider.from_config(VaultConfig(addr=bao.addr, token=bao.root_token, retries=2,
                                                        breaker_failures=5, breaker_reset=60))
        fast.decrypt("fields", one)
        bao.stop()
        for label in ("vault down, breaker closed (refused+retries)", "vault down, breaker open"):
            samples = []
            for _ in range(5 if "closed" in label else 200):
                start = time.perf_counter()
                try:
                    fast.decrypt("fields", one)
                except DependencyError:
                    pass
                samples.append((time.perf_counter() - start) * 1e6)
            print(f"{label:44s} first {samples[0]:8.1f} us   median {statistics.median(samples):8.1f} us")
        fast.close()
        provider.close()
    finally:
        bao.stop()


if __name__ == "__main__":
    main()
