"""An in-memory stand-in for Vault Transit, for the field-encryption unit tests.

It behaves like Transit where our code depends on it: versioned keys, ``vault:v<n>:``
ciphertexts, a derivation context that must match, batch calls, rewrap to the
newest version, HMAC per version. It records every call so tests can count round
trips and prove that rewrap never asked for plaintext, and it can be switched off.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from zerotrust import CryptoError, DependencyError
from zerotrust.keys import AsyncKeyOps, DataKey


class FakeTransit(AsyncKeyOps):
    name = "vault"
    _offload_to_thread = False

    def __init__(self) -> None:
        self.keys: dict[int, bytes] = {1: os.urandom(32)}
        self.calls: list[str] = []
        self.down = False

    def rotate(self) -> int:
        self.keys[max(self.keys) + 1] = os.urandom(32)
        return max(self.keys)

    def _enter(self, op: str) -> None:
        self.calls.append(op)
        if self.down:
            raise DependencyError(detail="fake transit is down")

    def _seal(self, pt: bytes, ctx: bytes | None, version: int | None = None) -> str:
        version = version or max(self.keys)
        nonce = os.urandom(12)
        raw = nonce + AESGCM(self.keys[version]).encrypt(nonce, pt, ctx or b"")
        return f"vault:v{version}:{base64.b64encode(raw).decode()}"

    def _open(self, text: str, ctx: bytes | None) -> bytes:
        try:
            prefix, v, body = text.split(":", 2)
            raw = base64.b64decode(body, validate=True)
            assert prefix == "vault" and v.startswith("v")
            return AESGCM(self.keys[int(v[1:])]).decrypt(raw[:12], raw[12:], ctx or b"")
        except (ValueError, KeyError, AssertionError, InvalidTag):
            raise CryptoError(detail="fake transit: cannot decrypt") from None

    def latest_version(self, key: str) -> int:
        self._enter("latest_version")
        return max(self.keys)

    def encrypt(self, key, plaintexts, context=None):
        self._enter("encrypt")
        return [self._seal(bytes(p), context) for p in plaintexts]

    def decrypt(self, key, ciphertexts, context=None):
        self._enter("decrypt")
        return [self._open(c, context) for c in ciphertexts]

    def rewrap(self, key, ciphertexts, context=None):
        self._enter("rewrap")
        return [self._seal(self._open(c, context), context) for c in ciphertexts]

    def generate_data_key(self, key, context=None):
        self._enter("generate_data_key")
        plain = os.urandom(32)
        return DataKey(plain, self._seal(plain, context), max(self.keys))

    def unwrap_data_key(self, key, wrapped, context=None):
        self._enter("unwrap_data_key")
        return self._open(wrapped, context)

    def hmac(self, key, data, version=None):
        self._enter("hmac")
        return hmac.digest(b"hmac" + self.keys[version or max(self.keys)], data, hashlib.sha256)

    def get_secret(self, path):
        raise NotImplementedError


def test_fake_binds_context_and_versions():
    fake = FakeTransit()
    text = fake.encrypt("k", [b"x"], b"tenant-a")[0]
    assert fake.decrypt("k", [text], b"tenant-a") == [b"x"]
    with pytest.raises(CryptoError):
        fake.decrypt("k", [text], b"tenant-b")
    fake.rotate()
    assert fake.rewrap("k", [text], b"tenant-a")[0].startswith("vault:v2:")
    fake.down = True
    with pytest.raises(DependencyError):
        fake.encrypt("k", [b"x"])
