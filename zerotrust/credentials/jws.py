"""Strict JWS Compact Serialization (RFC 7515 section 7.1) and signature checks (RFC 7518 section 3, RFC 8037).

This is the hot path of every JWT request, so it is written by hand on top of
pyca/cryptography instead of a general JOSE library: one regular expression for
the shape, canonical base64url only, JSON objects without duplicate members, and
a direct ``verify`` call on a pre-built public key. Nothing here knows issuers.
"""

from __future__ import annotations

import binascii
import json
from collections.abc import Callable
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from .jwt_errors import deny

# Unused low bits of the last character must be zero, or two strings decode to the same bytes.
_LAST_OF_2 = frozenset("AQgw")
_LAST_OF_3 = frozenset("AEIMQUYcgkosw048")
_TO_STD = bytes.maketrans(b"-_", b"+/")

# Headers that would let the token choose its own key, or change how it must be processed.
FORBIDDEN_HEADERS = ("jku", "x5u", "jwk", "crit", "b64", "cty", "zip", "enc", "epk", "iv", "tag", "p2s")


def b64url_decode(segment: str) -> bytes:
    """Canonical, unpadded base64url (RFC 7515 section 2); the alphabet is already checked."""
    rem = len(segment) & 3
    if rem == 2:
        if segment[-1] not in _LAST_OF_2:
            raise ValueError("non-canonical base64url")
        segment += "=="
    elif rem == 3:
        if segment[-1] not in _LAST_OF_3:
            raise ValueError("non-canonical base64url")
        segment += "="
    elif rem == 1:
        raise ValueError("impossible base64url length")
    return binascii.a2b_base64(segment.encode("ascii").translate(_TO_STD), strict_mode=True)


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise ValueError("duplicate member")  # RFC 7515 section 5.2: reject, do not pick one
    return obj


def _no_constant(name: str) -> Any:
    raise ValueError("NaN/Infinity are not JSON")


_DECODER = json.JSONDecoder(object_pairs_hook=_object, parse_constant=_no_constant)


def _no_lone_surrogates(value: Any) -> None:
    """I-JSON (RFC 7493 section 2.1): "\\ud800" escapes decode to strings no UTF-8 encoder accepts,
    which would blow up later, far from here (identity headers, logs, policy input)."""
    if type(value) is str:
        value.encode("utf-8")  # UnicodeEncodeError is a ValueError
    elif type(value) is dict:
        for k, v in value.items():
            k.encode("utf-8")
            _no_lone_surrogates(v)
    elif type(value) is list:
        for v in value:
            _no_lone_surrogates(v)


def decode_json_object(raw: bytes) -> dict[str, Any]:
    text = raw.decode("utf-8")  # strict UTF-8 (RFC 7515 section 2); no encoding sniffing
    try:
        value, end = _DECODER.raw_decode(text)  # skips decode()'s two whitespace scans
        if end != len(text):
            raise ValueError("trailing data")
    except ValueError:
        value = _DECODER.decode(text)  # allows surrounding whitespace, still rejects garbage
    if "\\u" in text:  # only escapes can produce surrogates; the common case skips the walk
        _no_lone_surrogates(value)
    if type(value) is not dict:
        raise ValueError("not a JSON object")
    return value


class CompactJWS:
    """A parsed, not yet verified, compact JWS whose payload is a JSON object."""

    __slots__ = ("header", "payload", "signing_input", "signature", "new_header")

    def __init__(self, header: dict[str, Any], payload: dict[str, Any], signing_input: bytes, signature: bytes,
                 new_header: str | None = None):
        self.header = header
        self.payload = payload
        self.signing_input = signing_input
        self.signature = signature
        self.new_header = new_header  # the encoded header, when it was decoded (not memoized) this time


def _checked_header(h64: str) -> dict[str, Any]:
    header = decode_json_object(b64url_decode(h64))
    alg = header.get("alg")
    if type(alg) is not str:
        raise deny("algorithm", "alg missing or not a string")
    if alg not in VERIFIERS:
        raise deny("algorithm", "alg none" if alg.lower() == "none" else
                   "HMAC alg" if alg.upper().startswith("HS") else "unsupported alg")
    for name in FORBIDDEN_HEADERS:
        if name in header:
            raise deny("header", f"forbidden header parameter {name}")
    if "kid" in header and (type(header["kid"]) is not str or len(header["kid"]) > 512):
        raise deny("header", "kid is not a short string")
    if "typ" in header and type(header["typ"]) is not str:
        raise deny("typ", "typ is not a string")
    return header


