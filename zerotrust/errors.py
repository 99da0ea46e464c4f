"""One exception tree. Each leaf knows its RFC error code, HTTP status and challenge.

RFC 6750 section 3 (Bearer challenges), RFC 9470 (step-up), RFC 8693 section 2.2.2
(token exchange errors). ``description`` is always a fixed string chosen by this
code, never bytes taken from the request; ``detail`` is for logs only.
"""

from __future__ import annotations

from collections.abc import Iterable


def _quote(value: str) -> str:
    # RFC 9110 quoted-string; our values are ASCII we chose, but be strict anyway.
    cleaned = "".join(c for c in value if 0x20 <= ord(c) < 0x7F)
    return '"' + cleaned.replace("\\", "\\\\").replace('"', '\\"') + '"'


def bearer_challenge(realm: str | None = None, scheme: str = "Bearer", **params: str | int | None) -> str:
    parts = []
    if realm:
        parts.append(f"realm={_quote(realm)}")
    for key, value in params.items():
        if value is not None:
            parts.append(f"{key}={_quote(str(value))}")
    return scheme + (" " + ", ".join(parts) if parts else "")


class ZeroTrustError(Exception):
    """Root of every error this project raises on purpose."""

    status: int = 500
    error_code: str | None = "server_error"
    reason: str = "error.internal"
    default_description: str | None = None

    def __init__(self, description: str | None = None, *, reason: str | None = None, detail: str | None = None):
        self.description = description if description is not None else self.default_description
        if reason:
            self.reason = reason
        self.detail = detail  # logged, never sent
        super().__init__(detail or self.description or self.reason)

    def challenge(self, realm: str | None = None) -> str | None:
        return None

    def response_headers(self, realm: str | None = None) -> tuple[tuple[str, str], ...]:
        c = self.challenge(realm)
        return (("WWW-Authenticate", c),) if c else ()


class ConfigError(ZeroTrustError):
    """Configuration is invalid; raised at start-up, never per request."""

    reason = "error.config"

    def __init__(self, problems: Iterable[str] | str):
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__(detail="; ".join(self.problems))


# --- 400/401: RFC 6750 section 3.1 -------------------------------------------


class AuthenticationError(ZeroTrustError):
    status = 401
    error_code = "invalid_token"
    reason = "deny.authn"

    def challenge(self, realm: str | None = None) -> str | None:
        return bearer_challenge(realm, error=self.error_code, error_description=self.description)


class MissingCredential(AuthenticationError):
    """No credential at all: RFC 6750 section 3.1 says the challenge carries no error code."""

    error_code = None
    reason = "deny.no_credential"

    def challenge(self, realm: str | None = None) -> str | None:
        return bearer_challenge(realm)


class InvalidRequest(AuthenticationError):
    status = 400
    error_code = "invalid_request"
    reason = "deny.invalid_request"
    default_description = "The request is malformed"


class InvalidToken(AuthenticationError):
    error_code = "invalid_token"
    reason = "deny.invalid_token"
    default_description = "The access token is invalid"


class InsufficientUserAuthentication(AuthenticationError):
    """RFC 9470 section 3: step-up authentication required."""

    error_code = "insufficient_user_authentication"
    reason = "deny.step_up"
    default_description = "A different authentication level is required"

    def __init__(self, description: str | None = None, *, acr_values: str | None = None,
                 max_age: int | None = None, **kw):
        super().__init__(description, **kw)
        self.acr_values = acr_values
        self.max_age = max_age

    def challenge(self, realm: str | None = None) -> str | None:
        return bearer_challenge(realm, error=self.error_code, error_description=self.description,
                                acr_values=self.acr_values, max_age=self.max_age)


# --- 403 -----------------------------------------------------------------------


class AuthorizationError(ZeroTrustError):
    status = 403
    error_code = None
    reason = "deny.policy"
    default_description = "Access denied by policy"


class InsufficientScope(AuthorizationError):
    error_code = "insufficient_scope"
    reason = "deny.insufficient_scope"
    default_description = "The access token lacks a required scope"

    def __init__(self, scopes: Iterable[str] = (), description: str | None = None, **kw):
        super().__init__(description, **kw)
        self.scopes = tuple(scopes)

    def challenge(self, realm: str | None = None) -> str | None:
        return bearer_challenge(realm, error=self.error_code, error_description=self.description,
                                scope=" ".join(self.scopes) or None)


class PolicyDenied(AuthorizationError):
    reason = "deny.policy"


# --- 429 / 503 / 500 ---------------------------------------------------------------


class TooManyRequests(ZeroTrustError):
    status = 429
    error_code = None
    reason = "deny.throttled"
    default_description = "Too many failed attempts"


class DependencyError(ZeroTrustError):
    """A dependency (JWKS, Vault, OPA, Redis) is down or answered garbage: fail closed."""

    status = 503
    error_code = "temporarily_unavailable"
    reason = "error.dependency"
    default_description = "A dependency is unavailable"


class TokenExchangeError(ZeroTrustError):
    """RFC 8693 section 2.2.2 / RFC 6749 section 5.2."""

    status = 400
    error_code = "invalid_request"
    reason = "exchange.invalid_request"


class CryptoError(ZeroTrustError):
    """Ciphertext is malformed, tampered with, or bound to another field/context."""

    status = 400
    error_code = "invalid_ciphertext"
    reason = "crypto.invalid_ciphertext"
    default_description = "The ciphertext is invalid"
