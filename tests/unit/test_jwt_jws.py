"""Strict compact JWS parsing, signature primitives and JWK import, including RFC examples."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from zerotrust.credentials import jws as jws_mod
from zerotrust.credentials.jwk import KeyRejected, parse_jwk, parse_jwks
from zerotrust.credentials.jws import (
    b64url_decode,
    decode_json_object,
    parse_compact,
    remember_header,
    signature_valid,
)
from zerotrust.errors import InvalidToken

from .jwt_forge import KEYS, b64u, public_jwk, raw_signature

RFC = json.loads((Path(__file__).parents[1] / "data" / "jwt" / "rfc_vectors.json").read_text())


@pytest.mark.parametrize("vec", RFC["jws"], ids=[v["name"] for v in RFC["jws"]])
def test_rfc_examples_verify(vec: dict) -> None:
    key = parse_jwk(vec["jwk"])
    h, p, s = vec["jws"].split(".")
    data, sig = f"{h}.{p}".encode(), b64url_decode(s)
    assert signature_valid(vec["alg"], key.public_key, data, sig)
    assert not signature_valid(vec["alg"], key.public_key, data + b"x", sig)
    flipped = bytes([sig[0] ^ 1]) + sig[1:]
    assert not signature_valid(vec["alg"], key.public_key, data, flipped)
    if "thumbprint" in vec:
        assert key.thumbprint == vec["thumbprint"]


@pytest.mark.parametrize("vec", RFC["thumbprints"], ids=[v["name"] for v in RFC["thumbprints"]])
def test_rfc7638_thumbprint(vec: dict) -> None:
    assert parse_jwk(vec["jwk"]).thumbprint == vec["thumbprint"]


def test_rfc7515_a2_payload_parses_with_crlf() -> None:
    parsed = parse_compact(RFC["jws"][0]["jws"], 8192)
    assert parsed.header == {"alg": "RS256"}
    assert parsed.payload == {"iss": "joe", "exp": 1300819380, "http://example.com/is_root": True}


@pytest.mark.parametrize("text,expected", [("", b""), ("Zg", b"f"), ("Zm8", b"fo"), ("Zm9v", b"foo"),
                                           ("-_-_", bytes.fromhex("fbffbf"))])
def test_b64url_accepts_canonical(text: str, expected: bytes) -> None:
    assert b64url_decode(text) == expected


@pytest.mark.parametrize("text", ["Zh", "Zm9", "Z", "Zm9vY", "Zm9v!", "Zm 9v", "Zm9v\n", "Zm9vé"])
def test_b64url_rejects_noncanonical_or_invalid(text: str) -> None:
    with pytest.raises(ValueError):
        b64url_decode(text)


def test_standard_alphabet_refused_by_parser() -> None:
    # b64url_decode maps "-_" onto "+/", so "+", "/" and "=" must be refused on the whole token first
    assert b64url_decode("+/+/") == b64url_decode("-_-_")
    h = b64u(b'{"alg":"RS256"}')
    for bad in ("+", "/", "="):
        with pytest.raises(InvalidToken) as info:
            parse_compact(f"{h}.{bad}e30.c2ln", 8192)
        assert info.value.reason == "deny.jwt.malformed"


@pytest.mark.parametrize("raw", [b'{"a":1,"a":2}', b'{"a":{"b":1,"b":1}}', b"[1]", b'"x"', b"1", b"null",
                                 b'{"a":NaN}', b'{"a":Infinity}', b'{"a":-Infinity}', b"\xff{}", b'{"a":1} x',
                                 b"", b"{" * 5000 + b"}" * 5000])
def test_json_objects_only(raw: bytes) -> None:
    with pytest.raises((ValueError, RecursionError)):
        decode_json_object(raw)


def test_json_allows_surrounding_whitespace() -> None:
    assert decode_json_object(b' \r\n{"a": [1, {"b": null}]}\n') == {"a": [1, {"b": None}]}


def test_size_cap_comes_before_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*a: object) -> bytes:
        raise AssertionError("decoded an oversize token")

    monkeypatch.setattr(jws_mod, "b64url_decode", boom)
    with pytest.raises(InvalidToken) as info:
        parse_compact("a" * 9000 + ".b.c", 8192)
    assert info.value.reason == "deny.jwt.too_large"


def test_header_memo_is_bounded_and_filled_only_on_request() -> None:
    jws_mod._HEADER_MEMO.clear()
    parsed = []
    for i in range(jws_mod.HEADER_MEMO_SIZE + 50):
        h = b64u(json.dumps({"alg": "RS256", "kid": f"k{i}"}).encode())
        parsed.append(parse_compact(f"{h}.e30.c2ln", 8192))
    assert not jws_mod._HEADER_MEMO  # parsing alone never fills it: only verified tokens do
    for p in parsed:
        remember_header(p)
    assert len(jws_mod._HEADER_MEMO) == jws_mod.HEADER_MEMO_SIZE
    again = parse_compact(f"{b64u(json.dumps({'alg': 'RS256', 'kid': 'k0'}).encode())}.e30.c2ln", 8192)
    assert again.new_header is None and again.header is parsed[0].header
    jws_mod._HEADER_MEMO.clear()


@pytest.mark.parametrize("raw", [b'{"sub":"\\ud800"}', b'{"a":["x","\\udfff"]}', b'{"\\udc00":1}',
                                 b'{"a":{"b":"\\ud83d"}}'])
def test_lone_surrogate_escapes_are_refused(raw: bytes) -> None:
    with pytest.raises(ValueError):
        decode_json_object(raw)


def test_paired_surrogate_escapes_are_fine() -> None:
    assert decode_json_object(b'{"sub":"\\ud83d\\ude00 \\u00e9"}') == {"sub": "\U0001F600 \u00e9"}


def test_ecdsa_requires_raw_fixed_width() -> None:
    key = KEYS["ec-a"]
    data = b"header.payload"
    raw = raw_signature("ES256", key, data)
    der = raw_signature("ES256", key, data, der=True)
    pub = key.public_key()
    assert signature_valid("ES256", pub, data, raw)
    assert not signature_valid("ES256", pub, data, der)
    assert not signature_valid("ES256", pub, data, raw[:-1])
    assert not signature_valid("ES256", pub, data, b"\x00" + raw)
    assert not signature_valid("ES256", pub, data, bytes(64))  # r = s = 0


def test_wrong_key_type_is_a_failed_verification_not_a_crash() -> None:
    data = b"x.y"
    sig = raw_signature("RS256", KEYS["rsa-a"], data)
    assert not signature_valid("ES256", KEYS["rsa-a"].public_key(), data, sig)
    assert not signature_valid("EdDSA", KEYS["ec-a"].public_key(), data, sig)


# --- JWK import -----------------------------------------------------------------------------------


def test_jwk_types_and_algorithms() -> None:
    assert parse_jwk(public_jwk(KEYS["rsa-a"], "r")).algorithms == {"RS256", "RS384", "RS512", "PS256", "PS384",
                                                                     "PS512"}
    assert parse_jwk(public_jwk(KEYS["rsa-a"], "r", alg="PS256")).algorithms == {"PS256"}
    assert parse_jwk(public_jwk(KEYS["ec-a"], "e")).algorithms == {"ES256"}
    assert parse_jwk(public_jwk(KEYS["ec384-a"], "e")).algorithms == {"ES384"}
    assert parse_jwk(public_jwk(KEYS["ed-a"], "o")).algorithms == {"EdDSA"}


def _rejected(jwk: object) -> str:
    with pytest.raises(KeyRejected) as info:
        parse_jwk(jwk)
    return str(info.value)


def test_jwk_rejections() -> None:
    rsa_jwk = public_jwk(KEYS["rsa-a"], "r")
    assert "use" in _rejected({**rsa_jwk, "use": "enc"})
    assert "key_ops" in _rejected({**rsa_jwk, "key_ops": ["encrypt"]})
    assert "alg" in _rejected({**rsa_jwk, "alg": "ES256"})
    assert "alg" in _rejected({**rsa_jwk, "alg": "HS256"})
    assert "1024 bits" in _rejected(public_jwk(KEYS["rsa-small"], "s"))
    assert "kty" in _rejected({"kty": "oct", "k": "c2VjcmV0"})
    assert "kty" in _rejected({"kty": ["RSA"]})
    assert "kid" in _rejected({**rsa_jwk, "kid": 5})
    assert "not a JSON object" in _rejected(["RSA"])
    ec_jwk = public_jwk(KEYS["ec-a"], "e")
    assert "alg" in _rejected({**ec_jwk, "alg": "ES384"})
    assert "curve" in _rejected({**ec_jwk, "crv": "secp256k1"})
    assert "length" in _rejected({**ec_jwk, "x": ec_jwk["x"][:-3]})
    assert "not on the curve" in _rejected({**ec_jwk, "y": ec_jwk["x"]})
    assert "OKP" in _rejected({"kty": "OKP", "crv": "X25519", "x": public_jwk(KEYS["ed-a"], None)["x"]})
    assert "base64url" in _rejected({**rsa_jwk, "n": "not base64!"})
    assert "missing" in _rejected({"kty": "RSA", "e": "AQAB"})


def test_private_members_are_never_kept(caplog: pytest.LogCaptureFixture) -> None:
    priv = KEYS["rsa-a"].private_numbers()
    jwk = {**public_jwk(KEYS["rsa-a"], "r"), "d": b64u(priv.d.to_bytes(256, "big")), "p": "AQAB", "q": "AQAB"}
    keys = parse_jwks({"keys": [jwk]}, "https://i")
    assert len(keys) == 1
    assert not hasattr(keys[0].public_key, "private_numbers")
    assert "private key material" in caplog.text
    assert jwk["d"] not in caplog.text


def test_jwks_skips_bad_keys_keeps_good() -> None:
    good = public_jwk(KEYS["ec-a"], "e")
    keys = parse_jwks({"keys": [{"kty": "RSA"}, 7, None, {"kty": "oct", "k": "AA"}, good,
                                public_jwk(KEYS["rsa-small"], "small")]})
    assert [k.kid for k in keys] == ["e"]


@pytest.mark.parametrize("doc", [None, [], {"keys": {}}, {"keys": None}, {}, "keys"])
def test_jwks_must_be_a_set(doc: object) -> None:
    with pytest.raises(ValueError):
        parse_jwks(doc)
