"""Plugin interfaces: one verb each. Later capabilities (introspection, DPoP, SAML,
token exchange, risk, OPA) plug in by implementing one of these."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from .types import Credential, PolicyResult, Principal, RequestContext


@runtime_checkable
class CredentialExtractor(Protocol):
    """Finds credentials of one kind on a request. Returns ``[]`` when it sees none.

    Returning several (two ``Authorization`` headers, a merged list) lets the
    pipeline reject the request as ambiguous instead of choosing one.
    """

    def extract(self, request: RequestContext) -> list[Credential]: ...


@runtime_checkable
class CredentialVerifier(Protocol):
    """Turns a credential it recognises into a :class:`Principal`, or raises.

    ``accepts`` must be cheap and must not verify anything: it only says whose
    credential this is (an API key by its prefix, a JWT by its shape).
    """

    kind: str

    def accepts(self, credential: Credential) -> bool: ...

    async def verify(self, credential: Credential, request: RequestContext) -> Principal: ...


@runtime_checkable
class PolicyEngine(Protocol):
    """Decides whether ``principal`` (``None``: anonymous) may make ``request``."""

    name: str

    async def decide(self, request: RequestContext, principal: Principal | None,
                     context: dict[str, Any] | None = None) -> PolicyResult: ...


@runtime_checkable
class AuditSink(Protocol):
    """Receives one record per decision. Must never raise into the request path."""

    def emit(self, record: dict[str, Any]) -> None: ...
