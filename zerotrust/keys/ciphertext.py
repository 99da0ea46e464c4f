"""The ciphertext string ``<prefix>:v<version>:<base64>`` shared by both providers.

Parsed strictly before any key is touched: ciphertexts come from databases and
request bodies, so a malformed one is the caller's error (:class:`CryptoError`),
never something forwarded to Vault as-is.
"""

from __future__ import annotations

import base64
import binascii
import re

from ..errors import CryptoError

# Vault's base64 is standard with padding; 1 MiB is far above any field we encrypt.
_SHAPE = re.compile(r"([a-z]{2,16}):v([1-9][0-9]{0,8}):([A-Za-z0-9+/]*={0,2})")
MAX_CIPHERTEXT = 1 << 20


def invalid(why: str) -> CryptoError:
    return CryptoError(detail=why)


def _fields(ciphertext: str, prefix: str) -> tuple[int, str, bytes]:
    if not isinstance(ciphertext, str) or len(ciphertext) > MAX_CIPHERTEXT:
        raise invalid("ciphertext is not a string or too long")
    m = _SHAPE.fullmatch(ciphertext)  # not match(^...$): "$" also matches before a trailing newline
    if m is None:
        raise invalid("ciphertext is not <prefix>:v<n>:<base64>")
    if m.group(1) != prefix:
        raise invalid(f"ciphertext prefix is not {prefix!r}")
    body = m.group(3)
    try:
        raw = base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError):
        raise invalid("ciphertext body is not base64") from None
    # validate=True still ignores the unused bits of the last character: one spelling per ciphertext.
    if base64.b64encode(raw).decode("ascii") != body:
        raise invalid("ciphertext body is not canonical base64")
    return int(m.group(2)), body, raw


def split(ciphertext: str, prefix: str) -> tuple[int, str]:
    """Return (version, base64 body) or raise :class:`CryptoError`."""
    version, body, _ = _fields(ciphertext, prefix)
    return version, body


def parse(ciphertext: str, prefix: str) -> tuple[int, bytes]:
    """Return (version, raw bytes) or raise :class:`CryptoError`."""
    version, _, raw = _fields(ciphertext, prefix)
    return version, raw


def join(prefix: str, version: int, raw: bytes) -> str:
    return f"{prefix}:v{version}:{base64.b64encode(raw).decode('ascii')}"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
