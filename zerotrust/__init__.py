"""zerotrust: one credential, risk and policy model for middleware, gateway sidecars and Kong."""

from .config import Config, load_config, parse_config
from .errors import (
    AuthenticationError,
    AuthorizationError,
    ConfigError,
    CryptoError,
    DependencyError,
    InsufficientScope,
    InsufficientUserAuthentication,
    InvalidRequest,
    InvalidToken,
    MissingCredential,
    PolicyDenied,
    TokenExchangeError,
    TooManyRequests,
    ZeroTrustError,
)
from .factory import build_pipeline
from .interfaces import AuditSink, CredentialExtractor, CredentialVerifier, PolicyEngine
from .paths import normalize_path, split_target
from .pipeline import IdentityHeaders, Pipeline
from .policy.metrics import PolicyCollector
from .types import Credential, Decision, Headers, PolicyResult, Principal, RequestContext, TLSInfo

__version__ = "0.1.0"

__all__ = [
    "AuditSink", "AuthenticationError", "AuthorizationError", "Config", "ConfigError", "Credential",
    "CredentialExtractor", "CredentialVerifier", "CryptoError", "Decision", "DependencyError", "Headers",
    "IdentityHeaders", "InsufficientScope", "InsufficientUserAuthentication", "InvalidRequest", "InvalidToken",
    "MissingCredential", "Pipeline", "PolicyCollector", "PolicyDenied", "PolicyEngine", "PolicyResult", "Principal",
    "RequestContext", "TLSInfo", "TokenExchangeError", "TooManyRequests", "ZeroTrustError", "build_pipeline",
    "load_config", "normalize_path", "parse_config", "split_target",
]
