"""JSON values to bytes and back, so a number stays a number and an object an object.

Serialisation is canonical (sorted keys, no spaces, UTF-8) because deterministic
encryption must turn equal values into equal bytes.
"""

from __future__ import annotations

import json
from json.encoder import encode_basestring  # type: ignore[attr-defined]
from typing import Any

from ..errors import CryptoError, ZeroTrustError

MAX_VALUE_BYTES = 64 * 1024  # one field; a bigger secret belongs in object storage, not a JSON field
MAX_FIELDS = 10_000  # per document, so one request cannot turn into unbounded Vault work
MAX_CONTEXT_CHARS = 1024  # a context keys the key caches; "tenant/record-id" needs far less


class FieldInputError(ZeroTrustError):
    """The document or a value in it cannot be encrypted as asked (too big, not JSON, overlapping paths)."""

    status = 400
    error_code = "invalid_request"
    reason = "crypto.invalid_input"
    default_description = "The document cannot be processed"


def encode_value(value: Any, field: str) -> bytes:
    try:
        if type(value) is str:  # the common case; byte-identical to json.dumps(ensure_ascii=False)
            data = encode_basestring(value).encode("utf-8")
        else:
            data = json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False,
                              allow_nan=False).encode("utf-8")
    except UnicodeEncodeError:  # "\ud800" is valid JSON text but no valid UTF-8: it would not round-trip
        raise FieldInputError(detail=f"{field}: value contains an unpaired surrogate") from None
    except (TypeError, ValueError) as exc:
        raise FieldInputError(detail=f"{field}: value is not plain JSON ({exc})") from None
    if len(data) > MAX_VALUE_BYTES:
        raise FieldInputError(detail=f"{field}: value is {len(data)} bytes, more than {MAX_VALUE_BYTES}")
    return data


def decode_value(data: bytes, field: str) -> Any:
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        # Authenticated decryption succeeded, so this is a writer bug, not an attacker: still never guess.
        raise CryptoError(detail=f"{field}: decrypted bytes are not JSON") from None
