"""extract -> verify -> decide -> audit.

The pipeline owns the order and the failure semantics; plugins own the checks.
Every path out of :meth:`Pipeline.evaluate` is a :class:`Decision`: errors become
denials with their RFC status and challenge, and anything unexpected is a deny.
"""

from __future__ import annotations

import itertools
import logging
import re
import secrets
import time
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

from .errors import (
    AuthenticationError,
    InsufficientScope,
    InsufficientUserAuthentication,
    InvalidRequest,
    InvalidToken,
    MissingCredential,
    PolicyDenied,
    ZeroTrustError,
)
from .interfaces import AuditSink, CredentialExtractor, CredentialVerifier, PolicyEngine
from .types import Credential, Decision, PolicyResult, Principal, RequestContext

log = logging.getLogger("zerotrust.pipeline")

_ID_PREFIX = secrets.token_hex(5)
_ID_COUNTER = itertools.count(1)


def new_decision_id() -> str:
    """Unique per decision across replicas (random per-process prefix + counter), cheap to make."""
    return f"{_ID_PREFIX}{next(_ID_COUNTER):07x}"


def header_safe(value: str) -> str:
    """Identity values come from tokens: never let them inject header syntax.

    Printable ASCII without '%' passes as is; anything else is percent-encoded, '%' included,
    so the encoding is reversible and "é" and a literal "%C3%A9" stay two different subjects.
    """
    if value.isascii() and value.isprintable() and "%" not in value:
        return value
    return quote(value, safe=" !#$&'()*+,-./:;<=>?@[]^_`{|}~")


def _spellings(name: str) -> list[str]:
    parts = re.split(r"[-_.]", name)
    out = [parts[0]]
    for part in parts[1:]:
        out = [f"{prefix}{sep}{part}" for prefix in out for sep in "-_."]
    return out


class IdentityHeaders:
    """Names of the headers that carry the principal upstream."""

    def __init__(self, subject: str = "X-Auth-Subject", scopes: str = "X-Auth-Scopes",
                 issuer: str = "X-Auth-Issuer", extra: dict[str, str] | None = None):
        self.subject, self.scopes, self.issuer = subject, scopes, issuer
        self.extra = dict(extra or {})  # header name -> claim name
        self.names = tuple(n.lower() for n in (subject, scopes, issuer, *self.extra))
        # Every '-', '_' and '.' spelling of each name: CGI-style upstreams fold them into one header.
        self.aliases = frozenset(a for n in self.names for a in _spellings(n))

    def render(self, principal: Principal | None) -> tuple[tuple[str, str], ...]:
        if principal is None:
            return ()
        out = [
            (self.subject, header_safe(principal.subject)),
            (self.scopes, header_safe(" ".join(sorted(principal.scopes)))),
            (self.issuer, header_safe(principal.issuer)),
        ]
        for header, claim in self.extra.items():
            value = principal.claims.get(claim)
            if isinstance(value, (str, int, float)) and not isinstance(value, bool):
                out.append((header, header_safe(str(value))))
        return tuple(out)


