"""VaultKeyProvider against a real OpenBao dev server: Transit, KV, peppers, AppRole."""

from __future__ import annotations

import pytest

from tests.support.openbao import OpenBao
from zerotrust.config import VaultConfig, parse_config
from zerotrust.errors import CryptoError, DependencyError
from zerotrust.keys import VaultKeyProvider, build_key_provider, pepper_from_vault
from zerotrust.keys.pepper import PEPPER_LABEL

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def bao(tmp_path_factory):
    server = OpenBao.dev(tmp_path_factory.mktemp("bao"))
    server.enable_transit()
    server.create_key("fields")
    server.create_key("tenant-fields", derived=True)
    server.create_key("pepper-key")
    yield server
    server.stop()


@pytest.fixture
def provider(bao):
    p = VaultKeyProvider.from_config(VaultConfig(addr=bao.addr, token=bao.root_token))
    yield p
    p.close()


def test_roundtrip_batch(provider):
    values = [b"alice@example.com", b"", bytes(range(256))]
    cts = provider.encrypt("fields", values)
    assert all(c.startswith("vault:v") for c in cts) and len(set(cts)) == 3
    assert provider.decrypt("fields", cts) == values
    assert provider.encrypt("fields", []) == [] and provider.decrypt("fields", []) == []


def test_batches_beyond_one_request_with_context(provider):
    # 450 items with a context would exceed OpenBao's 1000-JSON-strings limit in one request.
    values = [f"value-{i}".encode() for i in range(450)]
    cts = provider.encrypt("tenant-fields", values, b"tenant-a")
    assert len(cts) == 450 and provider.decrypt("tenant-fields", cts, b"tenant-a") == values


def test_derived_key_binds_context(provider):
    (c,) = provider.encrypt("tenant-fields", [b"ssn"], b"tenant-a")
    assert provider.decrypt("tenant-fields", [c], b"tenant-a") == [b"ssn"]
    with pytest.raises(CryptoError):
        provider.decrypt("tenant-fields", [c], b"tenant-b")


def test_context_on_plain_key_is_refused(provider):
    with pytest.raises(DependencyError, match="not derived"):
        provider.encrypt("fields", [b"x"], b"tenant-a")


def test_tampered_and_foreign_ciphertexts(provider):
    (c,) = provider.encrypt("fields", [b"secret"])
    head, body = c.rsplit(":", 1)
    flipped = head + ":" + ("B" if body[0] != "B" else "C") + body[1:]
    for bad in (flipped, "vault:v1:AAAA", "vault:v99:" + body):
        with pytest.raises(CryptoError):
            provider.decrypt("fields", [c, bad])  # one bad item fails the whole batch


def test_rotation_rewrap_and_versions(bao, provider):
    old = provider.encrypt("fields", [b"a", b"b"])
    before = provider.latest_version("fields")
    bao.rotate_key("fields")
    assert provider.latest_version("fields") == before + 1
    new = provider.rewrap("fields", old)
    assert all(c.startswith(f"vault:v{before + 1}:") for c in new)
    assert provider.decrypt("fields", new) == provider.decrypt("fields", old) == [b"a", b"b"]


def test_data_keys(provider):
    dk = provider.generate_data_key("tenant-fields", b"t1")
    assert len(dk.plaintext) == 32 and dk.version >= 1
    assert provider.unwrap_data_key("tenant-fields", dk.wrapped, b"t1") == dk.plaintext
    with pytest.raises(CryptoError):
        provider.unwrap_data_key("tenant-fields", dk.wrapped, b"t2")


def test_hmac_versions(bao, provider):
    bao.create_key("mac")
    h1 = provider.hmac("mac", b"data")
    assert len(h1) == 32 and h1 == provider.hmac("mac", b"data", 1)
    bao.rotate_key("mac")
    assert provider.hmac("mac", b"data") != h1 and provider.hmac("mac", b"data", 1) == h1


def test_kv_secret(bao, provider):
    bao.put_kv("zerotrust", {"pepper": "q" * 48})
    assert provider.get_secret("kv:secret/zerotrust#pepper") == b"q" * 48
    assert provider.get_secret("secret/zerotrust#pepper") == b"q" * 48
    with pytest.raises(DependencyError):
        provider.get_secret("secret/zerotrust#missing")
    with pytest.raises(DependencyError):
        provider.get_secret("secret/absent#pepper")


def _config(bao, pepper: str) -> str:
    return f"""
api_keys: {{}}
policy: {{rules: [{{id: r, paths: ["/**"], anonymous: true}}]}}
vault: {{addr: "{bao.addr}", token: "{bao.root_token}", pepper: "{pepper}"}}
"""


def test_pepper_from_kv_and_transit(bao, provider):
    bao.put_kv("zt-pepper", {"value": "p" * 40})
    assert pepper_from_vault(parse_config(_config(bao, "kv:secret/zt-pepper#value"))) == b"p" * 40
    transit_pepper = pepper_from_vault(parse_config(_config(bao, "transit:pepper-key")))
    assert len(transit_pepper) == 32
    assert transit_pepper == provider.hmac("pepper-key", PEPPER_LABEL, 1)
    bao.rotate_key("pepper-key")
    assert pepper_from_vault(parse_config(_config(bao, "transit:pepper-key"))) == transit_pepper


def test_build_key_provider_picks_vault(bao):
    provider = build_key_provider(parse_config(_config(bao, "transit:pepper-key")))
    try:
        assert isinstance(provider, VaultKeyProvider)
        assert provider.decrypt("fields", provider.encrypt("fields", [b"x"])) == [b"x"]
    finally:
        provider.close()


def test_shared_client_is_not_closed_by_the_provider(bao):
    from zerotrust.keys import VaultClient

    cfg = parse_config(_config(bao, "transit:pepper-key"))
    client = VaultClient(cfg.vault)
    try:
        provider = build_key_provider(cfg, client)
        provider.close()
        assert provider.decrypt("fields", provider.encrypt("fields", [b"x"])) == [b"x"]
    finally:
        client.close()


def test_approle_with_least_privilege(bao):
    bao.write_policy("fields-only", 'path "transit/encrypt/fields" { capabilities = ["update"] }\n'
                                    'path "transit/decrypt/fields" { capabilities = ["update"] }\n'
                                    'path "transit/keys/fields" { capabilities = ["read"] }\n')
    role_id, secret_id = bao.approle("zt", policies=["fields-only"])
    provider = VaultKeyProvider.from_config(VaultConfig(addr=bao.addr, auth="approle", role_id=role_id,
                                                        secret_id=secret_id))
    try:
        assert provider.decrypt("fields", provider.encrypt("fields", [b"x"])) == [b"x"]
        with pytest.raises(DependencyError) as info:  # forbidden: 503 fail closed, not a crypto error
            provider.encrypt("tenant-fields", [b"x"], b"t")
        assert not isinstance(info.value, CryptoError)
    finally:
        provider.close()


def test_bad_token_is_dependency_error(bao):
    provider = VaultKeyProvider.from_config(VaultConfig(addr=bao.addr, token="s.not-a-token"))
    try:
        with pytest.raises(DependencyError):
            provider.encrypt("fields", [b"x"])
    finally:
        provider.close()


async def test_async_twins(provider):
    cts = await provider.aencrypt("fields", [b"a", b"b"])
    assert await provider.adecrypt("fields", cts) == [b"a", b"b"]
    assert await provider.alatest_version("fields") >= 1
