"""The configuration model, validated once at start-up and exported as JSON Schema.

``${VAR}`` and ``${VAR:-default}`` are substituted in string values after YAML
parsing (so a variable can never inject YAML structure). Every problem is reported
with its path in the file and, where known, its line.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .errors import ConfigError

Algorithm = Literal["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"]


def secure_url(url: str) -> bool:
    """https, or plain http to a loopback host (parsed, so 'http://127.0.0.1.evil.example' is not loopback)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        return False
    if not host or parts.username or parts.password:
        return False
    return parts.scheme == "https" or (parts.scheme == "http" and host in ("127.0.0.1", "localhost", "::1"))


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- server ------------------------------------------------------------------------


class IdentityHeadersConfig(_Model):
    subject: str = Field("X-Auth-Subject", description="Header carrying the principal's subject upstream")
    scopes: str = Field("X-Auth-Scopes", description="Header carrying the space-separated scopes")
    issuer: str = Field("X-Auth-Issuer", description="Header carrying the issuer")
    claims: dict[str, str] = Field(default_factory=dict, description="Extra header name -> claim name")


class ForwardAuthConfig(_Model):
    """Caddy forward_auth / Traefik forwardAuth: the proxy describes the request in X-Forwarded-* headers."""

    enabled: bool = Field(False, description="Judge the request named by X-Forwarded-Method/-Uri/-Host/-Proto "
                          "from a trusted proxy; the listener then answers forward-auth checks only")
    path: str = Field("/forward-auth", description="Path the proxy asks at (request line); any other path is 400")

    @field_validator("path")
    @classmethod
    def _path(cls, v: str) -> str:
        if not re.fullmatch(r"/[A-Za-z0-9._~/-]*", v) or "//" in v or "/." in v:
            raise ValueError("must be a plain absolute path such as /forward-auth")
        return v


class ServerConfig(_Model):
    listen: str = Field("127.0.0.1:9191", description="ext_authz listener HOST:PORT (overridden by --listen)")
    admin_listen: str = Field("127.0.0.1:9192", description="Health, readiness and metrics listener HOST:PORT")
    path_prefix: str = Field("", description="Prefix stripped from the path before judging (Envoy path_prefix)")
    path_mode: Literal["strict", "normalize"] = Field(
        "strict", description="strict: non-canonical paths are 400; normalize: judged in canonical form")
    realm: str | None = Field(None, description="realm parameter of WWW-Authenticate challenges")
    identity_headers: IdentityHeadersConfig = Field(
        IdentityHeadersConfig(), description="Names of the headers that carry the principal upstream")
    stack: Literal["uvicorn", "granian"] = Field(
        "uvicorn", description="HTTP server: uvicorn (httptools+uvloop) or granian")
    tls: "ServerTLSConfig | None" = Field(None, description="Serve the ext_authz listener over TLS / mTLS")
    trusted_proxies: list[str] = Field(
        default_factory=list,
        description="Networks (CIDR) of proxies whose X-Forwarded-For is believed; empty: the peer is the TCP client")
    forward_auth: ForwardAuthConfig = Field(
        ForwardAuthConfig(), description="Forward-auth mode for Caddy and Traefik (instead of Envoy/nginx ext_authz)")

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, v: list[str]) -> list[str]:
        import ipaddress

        for net in v:
            try:
                ipaddress.ip_network(net, strict=False)
            except ValueError:
                raise ValueError(f"{net!r} is not an IP network") from None
        return v

    @field_validator("path_prefix")
    @classmethod
    def _prefix(cls, v: str) -> str:
        if v and (not v.startswith("/") or v.endswith("/")):
            raise ValueError("must start with '/' and not end with '/'")
        return v

    @model_validator(mode="after")
    def _forward_auth(self) -> ServerConfig:
        # Without a trusted proxy every check would be a 400; path_prefix belongs to ext_authz mode.
        if self.forward_auth.enabled and not self.trusted_proxies:
            raise ValueError("forward_auth needs trusted_proxies: X-Forwarded-* is believed only from them")
        if self.forward_auth.enabled and self.path_prefix:
            raise ValueError("path_prefix does not apply with forward_auth (set forward_auth.path instead)")
        return self


