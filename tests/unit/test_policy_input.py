import json
from pathlib import Path

import jsonschema
import pytest

from zerotrust.errors import ConfigError
from zerotrust.policy.input import INPUT_VERSION, InputBuilder, encode, input_hash
from zerotrust.types import Headers, Principal, RequestContext

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((ROOT / "docs" / "policy-input.schema.json").read_text())
TOKEN = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl"


def request(*headers, method="GET", path="/orders/1"):
    return RequestContext(method, path, Headers(headers), host="api.example.com", peer="192.0.2.7")


def alice(**kw):
    fields = dict(subject="alice", issuer="https://idp.example.com", kind="jwt",
                  scopes=frozenset({"b:write", "a:read"}), roles=frozenset({"viewer", "admin"}),
                  claims={"sub": "alice", "department": "sales"}, acr="urn:mfa", amr=("pwd", "otp"),
                  auth_time=1700000000, expires_at=1999999999.0, client_id="cli", credential_id="jti-1",
                  tenant="acme")
    fields.update(kw)
    return Principal(**fields)


def test_document_has_the_documented_shape():
    b = InputBuilder(["User-Agent", "x-tenant-id"])
    doc = b.build(request(("user-agent", "curl/8"), ("x-other", "no")), alice(), {"route": "orders", "risk_score": 0.2})
    jsonschema.validate(doc, SCHEMA)
    assert doc["version"] == INPUT_VERSION == 1
    assert doc["request"] == {"method": "GET", "path": "/orders/1", "host": "api.example.com",
                              "headers": {"user-agent": "curl/8"}, "peer": "192.0.2.7"}
    p = doc["principal"]
    assert p["scopes"] == ["a:read", "b:write"] and p["roles"] == ["admin", "viewer"]
    assert p["amr"] == ["pwd", "otp"] and p["tenant"] == "acme" and p["claims"]["department"] == "sales"
    assert doc["context"] == {"route": "orders", "source": None, "risk": {"score": 0.2, "level": None}}


def test_anonymous_is_null_and_valid():
    doc = InputBuilder().build(request(), None)
    jsonschema.validate(doc, SCHEMA)
    assert doc["principal"] is None and doc["request"]["headers"] == {}


def test_unknown_context_keys_never_reach_the_policy():
    doc = InputBuilder().build(request(), None, {"decision_id": "x", "token": TOKEN})
    assert TOKEN not in json.dumps(doc) and "decision_id" not in json.dumps(doc)


def test_repeated_headers_are_joined_not_chosen():
    doc = InputBuilder(["x-tenant-id"]).build(request(("X-Tenant-Id", "acme"), ("x-tenant-id", "evil")), None)
    assert doc["request"]["headers"] == {"x-tenant-id": "acme, evil"}


@pytest.mark.parametrize("name", ["authorization", "Authorization", "cookie", "proxy-authorization", "x-api-key",
                                  "dpop"])
def test_credential_headers_cannot_be_allow_listed(name):
    with pytest.raises(ConfigError, match="credentials"):
        InputBuilder(["user-agent", name])


def test_configured_api_key_header_cannot_be_allow_listed():
    with pytest.raises(ConfigError):
        InputBuilder(["X-Custom-Key"], forbidden=["x-custom-key"])


def test_raw_credential_never_in_the_input():
    b = InputBuilder(["user-agent"])
    doc = b.build(request(("authorization", f"Bearer {TOKEN}"), ("x-api-key", "zt_secret"), ("user-agent", "u")),
                  alice())
    text = encode(doc).decode()
    assert TOKEN not in text and "zt_secret" not in text


def test_key_equal_exactly_when_documents_equal():
    b = InputBuilder(["x-tenant-id"])
    base = b.key(request(("x-tenant-id", "acme")), alice())
    # equal documents, different objects -> equal keys
    assert b.key(request(("x-tenant-id", "acme"), ("user-agent", "ignored")), alice()) == base
    # every field of the document changes the key
    variants = [
        b.key(request(("x-tenant-id", "globex")), alice()),
        b.key(request(("x-tenant-id", "acme"), method="POST"), alice()),
        b.key(request(("x-tenant-id", "acme"), path="/orders/2"), alice()),
        b.key(request(), alice()),
        b.key(request(("x-tenant-id", "acme")), None),
        b.key(request(("x-tenant-id", "acme")), alice(scopes=frozenset({"a:read"}))),
        b.key(request(("x-tenant-id", "acme")), alice(tenant="globex")),
        b.key(request(("x-tenant-id", "acme")), alice(claims={"sub": "alice", "department": "hr"})),
        b.key(request(("x-tenant-id", "acme")), alice(acr=None)),
        b.key(request(("x-tenant-id", "acme")), alice(), {"risk_score": 0.9}),
        b.key(request(("x-tenant-id", "acme")), alice(), {"route": "r"}),
    ]
    assert all(v != base for v in variants)
    assert len(set(variants)) == len(variants)


def test_nested_claims_are_compared_by_value():
    b = InputBuilder()
    k1 = b.key(request(), alice(claims={"groups": ["a", "b"], "org": {"id": 1}}))
    k2 = b.key(request(), alice(claims={"groups": ["a", "b"], "org": {"id": 1}}))  # equal, another object
    k3 = b.key(request(), alice(claims={"groups": ["a", "b"], "org": {"id": 2}}))
    k4 = b.key(request(), alice(claims={"groups": ["a", "b"], "org": {"id": True}}))  # Rego: true != 1
    assert k1 == k2 and len({k1, k3, k4}) == 3


def test_input_hash_is_stable_and_short():
    doc = InputBuilder().build(request(), alice())
    assert input_hash(encode(doc)) == input_hash(encode(InputBuilder().build(request(), alice())))
    assert len(input_hash(b"x")) == 32
