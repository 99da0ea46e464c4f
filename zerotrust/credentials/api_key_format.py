"""The API key format: ``<prefix>_<32 random base62><6 base62 CRC32>``.

Modelled on GitHub's token format: the prefix makes a key recognisable (secret
scanners, the ``Authorization: Bearer`` dispatch), the checksum makes a typo or a
random string detectable offline, before any database is touched. The checksum is
not a secret and proves nothing about validity; only the database lookup does.

32 base62 characters carry 32 * log2(62) ~ 190.5 bits from :mod:`secrets`.
"""

from __future__ import annotations

import re
import secrets
import zlib

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
RANDOM_CHARS = 32
CHECKSUM_CHARS = 6  # 62**6 > 2**32, so any CRC32 fits
BODY_CHARS = RANDOM_CHARS + CHECKSUM_CHARS
_BODY = re.compile(f"[0-9A-Za-z]{{{BODY_CHARS}}}")
_PAIRS = {a + b: i * 62 + j for i, a in enumerate(ALPHABET) for j, b in enumerate(ALPHABET)}  # decode 2 chars at once

#: For secret scanners (gitleaks, trufflehog, GitHub custom patterns): any zerotrust key, whatever its prefix.
#: Check the checksum as well (``is_well_formed``) to drop false positives.
SCANNER_REGEX = r"\b[a-z][a-z0-9]{1,15}_[0-9A-Za-z]{38}\b"


def scanner_regex(prefix: str) -> str:
    """The tighter pattern for one deployment's prefix."""
    return rf"\b{re.escape(prefix)}_[0-9A-Za-z]{{{BODY_CHARS}}}\b"


def base62(number: int, width: int) -> str:
    """Fixed-width, big-endian, zero-padded base62."""
    out = []
    for _ in range(width):
        number, digit = divmod(number, 62)
        out.append(ALPHABET[digit])
    if number:
        raise ValueError("number does not fit")
    return "".join(reversed(out))


def checksum(random_part: str) -> str:
    """CRC32 of the random part (ASCII), in 6 base62 characters."""
    return base62(zlib.crc32(random_part.encode("ascii")), CHECKSUM_CHARS)


def generate_key(prefix: str) -> str:
    random_part = "".join(secrets.choice(ALPHABET) for _ in range(RANDOM_CHARS))
    return f"{prefix}_{random_part}{checksum(random_part)}"


def is_well_formed(prefix: str, value: str) -> bool:
    """Shape and checksum only: cheap, no secret involved, safe to run on anything."""
    head = len(prefix) + 1
    if len(value) != head + BODY_CHARS or not value.startswith(prefix) or value[head - 1] != "_":
        return False
    if not _BODY.fullmatch(value, head):
        return False
    # Decode the checksum rather than encode the CRC: this runs on every request.
    # The checksum is public information, so a plain comparison leaks nothing.
    c = head + RANDOM_CHARS
    stated = (_PAIRS[value[c:c + 2]] * 3844 + _PAIRS[value[c + 2:c + 4]]) * 3844 + _PAIRS[value[c + 4:c + 6]]
    return zlib.crc32(value[head:c].encode("ascii")) == stated
