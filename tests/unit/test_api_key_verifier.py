import logging
import sqlite3
import time

import pytest

from zerotrust.config import parse_config
from zerotrust.credentials.api_key import APIKeyVerifier
from zerotrust.credentials.api_key_format import generate_key
from zerotrust.credentials.api_key_pepper import key_digest, pepper_check
from zerotrust.credentials.api_key_record import APIKeyRecord, new_key_id
from zerotrust.credentials.api_key_store import APIKeyStore
from zerotrust.credentials.api_key_throttle import FailureThrottle
from zerotrust.errors import DependencyError, InvalidToken, TooManyRequests
from zerotrust.types import Credential, Headers, RequestContext

PEPPER = b"unit-test-pepper-unit-test-pepper!"


class Clock:
    def __init__(self, t: float):
        self.t = t

    def __call__(self) -> float:
        return self.t


def add_key(db, name="svc", scopes=("api:read",), **kw) -> tuple[str, APIKeyRecord]:
    key = generate_key("zt")
    rec = APIKeyRecord(id=new_key_id(), name=name, key_hash=key_digest(PEPPER, key), scopes=scopes,
                       created_at=time.time(), **kw)
    store = APIKeyStore.open(db, pepper_check(PEPPER))
    store.insert(rec)
    store.close()
    return key, rec


def verifier(db, clock=time.time, failures=5, resolution=60.0) -> APIKeyVerifier:
    return APIKeyVerifier(prefix="zt", database=str(db), pepper=PEPPER, issuer="zerotrust:api-key",
                          throttle=FailureThrottle(failures, 60), last_used_resolution=resolution, clock=clock)


def req(peer="10.0.0.1") -> RequestContext:
    return RequestContext(method="GET", path="/", headers=Headers(), peer=peer)


def cred(value, kind="api_key") -> Credential:
    return Credential(kind=kind, value=value, source="x-api-key" if kind == "api_key" else "authorization")


@pytest.fixture
def db(tmp_path):
    return tmp_path / "keys.db"


async def test_principal(db):
    key, rec = add_key(db, scopes=("api:read", "api:write"), expires_at=time.time() + 3600)
    p = await verifier(db).verify(cred(key), req())
    assert (p.subject, p.issuer, p.kind, p.credential_id) == ("apikey:svc", "zerotrust:api-key", "api_key", rec.id)
    assert p.scopes == {"api:read", "api:write"} and p.expires_at == rec.expires_at


def test_accepts_api_key_header_and_prefixed_bearer_only(db):
    v = verifier(db)
    key = generate_key("zt")
    assert v.accepts(cred(key)) and v.accepts(cred(key, "bearer"))
    assert v.accepts(cred("anything", "api_key"))  # the header is ours; verify() calls it malformed
    assert not v.accepts(cred("eyJhbGciOiJSUzI1NiJ9.e30.sig", "bearer"))
    assert not v.accepts(cred(generate_key("gh"), "bearer"))
    assert not v.accepts(cred("zt" + key[3:], "bearer"))  # the prefix must be followed by "_"


async def test_bearer_key_verifies_like_header_key(db):
    key, _ = add_key(db)
    assert (await verifier(db).verify(cred(key, "bearer"), req())).subject == "apikey:svc"


@pytest.mark.parametrize("value", [generate_key("gh"), generate_key("zt")[:-1] + "!", "zt_short"])
async def test_malformed_is_rejected_without_touching_the_database(tmp_path, value):
    v = verifier(tmp_path / "missing-dir" / "keys.db")  # opening this would be a 503
    with pytest.raises(InvalidToken) as exc:
        await v.verify(cred(value), req())
    assert exc.value.reason == "deny.api_key.malformed" and exc.value.status == 401


async def test_typo_in_a_real_key_is_malformed_not_unknown(db):
    key, _ = add_key(db)
    typo = key[:10] + ("a" if key[10] != "a" else "b") + key[11:]
    with pytest.raises(InvalidToken) as exc:
        await verifier(db).verify(cred(typo), req())
    assert exc.value.reason == "deny.api_key.malformed"


async def test_unknown_and_wrong_pepper(db):
    key, _ = add_key(db)
    with pytest.raises(InvalidToken) as exc:
        await verifier(db).verify(cred(generate_key("zt")), req())
    assert exc.value.reason == "deny.api_key.unknown"
    assert exc.value.description == "The API key is not valid"
    other = APIKeyVerifier(prefix="zt", database=str(db), pepper=b"another-pepper-another-pepper-xx!",
                           issuer="i", throttle=FailureThrottle(5, 60))
    with pytest.raises(DependencyError, match="pepper does not match"):  # not "unknown" for every key
        await other.verify(cred(key), req())


async def test_revocation_from_another_connection_is_seen_without_restart(db):
    key, rec = add_key(db)
    v = verifier(db)
    await v.verify(cred(key), req())
    await v.verify(cred(key), req())  # now served from the cache
    cli = APIKeyStore.open(db, pepper_check(PEPPER))  # what `zerotrust apikey revoke` does
    cli.revoke(rec.id, time.time())
    cli.close()
    with pytest.raises(InvalidToken) as exc:
        await v.verify(cred(key), req())
    assert (exc.value.reason, exc.value.description) == ("deny.api_key.revoked", "The API key has been revoked")