# An issuer signs every token with the same few headers, so the header of a token that
# verified is remembered by its exact encoding. Bounded; callers treat headers as read-only.
_HEADER_MEMO: dict[str, dict[str, Any]] = {}
HEADER_MEMO_SIZE = 256


def parse_compact(token: str, max_bytes: int) -> CompactJWS:
    """Split and decode ``token`` or raise :class:`InvalidToken`. The size cap comes first."""
    if len(token) > max_bytes:
        raise deny("too_large", "token exceeds max_token_bytes")
    if token[:1] == "{":
        raise deny("serialization", "JSON serialization")
    parts = token.split(".")
    if len(parts) != 3:
        raise deny("encrypted", "five-part JWE") if len(parts) == 5 else deny("malformed", "not three parts")
    # a2b_base64 in strict mode rejects everything outside the standard alphabet; the
    # standard-only characters and padding must be refused before "-_" are mapped onto "+/".
    if "+" in token or "/" in token or "=" in token:
        raise deny("malformed", "not base64url")
    h64, p64, s64 = parts
    try:
        memo = _HEADER_MEMO.get(h64)
        fresh = memo is None
        # decoded before the empty-signature check, so that "alg":"none" is named as such
        header = _checked_header(h64) if memo is None else memo
        if not s64:
            raise deny("signature", "signature is empty")
        payload = decode_json_object(b64url_decode(p64))
        signature = b64url_decode(s64)
    except (ValueError, UnicodeError, RecursionError) as exc:  # binascii.Error is a ValueError
        raise deny("malformed", f"segment decoding: {type(exc).__name__}") from None
    return CompactJWS(header, payload, token[: len(h64) + len(p64) + 1].encode("ascii"), signature,
                      h64 if fresh else None)


def remember_header(jws: CompactJWS) -> None:
    """Called once a token has fully verified, so only real issuers' headers take memo slots."""
    if jws.new_header is not None and len(_HEADER_MEMO) < HEADER_MEMO_SIZE:
        _HEADER_MEMO[jws.new_header] = jws.header


# --- signatures ---------------------------------------------------------------------------------

_HASH = {"256": hashes.SHA256(), "384": hashes.SHA384(), "512": hashes.SHA512()}
_PKCS1 = padding.PKCS1v15()
# RFC 7518 section 3.5: MGF1 with the same hash, salt as long as the hash output.
_PSS = {n: padding.PSS(padding.MGF1(h), h.digest_size) for n, h in _HASH.items()}
_ECDSA = {n: ec.ECDSA(h) for n, h in _HASH.items()}
_EC_HALF = {"256": 32, "384": 48, "512": 66}


def _rsa(bits: str) -> Callable[[Any, bytes, bytes], None]:
    h = _HASH[bits]
    return lambda key, data, sig: key.verify(sig, data, _PKCS1, h)


def _pss(bits: str) -> Callable[[Any, bytes, bytes], None]:
    h, pad = _HASH[bits], _PSS[bits]
    return lambda key, data, sig: key.verify(sig, data, pad, h)


def _ecdsa(bits: str) -> Callable[[Any, bytes, bytes], None]:
    half, scheme = _EC_HALF[bits], _ECDSA[bits]

    def verify(key: Any, data: bytes, sig: bytes) -> None:
        # RFC 7518 section 3.4: raw R || S of fixed width. A DER signature has another length.
        if len(sig) != 2 * half:
            raise InvalidSignature
        r = int.from_bytes(sig[:half], "big")
        s = int.from_bytes(sig[half:], "big")
        key.verify(encode_dss_signature(r, s), data, scheme)

    return verify


def _eddsa(key: Any, data: bytes, sig: bytes) -> None:
    key.verify(sig, data)


VERIFIERS: dict[str, Callable[[Any, bytes, bytes], None]] = {
    **{f"RS{b}": _rsa(b) for b in _HASH},
    **{f"PS{b}": _pss(b) for b in _HASH},
    **{f"ES{b}": _ecdsa(b) for b in _HASH},
    "EdDSA": _eddsa,
}


def signature_valid(alg: str, key: Any, data: bytes, signature: bytes) -> bool:
    """True when ``signature`` over ``data`` verifies with ``key`` under ``alg``."""
    try:
        VERIFIERS[alg](key, data, signature)
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True
