"""Transit scheme ``t``: every value encrypted by Vault, all fields of a document in one batch call.

Transit has no associated data, so the binding travels inside the plaintext:
``SHA-256(binding) || value`` (32 bytes of overhead whatever the path length).
Transit's AES-GCM authenticates the whole frame, and decryption compares the digest
with the field the ciphertext was found in, so a ciphertext moved to another field,
key or context is refused instead of decrypting.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence

from ..errors import CryptoError, DependencyError
from .ciphertext import TRANSIT, FieldCiphertext, associated_data, join_transit, split_transit
from .keyring import Call, Flow, Keyring, context_bytes


_DIGEST = 32


def _frame(binding: bytes, data: bytes) -> bytes:
    return hashlib.sha256(binding).digest() + data


def _unframe(frame: bytes, expected: bytes, field: str) -> bytes:
    if len(frame) < _DIGEST or not hmac.compare_digest(frame[:_DIGEST], hashlib.sha256(expected).digest()):
        raise CryptoError(detail=f"{field}: ciphertext is bound to another field, key or context")
    return frame[_DIGEST:]


def encrypt(ring: Keyring, context: str | None, items: Sequence[tuple[str, bytes]]) -> Flow[list[str]]:
    frames = [_frame(associated_data(TRANSIT, ring.key, context, b), data) for b, data in items]
    texts = yield Call("encrypt", (ring.key, frames, context_bytes(context)))
    if len(texts) != len(frames):
        raise DependencyError(detail="key provider encrypt returned the wrong number of ciphertexts")
    out = []
    for text in texts:
        version, raw = split_transit(text, ring.prefix)
        out.append(FieldCiphertext(TRANSIT, ring.key, version, (raw,)).encode())
    return out


def decrypt(ring: Keyring, context: str | None,
            items: Sequence[tuple[str, FieldCiphertext]]) -> Flow[list[bytes]]:
    texts = [join_transit(ring.prefix, c.version, c.parts[0]) for _, c in items]
    frames = yield Call("decrypt", (ring.key, texts, context_bytes(context)))
    if len(frames) != len(texts):
        raise DependencyError(detail="key provider decrypt returned the wrong number of plaintexts")
    return [_unframe(f, associated_data(TRANSIT, ring.key, context, b), b) for (b, _), f in zip(items, frames)]


def rewrap(ring: Keyring, context: str | None, items: Sequence[FieldCiphertext],
           latest: int) -> Flow[list[FieldCiphertext]]:
    """Transit ``rewrap``: Vault decrypts and re-encrypts internally; the plaintext never leaves it."""
    old = [i for i, c in enumerate(items) if c.version < latest]
    if not old:
        return list(items)
    texts = [join_transit(ring.prefix, items[i].version, items[i].parts[0]) for i in old]
    fresh = yield Call("rewrap", (ring.key, texts, context_bytes(context)))
    if len(fresh) != len(old):
        raise DependencyError(detail="key provider rewrap returned the wrong number of ciphertexts")
    out = list(items)
    for i, text in zip(old, fresh):
        version, raw = split_transit(text, ring.prefix)
        out[i] = FieldCiphertext(TRANSIT, ring.key, version, (raw,))
    return out