async def test_expiry_is_checked_on_every_cache_hit(db):
    clock = Clock(time.time())
    key, _ = add_key(db, expires_at=clock.t + 100)
    v = verifier(db, clock)
    await v.verify(cred(key), req())
    clock.t += 99.9
    await v.verify(cred(key), req())
    clock.t += 0.1
    with pytest.raises(InvalidToken) as exc:
        await v.verify(cred(key), req())
    assert exc.value.reason == "deny.api_key.expired"


async def test_last_used_written_once_per_resolution(db):
    clock = Clock(time.time())
    key, rec = add_key(db)
    v = verifier(db, clock, resolution=60)
    reader = APIKeyStore.open(db, pepper_check(PEPPER))
    await v.verify(cred(key), req())
    assert reader.get(rec.id).last_used_at == clock.t
    first = clock.t
    clock.t += 30
    await v.verify(cred(key), req())
    assert reader.get(rec.id).last_used_at == first
    clock.t += 31
    await v.verify(cred(key), req())
    assert reader.get(rec.id).last_used_at == clock.t
    reader.close()


async def test_last_used_write_blocked_by_a_lock_is_logged_not_fatal(db, caplog):
    key, rec = add_key(db)
    v = verifier(db)
    blocker = sqlite3.connect(db, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    started = time.perf_counter()
    p = await v.verify(cred(key), req())
    assert p.credential_id == rec.id
    assert time.perf_counter() - started < 1.0  # bounded by the short busy_timeout
    assert f"could not record last use of API key {rec.id}" in caplog.text
    blocker.execute("ROLLBACK")
    blocker.close()


async def test_unreadable_database_is_503_and_recovers(tmp_path):
    db = tmp_path / "keys.db"
    db.write_bytes(b"garbage " * 1000)
    v = verifier(db)
    v._reopen_interval = 0
    with pytest.raises(DependencyError) as exc:
        await v.verify(cred(generate_key("zt")), req())
    assert exc.value.status == 503
    db.unlink()
    key, _ = add_key(db)
    assert (await v.verify(cred(key), req())).subject == "apikey:svc"


async def test_throttling_counts_failures_only(db):
    key, _ = add_key(db)
    v = verifier(db, failures=3)
    for _ in range(10):
        await v.verify(cred(key), req("10.0.0.1"))  # successes never throttle
    for _ in range(3):
        with pytest.raises(InvalidToken):
            await v.verify(cred(generate_key("zt")), req("10.0.0.1"))
    with pytest.raises(TooManyRequests) as exc:
        await v.verify(cred(key), req("10.0.0.1"))  # checked first: no work spent on a throttled client
    assert exc.value.status == 429
    assert (await v.verify(cred(key), req("10.0.0.2"))).subject == "apikey:svc"


async def test_clients_without_peer_share_one_bucket(db):
    v = verifier(db, failures=2)
    for _ in range(2):
        with pytest.raises(InvalidToken):
            await v.verify(cred("junk"), req(None))
    with pytest.raises(TooManyRequests):
        await v.verify(cred("junk"), req(None))


async def test_key_never_logged_nor_in_database_files(db, caplog):
    caplog.set_level(logging.DEBUG)
    key, rec = add_key(db)
    v = verifier(db)
    await v.verify(cred(key), req())
    APIKeyStore.open(db, pepper_check(PEPPER)).revoke(rec.id, time.time())
    with pytest.raises(InvalidToken) as exc:
        await v.verify(cred(key), req())
    texts = caplog.text + str(exc.value) + repr(exc.value.detail) + repr(cred(key)) + repr(v._cache)
    assert key not in texts and key[3:35] not in texts
    blobs = b"".join(p.read_bytes() for p in db.parent.iterdir() if p.name.startswith(db.name))
    assert key.encode() not in blobs and key[3:35].encode() not in blobs
    assert key_digest(PEPPER, key) in blobs  # sanity: we did look at the right bytes


async def test_from_config(tmp_path):
    db = tmp_path / "keys.db"
    key, _ = add_key(db)
    config = parse_config(f"""
api_keys: {{database: "{db}", pepper: "{PEPPER.decode()}", issuer: "https://keys.example"}}
policy: {{rules: [{{id: all, paths: ["/**"]}}]}}
""", env={})
    v = APIKeyVerifier.from_config(config)
    assert (await v.verify(cred(key), req())).issuer == "https://keys.example"
    await v.aclose()


async def test_own_last_used_writes_keep_the_cache_but_other_commits_drop_it(db):
    key, _ = add_key(db)
    v = verifier(db, resolution=0)  # write last_used on every request
    await v.verify(cred(key), req())
    lookups = []
    real_find = v._store.find
    v._store.find = lambda digest: lookups.append(1) or real_find(digest)
    for _ in range(5):
        await v.verify(cred(key), req())
    assert lookups == []  # our own commits do not change our data_version
    add_key(db, name="other")  # another connection commits
    await v.verify(cred(key), req())
    assert lookups == [1]


async def test_cache_is_bounded(db):
    keys = [add_key(db, name=f"k{i}")[0] for i in range(5)]
    v = verifier(db)
    v._cache_size = 3
    for key in keys:
        await v.verify(cred(key), req())
    assert len(v._cache) == 3
    for key in keys:  # evicted rows are simply read again
        assert (await v.verify(cred(key), req())).subject.startswith("apikey:k")
