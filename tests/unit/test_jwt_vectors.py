"""Attack vectors (and positive controls) from tests/data/jwt/vectors.json, built by hand and run through JWTVerifier."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from zerotrust.credentials.jwt import JWTVerifier
from zerotrust.credentials.jwt_errors import DESCRIPTIONS
from zerotrust.errors import InvalidToken
from zerotrust.types import Credential

from .jwt_forge import (
    ISSUER_A,
    ISSUER_B,
    KEYS,
    NOW,
    FakeClock,
    FakeIdP,
    b64u,
    base_claims,
    encode_json,
    jwt_config,
    public_jwk,
    raw_signature,
    rsa_public_pem,
    sign_token,
)

VECTORS = json.loads((Path(__file__).parents[1] / "data" / "jwt" / "vectors.json").read_text())


def _times(claims: dict[str, Any]) -> dict[str, Any]:
    return {k: NOW + int(v[1:]) if isinstance(v, str) and v[:2] in ("@+", "@-") else v for k, v in claims.items()}


def _header(vec: dict[str, Any], key_name: str) -> Any:
    if "raw_header" in vec:
        return vec["raw_header"]
    header: dict[str, Any] = {"alg": "RS256", "typ": "at+jwt", "kid": key_name}
    for k, v in vec.get("header", {}).items():
        if v is None:
            header.pop(k, None)
        elif v == "$null":
            header[k] = None
        elif isinstance(v, str) and v.startswith("$public-jwk:"):
            header[k] = public_jwk(KEYS[v.split(":", 1)[1]], None)
        else:
            header[k] = v
    return header


def _payload(vec: dict[str, Any]) -> Any:
    claims = base_claims(ISSUER_B if vec.get("issuer") == "B" else ISSUER_A)
    claims.update(_times(vec.get("claims", {})))
    for name in vec.get("delete", ()):
        claims.pop(name, None)
    raw = vec.get("raw_payload")
    if raw == "$claims-with-duplicate-iss":
        text = json.dumps(claims)
        return text[:-1] + ', "iss": "https://attacker.example"}'
    if raw == "$claims-exp-1e400":
        return json.dumps(claims).replace(f'"exp": {claims["exp"]}', '"exp": 1e400')
    if raw == "$lone-surrogate-sub":
        return json.dumps(claims).replace('"user-1"', '"user-\\ud800"')
    if raw == "$latin1":
        return json.dumps(claims).encode().replace(b"user-1", "usér-1".encode("latin-1"))
    return raw if raw is not None else claims


def _alg(header: Any, vec: dict[str, Any]) -> str:
    if "sign_alg" in vec:
        return vec["sign_alg"]
    return header["alg"] if isinstance(header, dict) and isinstance(header.get("alg"), str) else "RS256"


def build(vec: dict[str, Any]) -> str:
    key_name = vec.get("key", "rsa-a")
    header, payload = _header(vec, key_name), _payload(vec)
    h64 = b64u(encode_json(header))
    p64 = b64u(payload if isinstance(payload, bytes) else encode_json(payload))
    data = f"{h64}.{p64}".encode()
    alg, signing = _alg(header, vec), vec.get("signing", "key")
    if signing == "none":
        sig = b""
    elif signing == "hmac-public-pem":
        sig = raw_signature(alg, rsa_public_pem(KEYS["rsa-a"]), data)
    elif signing == "garbage":
        sig = os.urandom(256)
    else:
        sig = raw_signature(alg, KEYS[key_name], data, der=signing == "der")
    if signing == "strip":
        sig = b""
    elif signing == "truncate":
        sig = sig[:-1]
    elif signing == "swap":
        other = sign_token(header, base_claims(sub="someone-else"), KEYS[key_name], alg)
        sig = _unb64(other.split(".")[2])
    token = f"{h64}.{p64}.{b64u(sig)}"
    if signing == "tamper":
        token = ".".join([h64, b64u(encode_json(base_claims(sub="admin"))), b64u(sig)])
    return mutate(token, vec.get("mutate"))


def _unb64(s: str) -> bytes:
    import base64

    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def mutate(token: str, how: str | None) -> str:
    h, p, s = token.split(".")
    if how is None:
        return token
    if how == "five-part":  # shape of a real JWE: {"alg":"RSA-OAEP","enc":"A256GCM"}
        return b64u(b'{"alg":"RSA-OAEP","enc":"A256GCM"}') + ".a2V5.aXY.Y2lwaGVy.dGFn"
    if how == "json-serialization":
        return json.dumps({"payload": p, "signatures": [{"protected": h, "signature": s}]})
    if how == "two-parts":
        return f"{h}.{p}"
    if how == "four-parts":
        return f"{h}.{p}.{s}.{s}"
    if how == "empty-header":
        return f".{p}.{s}"
    if how == "pad":
        return f"{h}.{p}==.{s}"
    if how == "plus":
        return f"{h}.{p}.+{s[1:]}"
    if how == "slash":
        return f"{h}./{p[1:]}.{s}"
    if how == "space":
        return f"{h}.{p[:10]} {p[10:]}.{s}"
    if how == "nonascii":
        return f"{h}.{p[:10]}é{p[11:]}.{s}"
    if how == "length1":
        while len(p) % 4 != 1:
            p += "A"
        return f"{h}.{p}.{s}"
    if how == "noncanonical":
        return f"{_noncanonical(h)}.{p}.{s}"
    raise AssertionError(how)


def _noncanonical(seg: str) -> str:
    """Same bytes, different text: set unused low bits of the last character."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    assert len(seg) % 4 in (2, 3), "the default header encodes to a length with spare bits"
    last = alphabet.index(seg[-1])
    tweaked = seg[:-1] + alphabet[last | 1]
    assert tweaked != seg and _unb64(tweaked) == _unb64(seg)
    return tweaked


@pytest.fixture
async def verifier() -> Any:
    idp, clock = FakeIdP(), FakeClock()
    v = JWTVerifier.from_config(jwt_config(), transport=idp.transport(), now=clock.time, clock=clock.mono)
    yield v
    await v.aclose()


@pytest.mark.parametrize("vec", VECTORS, ids=[v["name"] for v in VECTORS])
async def test_vector(verifier: JWTVerifier, vec: dict[str, Any]) -> None:
    token = build(vec)
    cred = Credential("bearer", token)
    if vec["expect"] == "ok":
        principal = await verifier.verify(cred)
        assert principal.issuer == (ISSUER_B if vec.get("issuer") == "B" else ISSUER_A)
        assert principal.kind == "jwt"
        return
    with pytest.raises(InvalidToken) as info:
        await verifier.verify(cred)
    err = info.value
    assert err.reason == vec["expect"], err.detail
    assert (err.status, err.error_code) == (401, "invalid_token")
    assert err.description in DESCRIPTIONS.values()
    # nothing from the token reaches the client text or the log detail
    for part in token.split("."):
        for text in (err.description, err.detail or "", err.challenge() or ""):
            assert len(part) < 8 or part not in text


def test_vectors_cover_the_issue_list() -> None:
    names = " ".join(v["name"] for v in VECTORS).lower()
    for needle in ("alg none", "none", "hs256", "same kid", "jku", "jwk header", "x5u", "crit", "jwe",
                   "json serialization", "oversize", "typ", "expired", "nbf", "iat", "aud", "unknown iss",
                   "missing", "padding", "'+'", "'/'", "not json", "duplicate", "stripped", "swapped", "der",
                   "1024"):
        assert needle in names, needle
    assert sum(v["expect"] == "ok" for v in VECTORS) >= 5
