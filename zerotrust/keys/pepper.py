"""The API-key pepper from Vault, named by ``vault.pepper``.

* ``kv:<mount>/<path>#<field>`` (or without ``kv:``): the UTF-8 bytes of a KV v2 field.
  Rotating it means re-hashing every stored key, so treat it as long-lived.
* ``transit:<key>``: HMAC-SHA256 by Transit key ``<key>`` (version 1, pinned so a key
  rotation does not silently change the pepper) of the fixed label below. The pepper
  then never exists outside Vault and this process's memory, and anyone who can read
  KV cannot learn it; only a token allowed ``transit/hmac/<key>`` can.

Read once at start-up: a Vault outage then cannot take API-key checks down later.
"""

from __future__ import annotations

from ..config import Config
from ..errors import ConfigError
from .kv import read_kv_field
from .transit import VaultKeyProvider
from .vault import VaultClient

PEPPER_LABEL = b"zerotrust api-key pepper v1"


def pepper_from_vault(config: Config, client: VaultClient | None = None) -> bytes:
    if config.vault is None or not config.vault.pepper:
        raise ConfigError("vault.pepper is not set")
    ref = config.vault.pepper
    owned = client is None
    client = client or VaultClient(config.vault, renew=False)
    try:
        if ref.startswith("transit:"):
            provider = VaultKeyProvider(client, config.vault.transit_mount)
            return provider.hmac(ref.removeprefix("transit:"), PEPPER_LABEL, version=1)
        return read_kv_field(client, ref)
    finally:
        if owned:
            client.close()