class ServerTLSConfig(_Model):
    """Listener TLS. ``vault_pki`` takes a short-lived certificate from Vault PKI and rotates it."""

    cert_file: str | None = Field(None, description="PEM certificate chain")
    key_file: str | None = Field(None, description="PEM private key")
    client_ca_file: str | None = Field(None, description="CA bundle for client certificates (enables mTLS)")
    vault_pki: "VaultPKIConfig | None" = Field(
        None, description="Take a short-lived certificate from Vault PKI and rotate it in place")


# --- credentials ---------------------------------------------------------------------


class IssuerConfig(_Model):
    issuer: str = Field(..., description="Exact 'iss' value; also the discovery base URL")
    audience: list[str] = Field(..., min_length=1, description="Token 'aud' must contain one of these (RFC 8707)")
    jwks_uri: str | None = Field(None, description="Skip discovery and use this JWKS URL")
    algorithms: list[Algorithm] = Field(default_factory=lambda: ["RS256", "ES256", "EdDSA"], min_length=1,
        description="Allowed JWS algorithms for this issuer (never none or HS*)")
    profile: Literal["rfc9068", "compat"] = Field(
        "rfc9068", description="rfc9068: typ at+jwt and RFC 9068 claims; compat: typ JWT accepted")
    leeway: int = Field(30, ge=0, le=300, description="Clock skew allowed for exp/nbf/iat, seconds")
    max_token_age: int | None = Field(None, ge=1, description="Reject tokens whose iat is older than this")
    required_claims: list[str] = Field(default_factory=list,
        description="Claims that must be present in addition to the profile's")
    jwks_cache_ttl: int = Field(300, ge=10, le=86400, description="Seconds before the JWKS is refreshed")
    jwks_min_refetch_interval: float = Field(30, ge=0, le=3600, description="Rate limit on unknown-kid refetches")
    http_timeout: float = Field(3.0, gt=0, le=30, description="Timeout for discovery and JWKS requests, seconds")

    @field_validator("issuer", "jwks_uri")
    @classmethod
    def _https(cls, v: str | None) -> str | None:
        if not v:
            return None
        if not secure_url(v):
            raise ValueError("must be an https:// URL (http:// only for loopback)")
        return v


class JWTConfig(_Model):
    issuers: list[IssuerConfig] = Field(default_factory=list,
        description="Trusted issuers; a token is checked only against its own issuer's keys")
    max_token_bytes: int = Field(8192, ge=512, le=65536,
        description="Tokens longer than this are rejected before decoding")
    cache_size: int = Field(10000, ge=0, description="Verified-token cache entries (0 disables)")


class APIKeyConfig(_Model):
    enabled: bool = Field(True, description="Accept API keys")
    prefix: str = Field("zt", pattern=r"^[a-z][a-z0-9]{1,15}$", description="Key prefix, e.g. 'zt' gives zt_...")
    database: str = Field("zerotrust-keys.db", description="SQLite file with the hashed keys")
    pepper: str | None = Field(None, repr=False,
                               description="HMAC pepper (>= 32 chars); from Vault when vault.pepper is set")
    header: str = Field("X-API-Key", description="Header carrying a key (Authorization: Bearer also works)")
    issuer: str = Field("zerotrust:api-key", description="Issuer recorded on API-key principals")
    throttle_failures: int = Field(10, ge=1, description="Failed attempts per client before throttling")
    throttle_window: float = Field(60, gt=0, description="Seconds over which failures are counted")
    last_used_resolution: float = Field(60, ge=0, description="Seconds between last_used writes for one key")

    @field_validator("pepper")
    @classmethod
    def _pepper(cls, v: str | None) -> str | None:
        if v is not None and len(v) < 32:
            raise ValueError("pepper must be at least 32 characters")
        return v


# --- policy --------------------------------------------------------------------------


class RuleConfig(_Model):
    id: str = Field(..., description="Stable rule id, reported in decisions and logs")
    methods: list[str] = Field(default_factory=list, description="Empty: any method")
    paths: list[str] = Field(..., min_length=1, description="Globs: '*' one segment part, '**' any depth")
    scopes: list[str] = Field(default_factory=list, description="All of these scopes are required")
    subjects: list[str] = Field(default_factory=list, description="Only these subjects (empty: any)")
    roles: list[str] = Field(default_factory=list, description="One of these roles (empty: any)")
    anonymous: bool = Field(False, description="Allow without a credential")
    deny: bool = Field(False, description="Deny whatever the credential")

    @field_validator("methods")
    @classmethod
    def _methods(cls, v: list[str]) -> list[str]:
        return [m.upper() for m in v]

    @field_validator("paths")
    @classmethod
    def _paths(cls, v: list[str]) -> list[str]:
        for p in v:
            if not p.startswith("/"):
                raise ValueError(f"path glob {p!r} must start with '/'")
        return v


