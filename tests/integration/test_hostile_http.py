"""HTTP-level abuse written byte for byte (tests/data/hostile/http.json) plus identity-header spoofing.

httpx would refuse or normalise most of these requests, so they go over a raw socket. The
statuses a case may get are in the data file; ``server: true`` marks the ones the HTTP server
(uvicorn + httptools) refuses before the app runs. Whatever the layer, the answer is never a
200 for a request that tries to get past the policy, never a 5xx, and never echoes the marker.
"""

from __future__ import annotations

import json
import socket
import string
from typing import Any

import pytest

from tests.support.hostile import (
    DATA, LOOPBACK, MARK, HostileEnv, assert_denied, claims, exchange, forge, get, hostile, keyring, token,
)

pytestmark = pytest.mark.integration
__all__ = ["hostile"]

CASES = json.loads((DATA / "http.json").read_text())["cases"]
KNOWN_BUGS: dict[str, str] = {}  # all found so far are fixed; add ids here with a precise reason
IDENTITY = ("x-auth-subject", "x-auth-scopes", "x-auth-issuer")


def render(case: dict[str, Any], env: HostileEnv) -> tuple[bytes, str]:
    """The request bytes, and the credential whose bytes must not come back."""
    forged = forge({"alg": "RS256", "kid": "a-rsa", "typ": "at+jwt"}, claims(sub=MARK), keyring().evil_rsa)
    fields = {"host": f"{LOOPBACK}:{env.port}", "valid": token(), "key": env.keys["reader"], "forged": forged,
              "mark": MARK, "pad100k": "a" * 100_000, "longpath": "a" * 60_000, "longdots": "../" * 5000,
              "headers500": "".join(f"X-Junk-{i}: {i}\r\n" for i in range(500)),
              "auth500": "".join(f"Authorization: Bearer {forged}\r\n" for _ in range(500))}
    body = string.Template(case.get("body", "")).substitute(fields).encode("latin-1")
    fields.update(body_len=str(len(body)), body_hex=f"{len(body):x}")
    return string.Template(case["request"]).substitute(fields).encode("latin-1") + body, forged


def assert_no_further_answer(port_request: tuple[int, bytes], count: int) -> None:
    """Read past the expected answers: a desync would show up as one more."""
    port, request = port_request
    with socket.create_connection((LOOPBACK, port), timeout=0.5) as sock:
        sock.sendall(request)
        data = b""
        try:
            while chunk := sock.recv(65536):
                data += chunk
        except (TimeoutError, socket.timeout, ConnectionResetError):
            pass
    assert data.count(b"HTTP/1.1 ") <= count, data[:600]


@pytest.mark.parametrize("case", [pytest.param(c, id=c["id"], marks=[pytest.mark.xfail(
    strict=True, reason=KNOWN_BUGS[c["id"]])] if c["id"] in KNOWN_BUGS else []) for c in CASES])
def test_raw_request_is_refused(hostile: HostileEnv, case: dict[str, Any]) -> None:
    request, forged = render(case, hostile)
    answers = exchange(hostile.port, request, responses=len(case["expect"]))
    assert answers, "no answer at all"
    for i, (resp, allowed) in enumerate(zip(answers, case["expect"])):
        assert resp.status in allowed, f"answer {i}: {resp.status} not in {allowed}: {resp.raw[:300]!r}"
        if resp.status == 200:  # only the positive controls inside pipelined cases
            assert MARK.encode() not in resp.raw and b"x-auth-subject: " + MARK.encode() not in resp.raw
            continue
        if resp.status:
            assert_denied(resp, secret=forged[-16:], allowed=frozenset(allowed))
        if case.get("server"):
            assert resp.header("x-zerotrust-decision-id") is None, "expected the HTTP server, not the app"
    if case.get("exact"):
        assert_no_further_answer((hostile.port, request), len(case["expect"]))


def _spoofed(env: HostileEnv) -> dict[str, str]:
    return {"X-Auth-Subject": f"admin-{MARK}", "X-Auth-Scopes": f"api:admin {MARK}", "X-Auth-Issuer": MARK}


def test_spoofed_identity_headers_on_an_anonymous_allow_are_not_reflected(hostile: HostileEnv) -> None:
    resp = get(hostile.port, "/public/x", _spoofed(hostile))
    assert resp.status == 200 and MARK.encode() not in resp.raw, resp.raw[:400]
    assert all(resp.header(h) is None for h in IDENTITY)
    removed = {h.strip() for h in (resp.header("x-envoy-auth-headers-to-remove") or "").split(",")}
    assert set(IDENTITY) <= removed, removed  # the proxy is told to strip the client's copies


@pytest.mark.parametrize("credential", ["key", "jwt"])
def test_spoofed_identity_headers_with_a_valid_credential_are_overwritten(hostile: HostileEnv,
                                                                          credential: str) -> None:
    auth = {"X-API-Key": hostile.keys["reader"]} if credential == "key" else {"Authorization": f"Bearer {token()}"}
    resp = get(hostile.port, "/data", {**_spoofed(hostile), **auth})
    assert resp.status == 200 and MARK.encode() not in resp.raw, resp.raw[:400]
    assert [len(resp.all(h)) for h in IDENTITY] == [1, 1, 1]
    assert resp.header("x-auth-subject") == ("apikey:reader" if credential == "key" else "alice")


@pytest.mark.parametrize("path", ["/data", "/admin/x", "/public/x"])
def test_spoofed_identity_headers_with_a_forged_token_are_refused(hostile: HostileEnv, path: str) -> None:
    forged = forge({"alg": "RS256", "kid": "a-rsa", "typ": "at+jwt"}, claims(), keyring().evil_rsa)
    resp = get(hostile.port, path, {**_spoofed(hostile), "Authorization": f"Bearer {forged}"})
    assert_denied(resp, secret=forged[-16:], allowed=frozenset({401}))


def test_still_serving_after_http_barrage(hostile: HostileEnv) -> None:
    hostile.still_serving()

