import os
import sqlite3
import stat
import time

import pytest

from zerotrust.credentials.api_key_format import generate_key
from zerotrust.credentials.api_key_pepper import key_digest, pepper_check
from zerotrust.credentials.api_key_record import APIKeyRecord, new_key_id, validate_name, validate_scopes
from zerotrust.credentials.api_key_store import SCHEMA_VERSION, APIKeyConflict, APIKeyStore
from zerotrust.errors import DependencyError

PEPPER = b"p" * 32
CHECK = pepper_check(PEPPER)


def record(name: str, key: str, **kw) -> APIKeyRecord:
    return APIKeyRecord(id=new_key_id(), name=name, key_hash=key_digest(PEPPER, key), scopes=("a", "b"),
                        created_at=time.time(), **kw)


def test_hash_is_hmac_sha256_with_the_pepper():
    import hashlib
    import hmac

    key = generate_key("zt")
    assert key_digest(PEPPER, key) == hmac.new(PEPPER, key.encode(), hashlib.sha256).digest()
    assert key_digest(b"q" * 32, key) != key_digest(PEPPER, key)


def test_created_0600_in_wal_mode_with_schema_version(tmp_path):
    db = tmp_path / "keys.db"
    store = APIKeyStore.open(db, CHECK)
    store.insert(record("one", generate_key("zt")))
    assert stat.S_IMODE(os.stat(db).st_mode) == 0o600
    for side in ("-wal", "-shm"):
        assert stat.S_IMODE(os.stat(f"{db}{side}").st_mode) == 0o600
    raw = sqlite3.connect(db)
    assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert raw.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    raw.close()
    store.close()


def test_existing_file_mode_is_kept_but_warned_about(tmp_path, caplog):
    db = tmp_path / "keys.db"
    db.touch(mode=0o644)
    os.chmod(db, 0o644)
    APIKeyStore.open(db, CHECK).close()
    assert "readable by group/others" in caplog.text


def test_round_trip_list_get_revoke(tmp_path):
    store = APIKeyStore.open(tmp_path / "k.db", CHECK)
    key = generate_key("zt")
    r = record("svc", key, expires_at=time.time() + 60)
    store.insert(r)
    assert store.find(key_digest(PEPPER, key)) == r
    assert store.find(key_digest(PEPPER, generate_key("zt"))) is None
    assert store.get("svc") == r and store.get(r.id) == r and store.get("nope") is None
    assert [x.name for x in store.list()] == ["svc"]
    assert store.revoke(r.id, 123.0) is True
    assert store.revoke(r.id, 456.0) is False  # the first revocation time is kept
    assert store.get("svc").revoked_at == 123.0
    assert store.get("svc").status(time.time()) == "revoked"


def test_duplicate_name_is_a_conflict(tmp_path):
    store = APIKeyStore.open(tmp_path / "k.db", CHECK)
    store.insert(record("svc", generate_key("zt")))
    with pytest.raises(APIKeyConflict, match="already exists"):
        store.insert(record("svc", generate_key("zt")))


def test_touch_never_moves_last_used_backwards(tmp_path):
    store = APIKeyStore.open(tmp_path / "k.db", CHECK)
    r = record("svc", generate_key("zt"))
    store.insert(r)
    store.touch(r.id, 200.0)
    store.touch(r.id, 100.0)
    assert store.get(r.id).last_used_at == 200.0


def test_a_different_pepper_is_refused(tmp_path):
    APIKeyStore.open(tmp_path / "k.db", CHECK).close()
    with pytest.raises(DependencyError, match="pepper does not match"):
        APIKeyStore.open(tmp_path / "k.db", pepper_check(b"x" * 32))


def test_a_newer_schema_is_refused(tmp_path):
    APIKeyStore.open(tmp_path / "k.db", CHECK).close()
    raw = sqlite3.connect(tmp_path / "k.db")
    raw.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    raw.close()
    with pytest.raises(DependencyError, match="schema version"):
        APIKeyStore.open(tmp_path / "k.db", CHECK)


@pytest.mark.parametrize("setup", ["garbage", "directory", "missing_parent"])
def test_unusable_files_are_dependency_errors(tmp_path, setup):
    db = tmp_path / "k.db"
    if setup == "garbage":
        db.write_bytes(b"this is not a database" * 100)
    elif setup == "directory":
        db.mkdir()
    else:
        db = tmp_path / "no" / "such" / "k.db"
    with pytest.raises(DependencyError) as exc:
        APIKeyStore.open(db, CHECK)
    assert exc.value.status == 503


@pytest.mark.parametrize("name", ["", "-x", "a b", "a/b", "x" * 65, "key_0123456789ab", "caf\u00e9"])
def test_bad_names(name):
    with pytest.raises(ValueError):
        validate_name(name)


def test_scopes_are_rfc6749_tokens_deduplicated():
    assert validate_scopes(["a:b", "c", "a:b"]) == ("a:b", "c")
    for bad in (["a b"], ['a"b'], ["a\\b"], [""], ["x"] * 65):
        with pytest.raises(ValueError):
            validate_scopes(bad)
