"""End to end through zerotrust.factory.build_pipeline: a parsed config, a fake IdP, real tokens."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from zerotrust.config import parse_config
from zerotrust.credentials.jwt import JWTVerifier
from zerotrust.factory import build_pipeline
from zerotrust.pipeline import Pipeline
from zerotrust.types import Headers, RequestContext

from .jwt_forge import NOW, FakeClock, FakeIdP, token

CONFIG = """
server:
  realm: orders-api
audit:
  output: none
jwt:
  issuers:
    - issuer: https://issuer-a.example
      audience: [https://api.example]
      jwks_uri: https://issuer-a.example/jwks
      algorithms: [RS256, ES256]
policy:
  rules:
    - id: health
      paths: [/health]
      anonymous: true
    - id: orders-read
      methods: [GET]
      paths: [/orders/**]
      scopes: [orders:read]
    - id: admin
      paths: [/admin/**]
      scopes: [admin]
"""


class Sink:
    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []

    def emit(self, record: dict[str, Any]) -> None:
        self.records.append(record)


@pytest.fixture
def idp() -> FakeIdP:
    return FakeIdP()


@pytest.fixture
async def pipeline(idp: FakeIdP, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Pipeline]:
    clock = FakeClock()
    original = JWTVerifier.from_config.__func__  # type: ignore[attr-defined]

    def with_fake_idp(cls: type[JWTVerifier], cfg: Any) -> JWTVerifier:
        return original(cls, cfg, transport=idp.transport(), now=clock.time, clock=clock.mono)

    monkeypatch.setattr(JWTVerifier, "from_config", classmethod(with_fake_idp))
    p = build_pipeline(parse_config(CONFIG, env={}), sinks=[Sink()])
    assert any(isinstance(v, JWTVerifier) for v in p.verifiers)
    yield p
    await p.aclose()


def request(path: str, tok: str | None = None, method: str = "GET") -> RequestContext:
    headers = [("authorization", f"Bearer {tok}")] if tok else []
    return RequestContext(method=method, path=path, headers=Headers(headers))


async def test_allow_with_scope(pipeline: Pipeline) -> None:
    d = await pipeline.evaluate(request("/orders/7", token()))
    assert (d.allow, d.status) == (True, 200)
    assert d.principal is not None and d.principal.subject == "user-1"
    assert ("X-Auth-Subject", "user-1") in d.upstream_headers
    assert ("X-Auth-Issuer", "https://issuer-a.example") in d.upstream_headers


async def test_no_token_is_a_bare_challenge(pipeline: Pipeline) -> None:
    d = await pipeline.evaluate(request("/orders/7"))
    assert (d.allow, d.status) == (False, 401)
    assert d.challenge == 'Bearer realm="orders-api"'


@pytest.mark.parametrize("tok,description", [
    (lambda: token(exp=NOW - 100, iat=NOW - 1000), "The token is expired"),
    (lambda: token(aud="https://elsewhere.example"), "The token audience is not accepted"),
    (lambda: token(header={"alg": "HS256"}, kid="rsa-a").rsplit(".", 1)[0] + ".c2ln", "The token algorithm is not acceptable"),
    (lambda: token("rsa-b", kid="rsa-a"), "The token signature is invalid"),
    (lambda: token(iss="https://attacker.example"), "The token issuer is not trusted"),
])
async def test_invalid_token_challenge(pipeline: Pipeline, tok: Any, description: str) -> None:
    t = tok()
    d = await pipeline.evaluate(request("/orders/7", t))
    assert (d.allow, d.status, d.error_code) == (False, 401, "invalid_token")
    assert d.challenge == f'Bearer realm="orders-api", error="invalid_token", error_description="{description}"'
    assert d.reason.startswith("deny.jwt.")
    assert not any(len(s) > 8 and s in d.challenge for s in t.split("."))
    record = pipeline.sinks[0].records[-1]  # type: ignore[attr-defined]
    assert record["reason"] == d.reason and record["credential_kind"] == "bearer"
    assert not any(len(s) > 8 and s in str(record) for s in t.split("."))


async def test_insufficient_scope(pipeline: Pipeline) -> None:
    d = await pipeline.evaluate(request("/admin/users", token()))
    assert (d.allow, d.status, d.error_code) == (False, 403, "insufficient_scope")
    assert d.challenge is not None
    assert d.challenge.startswith('Bearer realm="orders-api", error="insufficient_scope"')
    assert 'scope="admin"' in d.challenge
    d = await pipeline.evaluate(request("/admin/users", token(scope="admin"), method="DELETE"))
    assert (d.allow, d.status) == (True, 200)


async def test_jwks_outage_at_start_is_503(pipeline: Pipeline, idp: FakeIdP) -> None:
    idp.down = True
    d = await pipeline.evaluate(request("/orders/7", token()))
    assert (d.allow, d.status) == (False, 503)
    assert d.challenge is None
    d = await pipeline.evaluate(request("/health"))
    assert d.allow  # anonymous routes keep working while the IdP is down


async def test_jwe_and_garbage_never_500(pipeline: Pipeline) -> None:
    for t in ("a.b.c.d.e", "eyJ.eyJ.x", "x.y.z"):
        d = await pipeline.evaluate(request("/orders/7", t))
        assert (d.status, d.error_code) == (401, "invalid_token")
