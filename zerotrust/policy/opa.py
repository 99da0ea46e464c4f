"""Decisions from a real OPA server over its REST Data API (``POST /v1/data/<path>``).

Fail closed: OPA unreachable, slow, answering non-200 or something that is not a
decision document -> :class:`DependencyError` (503). An *undefined* decision (no
``result``: wrong path, package not loaded) is a deny, exactly as in the embedded
engine. Connections are pooled and re-made on demand, so once OPA is back the next
request simply works; there is no broken state to restart out of.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from typing import Any
from urllib.parse import urlsplit

from ..errors import ConfigError, DependencyError
from ..types import PolicyResult, Principal, RequestContext
from .input import InputBuilder, encode, input_hash
from .opa_http import ProtocolError, Transport, transport_for
from .output import MalformedDecision, parse_decision, undefined_decision

log = logging.getLogger("zerotrust.policy.opa")

DEFAULT_DECISION_PATH = "zerotrust/authz/decision"
_SEGMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*\Z")


def data_path(decision_path: str) -> str:
    segments = decision_path.strip("/").split("/")
    if not all(_SEGMENT.match(s) for s in segments):
        raise ConfigError(f"policy.opa.decision_path {decision_path!r} is not a path of Rego identifiers")
    return "/v1/data/" + "/".join(segments)


class OPAPolicyEngine:
    name = "opa"

    def __init__(self, url: str, *, decision_path: str = DEFAULT_DECISION_PATH, timeout: float = 0.25,
                 builder: InputBuilder | None = None, transport: Transport | None = None) -> None:
        try:
            default_transport, prefix = transport_for(url)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        self.url = url
        host = urlsplit(url).hostname
        if url.startswith("http://") and host not in ("127.0.0.1", "localhost", "::1"):
            # The input holds claims; a mesh may encrypt this hop, we cannot tell.
            log.warning("policy.opa.url %s is plain HTTP to a non-loopback host: the policy input travels in clear",
                        url)
        self.decision_path = decision_path.strip("/")
        # ?provenance makes OPA name its bundle revisions, which key the decision cache.
        self._path = prefix + data_path(decision_path) + "?provenance"
        self._health = prefix + "/health?bundles"  # 200 once every configured bundle is activated
        self.timeout = timeout
        self.builder = builder or InputBuilder()
        self.transport: Transport = transport or default_transport
        self.revision = ""
        self.errors = 0
        self.undefined = 0

    async def decide(self, request: RequestContext, principal: Principal | None,
                     context: dict[str, Any] | None = None) -> PolicyResult:
        document = encode(self.builder.build(request, principal, context))
        ihash = input_hash(document)  # of the input alone, as the Rego engine hashes it
        payload = await self._query(b'{"input":' + document + b"}")
        self.revision = _revision(payload.get("provenance")) or self.revision
        if "result" not in payload:
            return undefined_decision(self, self.decision_path, ihash)
        try:
            return parse_decision(payload["result"], engine=self.name, revision=self.revision, input_hash=ihash)
        except MalformedDecision as exc:
            raise self._failed(f"OPA decision is malformed: {exc}") from None

    async def _query(self, body: bytes) -> dict[str, Any]:
        try:
            status, data = await self.transport.post(self._path, body, self.timeout)
        except (OSError, TimeoutError, asyncio.IncompleteReadError, ProtocolError) as exc:
            raise self._failed(f"OPA unreachable: {type(exc).__name__}") from None
        except Exception as exc:  # e.g. httpx.HTTPError: same meaning
            raise self._failed(f"OPA request failed: {type(exc).__name__}") from None
        if status != 200:
            raise self._failed(f"OPA answered HTTP {status}")
        try:
            payload = json.loads(data)
        except ValueError:
            raise self._failed("OPA answered something that is not JSON") from None
        if not isinstance(payload, dict):
            raise self._failed("OPA answered JSON that is not an object")
        return payload

    def _failed(self, detail: str) -> DependencyError:
        self.errors += 1
        return DependencyError(reason="error.policy_engine", detail=detail)

    async def ready(self) -> bool:
        """For /readyz: OPA answers and has activated its bundles (until then decisions are undefined)."""
        try:
            status, _ = await self.transport.get(self._health, max(self.timeout, 1.0))
        except Exception:
            return False
        return status == 200

    async def aclose(self) -> None:
        await self.transport.aclose()


def _revision(provenance: Any) -> str:
    """``name@revision`` of each activated bundle; '' when OPA serves plain files."""
    if not isinstance(provenance, dict) or not isinstance(provenance.get("bundles"), dict):
        return ""
    parts = []
    for name, info in sorted(provenance["bundles"].items()):
        rev = info.get("revision") if isinstance(info, dict) else None
        parts.append(f"{name}@{rev}" if isinstance(rev, str) else str(name))
    return ",".join(parts)[:200]
