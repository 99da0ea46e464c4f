"""Validly signed (or unsigned) JWTs with hostile headers and claims, from tests/data/hostile/jwt_signed.json.

We play the IdP: the signature is right, so only the documented header and claim checks
(docs/jwt.md, "What is rejected") stand between these tokens and a 200. Every case goes to
a protected path and to the anonymous ``/public/x``: a broken credential is never
downgraded to anonymous (docs/security.md, principle 3).
"""

from __future__ import annotations

import json
import string
import time
from typing import Any

import pytest

from tests.support.hostile import (
    AUDIENCE, DATA, DENY, ISS_A, ISS_B, MARK, HostileEnv, Keyring, RawResponse, assert_denied, claims, forge,
    get, hostile, keyring,
)

pytestmark = pytest.mark.integration
__all__ = ["hostile"]  # the session fixture, imported so that pytest sees it here

CASES = json.loads((DATA / "jwt_signed.json").read_text())["cases"]
# Known product bugs: case id -> what is wrong (each one is reported; strict, so a fix turns it green).
KNOWN_BUGS: dict[str, str] = {}


def _value(v: Any, now: float) -> Any:
    """Resolve the JSON helpers ({"$now": n}, {"$nowf": n}, {"$repeat": [s, n]}) recursively."""
    if isinstance(v, dict):
        if set(v) == {"$now"}:
            return int(now) + v["$now"]
        if set(v) == {"$nowf"}:
            return int(now) + v["$nowf"] + 0.5
        if set(v) == {"$repeat"}:
            return v["$repeat"][0] * v["$repeat"][1]
        return {k: _value(x, now) for k, x in v.items()}
    if isinstance(v, list):
        return [_value(x, now) for x in v]
    return v


def _merge(base: dict[str, Any], changes: dict[str, Any], now: float) -> dict[str, Any]:
    out = dict(base)
    for k, v in changes.items():
        if v == "$remove":
            out.pop(k, None)
        else:
            out[k] = _value(v, now)
    return out


def build(case: dict[str, Any], env: HostileEnv) -> str:
    """The token for one data case, signed by hand (pyca/cryptography) with the keyring key it names."""
    now = time.time()
    name = case.get("key", "a_rsa")
    kid, alg = Keyring.KIDS[name]
    payload = claims(ISS_B if name.startswith("b_") else ISS_A)
    for k in case.get("unset", []):
        payload.pop(k)
    payload = _merge(payload, case.get("set", {}), now)
    header = _merge({"alg": alg, "kid": kid, "typ": "at+jwt"}, case.get("header", {}), now)
    base = {k: v for k, v in payload.items() if k not in case.get("raw_omits", [])}
    fields = {"base": json.dumps(base, separators=(",", ":"))[1:-1], "iss": ISS_A, "iss_b": ISS_B, "aud": AUDIENCE,
              "now": str(int(now)), "exp": str(int(now) + 600), "iat": str(int(now) - 5), "mark": MARK,
              "idp": env.idp.url, "deep": "[" * 2000 + "]" * 2000, "bigint": "9" * 400}
    encoding = case.get("encoding", "utf-8")

    def text(template: str) -> bytes:
        return string.Template(template).safe_substitute(fields).encode(encoding)

    raw_header = text(case.get("raw_header") or json.dumps(header, ensure_ascii=False, separators=(",", ":")))
    raw_payload = text(case["raw_payload"] if "raw_payload" in case
                       else json.dumps(payload, ensure_ascii=False, separators=(",", ":")))
    if case.get("unsigned"):
        return forge(raw_header, raw_payload)
    return forge(raw_header, raw_payload, getattr(keyring(), name), case.get("sign_alg", alg))


def assert_sane_allow(resp: RawResponse) -> None:
    """A 200 for an IdP-signed oddity: identity headers present once, printable ASCII, nothing injected."""
    assert resp.status == 200, resp.raw[:300]
    for name in ("x-auth-subject", "x-auth-issuer"):
        values = resp.all(name)
        assert len(values) == 1 and all(32 <= ord(c) < 127 for c in values[0]), (name, values)
    assert resp.header("x-injected") is None, resp.raw[:400]


@pytest.mark.parametrize("case", [pytest.param(c, id=c["id"], marks=[pytest.mark.xfail(
    strict=True, reason=KNOWN_BUGS[c["id"]])] if c["id"] in KNOWN_BUGS else []) for c in CASES])
def test_signed_hostile_token(hostile: HostileEnv, case: dict[str, Any]) -> None:
    tok = build(case, hostile)
    auth = {"Authorization": f"Bearer {tok}"}
    expect = case.get("expect", "deny")
    protected = get(hostile.port, "/data", auth)
    if expect == "allow":  # positive control: the harness can tell a pass from a refusal
        assert protected.status == 200 and protected.header("x-auth-subject") == "alice", protected.raw[:400]
        return
    anonymous_ok = get(hostile.port, "/public/x", auth)
    for resp in (protected, anonymous_ok):
        assert resp.status < 500, resp.raw[:400]
        if resp.status == 200 and (expect == "either" or (expect == "forbidden" and resp is anonymous_ok)):
            assert_sane_allow(resp)
        else:
            assert_denied(resp, secret=tok.rsplit(".", 1)[-1], allowed=DENY)


def test_still_serving_after_signed_barrage(hostile: HostileEnv) -> None:
    hostile.still_serving()
