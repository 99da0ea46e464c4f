"""TransitSigner against a scripted Vault: answers that must never become a token."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from tests.unit.test_keys_vault_client import make
from tests.unit.test_signing import verify_with_jwks
from zerotrust.errors import DependencyError
from zerotrust.keys.signing_transit import TransitSigner

KEY = ec.generate_private_key(ec.SECP256R1())
OTHER = ec.generate_private_key(ec.SECP256R1())
PEM = KEY.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def _jws_sig(private: ec.EllipticCurvePrivateKey, data: bytes) -> str:
    r, s = decode_dss_signature(private.sign(data, ec.ECDSA(hashes.SHA256())))
    return base64.urlsafe_b64encode(r.to_bytes(32, "big") + s.to_bytes(32, "big")).rstrip(b"=").decode()


def vault(sign_with=KEY, version_in_answer=1, key_type="ecdsa-p256"):
    import json

    def handler(r):
        if r.path_url == "/v1/auth/token/lookup-self":
            return 200, {"data": {"ttl": 0}}
        if r.path_url == "/v1/transit/keys/tok":
            return 200, {"data": {"type": key_type, "latest_version": 1,
                                  "keys": {"1": {"creation_time": "2026-01-01T00:00:00.123456789Z"}}}}
        if r.path_url == "/v1/transit/export/public-key/tok":
            return 200, {"data": {"keys": {"1": PEM}}}
        if r.path_url == "/v1/transit/sign/tok":
            body = json.loads(r.body)
            assert body["marshaling_algorithm"] == "jws" and body["key_version"] == 1
            data = base64.b64decode(body["input"])
            return 200, {"data": {"signature": f"vault:v{version_in_answer}:{_jws_sig(sign_with, data)}"}}
        return 404, {"errors": []}
    return handler


def test_good_answer_makes_a_verifiable_token():
    client, _ = make(vault())
    signer = TransitSigner(client, "tok", "ES256", issuer="https://i")
    token = signer.issue("a", "api")
    assert verify_with_jwks(token, signer.jwks())["sub"] == "a"
    assert signer.selection().signing.created == pytest.approx(1767225600.123456)


@pytest.mark.parametrize("bad", [{"sign_with": OTHER}, {"version_in_answer": 2}])
def test_signature_that_does_not_verify_is_refused(bad):
    client, _ = make(vault(**bad))
    with pytest.raises(DependencyError):
        TransitSigner(client, "tok", "ES256").issue("a", "api")


def test_wrong_key_type_is_refused():
    client, _ = make(vault(key_type="aes256-gcm96"))
    with pytest.raises(DependencyError, match="needs ecdsa-p256"):
        TransitSigner(client, "tok", "ES256").jwks()
