"""JWT signers for tokens this project mints: ES256 or EdDSA, keys in Transit or local.

:class:`TransitSigner` asks Vault to sign (``transit/sign`` with ``marshaling_algorithm=jws``
for ES256, so Vault returns the raw ``r||s`` JWS wants), so the private key never leaves
Vault. :class:`LocalSigner` does the same with the local key file (not for production).
Both publish a JWKS and rotate with overlap as described in :mod:`.signing_keys`.

Every token carries ``exp`` no later than ``token_ttl`` after ``iat`` and after the time of
signing: the JWKS retention rule depends on it, so :meth:`JWTSigner.sign` refuses anything
longer, and an ``iat`` more than ``leeway`` in the future.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from ..errors import DependencyError
from .signing_keys import KeyVersion, Selection, b64url, jwks, select

CURVE_FOR = {"ES256": "ecdsa-p256", "EdDSA": "ed25519"}
METADATA_TTL = 30.0  # seconds between key-metadata refreshes; a rotation is seen this fast


class JWTSigner:
    """Shared logic: header, kid, exp bound, JWKS. Subclasses load versions and sign bytes."""

    def __init__(self, key: str, algorithm: str = "ES256", *, issuer: str | None = None, token_ttl: int = 300,
                 leeway: float = 60, activate_after: float = 0, now: Callable[[], float] = time.time):
        if algorithm not in CURVE_FOR:
            raise ValueError("algorithm must be ES256 or EdDSA")
        self.key, self.algorithm, self.issuer = key, algorithm, issuer
        self.token_ttl, self.leeway, self.activate_after = token_ttl, leeway, activate_after
        self.now = now
        self._lock = threading.Lock()
        self._cached: tuple[float, list[KeyVersion]] | None = None

    # --- for subclasses -------------------------------------------------------------------

    def _load_versions(self) -> list[KeyVersion]:
        raise NotImplementedError

    def _sign_bytes(self, version: int, signing_input: bytes) -> bytes:
        raise NotImplementedError

    def _rotate(self) -> None:
        raise NotImplementedError

    # --- public ----------------------------------------------------------------------------

    def selection(self, *, refresh: bool = False) -> Selection:
        mono = time.monotonic()
        with self._lock:
            cached = self._cached
        if refresh or cached is None or mono - cached[0] > METADATA_TTL:
            versions = self._load_versions()
            with self._lock:
                self._cached = cached = (mono, versions)
        return select(cached[1], self.now(), token_ttl=self.token_ttl, leeway=self.leeway,
                      activate_after=self.activate_after)

    def jwks(self) -> dict[str, Any]:
        """The document to serve at the issuer's ``jwks_uri``."""
        return jwks(self.selection())

    def sign(self, claims: Mapping[str, Any], *, typ: str = "JWT") -> str:
        now = self.now()
        expires, issued = claims.get("exp"), claims.get("iat", now)
        if not _number(expires) or not _number(issued):
            raise ValueError("exp is required, and exp and iat must be numbers")
        # A key leaves the JWKS token_ttl after it stops signing: exp must not be later than that.
        if expires - issued > self.token_ttl or expires > now + self.token_ttl:
            raise ValueError(f"exp must be at most token_ttl ({self.token_ttl}s) after iat and after now")
        if issued > now + self.leeway:
            raise ValueError(f"iat is more than leeway ({self.leeway}s) in the future")
        signing = self.selection().signing
        header = {"alg": self.algorithm, "kid": signing.kid, "typ": typ}
        encode = lambda obj: b64url(json.dumps(obj, separators=(",", ":")).encode())  # noqa: E731
        signing_input = f"{encode(header)}.{encode(dict(claims))}".encode("ascii")
        return signing_input.decode("ascii") + "." + b64url(self._sign_bytes(signing.version, signing_input))

    def issue(self, subject: str, audience: str | list[str], *, ttl: int | None = None,
              typ: str = "JWT", **claims: Any) -> str:
        """Sign a token with iss/sub/aud/iat/nbf/exp/jti filled in."""
        now = int(self.now())
        body = {"iss": self.issuer, "sub": subject, "aud": audience, "iat": now, "nbf": now,
                "exp": now + min(ttl or self.token_ttl, self.token_ttl), "jti": secrets.token_urlsafe(16), **claims}
        return self.sign({k: v for k, v in body.items() if v is not None}, typ=typ)

    def rotate(self) -> KeyVersion:
        """Create a new key version; it signs once ``activate_after`` has passed."""
        self._rotate()
        versions = self.selection(refresh=True).published
        return max(versions, key=lambda v: v.version)

    async def asign(self, claims: Mapping[str, Any], *, typ: str = "JWT") -> str:
        return await asyncio.to_thread(self.sign, claims, typ=typ)

    async def ajwks(self) -> dict[str, Any]:
        return await asyncio.to_thread(self.jwks)


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def garbage(what: str) -> DependencyError:
    return DependencyError(reason="error.vault_garbage", detail=f"signing key: {what}")
