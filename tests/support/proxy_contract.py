"""What the proxy contract tests need to know about one proxy, and the checks they share.

``ProxyUnderTest`` holds only what differs between the shipped proxy configs. Its defaults
are the common answer; each test_<proxy>_e2e.py sets only its proxy's differences, with the
reason next to them, so a quirk is stated once instead of hiding in a copied test.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import httpx
import pytest

from .proxies import RunningProxy
from .upstream import UPSTREAM_MARK, RecordingUpstream

IDENTITY = ("x-auth-subject", "x-auth-scopes", "x-auth-issuer")
# What a client may try in order to pass as someone else; X_Auth_Subject is the CGI-mangling twin.
# X.Auth.Subject and mixed forms are twins too: some upstreams map every non-alphanumeric to one separator.
FORGED = [("X-Auth-Subject", "apikey:admin"), ("x-auth-subject", "root"), ("X-Auth-Scopes", "api:admin"),
          ("X-Auth-Issuer", "https://evil.example"), ("X_Auth_Subject", "root"), ("X-Auth_Scopes", "api:admin"),
          ("X.Auth.Subject", "root"), ("X-Auth.Scopes", "api:admin"), ("X.Auth-Issuer", "https://evil.example"),
          ("X-Zerotrust-Decision-Id", "forged")]


class AuthzSidecar(Protocol):
    """The sidecar a proxy asks: its decision log, and the down test stops and restarts it."""

    def decision(self, decision_id: str) -> dict[str, Any] | None: ...
    def stop(self) -> None: ...
    def start(self) -> None: ...


class Starter(Protocol):
    def __call__(self, sidecar_port: int, upstream_port: int, *, name: str = ...) -> RunningProxy: ...


@dataclass(frozen=True)
class ProxyUnderTest:
    running: RunningProxy
    sidecar: AuthzSidecar
    start: Starter                       # another copy of the shipped config, for the naive/hung authz variants
    decision_id_on_allow: bool = False   # the client's 200 carries X-Zerotrust-Decision-Id too
    # A denial's body and X-Zerotrust-* headers are the sidecar's own; else the proxy builds its own denial
    # (same status, challenge, decision id and no-store; a generic JSON "error" per status).
    relays_denial: bool = True
    down_status: int = 503               # what the client gets when the sidecar does not answer
    down_error: str | None = "temporarily_unavailable"  # that answer's JSON "error"; None: an empty body
    client_forwarded_for: bool = False   # the client's X-Forwarded-For reaches the sidecar (it trusts loopback)
    check_keeps_query: bool = False      # forward-auth: the check's own target keeps the client's query

    @property
    def forged(self) -> list[tuple[str, str]]:
        return FORGED

    @property
    def url(self) -> str:
        return self.running.url

    @property
    def port(self) -> int:
        return self.running.port


@dataclass(frozen=True)
class PathCase:
    target: str                # sent byte for byte; {t} is the test's marker
    who: str | None            # whose key, None for no credential
    status: int
    judged: str | None = None  # the path the sidecar judged and, on 200, the one the upstream got
    asked: bool | None = None  # the answer carries a decision id (True) or not (False); None: not pinned

    def __str__(self) -> str:
        return f"{self.target}-{self.who}"


def path_cases(*cases: PathCase) -> Callable[..., PathCase]:
    """A module's ``path_case`` fixture: the rows its proxy's path handling must meet."""
    @pytest.fixture(params=cases, ids=str)
    def path_case(request: pytest.FixtureRequest) -> PathCase:
        return request.param
    return path_case


def mark() -> str:
    return secrets.token_hex(6)


def key(value: str) -> dict[str, str]:
    return {"X-API-Key": value}


def identity_like(headers: tuple[tuple[str, str], ...]) -> list[tuple[str, str]]:
    """Headers a CGI-style upstream would read as an identity header (X_Auth_Subject, X.Auth.Subject...)."""
    def cgi(name: str) -> str:
        return "".join(c if c.isalnum() else "-" for c in name.lower())
    return [(k, v) for k, v in headers if cgi(k) in IDENTITY or cgi(k) == "x-zerotrust-decision-id"]


def assert_never_reached(upstream: RecordingUpstream, token: str, response: httpx.Response) -> None:
    assert response.headers.get(UPSTREAM_MARK) is None
    assert upstream.requests(token) == []


def assert_denied(r: httpx.Response, status: int, upstream: RecordingUpstream, token: str) -> None:
    """The sidecar's denial reached the client intact: status, JSON body, no-store, decision id."""
    assert r.status_code == status
    assert_never_reached(upstream, token, r)
    assert r.headers["content-type"] == "application/json" and r.headers["cache-control"] == "no-store"
    assert r.json()["decision_id"] and r.json()["decision_id"] == r.headers["x-zerotrust-decision-id"]


def assert_unavailable(proxy: ProxyUnderTest, r: httpx.Response) -> None:
    """The sidecar did not answer: the proxy's own failure answer, never an allow, never a challenge."""
    assert r.status_code == proxy.down_status
    assert "www-authenticate" not in r.headers
    if proxy.down_error is None:
        assert r.content == b""
    else:
        assert r.json()["error"] == proxy.down_error
