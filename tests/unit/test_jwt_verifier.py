"""JWTVerifier as a CredentialVerifier: what it accepts, several issuers, and no crash on hostile input."""

from __future__ import annotations

import base64
import json
import logging
import random
from collections.abc import AsyncIterator

import pytest

from zerotrust.credentials.jwt import JWTVerifier
from zerotrust.errors import InvalidToken
from zerotrust.interfaces import CredentialVerifier
from zerotrust.types import Credential

from .jwt_forge import ISSUER_A, ISSUER_B, FakeClock, FakeIdP, b64u, make_verifier, token


@pytest.fixture
async def verifier() -> AsyncIterator[JWTVerifier]:
    v = make_verifier(FakeIdP(), FakeClock(), cache_size=0)
    yield v
    await v.aclose()


def test_protocol_and_accepts(verifier: JWTVerifier) -> None:
    assert isinstance(verifier, CredentialVerifier)
    assert verifier.kind == "jwt"
    assert verifier.accepts(Credential("bearer", "a.b.c"))
    assert verifier.accepts(Credential("bearer", "a.b.c.d.e"))  # JWE: ours, to be refused
    assert not verifier.accepts(Credential("bearer", "a.b"))
    assert not verifier.accepts(Credential("bearer", "a.b.c.d"))
    assert not verifier.accepts(Credential("bearer", "opaque-token"))
    assert not verifier.accepts(Credential("api_key", "a.b.c"))


def test_issuers_share_one_http_client(verifier: JWTVerifier) -> None:
    assert set(verifier.issuers) == {ISSUER_A, ISSUER_B}
    assert all(i.keys._client is verifier.client for i in verifier.issuers.values())


async def test_several_issuers_each_with_own_keys(verifier: JWTVerifier) -> None:
    a = await verifier.verify(Credential("bearer", token()))
    b = await verifier.verify(Credential("bearer", token("rsa-b", kid="rsa-a", issuer=ISSUER_B)))
    assert (a.issuer, b.issuer) == (ISSUER_A, ISSUER_B)


async def test_unexpected_errors_become_invalid_token(verifier: JWTVerifier, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*a: object) -> None:
        raise KeyError("bug")

    monkeypatch.setattr(verifier.issuers[ISSUER_A].policy, "validate", boom)
    with pytest.raises(InvalidToken) as info:
        await verifier.verify(Credential("bearer", token()))
    assert info.value.reason == "deny.jwt.malformed"


ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def _fuzz_tokens(seed: int = 7) -> list[str]:
    rnd = random.Random(seed)
    good = token()
    out: list[str] = []
    for _ in range(400):  # single-character substitutions anywhere in a valid token
        i = rnd.randrange(len(good))
        out.append(good[:i] + rnd.choice(ALPHABET + ".=+/ ") + good[i + 1:])
    for _ in range(200):  # random segments
        out.append(".".join("".join(rnd.choice(ALPHABET) for _ in range(rnd.randrange(0, 40))) for _ in range(3)))
    headers = [{"alg": rnd.choice(["RS256", "none", "HS256", "ES256", 1, None, [], {}]),
                "kid": rnd.choice(["rsa-a", 1, None, "x" * 700, ""]),
                "typ": rnd.choice(["at+jwt", None, 5, "JWT"])} for _ in range(100)]
    bodies = [{"iss": rnd.choice([ISSUER_A, ISSUER_B, 5, None]), "exp": rnd.choice([1, "x", 10**400, 1e308]),
               "aud": rnd.choice(["https://api.example", [], [1], {}]), "sub": rnd.choice(["s", 1])}
              for _ in range(100)]
    for h, p in zip(headers, bodies):
        text = json.dumps(p).replace("Infinity", "1e999")
        out.append(f"{b64u(json.dumps(h).encode())}.{b64u(text.encode())}.{b64u(rnd.randbytes(64))}")
    out += ["..", "a..", ".b.", "..c", "\x00.\x00.\x00", "é.é.é", "a.b.c" * 2000, base64.b64encode(b"{}").decode()]
    return out


async def test_fuzzed_tokens_only_ever_raise_invalid_token(verifier: JWTVerifier,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    good = token()
    for tok in _fuzz_tokens():
        if tok == good:
            continue
        try:
            await verifier.verify(Credential("bearer", tok))
        except InvalidToken as err:
            assert err.status == 401 and err.reason.startswith("deny.jwt.")
        else:
            # a substitution in the last signature character can leave the bytes unchanged? never: canonical only
            pytest.fail(f"accepted a mutated token ({tok[:20]}...)")
    segments = {s for s in good.split(".") if len(s) > 8}
    assert not any(s in caplog.text for s in segments)


async def test_jwe_is_refused_as_invalid_token(verifier: JWTVerifier) -> None:
    jwe = b64u(b'{"alg":"dir","enc":"A128GCM"}') + "..aXY.Y3Q.dGFn"
    cred = Credential("bearer", jwe)
    assert verifier.accepts(cred)
    with pytest.raises(InvalidToken) as info:
        await verifier.verify(cred)
    assert info.value.reason == "deny.jwt.encrypted"


async def test_only_verified_tokens_take_header_memo_slots(verifier: JWTVerifier) -> None:
    from zerotrust.credentials import jws

    jws._HEADER_MEMO.clear()
    forged = token("rsa-b", kid="rsa-a", header={"x-attacker": "1"})
    with pytest.raises(InvalidToken):
        await verifier.verify(Credential("bearer", forged))
    assert not jws._HEADER_MEMO
    good = token(header={"x-issuer": "1"})
    await verifier.verify(Credential("bearer", good))
    assert list(jws._HEADER_MEMO) == [good.split(".")[0]]
    await verifier.verify(Credential("bearer", good))  # served from the memo
    jws._HEADER_MEMO.clear()


async def test_oversize_is_refused_before_hashing(verifier: JWTVerifier, monkeypatch: pytest.MonkeyPatch) -> None:
    v = make_verifier(FakeIdP(), FakeClock(), cache_size=10)

    def no_hash(self: Credential) -> bytes:
        raise AssertionError("hashed an oversize token")

    monkeypatch.setattr(Credential, "digest", property(no_hash))  # the cache key is the credential's digest
    try:
        with pytest.raises(InvalidToken) as info:
            await v.verify(Credential("bearer", "a" * 9000 + ".b.c"))
        assert info.value.reason == "deny.jwt.too_large"
    finally:
        await v.aclose()
