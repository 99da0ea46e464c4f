"""Test doubles shared by the sidecar, middleware and FastAPI tests: a pipeline with a tiny fake verifier.

Tokens: ``good-<scopes joined by +, ':' written '.'>`` authenticates alice with those scopes (``good-api.read``); ``down`` raises DependencyError
(JWKS unreachable); ``boom`` raises RuntimeError (a verifier bug); ``evil`` authenticates a subject that tries
to inject a header; anything else is an invalid token.
"""

from __future__ import annotations

from typing import Any

from zerotrust import DependencyError, IdentityHeaders, InvalidToken, Pipeline, Principal
from zerotrust.audit import MemorySink
from zerotrust.config import RuleConfig
from zerotrust.credentials import AuthorizationExtractor
from zerotrust.policy import BuiltinPolicyEngine

RULES = [
    {"id": "public", "methods": ["GET", "HEAD"], "paths": ["/public/**"], "anonymous": True},
    {"id": "boom", "paths": ["/policy-bug/**"], "scopes": ["api:read"]},
    {"id": "write", "methods": ["POST", "PUT", "DELETE"], "paths": ["/api/**"], "scopes": ["api:write"]},
    {"id": "read", "methods": ["GET", "HEAD"], "paths": ["/**"], "scopes": ["api:read"]},
]


class FakeVerifier:
    kind = "fake"

    def __init__(self) -> None:
        self.seen: list[Any] = []
        self.is_ready: Any = True

    def accepts(self, credential: Any) -> bool:
        return credential.kind == "bearer"

    async def verify(self, credential: Any, request: Any) -> Principal:
        self.seen.append(request)
        token = credential.value
        if token == "down":
            raise DependencyError(detail="jwks unreachable")
        if token == "boom":
            raise RuntimeError("verifier bug")
        if token == "evil":
            return Principal(subject="alice\r\nX-Injected: 1", issuer="https://idp.test", kind="fake")
        if token.startswith("good-"):
            scopes = frozenset(s.replace(".", ":") for s in token[5:].split("+") if s)
            return Principal(subject="alice", issuer="https://idp.test", kind="fake", scopes=scopes,
                             claims={"tenant": "t1"} if "tenant" in scopes else {})
        raise InvalidToken()

    def ready(self) -> Any:
        return self.is_ready


class BuggyPolicy(BuiltinPolicyEngine):
    """The built-in rules, except that /policy-bug/** makes the engine crash."""

    async def decide(self, request: Any, principal: Any, context: Any = None) -> Any:
        if request.path.startswith("/policy-bug/"):
            raise RuntimeError("policy engine bug")
        return await super().decide(request, principal, context)


def make_pipeline(*, realm: str | None = "test", sinks: list[Any] | None = None,
                  extra_identity: dict[str, str] | None = None) -> tuple[Pipeline, FakeVerifier, MemorySink]:
    verifier = FakeVerifier()
    audit = MemorySink()
    policy = BuggyPolicy.from_config([RuleConfig(**r) for r in RULES])
    pipeline = Pipeline(extractors=[AuthorizationExtractor()], verifiers=[verifier], policy=policy,
                        sinks=[audit, *(sinks or [])], realm=realm,
                        identity=IdentityHeaders(extra=extra_identity))
    return pipeline, verifier, audit


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}