class OPAConfig(_Model):
    url: str = Field("http://127.0.0.1:8181", description="OPA base URL (https, or http on loopback)")
    decision_path: str = Field("zerotrust/authz/decision", description="Rule queried as POST /v1/data/<path>")
    timeout: float = Field(0.25, gt=0, le=10, description="Per-decision timeout, seconds; a timeout is a 503")


class RegoConfig(_Model):
    paths: list[str] = Field(default_factory=lambda: ["policies"], description="Rego files or directories to load")
    package: str = Field("zerotrust.authz", description="The engine evaluates <package>.decision")
    workers: int = Field(0, ge=0, le=64, description="0: evaluate on the event loop; N: in N threads")


class ShadowConfig(_Model):
    id: str = Field(..., description="Name of the candidate in logs and metrics")
    engine: Literal["builtin", "opa", "rego"] = Field(..., description="Engine evaluating the candidate")
    rules: list[RuleConfig] = Field(default_factory=list, description="Candidate rules (engine: builtin)")
    opa: OPAConfig | None = Field(None, description="Candidate OPA (engine: opa)")
    rego: RegoConfig | None = Field(None, description="Candidate Rego (engine: rego)")
    paths: list[str] = Field(default_factory=lambda: ["/**"], description="Routes the candidate sees")


class DecisionCacheConfig(_Model):
    enabled: bool = Field(True, description="Cache decisions of the OPA and Rego engines")
    max_entries: int = Field(50000, ge=1, description="Entries kept at most")
    ttl: float = Field(60, gt=0, description="Seconds an entry lives (never beyond the credential's expiry)")


class PolicyConfig(_Model):
    engine: Literal["builtin", "opa", "rego"] = Field(
        "builtin", description="builtin rules, a real OPA over REST, or Rego evaluated in-process")
    rules: list[RuleConfig] = Field(default_factory=list,
        description="Built-in rules, first match wins, no match denies")
    opa: OPAConfig = Field(OPAConfig(), description="OPA server settings")
    rego: RegoConfig = Field(RegoConfig(), description="Embedded Rego settings")
    shadow: list[ShadowConfig] = Field(default_factory=list,
        description="Candidate policies evaluated beside the enforced one, without effect")
    cache: DecisionCacheConfig = Field(DecisionCacheConfig(), description="Decision cache")
    input_headers: list[str] = Field(default_factory=lambda: ["user-agent", "x-request-id", "x-tenant-id"],
        description="Request headers (lower-case) passed to the policy input")


# --- vault, keys, fields -----------------------------------------------------------------


class VaultPKIConfig(_Model):
    mount: str = Field("pki", description="PKI secrets engine mount")
    role: str = Field(..., description="PKI role that issues the certificate")
    common_name: str = Field(..., description="Certificate common name")
    alt_names: list[str] = Field(default_factory=list, description="Extra DNS subject alternative names")
    ip_sans: list[str] = Field(default_factory=list, description="IP subject alternative names")
    ttl: str = Field("24h", description="Requested certificate lifetime")
    renew_fraction: float = Field(0.66, gt=0, lt=1, description="Re-issue after this fraction of the lifetime")
    require_client_cert: bool = Field(False, description="mTLS: clients need a certificate from client_ca_file, "
                                      "or if unset from this PKI's issuing CA")