class Pipeline:
    def __init__(
        self,
        *,
        extractors: Sequence[CredentialExtractor],
        verifiers: Sequence[CredentialVerifier],
        policy: PolicyEngine,
        sinks: Sequence[AuditSink] = (),
        realm: str | None = None,
        identity: IdentityHeaders | None = None,
    ):
        self.extractors = tuple(extractors)
        self.verifiers = tuple(verifiers)
        self.policy = policy
        self.sinks = list(sinks)
        self.realm = realm
        self.identity = identity or IdentityHeaders()

    async def aclose(self) -> None:
        """Release what plugins hold (HTTP pools, database handles)."""
        for part in (*self.verifiers, self.policy, *self.sinks):
            close = getattr(part, "aclose", None)
            if close is not None:
                try:
                    await close()
                except Exception:
                    log.exception("closing %r failed", part)

    # -- stages ---------------------------------------------------------------

    def extract(self, request: RequestContext) -> Credential | None:
        found: list[Credential] = []
        for extractor in self.extractors:
            found.extend(extractor.extract(request))
        if len(found) > 1:
            raise InvalidRequest("More than one credential was presented", reason="deny.multiple_credentials")
        return found[0] if found else None

    async def verify(self, credential: Credential, request: RequestContext) -> Principal:
        for verifier in self.verifiers:
            if verifier.accepts(credential):
                try:
                    return await verifier.verify(credential, request)
                except ZeroTrustError:
                    raise
                except Exception as exc:  # a verifier bug must never become an allow
                    log.exception("verifier %s failed unexpectedly", verifier.kind)
                    raise InvalidToken(reason="error.verifier", detail=f"{type(exc).__name__} in {verifier.kind}") from exc
        raise InvalidToken("The credential is not recognised", reason="deny.unknown_credential")

    async def authenticate(self, request: RequestContext) -> Principal | None:
        credential = self.extract(request)
        return None if credential is None else await self.verify(credential, request)

    def _denial(self, result: PolicyResult, principal: Principal | None) -> ZeroTrustError:
        if result.step_up:
            return InsufficientUserAuthentication(acr_values=result.step_up.get("acr_values"),
                                                  max_age=result.step_up.get("max_age"))
        if principal is None:
            return MissingCredential(reason="deny.no_credential")
        if result.required_scopes and not principal.has_scopes(result.required_scopes):
            return InsufficientScope(result.required_scopes)
        err = PolicyDenied()
        if result.status and 400 <= result.status <= 599:  # a deny is never sent as 2xx/3xx: proxies read it as allow
            err.status = result.status
        return err

    # -- the whole thing ---------------------------------------------------------

    async def evaluate(self, request: RequestContext, context: dict[str, Any] | None = None) -> Decision:
        started = time.perf_counter()
        decision_id = new_decision_id()
        principal: Principal | None = None
        credential: Credential | None = None
        result: PolicyResult | None = None
        detail: str | None = None
        try:
            credential = self.extract(request)
            if credential is not None:
                principal = await self.verify(credential, request)
            result = await self.policy.decide(request, principal, context)
            if result.allow:
                decision = Decision(
                    allow=True, status=200, reason="allow", decision_id=decision_id, principal=principal,
                    upstream_headers=self.identity.render(principal) + result.headers,
                    remove_headers=self.identity.names, rule=result.reason,
                )
            else:
                raise self._denial(result, principal)
        except ZeroTrustError as err:
            detail = err.detail
            decision = self._error_decision(err, decision_id, principal, result)
        except Exception as exc:  # fail closed, keep serving
            log.exception("decision %s failed", decision_id)
            detail = type(exc).__name__
            decision = Decision(allow=False, status=500, reason="error.internal", decision_id=decision_id,
                                error_code="server_error", remove_headers=self.identity.names)
        self._audit(request, decision, credential, result, detail, time.perf_counter() - started)
        return decision

    def reject(self, request: RequestContext, err: ZeroTrustError) -> Decision:
        """A request an adapter refused before evaluation (bad path, bad prefix, adapter bug).

        Still a decision with an id, rendered like any other and audited, so that
        path attacks show up in the decision log and the metrics.
        """
        decision = self._error_decision(err, new_decision_id(), None, None)
        self._audit(request, decision, None, None, err.detail, 0.0)
        return decision

    def _error_decision(self, err: ZeroTrustError, decision_id: str, principal: Principal | None,
                        result: PolicyResult | None) -> Decision:
        headers = err.response_headers(self.realm) if isinstance(err, (AuthenticationError, InsufficientScope)) else ()
        return Decision(
            allow=False, status=err.status, reason=err.reason, decision_id=decision_id, principal=principal,
            remove_headers=self.identity.names, response_headers=headers + (result.headers if result else ()),
            error_code=err.error_code, description=err.description, rule=result.reason if result else None,
        )

    def _audit(self, request: RequestContext, decision: Decision, credential: Credential | None,
               result: PolicyResult | None, detail: str | None, elapsed: float) -> None:
        if not self.sinks:
            return
        p = decision.principal
        record: dict[str, Any] = {
            "ts": time.time(),
            "decision_id": decision.decision_id,
            "allow": decision.allow,
            "status": decision.status,
            "reason": decision.reason,
            "rule": decision.rule,
            "method": request.method,
            "path": request.path,
            "host": request.host,
            "peer": request.peer,
            "credential_kind": credential.kind if credential else None,
            "credential": credential.fingerprint if credential else None,
            "subject": p.subject if p else None,
            "issuer": p.issuer if p else None,
            "principal_kind": p.kind if p else None,
            "credential_id": p.credential_id if p else None,
            "engine": result.engine if result else None,
            "policy_revision": result.revision if result else None,
            "input_hash": (result.input_hash or None) if result else None,
            "latency_us": round(elapsed * 1e6, 1),
        }
        if detail:
            record["detail"] = detail
        for sink in self.sinks:
            try:
                sink.emit(record)
            except Exception:  # an audit sink must not take the request path down
                log.exception("audit sink %r failed", sink)
