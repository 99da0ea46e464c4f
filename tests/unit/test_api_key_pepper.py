import sys
import time

import pytest

import zerotrust.keys
from zerotrust.config import parse_config
from zerotrust.credentials.api_key import APIKeyVerifier
from zerotrust.credentials.api_key_format import generate_key
from zerotrust.credentials.api_key_pepper import PepperSource, key_digest, load_pepper, pepper_check
from zerotrust.credentials.api_key_record import APIKeyRecord, new_key_id
from zerotrust.credentials.api_key_store import APIKeyStore
from zerotrust.errors import ConfigError, DependencyError
from zerotrust.types import Credential, Headers, RequestContext

VAULT_PEPPER = b"\x00\xffvault-pepper-bytes-0123456789abcdef"


def vault_config(db, local_pepper: str | None = None):
    local = f', pepper: "{local_pepper}"' if local_pepper else ""
    return parse_config(f"""
api_keys: {{database: "{db}"{local}}}
vault: {{addr: "http://127.0.0.1:1", token: "test-token", pepper: "secret/data/zerotrust#pepper"}}
policy: {{rules: [{{id: all, paths: ["/**"]}}]}}
""", env={})


def add_key(db, pepper: bytes) -> str:
    key = generate_key("zt")
    store = APIKeyStore.open(db, pepper_check(pepper))
    store.insert(APIKeyRecord(id=new_key_id(), name="svc", key_hash=key_digest(pepper, key), scopes=(),
                              created_at=time.time()))
    store.close()
    return key


def req() -> RequestContext:
    return RequestContext(method="GET", path="/", headers=Headers(), peer="10.1.1.1")


def test_local_pepper_is_utf8_bytes(tmp_path):
    config = parse_config(f"""
api_keys: {{database: "{tmp_path}/k.db", pepper: "p\u00e9pper-0123456789-0123456789-012"}}
policy: {{rules: [{{id: all, paths: ["/**"]}}]}}
""", env={})
    assert load_pepper(config) == "p\u00e9pper-0123456789-0123456789-012".encode()


def test_vault_pepper_wins_over_the_local_one(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(zerotrust.keys, "pepper_from_vault", lambda c: calls.append(c) or VAULT_PEPPER, raising=False)
    config = vault_config(tmp_path / "k.db", local_pepper="local-pepper-local-pepper-local-pepper")
    assert load_pepper(config) == VAULT_PEPPER and calls == [config]


async def test_verifier_uses_the_vault_pepper(tmp_path, monkeypatch):
    monkeypatch.setattr(zerotrust.keys, "pepper_from_vault", lambda c: VAULT_PEPPER, raising=False)
    key = add_key(tmp_path / "k.db", VAULT_PEPPER)
    v = APIKeyVerifier.from_config(vault_config(tmp_path / "k.db"))
    assert (await v.verify(Credential("api_key", key, "x-api-key"), req())).subject == "apikey:svc"
    await v.aclose()


def test_missing_vault_provider_is_a_config_error(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "zerotrust.keys", None)  # makes the import fail
    with pytest.raises(ConfigError, match="Vault key provider is unavailable"):
        APIKeyVerifier.from_config(vault_config(tmp_path / "k.db"))


def test_short_vault_pepper_is_a_config_error(tmp_path, monkeypatch):
    monkeypatch.setattr(zerotrust.keys, "pepper_from_vault", lambda c: b"short", raising=False)
    with pytest.raises(ConfigError, match="at least 32 bytes"):
        load_pepper(vault_config(tmp_path / "k.db"))


async def test_vault_down_at_start_means_503_until_it_is_back(tmp_path, monkeypatch):
    state = {"up": False}

    def fake(config):
        if not state["up"]:
            raise DependencyError(detail="vault: connection refused")
        return VAULT_PEPPER

    monkeypatch.setattr(zerotrust.keys, "pepper_from_vault", fake, raising=False)
    key = add_key(tmp_path / "k.db", VAULT_PEPPER)
    v = APIKeyVerifier.from_config(vault_config(tmp_path / "k.db"))  # starts anyway
    v._pepper._retry_interval = 0
    with pytest.raises(DependencyError) as exc:
        await v.verify(Credential("api_key", key, "x-api-key"), req())
    assert exc.value.status == 503 and "connection refused" in exc.value.detail
    state["up"] = True
    assert (await v.verify(Credential("api_key", key, "x-api-key"), req())).subject == "apikey:svc"
    await v.aclose()


async def test_pepper_retries_are_rate_limited():
    now = [0.0]
    attempts = []

    def load() -> bytes:
        attempts.append(now[0])
        raise RuntimeError("garbage from vault")

    source = PepperSource(load, retry_interval=5, clock=lambda: now[0])
    source.try_load()
    for t in (1.0, 2.0, 4.9, 5.0, 6.0):
        now[0] = t
        with pytest.raises(DependencyError):
            await source.get()
    assert attempts == [0.0, 5.0]
