"""Read one field of a KV v2 secret: ``[kv:]<mount>/<path>#<field>``.

The value is returned as its UTF-8 bytes, exactly as stored: a pepper written with
``bao kv put secret/zerotrust pepper=$(openssl rand -base64 48)`` is those 64 ASCII
characters, not their base64 decoding, so what an operator sees is what is used.
"""

from __future__ import annotations

import re

from ..errors import ConfigError, DependencyError
from .vault import VaultClient

_REF = re.compile(r"^(?:kv:)?([A-Za-z0-9_.-]+)/([A-Za-z0-9_./-]+)#([A-Za-z0-9_.-]+)$")


def parse_kv_ref(ref: str) -> tuple[str, str, str]:
    """(mount, path, field) or :class:`ConfigError`."""
    m = _REF.match(ref)
    if m is None or ".." in m.group(2).split("/"):
        raise ConfigError(f"{ref!r} is not a KV v2 reference 'kv:<mount>/<path>#<field>'")
    return m.group(1), m.group(2).strip("/"), m.group(3)


def read_kv_field(client: VaultClient, ref: str) -> bytes:
    mount, path, field = parse_kv_ref(ref)
    data = client.request("GET", f"{mount}/data/{path}").get("data") or {}
    value = (data.get("data") or {}).get(field)
    if not isinstance(value, str) or not value:
        raise DependencyError(reason="error.vault_secret_missing",
                              detail=f"KV secret {mount}/{path} has no string field {field!r}")
    return value.encode("utf-8")
