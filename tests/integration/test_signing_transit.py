"""TransitSigner against real OpenBao: Vault signs, we publish the JWKS, others verify."""

from __future__ import annotations

import time

import pytest

from tests.support.openbao import OpenBao
from tests.unit.test_signing import ISSUER, verify_with_jwks, verify_with_project
from zerotrust.config import VaultConfig, parse_config
from zerotrust.errors import DependencyError
from zerotrust.keys import TransitSigner, build_signer
from zerotrust.keys.vault import VaultClient

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def bao(tmp_path_factory):
    server = OpenBao.dev(tmp_path_factory.mktemp("bao-sign"))
    server.enable_transit()
    server.create_key("es", "ecdsa-p256")
    server.create_key("ed", "ed25519")
    server.create_key("aes")
    yield server
    server.stop()


@pytest.fixture
def client(bao):
    c = VaultClient(VaultConfig(addr=bao.addr, token=bao.root_token))
    yield c
    c.close()


@pytest.mark.parametrize(("key", "alg"), [("es", "ES256"), ("ed", "EdDSA")])
async def test_transit_signed_token_verifies_with_published_jwks(client, key, alg):
    signer = TransitSigner(client, key, alg, issuer=ISSUER, token_ttl=300)
    token = await signer.asign({"iss": ISSUER, "sub": "svc", "aud": "api", "iat": int(time.time()),
                                "exp": int(time.time()) + 120, "jti": "j1", "client_id": "c"}, typ="at+jwt")
    document = await signer.ajwks()
    assert all("d" not in k for k in document["keys"])  # public only
    assert verify_with_jwks(token, document)["sub"] == "svc"
    principal = await verify_with_project(token, document, alg)
    assert principal.subject == "svc"


def test_rotation_keeps_old_kid_until_tokens_expired(bao, client):
    bao.create_key("rot", "ecdsa-p256")
    clock = [time.time()]
    signer = TransitSigner(client, "rot", "ES256", issuer=ISSUER, token_ttl=60, leeway=10, now=lambda: clock[0])
    old = signer.issue("a", "api")
    old_kid = signer.selection().signing.kid
    new = signer.rotate()
    clock[0] = time.time()
    assert signer.selection().signing.version == new.version == 2
    fresh = signer.issue("b", "api")
    document = signer.jwks()
    assert {k["kid"] for k in document["keys"]} == {old_kid, new.kid}
    assert verify_with_jwks(old, document)["sub"] == "a" and verify_with_jwks(fresh, document)["sub"] == "b"
    clock[0] = new.created + 60 + 10 + 1
    assert [k["kid"] for k in signer.jwks()["keys"]] == [new.kid]


def test_wrong_key_type_is_refused(client):
    with pytest.raises(DependencyError, match="needs ecdsa-p256"):
        TransitSigner(client, "aes", "ES256").jwks()
    with pytest.raises(DependencyError, match="needs ed25519"):
        TransitSigner(client, "es", "EdDSA").issue("a", "api")


def test_build_signer_from_config(bao):
    cfg = parse_config(f"""
api_keys: {{pepper: "{'p' * 32}"}}
policy: {{rules: [{{id: r, paths: ["/**"], anonymous: true}}]}}
vault: {{addr: "{bao.addr}", token: "{bao.root_token}"}}
signing: {{key: ed, algorithm: EdDSA, issuer: "{ISSUER}", token_ttl: 120}}
""")
    signer = build_signer(cfg)
    try:
        assert isinstance(signer, TransitSigner)
        token = signer.issue("x", "api")
        assert verify_with_jwks(token, signer.jwks())["iss"] == ISSUER
    finally:
        signer.client.close()


def test_sign_latency_is_reported(client):
    signer = TransitSigner(client, "es", "ES256", issuer=ISSUER)
    signer.issue("warm", "api")
    n = 50
    start = time.perf_counter()
    for _ in range(n):
        signer.issue("a", "api")
    per_token_ms = (time.perf_counter() - start) / n * 1000
    print(f"TransitSigner ES256: {per_token_ms:.2f} ms/token")
    assert per_token_ms < 50
