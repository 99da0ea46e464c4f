"""OAuth 2.1 resource server: JWT access tokens (RFC 9068) from configured issuers.

Order of checks, cheapest and least trusting first: size, shape, strict decoding,
header safety; then the issuer chosen by the exact (still unverified) ``iss``;
that issuer's algorithm list and ``typ`` profile; a key from THAT issuer's JWKS
only; the signature; and only then the claims. Every failure is an
:class:`InvalidToken` with a fixed description (see :mod:`.jwt_errors`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

import httpx

from ..errors import ZeroTrustError
from ..types import Credential, Principal, RequestContext
from .jwk import VerificationKey
from .jwks import IssuerKeys
from .jws import CompactJWS, parse_compact, remember_header, signature_valid
from .jwt_cache import VerifiedTokenCache
from .jwt_claims import IssuerPolicy
from .jwt_errors import deny

log = logging.getLogger("zerotrust.jwt")


class TrustedIssuer:
    """An issuer's rules and its own key set: keys are never looked up across issuers."""

    __slots__ = ("policy", "keys")

    def __init__(self, policy: IssuerPolicy, keys: IssuerKeys):
        self.policy = policy
        self.keys = keys


class JWTVerifier:
    kind = "jwt"

    def __init__(self, issuers: Sequence[TrustedIssuer], *, client: httpx.AsyncClient,
                 max_token_bytes: int = 8192, cache_size: int = 10000,
                 now: Callable[[], float] = time.time):
        self.issuers = {i.policy.issuer: i for i in issuers}
        self.client = client
        self.max_token_bytes = max_token_bytes
        self.cache = VerifiedTokenCache(cache_size) if cache_size > 0 else None
        self.now = now

    @classmethod
    def from_config(cls, config: Any, *, transport: httpx.AsyncBaseTransport | None = None,
                    now: Callable[[], float] = time.time,
                    clock: Callable[[], float] = time.monotonic) -> JWTVerifier:
        """Build from :class:`zerotrust.config.JWTConfig`. ``transport``/``now``/``clock`` are for tests."""
        client = httpx.AsyncClient(transport=transport, follow_redirects=False, trust_env=False,
                                   limits=httpx.Limits(max_connections=20))
        issuers = [
            TrustedIssuer(
                IssuerPolicy(ic.issuer, ic.audience, ic.algorithms, profile=ic.profile, leeway=ic.leeway,
                             max_token_age=ic.max_token_age, required_claims=ic.required_claims),
                IssuerKeys(ic.issuer, client, jwks_uri=ic.jwks_uri, ttl=ic.jwks_cache_ttl,
                           min_refetch_interval=ic.jwks_min_refetch_interval, timeout=ic.http_timeout,
                           clock=clock),
            )
            for ic in config.issuers
        ]
        return cls(issuers, client=client, max_token_bytes=config.max_token_bytes,
                   cache_size=config.cache_size, now=now)

    def accepts(self, credential: Credential) -> bool:
        # Five parts (JWE) is accepted only to be refused here rather than by someone else.
        return credential.kind == "bearer" and credential.value.count(".") in (2, 4)

    async def verify(self, credential: Credential, request: RequestContext | None = None) -> Principal:
        try:
            token = credential.value
            if len(token) > self.max_token_bytes:  # before hashing for the cache, before anything
                raise deny("too_large", "token exceeds max_token_bytes")
            now = self.now()
            cache = self.cache
            if cache is not None:
                digest = credential.digest
                hit = cache.get(digest, now)
                if hit is not None:
                    return hit
            jws = parse_compact(token, self.max_token_bytes)
            iss = jws.payload.get("iss")
            issuer = self.issuers.get(iss) if type(iss) is str else None
            if issuer is None:
                raise deny("issuer", "iss missing or not a configured issuer")
            policy = issuer.policy
            policy.check_header(jws.header)
            key = self._verified_key(issuer.keys, jws)
            if key is None:  # keys missing, or kid unknown: only now do we await the network
                key = await self._verified_key_after_fetch(issuer.keys, jws)
            principal, not_before, not_after = policy.validate(jws.payload, now)
            if jws.new_header is not None:
                remember_header(jws)
            if cache is not None:
                cache.put(digest, principal, not_before, not_after, issuer.keys, key.ident)
            return principal
        except ZeroTrustError:
            raise
        except Exception as exc:  # never a 500 for a hostile token
            log.warning("JWT verification raised %s", type(exc).__name__)
            raise deny("malformed", f"unexpected {type(exc).__name__}") from None

    @staticmethod
    def _verified_key(keys: IssuerKeys, jws: CompactJWS) -> VerificationKey | None:
        """The key of this issuer that verifies the signature; None if no candidate is cached."""
        header = jws.header
        alg = header["alg"]
        candidates = keys.candidates(header.get("kid"), alg)
        if not candidates:
            return None
        if keys.stale:
            keys.refresh_in_background()
        for key in candidates:
            if signature_valid(alg, key.public_key, jws.signing_input, jws.signature):
                return key
        raise deny("signature", "signature does not verify")

    async def _verified_key_after_fetch(self, keys: IssuerKeys, jws: CompactJWS) -> VerificationKey:
        if not keys.loaded:
            await keys.ensure_loaded()  # DependencyError if the first fetch fails
        else:
            await keys.refetch_for_unknown_kid()  # rate-limited, single-flight
        key = self._verified_key(keys, jws)
        if key is None:
            raise deny("unknown_key", "no key of this issuer matches kid and alg")
        return key

    async def aclose(self) -> None:
        for issuer in self.issuers.values():
            await issuer.keys.aclose()
        await self.client.aclose()
