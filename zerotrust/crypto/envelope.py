"""Envelope scheme ``e``: AES-256-GCM in-process under a data key that Transit generated and wraps.

Each field carries its own 96-bit random nonce and the wrapped data key, so it
decrypts on its own, anywhere. Rotation re-wraps only the data key (Transit
``rewrap``): the payload, its nonce and tag stay as they are and no plaintext, not
even the data key, passes through this process.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ..errors import CryptoError, DependencyError
from .ciphertext import (
    ENVELOPE, NONCE_BYTES, PREFIX, FieldCiphertext, associated_data, b64e, join_transit, split_transit,
)
from .keyring import Call, Flow, Keyring, context_bytes

DATA_KEY_BYTES = 32  # AES-256


def encrypt(ring: Keyring, context: str | None, items: Sequence[tuple[str, bytes]]) -> Flow[list[str]]:
    """``items`` are (binding, plaintext); returns one ``ztf1.e`` string per item."""
    out: list[str] = []
    i = 0
    fresh = False
    while i < len(items):
        got = ring.datakeys.reserve(context, len(items) - i)
        if got is None:
            if fresh:  # a key we just generated is already unusable: refuse rather than loop
                raise DependencyError(detail="a fresh data key expired before use; check datakey_ttl")
            answer = yield Call("generate_data_key", (ring.key, context_bytes(context)))
            plain, text, claimed = _data_key(answer)
            version, wrapped = split_transit(text, ring.prefix)
            if version != claimed:
                raise DependencyError(detail="key provider returned an inconsistent data key")
            ring.datakeys.install(context, plain, wrapped, version)
            fresh = True
            continue
        fresh = False
        key, granted = got
        # Same bytes as FieldCiphertext(...).encode(), with the per-key parts encoded once per batch.
        head = f"{PREFIX}.{ENVELOPE}.{ring.key}.{key.version}."
        wrapped = "." + b64e(key.wrapped) + "."
        seal = key.aead.encrypt
        pool = os.urandom(NONCE_BYTES * granted)  # one syscall for the batch; every nonce still 96 random bits
        for n, (binding, data) in enumerate(items[i:i + granted]):
            nonce = pool[n * NONCE_BYTES:(n + 1) * NONCE_BYTES]
            # 12 bytes are exactly 16 base64 characters, so one encoding serves both parts.
            both = b64e(nonce + seal(nonce, data, associated_data(ENVELOPE, ring.key, context, binding)))
            out.append(head + both[:16] + wrapped + both[16:])
        i += granted
    return out


def _data_key(answer: object) -> tuple[bytes, str, int]:
    """(plaintext, wrapped, version) from a provider's DataKey, refusing anything else."""
    try:
        plain, text, version = answer  # type: ignore[misc]
    except (TypeError, ValueError):
        raise DependencyError(detail="key provider returned something that is not a data key") from None
    if not isinstance(plain, bytes) or len(plain) != DATA_KEY_BYTES or not isinstance(version, int):
        raise DependencyError(detail="key provider returned a malformed data key")
    return plain, text, version


def decrypt(ring: Keyring, context: str | None,
            items: Sequence[tuple[str, FieldCiphertext]]) -> Flow[list[bytes]]:
    aeads: dict[tuple[int, bytes], AESGCM] = {}
    missing: list[tuple[int, bytes]] = []
    for _, c in items:
        ident = (c.version, c.parts[1])
        if ident not in aeads and ident not in missing:
            aead = ring.unwrapped.get((context, ident))
            if aead is None:
                missing.append(ident)
            else:
                aeads[ident] = aead
    if missing:
        # Unwrapping is Transit decrypt: one batch call however many data keys the document holds.
        wrapped = [join_transit(ring.prefix, v, w) for v, w in missing]
        if len(wrapped) == 1:
            plains = [(yield Call("unwrap_data_key", (ring.key, wrapped[0], context_bytes(context))))]
        else:
            plains = yield Call("decrypt", (ring.key, wrapped, context_bytes(context)))
        if len(plains) != len(missing):
            raise DependencyError(detail="key provider decrypt returned the wrong number of plaintexts")
        for ident, plain in zip(missing, plains):
            if len(plain) != DATA_KEY_BYTES:
                raise CryptoError(detail="wrapped data key does not hold an AES-256 key")
            aeads[ident] = ring.unwrapped.put((context, ident), AESGCM(plain))
    out: list[bytes] = []
    for binding, c in items:
        nonce, wrapped, ct = c.parts
        try:
            out.append(aeads[(c.version, wrapped)].decrypt(nonce, ct, associated_data(ENVELOPE, ring.key, context,
                                                                                     binding)))
        except InvalidTag:
            raise CryptoError(detail=f"{binding}: authentication failed (tampered, or bound to another "
                                     "field or context)") from None
    return out


def rewrap(ring: Keyring, context: str | None, items: Sequence[FieldCiphertext],
           latest: int) -> Flow[list[FieldCiphertext]]:
    """Move each data key older than ``latest`` to the newest Transit version; payloads are untouched."""
    old = sorted({(c.version, c.parts[1]) for c in items if c.version < latest})
    if not old:
        return list(items)
    texts = [join_transit(ring.prefix, v, w) for v, w in old]
    fresh = yield Call("rewrap", (ring.key, texts, context_bytes(context)))
    if len(fresh) != len(old):
        raise DependencyError(detail="key provider rewrap returned the wrong number of ciphertexts")
    moved = {ident: split_transit(text, ring.prefix) for ident, text in zip(old, fresh)}
    out = []
    for c in items:
        if (c.version, c.parts[1]) in moved:
            version, wrapped = moved[(c.version, c.parts[1])]
            c = FieldCiphertext(ENVELOPE, c.key, version, (c.parts[0], wrapped, c.parts[2]))
        out.append(c)
    return out
