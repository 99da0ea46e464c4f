"""The key layer: Vault Transit (production) or a local key file (embedded default).

``build_key_provider(config)`` picks Vault when ``config.vault`` is set. hvac is an
optional dependency (``zerotrust[vault]``), so everything Vault is imported lazily.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..config import Config
from ..errors import ConfigError
from .local import LocalKeyProvider
from .provider import AsyncKeyOps, DataKey, KeyProvider
from .signing import JWTSigner
from .signing_local import LocalSigner

if TYPE_CHECKING:
    from .signing_transit import TransitSigner
    from .transit import VaultKeyProvider
    from .vault import VaultClient

__all__ = [
    "AsyncKeyOps", "DataKey", "JWTSigner", "KeyProvider", "LocalKeyProvider", "LocalSigner", "TransitSigner",
    "VaultClient", "VaultKeyProvider", "build_key_provider", "build_signer", "pepper_from_vault",
]


def _vault_import() -> None:
    try:
        import hvac  # noqa: F401
    except ImportError:
        raise ConfigError("vault: is configured but hvac is not installed: pip install 'zerotrust[vault]'") from None


def build_key_provider(config: Config, client: VaultClient | None = None) -> KeyProvider:
    """Vault Transit when ``config.vault`` is set, else the local key file (not for production).

    Pass ``client`` to share one Vault token (and renewer) with a signer; it is then yours to close.
    """
    if config.vault is None:
        return LocalKeyProvider.from_config(config)
    _vault_import()
    from .transit import VaultKeyProvider

    if client is not None:
        return VaultKeyProvider(client, config.vault.transit_mount, owns_client=False)
    return VaultKeyProvider.from_config(config.vault)


def build_signer(config: Config, client: VaultClient | None = None) -> JWTSigner:
    """The token signer for ``config.signing``: Transit when ``config.vault`` is set, else local."""
    if config.signing is None:
        raise ConfigError("signing: is not configured")
    sc = config.signing
    common = {"issuer": sc.issuer, "token_ttl": sc.token_ttl}
    if config.vault is None:
        return LocalSigner(config.local_keys.path, sc.key, sc.algorithm, **common)
    _vault_import()
    from .signing_transit import TransitSigner
    from .vault import VaultClient

    return TransitSigner(client or VaultClient(config.vault), sc.key, sc.algorithm,
                         mount=config.vault.transit_mount, **common)


def pepper_from_vault(config: Config) -> bytes:
    """The API-key pepper named by ``config.vault.pepper`` (see :mod:`.pepper`)."""
    _vault_import()
    from .pepper import pepper_from_vault as load

    return load(config)


def __getattr__(name: str) -> Any:
    # Lazy so `import zerotrust.keys` works without hvac installed.
    if name == "VaultKeyProvider":
        _vault_import()
        from .transit import VaultKeyProvider

        return VaultKeyProvider
    if name == "TransitSigner":
        _vault_import()
        from .signing_transit import TransitSigner

        return TransitSigner
    if name == "VaultClient":
        _vault_import()
        from .vault import VaultClient

        return VaultClient
    raise AttributeError(name)
