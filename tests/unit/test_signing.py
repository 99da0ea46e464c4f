"""JWT signing keys: kid scheme, JWKS, rotation overlap, LocalSigner end to end.

Tokens are verified two independent ways: with pyca/cryptography straight from the
published JWKS, and with the project's own JWTVerifier fed that JWKS over HTTP.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx
import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from zerotrust.config import JWTConfig
from zerotrust.errors import ConfigError
from zerotrust.keys import LocalSigner
from zerotrust.keys.signing_keys import KeyVersion, public_jwk, select, thumbprint
from zerotrust.types import Credential

ISSUER = "https://issuer.example"


def _unb64url(s: str) -> bytes:
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def verify_with_jwks(token: str, document: dict[str, Any]) -> dict[str, Any]:
    """Independent check: find the JWK by kid, verify with pyca, return the claims."""
    h, p, s = token.split(".")
    header = json.loads(_unb64url(h))
    (jwk,) = [k for k in document["keys"] if k["kid"] == header["kid"]]
    assert jwk["alg"] == header["alg"] and thumbprint(jwk) == jwk["kid"]
    sig, signing_input = _unb64url(s), f"{h}.{p}".encode()
    if jwk["kty"] == "OKP":
        ed25519.Ed25519PublicKey.from_public_bytes(_unb64url(jwk["x"])).verify(sig, signing_input)
    else:
        pub = ec.EllipticCurvePublicNumbers(int.from_bytes(_unb64url(jwk["x"]), "big"),
                                            int.from_bytes(_unb64url(jwk["y"]), "big"), ec.SECP256R1()).public_key()
        assert len(sig) == 64
        der = encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big"))
        pub.verify(der, signing_input, ec.ECDSA(hashes.SHA256()))
    return json.loads(_unb64url(p))


async def verify_with_project(token: str, document: dict[str, Any], alg: str) -> Any:
    from zerotrust.credentials.jwt import JWTVerifier

    transport = httpx.MockTransport(lambda r: httpx.Response(200, json=document))
    config = JWTConfig(issuers=[{"issuer": ISSUER, "audience": ["api"], "jwks_uri": "https://issuer.example/jwks",
                                 "algorithms": [alg]}])
    verifier = JWTVerifier.from_config(config, transport=transport)
    try:
        return await verifier.verify(Credential("bearer", token, "authorization", "Bearer"))
    finally:
        await verifier.aclose()


def test_rfc7638_thumbprint_vector():
    # RFC 7638 section 3.1
    jwk = {"kty": "RSA", "e": "AQAB", "alg": "RS256", "kid": "2011-04-29",
           "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECP"
                "ebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY36"
                "8QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lF"
                "d2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"}
    assert thumbprint(jwk) == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"


@pytest.mark.parametrize("alg", ["ES256", "EdDSA"])
async def test_local_signer_tokens_verify_two_ways(tmp_path, alg):
    signer = LocalSigner(tmp_path / "k.json", "tokens", alg, issuer=ISSUER, token_ttl=300)
    token = signer.issue("alice", "api", typ="at+jwt", client_id="cli", scope="read write")
    document = signer.jwks()
    claims = verify_with_jwks(token, document)
    assert claims["sub"] == "alice" and claims["exp"] - claims["iat"] == 300
    principal = await verify_with_project(token, document, alg)
    assert principal.subject == "alice" and principal.scopes == frozenset({"read", "write"})


def test_tampered_token_fails_independent_verification(tmp_path):
    signer = LocalSigner(tmp_path / "k.json", "tokens", "ES256", issuer=ISSUER)
    token = signer.issue("alice", "api")
    h, p, s = token.split(".")
    forged = base64.urlsafe_b64encode(json.dumps({**json.loads(_unb64url(p)), "sub": "admin"}).encode())
    with pytest.raises(InvalidSignature):
        verify_with_jwks(f"{h}.{forged.rstrip(b'=').decode()}.{s}", signer.jwks())


def test_exp_beyond_token_ttl_is_refused(tmp_path):
    signer = LocalSigner(tmp_path / "k.json", "tokens", "ES256", issuer=ISSUER, token_ttl=60)
    with pytest.raises(ValueError):
        signer.sign({"iat": 1000, "exp": 1061})
    with pytest.raises(ValueError):
        signer.sign({"sub": "no-exp"})
    assert signer.issue("a", "api", ttl=3600).count(".") == 2  # clamped to token_ttl, not refused


def test_exp_and_iat_are_bounded_by_now_not_only_by_each_other(tmp_path):
    clock = [10_000.0]
    signer = LocalSigner(tmp_path / "k.json", "tokens", "ES256", issuer=ISSUER, token_ttl=60, leeway=30,
                         now=lambda: clock[0])
    for claims in ({"iat": 20_000, "exp": 20_060},  # exp - iat is fine, but the token outlives its key's JWKS
                   {"exp": 10_061},  # no iat: exp more than token_ttl from now
                   {"iat": 10_031, "exp": 10_060},  # iat in the future beyond leeway
                   {"iat": "10000", "exp": 10_060}, {"iat": 10_000, "exp": True}):
        with pytest.raises(ValueError):
            signer.sign(claims)
    for claims in ({"iat": 10_000, "exp": 10_060}, {"exp": 10_060}, {"iat": 10_030, "exp": 10_060},
                   {"iat": 9_000, "exp": 9_030}):  # already expired is harmless
        assert signer.sign(claims).count(".") == 2
    assert verify_with_jwks(signer.issue("a", "api"), signer.jwks())["exp"] == 10_060


def test_wrong_key_type_is_config_error(tmp_path):
    LocalSigner(tmp_path / "k.json", "tokens", "ES256")
    with pytest.raises(ConfigError):
        LocalSigner(tmp_path / "k.json", "tokens", "EdDSA")


def test_rotation_overlap_with_local_signer(tmp_path):
    clock = [10_000.0]
    signer = LocalSigner(tmp_path / "k.json", "tokens", "ES256", issuer=ISSUER, token_ttl=300, leeway=30,
                         now=lambda: clock[0])
    old_token = signer.issue("a", "api")
    old_kid = signer.selection().signing.kid
    new = signer.rotate()
    assert new.version == 2 and new.kid != old_kid
    clock[0] = new.created  # rotation happened "now"
    assert signer.selection().signing.version == 2
    published = {k["kid"] for k in signer.jwks()["keys"]}
    assert published == {old_kid, new.kid}  # tokens signed before rotation still verify
    verify_with_jwks(old_token, signer.jwks())
    clock[0] = new.created + 300 + 30 + 1  # every v1 token has expired (ttl + leeway)
    assert {k["kid"] for k in signer.jwks()["keys"]} == {new.kid}


def _version(v: int, created: float) -> KeyVersion:
    pub = ec.generate_private_key(ec.SECP256R1()).public_key()
    return KeyVersion(v, created, pub, public_jwk(pub, "ES256"))


def test_select_with_activation_delay_prepublishes():
    v1, v2 = _version(1, 0.0), _version(2, 1000.0)
    sel = select([v1, v2], 1010.0, token_ttl=300, leeway=0, activate_after=60)
    assert sel.signing.version == 1 and {v.version for v in sel.published} == {1, 2}
    sel = select([v1, v2], 1061.0, token_ttl=300, leeway=0, activate_after=60)
    assert sel.signing.version == 2 and sel.retire_at[1] == 1000 + 60 + 300
    assert {v.version for v in select([v1, v2], 1361.0, token_ttl=300, leeway=0, activate_after=60).published} == {2}


def test_select_three_versions_retires_in_order():
    vs = [_version(1, 0.0), _version(2, 100.0), _version(3, 200.0)]
    assert [v.version for v in select(vs, 250, token_ttl=120, leeway=0).published] == [2, 3]
    assert [v.version for v in select(vs, 321, token_ttl=120, leeway=0).published] == [3]
    with pytest.raises(ValueError):
        select([], 0, token_ttl=1)
