"""RFC 8414 / OpenID Connect discovery of an issuer's jwks_uri: exact issuer match, no redirects, caps."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from zerotrust.credentials import discovery
from zerotrust.credentials.discovery import FetchError, discover_jwks_uri, metadata_urls, trusted_url
from zerotrust.errors import DependencyError
from zerotrust.types import Credential

from .jwt_forge import ISSUER_B, FakeClock, FakeIdP, make_verifier, token

RFC8414_B = "https://issuer-b.example/.well-known/oauth-authorization-server/tenant"
OIDC_B = "https://issuer-b.example/tenant/.well-known/openid-configuration"


def b_token() -> str:
    return token("rsa-b", kid="rsa-a", issuer=ISSUER_B)


@pytest.mark.parametrize("issuer,expected", [
    ("https://a.example", ["https://a.example/.well-known/oauth-authorization-server",
                           "https://a.example/.well-known/openid-configuration"]),
    ("https://a.example/t/1", ["https://a.example/.well-known/oauth-authorization-server/t/1",
                               "https://a.example/t/1/.well-known/openid-configuration"]),
    ("http://127.0.0.1:8080/", ["http://127.0.0.1:8080/.well-known/oauth-authorization-server",
                                "http://127.0.0.1:8080/.well-known/openid-configuration"]),
])
def test_metadata_urls(issuer: str, expected: list[str]) -> None:
    assert metadata_urls(issuer) == expected


@pytest.mark.parametrize("url,ok", [("https://a.example/jwks", True), ("http://127.0.0.1:9/jwks", True),
                                    ("http://a.example/jwks", False), ("https:///jwks", False),
                                    ("file:///etc/passwd", False), (None, False), (5, False),
                                    # prefix look-alikes of loopback, and credentials in the URL
                                    ("http://localhost.evil.example/jwks", False),
                                    ("http://127.0.0.1.evil.example/jwks", False),
                                    ("http://localhost@evil.example/jwks", False),
                                    ("https://user:pw@evil.example/k", False)])
def test_trusted_url(url: object, ok: bool) -> None:
    assert trusted_url(url) is ok


async def verify_b(idp: FakeIdP) -> str:
    v = make_verifier(idp, FakeClock(), cache_size=0)
    try:
        return (await v.verify(Credential("bearer", b_token()))).issuer
    finally:
        await v.aclose()


async def test_rfc8414_first() -> None:
    idp = FakeIdP()
    assert await verify_b(idp) == ISSUER_B
    assert idp.requests == [RFC8414_B, "https://issuer-b.example/keys"]


async def test_falls_back_to_openid_configuration() -> None:
    idp = FakeIdP()
    idp.metadata = {OIDC_B: {"issuer": ISSUER_B, "jwks_uri": "https://issuer-b.example/keys"}}
    assert await verify_b(idp) == ISSUER_B
    assert idp.requests == [RFC8414_B, OIDC_B, "https://issuer-b.example/keys"]


@pytest.mark.parametrize("claimed", [ISSUER_B + "/", "https://issuer-b.example", "https://ISSUER-B.example/tenant",
                                     None, ["https://issuer-b.example/tenant"]])
async def test_issuer_mismatch_is_never_used(claimed: object) -> None:
    idp = FakeIdP()
    evil = {"issuer": claimed, "jwks_uri": "https://attacker.example/keys"}
    idp.metadata = {RFC8414_B: evil, OIDC_B: evil}
    with pytest.raises(DependencyError):
        await verify_b(idp)
    assert "https://attacker.example/keys" not in idp.requests


async def test_mismatching_rfc8414_document_falls_through_to_a_matching_oidc_one() -> None:
    idp = FakeIdP()
    idp.metadata = {RFC8414_B: {"issuer": "https://other.example", "jwks_uri": "https://attacker.example/keys"},
                    OIDC_B: {"issuer": ISSUER_B, "jwks_uri": "https://issuer-b.example/keys"}}
    assert await verify_b(idp) == ISSUER_B
    assert "https://attacker.example/keys" not in idp.requests


@pytest.mark.parametrize("jwks_uri", ["http://issuer-b.example/keys", "ftp://issuer-b.example/keys", None, 42])
async def test_untrusted_jwks_uri_rejected(jwks_uri: object) -> None:
    idp = FakeIdP()
    idp.metadata = {RFC8414_B: {"issuer": ISSUER_B, "jwks_uri": jwks_uri}}
    with pytest.raises(DependencyError):
        await verify_b(idp)


async def test_redirects_are_not_followed() -> None:
    idp = FakeIdP()
    idp.on_request = lambda r: (httpx.Response(301, headers={"location": "https://attacker.example/meta"})
                                if "well-known" in str(r.url) else None)
    with pytest.raises(DependencyError):
        await verify_b(idp)
    assert not any("attacker" in u for u in idp.requests)


async def test_documents_are_capped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(discovery, "MAX_DOCUMENT_BYTES", 1000)
    transport = httpx.MockTransport(lambda r: httpx.Response(200, json={"issuer": "x", "pad": "y" * 5000}))
    async with httpx.AsyncClient(transport=transport) as client:
        with pytest.raises(FetchError, match="larger than"):
            await discover_jwks_uri(client, "https://a.example", 1.0)


async def test_jwks_failure_triggers_rediscovery() -> None:
    idp, clock = FakeIdP(), FakeClock()
    v = make_verifier(idp, clock, cache_size=0)
    try:
        await v.verify(Credential("bearer", b_token()))
        idp.down = True
        clock.advance(400)
        await v.verify(Credential("bearer", token("rsa-b", kid="rsa-a", issuer=ISSUER_B, now=int(clock.now))))
        for _ in range(5):
            await asyncio.sleep(0)
        idp.down = False
        clock.advance(400)
        await v.verify(Credential("bearer", token("rsa-b", kid="rsa-a", issuer=ISSUER_B, now=int(clock.now))))
        for _ in range(5):
            await asyncio.sleep(0)
        keys = "https://issuer-b.example/keys"
        # discovery, JWKS, failed JWKS refresh (forgets the jwks_uri), then discovery again and JWKS
        assert idp.requests == [RFC8414_B, keys, keys, RFC8414_B, keys]
    finally:
        await v.aclose()
