"""LocalKeyProvider and its key file: Transit semantics without Vault."""

from __future__ import annotations

import base64
import json
import logging
import os
import stat

import pytest

from zerotrust.config import parse_config
from zerotrust.errors import ConfigError, CryptoError
from zerotrust.keys import KeyProvider, LocalKeyProvider, build_key_provider
from zerotrust.keys.ciphertext import MAX_CIPHERTEXT


@pytest.fixture
def keyfile(tmp_path):
    return tmp_path / "secret" / "keys.json"


@pytest.fixture
def local(keyfile):
    return LocalKeyProvider(keyfile, quiet=True)


def test_is_a_key_provider_and_warns(keyfile, caplog):
    with caplog.at_level(logging.WARNING, "zerotrust.keys"):
        provider = LocalKeyProvider(keyfile)
    assert isinstance(provider, KeyProvider)
    assert "NOT FOR PRODUCTION" in caplog.text


def test_file_created_on_first_use_with_0600_in_0700_dir(local, keyfile):
    assert not keyfile.exists()
    local.encrypt("f", [b"x"])
    assert stat.S_IMODE(keyfile.stat().st_mode) == 0o600
    assert stat.S_IMODE(keyfile.parent.stat().st_mode) == 0o700
    assert "NOT FOR PRODUCTION" in json.loads(keyfile.read_text())["warning"]


def test_roundtrip_including_empty_and_binary(local):
    values = [b"hello", b"", bytes(range(256)), "žluťoučký".encode()]
    cts = local.encrypt("f", values)
    assert all(c.startswith("local:v1:") for c in cts)
    assert len(set(cts)) == len(cts)  # random nonces
    assert local.decrypt("f", cts) == values


def test_context_binds_ciphertext(local):
    (c,) = local.encrypt("f", [b"secret"], b"tenant-a")
    assert local.decrypt("f", [c], b"tenant-a") == [b"secret"]
    for other in (b"tenant-b", None):
        with pytest.raises(CryptoError):
            local.decrypt("f", [c], other)


def test_tampered_ciphertext_is_crypto_error(local):
    (c,) = local.encrypt("f", [b"secret value"])
    prefix, body = c.rsplit(":", 1)
    raw = bytearray(base64.b64decode(body))
    raw[-1] ^= 1
    with pytest.raises(CryptoError):
        local.decrypt("f", [prefix + ":" + base64.b64encode(bytes(raw)).decode()])


@pytest.mark.parametrize("bad", [
    "", "local", "local:v1", "local:v1:", "local:v0:AAAA", "local:v-1:AAAA", "local:1:AAAA",
    "vault:v1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "LOCAL:v1:AAAA", "local:v1:@@@@",
    "local:v1:AAAA\n", " local:v1:AAAA", "local:v99:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    "local:v1:" + "A" * MAX_CIPHERTEXT,
])
def test_malformed_ciphertexts_are_crypto_errors(local, bad):
    local.encrypt("f", [b"x"])
    with pytest.raises(CryptoError) as info:
        local.decrypt("f", [bad])
    assert info.value.status == 400


def test_non_string_ciphertext(local):
    with pytest.raises(CryptoError):
        local.decrypt("f", [b"local:v1:AAAA"])  # type: ignore[list-item]


def test_rotation_keeps_old_and_rewrap_moves_forward(local):
    old = local.encrypt("f", [b"a", b"b"])
    assert local.rotate("f") == 2
    assert local.latest_version("f") == 2
    assert local.decrypt("f", old) == [b"a", b"b"]
    new = local.rewrap("f", old)
    assert all(c.startswith("local:v2:") for c in new)
    assert local.decrypt("f", new) == [b"a", b"b"]
    assert local.rewrap("f", new) == new  # already latest: untouched


def test_rotation_in_another_process_is_picked_up(keyfile):
    a = LocalKeyProvider(keyfile, quiet=True)
    a.encrypt("f", [b"x"])
    b = LocalKeyProvider(keyfile, quiet=True)
    b.rotate("f")
    (c,) = b.encrypt("f", [b"y"])
    assert c.startswith("local:v2:")
    assert a.decrypt("f", [c]) == [b"y"]  # unknown version -> reload


def test_data_keys(local):
    dk = local.generate_data_key("f", b"ctx")
    assert len(dk.plaintext) == 32 and dk.version == 1
    assert local.unwrap_data_key("f", dk.wrapped, b"ctx") == dk.plaintext
    with pytest.raises(CryptoError):
        local.unwrap_data_key("f", dk.wrapped, b"other")
    (not_a_key,) = local.encrypt("f", [b"short"], b"ctx")
    with pytest.raises(CryptoError):
        local.unwrap_data_key("f", not_a_key, b"ctx")


def test_hmac_is_stable_per_version_and_separate_from_encryption(local):
    h1 = local.hmac("f", b"data")
    assert h1 == local.hmac("f", b"data") and len(h1) == 32
    assert h1 != local.hmac("f", b"other")
    local.rotate("f")
    assert local.hmac("f", b"data", 1) == h1
    assert local.hmac("f", b"data") != h1


def test_secrets_are_persistent_and_random(keyfile, local):
    s = local.get_secret("secret/zerotrust#pepper")
    assert len(s) == 32
    assert LocalKeyProvider(keyfile, quiet=True).get_secret("secret/zerotrust#pepper") == s
    assert local.get_secret("secret/other#pepper") != s


def test_loose_permissions_are_refused(local, keyfile):
    local.encrypt("f", [b"x"])
    os.chmod(keyfile, 0o644)
    with pytest.raises(ConfigError, match="chmod 600"):
        LocalKeyProvider(keyfile, quiet=True)


def test_garbage_file_is_config_error(keyfile):
    keyfile.parent.mkdir(mode=0o700)
    fd = os.open(keyfile, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, b"not json")
    os.close(fd)
    with pytest.raises(ConfigError):
        LocalKeyProvider(keyfile, quiet=True)


def test_symlinked_key_file_is_refused(tmp_path):
    target = tmp_path / "elsewhere.json"
    target.write_text("{}")
    link = tmp_path / "keys.json"
    link.symlink_to(target)
    with pytest.raises(ConfigError):
        LocalKeyProvider(link, quiet=True)


async def test_async_twins(local):
    cts = await local.aencrypt("f", [b"a"], b"c")
    assert await local.adecrypt("f", cts, b"c") == [b"a"]
    dk = await local.agenerate_data_key("f")
    assert await local.aunwrap_data_key("f", dk.wrapped) == dk.plaintext
    assert await local.alatest_version("f") == 1


def test_build_key_provider_without_vault_is_local(tmp_path):
    cfg = parse_config(f"""
api_keys: {{pepper: "{'p' * 32}"}}
policy: {{rules: [{{id: r, paths: ["/**"], anonymous: true}}]}}
local_keys: {{path: "{tmp_path / 'k.json'}"}}
""")
    provider = build_key_provider(cfg)
    assert isinstance(provider, LocalKeyProvider)
    assert str(provider.store.path) == str(tmp_path / "k.json")
