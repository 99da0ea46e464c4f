"""The ``ztf1`` field ciphertext: a versioned, self-describing ASCII string.

::

    ztf1.e.<key>.<version>.<nonce>.<wrapped-data-key>.<ciphertext+tag>   envelope, AES-256-GCM
    ztf1.t.<key>.<version>.<transit-ciphertext>                           one Transit call per field
    ztf1.d.<key>.<version>.<siv+ciphertext>                               deterministic, AES-SIV

Parts after the version are unpadded base64url (RFC 4648 section 5) in canonical
form. docs/encryption.md describes every byte. Parsing is strict: any deviation is a
:class:`CryptoError`, before a key is ever touched.
"""

from __future__ import annotations

import binascii
import json
import re
from dataclasses import dataclass
from functools import lru_cache

from ..errors import CryptoError, DependencyError
from ..keys import ciphertext as transit_text

PREFIX = "ztf1"
ENVELOPE, TRANSIT, DETERMINISTIC = "e", "t", "d"
_PARTS = {ENVELOPE: 3, TRANSIT: 1, DETERMINISTIC: 1}
MAX_CIPHERTEXT_CHARS = 100_000  # 64 KiB plaintext plus overhead, base64-expanded
KEY_NAME = re.compile(r"[A-Za-z0-9_-]{1,128}")
_VERSION = re.compile(r"[1-9][0-9]{0,8}")
_B64URL = re.compile(r"[A-Za-z0-9_-]*")
_SHAPE = re.compile(r"ztf1\.([etd])\.([A-Za-z0-9_-]{1,128})\.([1-9][0-9]{0,8})\.([A-Za-z0-9_.-]*)")
_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_TO_URL = bytes.maketrans(b"+/", b"-_")
_FROM_URL = bytes.maketrans(b"-_", b"+/")
NONCE_BYTES = 12
_NONCE_CHARS = 16
TAG_BYTES = 16


@dataclass(frozen=True, slots=True)
class FieldCiphertext:
    scheme: str
    key: str
    version: int
    parts: tuple[bytes, ...]

    def encode(self) -> str:
        return ".".join((PREFIX, self.scheme, self.key, str(self.version), *(b64e(p) for p in self.parts)))


def b64e(data: bytes) -> str:
    return binascii.b2a_base64(data, newline=False).translate(_TO_URL).rstrip(b"=").decode("ascii")


def b64d(text: str, what: str) -> bytes:
    """Decode canonical unpadded base64url; anything else (padding, stray bits) is tampering."""
    if not _B64URL.fullmatch(text):
        raise CryptoError(detail=f"{what}: not base64url")
    return _b64d(text, what)


def _b64d(text: str, what: str) -> bytes:
    rem = len(text) % 4
    if rem == 1:
        raise CryptoError(detail=f"{what}: not base64url")
    # The bits of the last character that carry no data must be zero, or two strings decode alike.
    if rem and _ALPHABET.index(text[-1]) & (0x0F if rem == 2 else 0x03):
        raise CryptoError(detail=f"{what}: non-canonical base64url")
    try:
        return binascii.a2b_base64(text.encode("ascii").translate(_FROM_URL) + b"=" * (-rem % 4), strict_mode=True)
    except (binascii.Error, ValueError):
        raise CryptoError(detail=f"{what}: not base64url") from None


_SHARED_CHARS = 128  # a Transit-wrapped AES-256 key is 80; longer parts are decoded but not cached


@lru_cache(maxsize=1024)
def _b64d_shared(text: str) -> bytes:
    # A wrapped data key repeats in every field it encrypted: decode it once.
    return _b64d(text, "part 2")


def looks_like(value: object) -> bool:
    """Cheap test used to decide whether a JSON value is one of ours."""
    return isinstance(value, str) and value.startswith(PREFIX + ".")


def parse(value: object) -> FieldCiphertext:
    if not isinstance(value, str):
        raise CryptoError(detail=f"expected a {PREFIX} ciphertext string, got JSON {type(value).__name__}")
    if len(value) > MAX_CIPHERTEXT_CHARS:
        raise CryptoError(detail=f"ciphertext longer than {MAX_CIPHERTEXT_CHARS} characters")
    m = _SHAPE.fullmatch(value)
    if m is None:
        _diagnose(value)
        raise CryptoError(detail="malformed ciphertext")  # _diagnose always raises; belt and braces
    scheme, key, version, rest = m.groups()
    texts = rest.split(".")
    if len(texts) != _PARTS[scheme]:
        raise CryptoError(detail=f"scheme {scheme!r} needs {_PARTS[scheme]} data part(s)")
    if scheme == ENVELOPE:
        if len(texts[0]) != _NONCE_CHARS:
            raise CryptoError(detail="envelope ciphertext has a bad nonce length")
        # A 16-character nonce has no padding bits, so nonce and payload decode as one string.
        both = _b64d(texts[0] + texts[2], "part 1 or 3")
        wrapped = _b64d_shared(texts[1]) if len(texts[1]) <= _SHARED_CHARS else _b64d(texts[1], "part 2")
        parts: tuple[bytes, ...] = (both[:NONCE_BYTES], wrapped, both[NONCE_BYTES:])
        if len(parts[2]) < TAG_BYTES or not parts[1]:
            raise CryptoError(detail="envelope ciphertext has a bad wrapped key or tag length")
    else:
        parts = (_b64d(texts[0], "part 1"),)
        if len(parts[0]) < TAG_BYTES:
            raise CryptoError(detail="ciphertext too short")
    return FieldCiphertext(scheme, key, int(version), parts)


def _diagnose(value: str) -> None:
    """Say precisely what is wrong with a string that failed the shape check."""
    fields = value.split(".")
    if fields[0] != PREFIX:
        raise CryptoError(detail=f"not a {PREFIX} ciphertext")
    if len(fields) < 4 or fields[1] not in _PARTS:
        raise CryptoError(detail="unknown ciphertext scheme")
    if not KEY_NAME.fullmatch(fields[2]):
        raise CryptoError(detail="bad key name in ciphertext")
    if not _VERSION.fullmatch(fields[3]):
        raise CryptoError(detail="bad key version in ciphertext")
    if len(fields) != 4 + _PARTS[fields[1]]:
        raise CryptoError(detail=f"scheme {fields[1]!r} needs {_PARTS[fields[1]]} data part(s)")
    for i, part in enumerate(fields[4:]):
        b64d(part, f"part {i + 1}")
    raise CryptoError(detail="malformed ciphertext")


@lru_cache(maxsize=4096)
def associated_data(scheme: str, key: str, context: str | None, field: str, version: int | None = None) -> bytes:
    """What a ciphertext is bound to (AES-GCM/SIV associated data, or the Transit plaintext header).

    The key version is included only where re-wrapping never has to change it
    (deterministic: the key itself is per version); for envelope and Transit the
    version is authenticated by Transit, which refuses a wrapped key under the wrong version.
    """
    items: list[object] = [PREFIX, scheme, key, context, field]
    if version is not None:
        items.append(version)
    return json.dumps(items, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def split_transit(text: str, prefix: str) -> tuple[int, bytes]:
    """``vault:v3:<base64>`` -> (3, raw bytes). The prefix is implied by the provider, so it is not stored."""
    try:
        return transit_text.parse(text, prefix)
    except CryptoError:  # the provider's own answer: it is the provider that is broken
        raise DependencyError(detail=f"key provider returned a ciphertext not of the form {prefix}:v<n>:<base64>") \
            from None


join_transit = transit_text.join
