"""Data-key cache bounds: time, number of uses and entries, with an injected clock."""

import os

import pytest

from tests.unit.test_fields_support import FakeTransit
from zerotrust import CryptoError
from zerotrust.crypto import FieldEncryptor
from zerotrust.crypto.ciphertext import parse
from zerotrust.crypto.datakeys import DataKeyCache, TTLCache


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_reserve_grants_at_most_the_uses_left():
    clock = Clock()
    cache = DataKeyCache(ttl=10, max_uses=5, clock=clock)
    assert cache.reserve("slot", 1) is None
    cache.install("slot", os.urandom(32), b"w", 1)
    key, granted = cache.reserve("slot", 3)
    assert granted == 3 and key.uses_left == 2
    assert cache.reserve("slot", 3)[1] == 2
    assert cache.reserve("slot", 1) is None  # spent


def test_reserve_expires_by_time():
    clock = Clock()
    cache = DataKeyCache(ttl=10, max_uses=100, clock=clock)
    cache.install("slot", os.urandom(32), b"w", 1)
    clock.now += 9.999
    assert cache.reserve("slot", 1) is not None
    clock.now += 0.001
    assert cache.reserve("slot", 1) is None
    assert cache.reserve("other", 1) is None  # slots are separate


def test_ttl_cache_expires_and_is_bounded():
    clock = Clock()
    cache: TTLCache[int] = TTLCache(ttl=5, max_entries=3, clock=clock)
    for i in range(4):
        cache.put(i, i)
    assert cache.get(0) is None and len(cache) == 3  # least recently used went first
    assert cache.get(1) == 1
    cache.put(4, 4)  # 2 is now the least recently used
    assert cache.get(2) is None and cache.get(1) == 1
    clock.now += 5
    assert cache.get(1) is None


def test_encryptor_replaces_a_data_key_after_max_uses():
    fake, clock = FakeTransit(), Clock()
    enc = FieldEncryptor(fake, "k", datakey_max_uses=3, clock=clock)
    out = enc.encrypt_document({"r": list(range(7))}, ["$.r[*]"])
    assert fake.calls == ["generate_data_key"] * 3  # 3 + 3 + 1
    wrapped = [parse(c).parts[1] for c in out["r"]]
    assert len({wrapped[0], wrapped[3], wrapped[6]}) == 3
    assert wrapped[0] == wrapped[1] == wrapped[2]
    assert enc.decrypt_document(out, ["$.r[*]"]) == {"r": list(range(7))}


def test_encryptor_replaces_a_data_key_after_ttl():
    fake, clock = FakeTransit(), Clock()
    enc = FieldEncryptor(fake, "k", datakey_ttl=60, clock=clock)
    enc.encrypt_document({"a": 1}, ["$.a"])
    clock.now += 59
    enc.encrypt_document({"a": 1}, ["$.a"])
    assert fake.calls == ["generate_data_key"]
    clock.now += 1
    enc.encrypt_document({"a": 1}, ["$.a"])
    assert fake.calls == ["generate_data_key"] * 2


def test_unwrapped_keys_expire_too():
    fake, clock = FakeTransit(), Clock()
    enc = FieldEncryptor(fake, "k", datakey_ttl=60, clock=clock)
    out = enc.encrypt_document({"a": 1}, ["$.a"])
    enc.decrypt_document(out, ["$.a"])
    enc.decrypt_document(out, ["$.a"])
    assert fake.calls.count("unwrap_data_key") == 1
    clock.now += 60
    enc.decrypt_document(out, ["$.a"])
    assert fake.calls.count("unwrap_data_key") == 2


def test_context_gets_its_own_data_key():
    fake = FakeTransit()
    enc = FieldEncryptor(fake, "k")
    enc.encrypt_document({"a": 1}, ["$.a"], context="t1")
    enc.encrypt_document({"a": 1}, ["$.a"], context="t2")
    enc.encrypt_document({"a": 1}, ["$.a"], context="t1")
    assert fake.calls == ["generate_data_key"] * 2


def test_deterministic_keys_are_cached_and_follow_rotation_after_ttl():
    fake, clock = FakeTransit(), Clock()
    enc = FieldEncryptor(fake, "k", datakey_ttl=30, clock=clock)
    spec = [type("P", (), {"path": "$.e", "deterministic": True})()]
    first = enc.encrypt_document({"e": "x"}, spec)["e"]
    enc.encrypt_document({"e": "y"}, spec)
    assert fake.calls == ["latest_version", "hmac"]
    fake.rotate()
    assert enc.encrypt_document({"e": "x"}, spec)["e"] == first  # still v1 while cached
    clock.now += 30
    later = enc.encrypt_document({"e": "x"}, spec)["e"]
    assert parse(later).version == 2 and later != first


def test_per_record_contexts_do_not_grow_the_data_key_cache_without_bound():
    fake = FakeTransit()
    enc = FieldEncryptor(fake, "k")
    for record in range(1100):  # docs recommend context=f"{tenant}/{record_id}"
        enc.encrypt_document({"a": 1}, ["$.a"], context=f"acme/{record}")
    assert len(enc.ring.datakeys) == 1024
    enc.encrypt_document({"a": 1}, ["$.a"], context="acme/1099")  # the newest is still cached
    assert fake.calls.count("generate_data_key") == 1100
    enc.encrypt_document({"a": 1}, ["$.a"], context="acme/0")  # the oldest went first
    assert fake.calls.count("generate_data_key") == 1101


def test_expired_data_keys_leave_memory_when_any_slot_is_used():
    clock = Clock()
    cache = DataKeyCache(ttl=10, max_uses=100, clock=clock)
    for record in range(3):
        cache.install(f"t/{record}", os.urandom(32), b"w", 1)
    clock.now += 5
    cache.install("t/late", os.urandom(32), b"w", 1)
    clock.now += 5  # the first three expire now; nobody asks for them again
    assert cache.reserve("t/late", 1) is not None
    assert len(cache) == 1
    clock.now += 5
    cache.install("t/other", os.urandom(32), b"w", 1)
    assert len(cache) == 1


def test_deterministic_version_above_latest_is_a_crypto_error_without_an_hmac():
    fake, clock = FakeTransit(), Clock()
    enc = FieldEncryptor(fake, "k", clock=clock)
    spec = [type("P", (), {"path": "$.e", "deterministic": True})()]
    good = enc.encrypt_document({"e": "x"}, spec)["e"]
    forged = good.replace("ztf1.d.k.1.", "ztf1.d.k.7.")
    fake.calls.clear()
    for _ in range(50):
        with pytest.raises(CryptoError, match="version 7 does not exist"):
            enc.decrypt_document({"e": forged}, spec)
    assert fake.calls == ["latest_version"]  # one refresh a second at most, never an HMAC
    clock.now += 1
    fake.rotate()  # another process rotated and wrote v2 before our cached latest expired
    newer = FieldEncryptor(fake, "k").encrypt_document({"e": "y"}, spec)["e"]
    assert enc.decrypt_document({"e": newer}, spec) == {"e": "y"}