class VaultConfig(_Model):
    addr: str = Field(..., description="Vault/OpenBao address (https, or http on loopback)")
    auth: Literal["token", "approle", "kubernetes"] = Field("token", description="Authentication method")
    token: str | None = Field(None, repr=False, description="Token for auth: token")
    role_id: str | None = Field(None, description="AppRole role id")
    secret_id: str | None = Field(None, repr=False, description="AppRole secret id")
    kubernetes_role: str | None = Field(None, description="Kubernetes auth role")
    kubernetes_jwt_path: str = Field(
        "/var/run/secrets/kubernetes.io/serviceaccount/token",
        description="Service-account token file for Kubernetes auth")
    namespace: str | None = Field(None, description="Vault Enterprise / OpenBao namespace")
    ca_cert: str | None = Field(None, description="CA bundle to verify Vault's certificate")
    verify_tls: bool = Field(True, description="Verify Vault's TLS certificate")
    timeout: float = Field(2.0, gt=0, le=30, description="Per-request timeout, seconds")
    retries: int = Field(2, ge=0, le=10, description="Retries on connection errors and 5xx, with backoff")
    breaker_failures: int = Field(5, ge=1, description="Consecutive failures that open the circuit breaker")
    breaker_reset: float = Field(5.0, gt=0, description="Seconds the breaker stays open before one probe")
    transit_mount: str = Field("transit", description="Transit secrets engine mount")
    pepper: str | None = Field(
        None, description="KV v2 path 'mount/path#field' or 'transit:KEYNAME' for the API-key pepper")
    auth_mount: str | None = Field(None, description="Auth method mount path; default 'approle' or 'kubernetes'")

    @field_validator("addr")
    @classmethod
    def _addr(cls, v: str) -> str:
        # The token travels in every request header: cleartext only on loopback.
        if not secure_url(v) or urlsplit(v).path not in ("", "/"):
            raise ValueError("must be an https:// URL with no path (http:// only for loopback)")
        return v.rstrip("/")

    @model_validator(mode="after")
    def _auth_fields(self) -> VaultConfig:
        needed = {"token": ["token"], "approle": ["role_id"], "kubernetes": ["kubernetes_role"]}[self.auth]
        missing = [f"vault.{name}" for name in needed if not getattr(self, name)]
        if missing:
            raise ValueError(f"{', '.join(missing)} is required when vault.auth is '{self.auth}'")
        return self


class LocalKeysConfig(_Model):
    path: str = Field(
        ".zerotrust/local-keys.json", description="Development key file, created on first use (not for production)")


def _json_path(v: str) -> str:
    from .crypto.jsonpath import PathError, parse

    try:
        parse(v)
    except PathError as exc:
        raise ValueError(str(exc)) from None
    return v


class FieldPathConfig(_Model):
    path: str = Field(..., description="JSON path: $.a.b, $.a[*].b, $.a[0], $['a.b']")
    deterministic: bool = Field(False, description="Equal values give equal ciphertexts (equality search)")

    @field_validator("path")
    @classmethod
    def _path(cls, v: str) -> str:
        return _json_path(v)


class FieldsConfig(_Model):
    mode: Literal["envelope", "transit", "local"] = Field(
        "envelope", description="envelope: cached Transit data keys + AES-GCM; transit: Vault encrypts each "
                                "value; local: development keys")
    key: str = Field(..., pattern=r"^[A-Za-z0-9_-]{1,128}$", description="Transit key name")
    context: str | None = Field(None, min_length=1, description="Transit derivation context, e.g. a tenant id")
    paths: list[FieldPathConfig] = Field(default_factory=list,
        description="Fields encrypted by the CLI and library by default")
    datakey_ttl: float = Field(300, gt=0, le=86400, description="Seconds a data key is cached")
    datakey_max_uses: int = Field(100000, ge=1, le=2**32, description="AES-GCM random nonces: at most 2**32")
    request_paths: list[str] = Field(default_factory=list, description="Middleware: encrypt these request fields")
    response_paths: list[str] = Field(default_factory=list, description="Middleware: decrypt these response fields")
    decrypt_scopes: list[str] = Field(default_factory=list, description="Scopes a principal needs to see plaintext; "
                                      "empty: nobody gets plaintext from the middleware")
    mask: str | None = Field(None, description="Shown instead of ciphertext to others; None keeps the ciphertext")

    @field_validator("request_paths", "response_paths")
    @classmethod
    def _paths(cls, v: list[str]) -> list[str]:
        return [_json_path(p) for p in v]


class SigningConfig(_Model):
    key: str = Field(..., description="Transit key name (ecdsa-p256 or ed25519)")
    algorithm: Literal["ES256", "EdDSA"] = Field("ES256", description="JWS algorithm of minted tokens")
    issuer: str = Field(..., description="'iss' of minted tokens")
    token_ttl: int = Field(300, ge=30, le=3600, description="Lifetime of minted tokens, seconds")


# --- audit, metrics -------------------------------------------------------------------------


class AuditConfig(_Model):
    output: str = Field("stderr", description="'stderr', 'stdout', 'none' or a file path")
    include_allows: bool = Field(True, description="Log allows too; false logs denials only")
    flush_interval: float = Field(1.0, ge=0, le=60, description="Seconds between flushes of the buffered log "
                                  "(0: write every line through at once)")


