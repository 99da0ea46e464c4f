"""Build a :class:`Pipeline` from a validated :class:`Config`.

Optional parts are imported lazily so the embedded default needs nothing beyond
the base install. Each builder owns one config section.
"""

from __future__ import annotations

from typing import Any

from .audit import JsonLinesSink
from .config import Config
from .credentials import AuthorizationExtractor, HeaderKeyExtractor
from .interfaces import AuditSink, CredentialExtractor, CredentialVerifier, PolicyEngine
from .pipeline import IdentityHeaders, Pipeline


def build_extractors(config: Config) -> list[CredentialExtractor]:
    extractors: list[CredentialExtractor] = [AuthorizationExtractor()]
    if config.api_keys is not None and config.api_keys.enabled:
        extractors.append(HeaderKeyExtractor(config.api_keys.header))
    return extractors


def build_verifiers(config: Config) -> list[CredentialVerifier]:
    verifiers: list[CredentialVerifier] = []
    if config.api_keys is not None and config.api_keys.enabled:
        from .credentials.api_key import APIKeyVerifier

        verifiers.append(APIKeyVerifier.from_config(config))
    if config.jwt.issuers:
        from .credentials.jwt import JWTVerifier

        verifiers.append(JWTVerifier.from_config(config.jwt))
    return verifiers


def build_policy(config: Config) -> PolicyEngine:
    """Engine (builtin | opa | rego) -> decision cache -> shadow candidates (zerotrust.policy.build)."""
    from .policy.build import build_policy_engine

    api_key_header = [config.api_keys.header] if config.api_keys is not None else []
    return build_policy_engine(config.policy, credential_headers=api_key_header)


def build_sinks(config: Config) -> list[AuditSink]:
    sink = JsonLinesSink.from_output(config.audit.output, config.audit.include_allows,
                                      config.audit.flush_interval)
    return [sink] if sink else []


def build_pipeline(config: Config, *, sinks: list[Any] | None = None) -> Pipeline:
    ih = config.server.identity_headers
    return Pipeline(
        extractors=build_extractors(config),
        verifiers=build_verifiers(config),
        policy=build_policy(config),
        sinks=build_sinks(config) + list(sinks or []),
        realm=config.server.realm,
        identity=IdentityHeaders(ih.subject, ih.scopes, ih.issuer, ih.claims),
    )
