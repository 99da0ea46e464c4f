"""JWTVerifier against a real authorization server: node ``oidc-provider`` issuing RFC 9068 JWT
access tokens for a resource indicator (RFC 8707), found through discovery.

Needs node and npm (skipped locally when missing, fails in CI); installs oidc-provider into a
temporary directory once per session.
"""

from __future__ import annotations

import base64
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from tests.support.procs import LOOPBACK, Service, free_port, require_binary
from zerotrust.config import JWTConfig
from zerotrust.credentials.jwt import JWTVerifier
from zerotrust.errors import InvalidToken
from zerotrust.types import Credential

pytestmark = pytest.mark.integration

OIDC_PROVIDER_VERSION = "9.13.3"
RESOURCE = "https://orders.api.example"
CLIENT_ID, CLIENT_SECRET = "orders-service", "integration-test-secret-0123456789abcdef"

SERVER_JS = r"""
import { readFileSync } from 'node:fs';
import Provider, { errors } from 'oidc-provider';

const port = Number(process.env.PORT);
const provider = new Provider(`http://127.0.0.1:${port}`, {
  jwks: JSON.parse(readFileSync(process.env.JWKS_FILE, 'utf8')),
  clients: [{
    client_id: process.env.CLIENT_ID, client_secret: process.env.CLIENT_SECRET,
    grant_types: ['client_credentials'], redirect_uris: [], response_types: [],
  }],
  scopes: ['orders:read', 'orders:write'],
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    resourceIndicators: {
      enabled: true,
      useGrantedResource: () => true,
      getResourceServerInfo: (ctx, resource) => {
        if (resource !== process.env.RESOURCE) throw new errors.InvalidTarget();
        return { scope: 'orders:read orders:write', audience: resource, accessTokenTTL: 300,
                 accessTokenFormat: 'jwt', jwt: { sign: { alg: 'ES256' } } };
      },
    },
  },
});
provider.listen(port, '127.0.0.1', () => console.log('listening'));
"""


def _b64(n: int, size: int | None = None) -> str:
    return base64.urlsafe_b64encode(n.to_bytes(size or (n.bit_length() + 7) // 8, "big")).rstrip(b"=").decode()


def _private_jwks() -> dict[str, Any]:
    eck = ec.generate_private_key(ec.SECP256R1()).private_numbers()
    rk = rsa.generate_private_key(65537, 2048).private_numbers()
    return {"keys": [
        {"kty": "EC", "crv": "P-256", "kid": "ec-1", "use": "sig", "x": _b64(eck.public_numbers.x, 32),
         "y": _b64(eck.public_numbers.y, 32), "d": _b64(eck.private_value, 32)},
        {"kty": "RSA", "kid": "rsa-1", "use": "sig", "n": _b64(rk.public_numbers.n), "e": _b64(rk.public_numbers.e),
         "d": _b64(rk.d), "p": _b64(rk.p), "q": _b64(rk.q), "dp": _b64(rk.dmp1), "dq": _b64(rk.dmq1),
         "qi": _b64(rk.iqmp)},
    ]}


@pytest.fixture(scope="session")
def idp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    node = require_binary("node", "install Node.js >= 20")
    npm = require_binary("npm", "install npm")
    work: Path = tmp_path_factory.mktemp("oidc-provider")
    (work / "package.json").write_text(json.dumps({"name": "zt-idp", "private": True, "type": "module"}))
    subprocess.run([npm, "install", "--no-audit", "--no-fund", "--silent", f"oidc-provider@{OIDC_PROVIDER_VERSION}"],
                   cwd=work, check=True, timeout=300, capture_output=True)
    (work / "server.mjs").write_text(SERVER_JS)
    (work / "jwks.json").write_text(json.dumps(_private_jwks()))
    port = free_port()
    env = {"PATH": str(Path(node).parent), "PORT": str(port), "JWKS_FILE": str(work / "jwks.json"),
           "CLIENT_ID": CLIENT_ID, "CLIENT_SECRET": CLIENT_SECRET, "RESOURCE": RESOURCE}
    service = Service("oidc-provider", [node, "server.mjs"], env=env, cwd=work).start()
    issuer = f"http://{LOOPBACK}:{port}"
    try:
        service.wait_http(f"{issuer}/.well-known/openid-configuration", timeout=30,
                          ok=lambda r: r.status_code == 200)
        yield issuer
    finally:
        service.stop()


def _access_token(issuer: str, **form: str) -> str:
    resp = httpx.post(f"{issuer}/token", auth=(CLIENT_ID, CLIENT_SECRET), timeout=10,
                      data={"grant_type": "client_credentials", "resource": RESOURCE, **form})
    assert resp.status_code == 200, resp.text
    return resp.json()["access_token"]


def _verifier(issuer: str, audience: str = RESOURCE) -> JWTVerifier:
    return JWTVerifier.from_config(JWTConfig.model_validate(
        {"issuers": [{"issuer": issuer, "audience": [audience], "algorithms": ["ES256"]}]}))


async def test_real_idp_token_verifies_via_discovery(idp: str) -> None:
    token = _access_token(idp, scope="orders:read")
    header = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
    assert header["typ"] == "at+jwt" and header["alg"] == "ES256"
    verifier = _verifier(idp)
    try:
        principal = await verifier.verify(Credential("bearer", token))
    finally:
        await verifier.aclose()
    assert principal.issuer == idp
    assert principal.client_id == CLIENT_ID
    assert principal.scopes == {"orders:read"}
    assert principal.claims["aud"] == RESOURCE
    assert principal.credential_id == principal.claims["jti"]


async def test_real_idp_token_for_another_audience_is_refused(idp: str) -> None:
    token = _access_token(idp, scope="orders:write")
    verifier = _verifier(idp, audience="https://billing.api.example")
    try:
        with pytest.raises(InvalidToken) as info:
            await verifier.verify(Credential("bearer", token))
    finally:
        await verifier.aclose()
    assert info.value.reason == "deny.jwt.audience"


async def test_real_idp_token_tampered_is_refused(idp: str) -> None:
    h, p, s = _access_token(idp, scope="orders:read").split(".")
    claims = json.loads(base64.urlsafe_b64decode(p + "=="))
    claims["scope"] = "orders:read orders:write"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    verifier = _verifier(idp)
    try:
        with pytest.raises(InvalidToken) as info:
            await verifier.verify(Credential("bearer", f"{h}.{forged}.{s}"))
    finally:
        await verifier.aclose()
    assert info.value.reason == "deny.jwt.signature"