class Config(_Model):
    version: Literal[1] = Field(1, description="Config format version")
    server: ServerConfig = Field(ServerConfig(), description="Listeners and HTTP behaviour")
    jwt: JWTConfig = Field(JWTConfig(), description="JWT access tokens")
    api_keys: APIKeyConfig | None = Field(None, description="API keys (omit to disable)")
    policy: PolicyConfig = Field(PolicyConfig(), description="Authorization")
    vault: VaultConfig | None = Field(None, description="Vault/OpenBao for keys (omit for local keys)")
    local_keys: LocalKeysConfig = Field(LocalKeysConfig(), description="Local development keys")
    fields: FieldsConfig | None = Field(None, description="Field-level encryption")
    signing: SigningConfig | None = Field(None, description="Signing keys for tokens this project mints")
    audit: AuditConfig = Field(AuditConfig(), description="Decision log")

    @model_validator(mode="after")
    def _consistent(self) -> Config:
        if not self.jwt.issuers and self.api_keys is None:
            raise ValueError("configure at least one credential: jwt.issuers or api_keys")
        if self.policy.engine == "builtin" and not self.policy.rules:
            raise ValueError("policy.rules is empty: the built-in engine would deny everything")
        ids = [r.id for r in self.policy.rules]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"policy.rules: rule ids must be unique (repeated: {', '.join(dupes)})")
        if self.api_keys is not None and self.api_keys.pepper is None and (self.vault is None or not self.vault.pepper):
            raise ValueError("api_keys.pepper is required unless vault.pepper is set")
        return self


ServerConfig.model_rebuild()
ServerTLSConfig.model_rebuild()

# --- loading -----------------------------------------------------------------------------------

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def _substitute(node: Any, env: dict[str, str], path: str, problems: list[str]) -> Any:
    if isinstance(node, dict):
        return {k: _substitute(v, env, f"{path}.{k}" if path else str(k), problems) for k, v in node.items()}
    if isinstance(node, list):
        return [_substitute(v, env, f"{path}[{i}]", problems) for i, v in enumerate(node)]
    if isinstance(node, str) and "${" in node:
        def repl(m: re.Match[str]) -> str:
            name, default = m.group(1), m.group(2)
            value = env.get(name)
            if value is None or (value == "" and default is not None):
                if default is None:
                    problems.append(f"{path}: environment variable {name} is not set")
                    return ""
                return default
            return value

        return _VAR.sub(repl, node)
    return node


def _line_index(text: str) -> dict[tuple[Any, ...], int]:
    """Map each key path to its 1-based line, for error messages."""
    lines: dict[tuple[Any, ...], int] = {}

    def walk(node: yaml.Node, path: tuple[Any, ...]) -> None:
        lines.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                key = k.value
                lines[path + (key,)] = k.start_mark.line + 1
                walk(v, path + (key,))
        elif isinstance(node, yaml.SequenceNode):
            for i, v in enumerate(node.value):
                walk(v, path + (i,))

    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return lines
    if root is not None:
        walk(root, ())
    return lines


def _fmt_loc(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(root)"


def parse_config(text: str, *, env: dict[str, str] | None = None, source: str = "<config>") -> Config:
    """Validate config text; raise :class:`ConfigError` listing every problem."""
    env = dict(os.environ) if env is None else env
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark else "?"
        raise ConfigError(f"{source}: {where}: not valid YAML: {getattr(exc, 'problem', exc)}") from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: the top level must be a mapping")
    problems: list[str] = []
    data = _substitute(raw, env, "", problems)
    lines = _line_index(text)
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        for err in exc.errors():
            loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
            line = None
            for n in range(len(loc), -1, -1):
                line = lines.get(loc[:n])
                if line:
                    break
            where = f"line {line}: " if line else ""
            msg = err["msg"].removeprefix("Value error, ")
            problems.append(f"{source}: {where}{_fmt_loc(loc)}: {msg}")
        raise ConfigError(problems) from None
    if problems:
        raise ConfigError([f"{source}: {p}" for p in problems])
    return config


def load_config(path: str | os.PathLike[str], *, env: dict[str, str] | None = None) -> Config:
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read: {exc.strerror}") from None
    return parse_config(text, env=env, source=str(p))


def json_schema() -> str:
    return json.dumps(Config.model_json_schema(), indent=2, sort_keys=True)
