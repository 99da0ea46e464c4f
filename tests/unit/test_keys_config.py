"""VaultConfig checks and the KV/pepper references: fail at start-up, not per request."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from zerotrust.config import VaultConfig, parse_config
from zerotrust.errors import ConfigError
from zerotrust.keys import pepper_from_vault
from zerotrust.keys.kv import parse_kv_ref


@pytest.mark.parametrize("addr", ["https://vault.internal:8200", "https://vault.internal:8200/",
                                  "http://127.0.0.1:8200", "http://localhost:8200", "http://[::1]:8200"])
def test_accepted_addresses(addr):
    assert not VaultConfig(addr=addr, token="t").addr.endswith("/")


@pytest.mark.parametrize("addr", [
    "http://vault.internal:8200",        # token in cleartext over the network
    "http://127.0.0.1.evil.example",     # loopback prefix, not loopback
    "http://localhost.evil.example",
    "https://vault.internal/v1/secret",  # a path would be joined in front of every API path
    "ftp://vault", "vault.internal:8200", "https://",
])
def test_refused_addresses(addr):
    with pytest.raises(ValidationError):
        VaultConfig(addr=addr, token="t")


@pytest.mark.parametrize(("auth", "fields"), [("token", {}), ("approle", {"token": "t"}),
                                              ("kubernetes", {"role_id": "r"})])
def test_auth_method_needs_its_fields(auth, fields):
    with pytest.raises(ValidationError, match="required when vault.auth"):
        VaultConfig(addr="http://127.0.0.1:8200", auth=auth, **fields)


@pytest.mark.parametrize(("ref", "parsed"), [
    ("kv:secret/zerotrust#pepper", ("secret", "zerotrust", "pepper")),
    ("secret/apps/zt/prod#value", ("secret", "apps/zt/prod", "value")),
])
def test_kv_refs(ref, parsed):
    assert parse_kv_ref(ref) == parsed


@pytest.mark.parametrize("ref", ["secret/zerotrust", "secret#pepper", "kv:secret/../sys/seal#x",
                                 "secret/a#b#c", "secret/a b#c", "/secret/a#b", "transit:key", ""])
def test_bad_kv_refs(ref):
    with pytest.raises(ConfigError):
        parse_kv_ref(ref)


def test_pepper_from_vault_needs_the_setting():
    cfg = parse_config("""
api_keys: {pepper: "pppppppppppppppppppppppppppppppp"}
policy: {rules: [{id: r, paths: ["/**"], anonymous: true}]}
vault: {addr: "http://127.0.0.1:1", token: t}
""")
    with pytest.raises(ConfigError):
        pepper_from_vault(cfg)
