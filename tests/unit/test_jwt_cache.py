"""The verified-token cache: bounded by size, by exp (not exp + leeway), and by the signing key's presence."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from zerotrust.credentials import jwt as jwt_mod
from zerotrust.credentials.jwt import JWTVerifier
from zerotrust.errors import InvalidToken
from zerotrust.types import Credential

from .jwt_forge import ISSUER_A, NOW, FakeClock, FakeIdP, make_verifier, token


@pytest.fixture
def idp() -> FakeIdP:
    return FakeIdP()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def signature_checks(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []
    real = jwt_mod.signature_valid

    def counting(alg: str, *args: object) -> bool:
        calls.append(alg)
        return real(alg, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(jwt_mod, "signature_valid", counting)
    return calls


@pytest.fixture
async def verifier(idp: FakeIdP, clock: FakeClock) -> AsyncIterator[JWTVerifier]:
    v = make_verifier(idp, clock, cache_size=100)
    yield v
    await v.aclose()


def cred(tok: str) -> Credential:
    return Credential("bearer", tok)


async def test_hit_skips_the_signature(verifier: JWTVerifier, signature_checks: list[str]) -> None:
    tok = token()
    first = await verifier.verify(cred(tok))
    second = await verifier.verify(cred(tok))
    assert second is first
    assert signature_checks == ["RS256"]


async def test_entry_never_outlives_exp_even_with_leeway(verifier: JWTVerifier, clock: FakeClock,
                                                         signature_checks: list[str]) -> None:
    tok = token(exp=NOW + 10)
    await verifier.verify(cred(tok))
    clock.advance(9.9)
    await verifier.verify(cred(tok))
    assert len(signature_checks) == 1
    clock.advance(0.1)  # now == exp: the cache lets go; full verification still allows the leeway
    await verifier.verify(cred(tok))
    assert len(signature_checks) == 2
    clock.advance(30)  # now == exp + leeway
    with pytest.raises(InvalidToken) as info:
        await verifier.verify(cred(tok))
    assert info.value.reason == "deny.jwt.expired"


async def test_hit_rechecks_nbf_against_now(verifier: JWTVerifier, clock: FakeClock) -> None:
    tok = token(nbf=NOW + 5)  # accepted thanks to the 30 s leeway
    await verifier.verify(cred(tok))
    clock.now = NOW - 26  # the clock stepped back: now < nbf - leeway
    with pytest.raises(InvalidToken) as info:
        await verifier.verify(cred(tok))
    assert info.value.reason == "deny.jwt.not_yet_valid"


async def test_max_token_age_bounds_the_entry(idp: FakeIdP, clock: FakeClock) -> None:
    v = make_verifier(idp, clock, cache_size=100, issuer_a={"max_token_age": 60, "leeway": 0})
    try:
        tok = token(exp=NOW + 3600)
        await v.verify(cred(tok))
        clock.advance(60)
        with pytest.raises(InvalidToken) as info:
            await v.verify(cred(tok))
        assert info.value.reason == "deny.jwt.too_old"
    finally:
        await v.aclose()


async def test_size_bound_evicts_oldest(idp: FakeIdP, clock: FakeClock, signature_checks: list[str]) -> None:
    v = make_verifier(idp, clock, cache_size=2)
    try:
        toks = [token(sub=f"user-{i}") for i in range(3)]
        for t in toks:
            await v.verify(cred(t))
        assert v.cache is not None and len(v.cache) == 2
        await v.verify(cred(toks[2]))
        await v.verify(cred(toks[1]))
        assert len(signature_checks) == 3
        await v.verify(cred(toks[0]))  # evicted: verified again
        assert len(signature_checks) == 4
    finally:
        await v.aclose()


async def test_rotated_out_key_drops_cached_tokens(verifier: JWTVerifier, idp: FakeIdP, clock: FakeClock) -> None:
    tok = token("ec-a", "ES256", exp=NOW + 3000)
    await verifier.verify(cred(tok))
    idp.jwks[f"{ISSUER_A}/jwks"] = [j for j in idp.jwks[f"{ISSUER_A}/jwks"] if j["kid"] != "ec-a"]
    clock.advance(301)
    await verifier.verify(cred(tok))  # a hit on a stale key set starts the refresh...
    for _ in range(5):
        await asyncio.sleep(0)
    with pytest.raises(InvalidToken) as info:  # ...which removes the key, and with it the entry
        await verifier.verify(cred(tok))
    assert info.value.reason == "deny.jwt.unknown_key"


async def test_unchanged_key_set_keeps_entries(verifier: JWTVerifier, clock: FakeClock,
                                               signature_checks: list[str]) -> None:
    tok = token(exp=NOW + 3000)
    await verifier.verify(cred(tok))
    clock.advance(301)
    await verifier.verify(cred(tok))
    for _ in range(5):
        await asyncio.sleep(0)
    await verifier.verify(cred(tok))
    assert len(signature_checks) == 1


async def test_failures_are_not_cached_and_tokens_are_not_stored(verifier: JWTVerifier) -> None:
    bad = token(aud="https://elsewhere.example")
    for _ in range(2):
        with pytest.raises(InvalidToken):
            await verifier.verify(cred(bad))
    good = token()
    await verifier.verify(cred(good))
    assert verifier.cache is not None
    keys = list(verifier.cache._entries)
    assert len(keys) == 1 and len(keys[0]) == 32 and good.encode() not in keys[0]


async def test_cache_size_zero_disables(idp: FakeIdP, clock: FakeClock, signature_checks: list[str]) -> None:
    v = make_verifier(idp, clock, cache_size=0)
    try:
        assert v.cache is None
        tok = token()
        await v.verify(cred(tok))
        await v.verify(cred(tok))
        assert len(signature_checks) == 2
    finally:
        await v.aclose()


def test_full_cache_eviction_stays_constant_time() -> None:
    # regression: evicting a plain dict's first key is O(deleted slots) and grew with the cache size
    import time

    from zerotrust.credentials.jwt_cache import VerifiedTokenCache
    from zerotrust.types import Principal

    class Keys:
        idents: frozenset[object] = frozenset()

    def per_eviction(size: int, evictions: int = 20000) -> float:
        cache = VerifiedTokenCache(size)
        p = Principal("s", "i", "jwt")
        for i in range(size):
            cache.put(i.to_bytes(32, "big"), p, 0, 1, Keys(), ())  # type: ignore[arg-type]
        digests = [i.to_bytes(32, "big") for i in range(size, size + evictions)]
        start = time.process_time()
        for d in digests:
            cache.put(d, p, 0, 1, Keys(), ())  # type: ignore[arg-type]
        assert len(cache) == size
        return (time.process_time() - start) / evictions

    small, large = per_eviction(1000), per_eviction(50000)
    assert large < small * 3, (small, large)
