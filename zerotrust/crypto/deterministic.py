"""Deterministic scheme ``d``: AES-256-SIV (RFC 5297) so equal values give equal ciphertexts.

Equality search needs a key that is the same every time, so it cannot be a random
data key. It is derived instead::

    root     = Transit HMAC-SHA256(key, version, "ztf1 deterministic\\0" || JSON [context])
    siv_key  = HKDF-SHA256(root, salt=none, info="ztf1.d\\0" || binding, 64 bytes)

One Transit call per (context, key version) per cache period; the per-field keys
are local. The associated data includes the key version, so a ciphertext is bound
to its field, context and version. What this leaks, by design: which records share
a value in the same field (and their count). See docs/encryption.md.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESSIV
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from ..errors import CryptoError, DependencyError
from .ciphertext import DETERMINISTIC, FieldCiphertext, associated_data
from .keyring import Call, Flow, Keyring, check_version, latest_version


def _root_input(context: str | None) -> bytes:
    return b"ztf1 deterministic\0" + json.dumps([context], ensure_ascii=True).encode("ascii")


def _siv(ring: Keyring, context: str | None, version: int, binding: str) -> Flow[AESSIV]:
    siv = ring.derived.get(("siv", context, version, binding))
    if siv is not None:
        return siv
    root = ring.derived.get(("root", context, version))
    if root is None:
        root = yield Call("hmac", (ring.key, _root_input(context), version))
        if not isinstance(root, bytes) or len(root) < 32:
            raise DependencyError(detail="key provider returned a short HMAC")
        ring.derived.put(("root", context, version), root)
    key = HKDF(hashes.SHA256(), 64, None, b"ztf1.d\0" + binding.encode("utf-8")).derive(root)
    return ring.derived.put(("siv", context, version, binding), AESSIV(key))


def _seal(siv: AESSIV, ring: Keyring, context: str | None, version: int, binding: str,
          data: bytes) -> FieldCiphertext:
    ct = siv.encrypt(data, [associated_data(DETERMINISTIC, ring.key, context, binding, version)])
    return FieldCiphertext(DETERMINISTIC, ring.key, version, (ct,))


def encrypt(ring: Keyring, context: str | None, items: Sequence[tuple[str, bytes]],
            version: int | None = None) -> Flow[list[str]]:
    if version is None:
        version = yield from latest_version(ring)
    out = []
    for binding, data in items:
        siv = yield from _siv(ring, context, version, binding)
        out.append(_seal(siv, ring, context, version, binding, data).encode())
    return out


def decrypt(ring: Keyring, context: str | None,
            items: Sequence[tuple[str, FieldCiphertext]]) -> Flow[list[bytes]]:
    if items:  # each version is one Transit HMAC: a made-up one must not cost a round trip
        yield from check_version(ring, max(c.version for _, c in items))
    out = []
    for binding, c in items:
        siv = yield from _siv(ring, context, c.version, binding)
        try:
            out.append(siv.decrypt(c.parts[0], [associated_data(DETERMINISTIC, ring.key, context, binding,
                                                                 c.version)]))
        except InvalidTag:
            raise CryptoError(detail=f"{binding}: authentication failed (tampered, or bound to another "
                                     "field, context or key version)") from None
    return out


def rewrap(ring: Keyring, context: str | None, items: Sequence[tuple[str, FieldCiphertext]],
           latest: int) -> Flow[list[FieldCiphertext]]:
    """Re-encrypt under the newest version. Unlike ``e`` and ``t`` this decrypts in-process
    (a derived key cannot be re-wrapped), but the plaintext is never returned to the caller."""
    out = [c for _, c in items]
    old = [(i, b, c) for i, (b, c) in enumerate(items) if c.version < latest]
    if not old:
        return out
    plains = yield from decrypt(ring, context, [(b, c) for _, b, c in old])
    for (i, binding, _), data in zip(old, plains):
        siv = yield from _siv(ring, context, latest, binding)
        out[i] = _seal(siv, ring, context, latest, binding, data)
    return out
