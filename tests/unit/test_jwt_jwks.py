"""JWKS caching, refetch rate limit, single-flight, outages and key rotation, with a fake IdP."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import httpx
import pytest

from zerotrust.credentials.jwks import NO_KEYS_RETRY
from zerotrust.credentials.jwt import JWTVerifier
from zerotrust.errors import DependencyError, InvalidToken
from zerotrust.types import Credential

from .jwt_forge import ISSUER_A, KEYS, FakeClock, FakeIdP, base_claims, make_verifier, public_jwk, sign_token, token

JWKS_A = f"{ISSUER_A}/jwks"


@pytest.fixture
def idp() -> FakeIdP:
    return FakeIdP()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def verifier(idp: FakeIdP, clock: FakeClock) -> AsyncIterator[JWTVerifier]:
    v = make_verifier(idp, clock, cache_size=0)
    yield v
    await v.aclose()


async def verify(v: JWTVerifier, tok: str) -> str:
    return (await v.verify(Credential("bearer", tok))).subject


async def settle() -> None:
    for _ in range(5):  # let background refresh tasks run to completion
        await asyncio.sleep(0)


async def test_initial_outage_is_a_dependency_error_then_recovers(verifier: JWTVerifier, idp: FakeIdP,
                                                                   clock: FakeClock) -> None:
    idp.down = True
    with pytest.raises(DependencyError) as info:
        await verify(verifier, token())
    assert info.value.status == 503
    assert idp.count("/jwks") == 1
    # fail fast while the IdP is known to be down: no request per token
    with pytest.raises(DependencyError):
        await verify(verifier, token())
    assert idp.count("/jwks") == 1
    idp.down = False
    clock.advance(NO_KEYS_RETRY)
    assert await verify(verifier, token()) == "user-1"
    assert idp.count("/jwks") == 2


@pytest.mark.parametrize("response", [
    httpx.Response(200, text="<html>maintenance</html>"),
    httpx.Response(200, json={"keys": "none"}),
    httpx.Response(500, json={"keys": []}),
    httpx.Response(302, headers={"location": "https://attacker.example/jwks"}),
])
async def test_garbage_jwks_without_cache_fails_closed(verifier: JWTVerifier, idp: FakeIdP,
                                                        response: httpx.Response) -> None:
    idp.on_request = lambda request: response
    with pytest.raises(DependencyError):
        await verify(verifier, token())
    assert not any("attacker" in u for u in idp.requests)


async def test_outage_keeps_serving_cached_keys(verifier: JWTVerifier, idp: FakeIdP, clock: FakeClock,
                                                caplog: pytest.LogCaptureFixture) -> None:
    assert await verify(verifier, token()) == "user-1"
    idp.down = True
    clock.advance(301)  # past jwks_cache_ttl: a refresh is due, and fails
    caplog.set_level(logging.WARNING, "zerotrust.jwt.jwks")
    assert await verify(verifier, token(now=int(clock.now))) == "user-1"
    await settle()
    assert idp.count("/jwks") == 2
    assert "keeping cached keys" in caplog.text
    clock.advance(600)
    assert await verify(verifier, token(now=int(clock.now))) == "user-1"


async def test_unknown_kid_refetch_is_rate_limited(verifier: JWTVerifier, idp: FakeIdP, clock: FakeClock) -> None:
    await verify(verifier, token())
    assert idp.count("/jwks") == 1
    clock.advance(31)
    for _ in range(5):
        with pytest.raises(InvalidToken) as info:
            await verify(verifier, token(kid="unknown"))
        assert info.value.reason == "deny.jwt.unknown_key"
    assert idp.count("/jwks") == 2  # one refetch for five misses
    clock.advance(29)
    with pytest.raises(InvalidToken):
        await verify(verifier, token(kid="unknown"))
    assert idp.count("/jwks") == 2
    clock.advance(1)
    with pytest.raises(InvalidToken):
        await verify(verifier, token(kid="unknown"))
    assert idp.count("/jwks") == 3


async def test_new_key_is_found_by_unknown_kid_refetch(verifier: JWTVerifier, idp: FakeIdP,
                                                       clock: FakeClock) -> None:
    await verify(verifier, token())
    idp.jwks[JWKS_A].append(public_jwk(KEYS["rsa-a2"], "rsa-a2"))
    clock.advance(30)
    assert await verify(verifier, token("rsa-a2", now=int(clock.now))) == "user-1"


async def test_concurrent_misses_share_one_fetch(idp: FakeIdP, clock: FakeClock) -> None:
    idp.delay = 0.05
    v = make_verifier(idp, clock, cache_size=0)
    try:
        results = await asyncio.gather(*(verify(v, token()) for _ in range(20)))
        assert results == ["user-1"] * 20
        assert idp.count("/jwks") == 1
        clock.advance(31)
        idp.jwks[JWKS_A].append(public_jwk(KEYS["rsa-a2"], "rsa-a2"))
        tok = token("rsa-a2", now=int(clock.now))
        results = await asyncio.gather(*(verify(v, tok) for _ in range(20)))
        assert results == ["user-1"] * 20
        assert idp.count("/jwks") == 2
    finally:
        await v.aclose()


async def test_late_arrival_joins_the_first_fetch(idp: FakeIdP, clock: FakeClock) -> None:
    idp.delay = 0.05
    v = make_verifier(idp, clock, cache_size=0)
    try:
        first = asyncio.ensure_future(verify(v, token()))
        await asyncio.sleep(0.01)  # the fetch is now on the wire
        assert await verify(v, token()) == "user-1"
        assert await first == "user-1"
        assert idp.count("/jwks") == 1
    finally:
        await v.aclose()


async def test_cancelled_request_does_not_cancel_the_shared_fetch(idp: FakeIdP, clock: FakeClock) -> None:
    idp.delay = 0.05
    v = make_verifier(idp, clock, cache_size=0)
    try:
        first = asyncio.ensure_future(verify(v, token()))
        second = asyncio.ensure_future(verify(v, token()))
        await asyncio.sleep(0.01)
        first.cancel()
        assert await second == "user-1"
        assert idp.count("/jwks") == 1
    finally:
        await v.aclose()


async def test_removed_key_is_rejected_after_refresh(verifier: JWTVerifier, idp: FakeIdP,
                                                     clock: FakeClock) -> None:
    assert await verify(verifier, token("ec-a", "ES256")) == "user-1"
    idp.jwks[JWKS_A] = [j for j in idp.jwks[JWKS_A] if j["kid"] != "ec-a"]
    clock.advance(301)
    # stale-while-revalidate: this request still uses the cached set and starts the refresh
    assert await verify(verifier, token("ec-a", "ES256", now=int(clock.now))) == "user-1"
    await settle()
    with pytest.raises(InvalidToken) as info:
        await verify(verifier, token("ec-a", "ES256", now=int(clock.now)))
    assert info.value.reason == "deny.jwt.unknown_key"


async def test_empty_key_set_is_an_answer_not_an_outage(verifier: JWTVerifier, idp: FakeIdP) -> None:
    idp.jwks[JWKS_A] = []
    with pytest.raises(InvalidToken) as info:
        await verify(verifier, token())
    assert info.value.reason == "deny.jwt.unknown_key"


async def test_token_without_kid_tries_only_keys_for_its_alg(verifier: JWTVerifier) -> None:
    tok = sign_token({"alg": "EdDSA", "typ": "at+jwt"}, base_claims(), KEYS["ed-a"])
    assert await verify(verifier, tok) == "user-1"
    bad = sign_token({"alg": "RS256", "typ": "at+jwt"}, base_claims(), KEYS["rsa-small"])
    with pytest.raises(InvalidToken) as info:
        await verify(verifier, bad)
    assert info.value.reason == "deny.jwt.signature"


async def test_aclose_cancels_background_refresh(idp: FakeIdP, clock: FakeClock) -> None:
    v = make_verifier(idp, clock, cache_size=0)
    await verify(v, token())
    idp.delay = 5
    clock.advance(301)
    await verify(v, token(now=int(clock.now)))
    keys = v.issuers[ISSUER_A].keys
    assert keys._inflight is not None
    await asyncio.wait_for(v.aclose(), 1)
    assert keys._inflight is None
    assert v.client.is_closed
