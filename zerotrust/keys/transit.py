"""VaultKeyProvider: the :class:`KeyProvider` operations on Vault/OpenBao Transit.

Batches go out as one ``batch_input`` request per 200 items, so encrypting the ten
fields of a record costs one round trip, not ten. (OpenBao's listener refuses JSON with
more than 1000 strings by default, ``max_request_json_strings``; an item with a context
is four strings.) A 400 on decrypt/rewrap means the
ciphertext (or its context) is wrong: :class:`CryptoError`, and so does a 400 on an HMAC
for a version named by a ciphertext (retired or never existed). Anything else that goes
wrong, including a 400 on encrypt (a misconfigured key) and answers we cannot parse,
is a :class:`DependencyError`: fail closed, never partial output.
"""

from __future__ import annotations

import base64
import binascii
import re
import threading
import time
from collections.abc import Sequence
from typing import Any

from ..config import VaultConfig
from ..errors import ConfigError, CryptoError, DependencyError
from . import ciphertext as ct
from .provider import AsyncKeyOps, DataKey
from .vault import VaultClient, VaultRejected

PREFIX = "vault"
BATCH = 200
_KEY_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
VERSION_CACHE_SECONDS = 10.0  # how long the "is this key derived" answer is trusted


def _garbage(what: str) -> DependencyError:
    return DependencyError(reason="error.vault_garbage", detail=f"vault answered garbage: {what}")


def _unb64(value: Any, what: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError, TypeError):
        raise _garbage(what) from None


class VaultKeyProvider(AsyncKeyOps):
    name = "vault"

    def __init__(self, client: VaultClient, mount: str = "transit", *, owns_client: bool = True):
        self.client = client
        self.mount = mount.strip("/")
        self._owns_client = owns_client  # a client shared with a signer is closed by whoever made it
        self._versions: dict[str, tuple[int, bool, float]] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_config(cls, config: VaultConfig) -> VaultKeyProvider:
        return cls(VaultClient.from_config(config), config.transit_mount)

    def _path(self, op: str, key: str) -> str:
        if not _KEY_NAME.match(key):
            raise ConfigError(f"invalid Transit key name {key!r}")
        return f"{self.mount}/{op}/{key}"

    def _batch(self, op: str, key: str, items: list[dict[str, Any]], out_field: str,
               bad_input_is_crypto: bool) -> list[Any]:
        results: list[Any] = []
        for start in range(0, len(items), BATCH):
            chunk = items[start:start + BATCH]
            try:
                data = self.client.request("POST", self._path(op, key), {"batch_input": chunk}).get("data") or {}
            except VaultRejected as exc:
                if bad_input_is_crypto and exc.vault_status == 400:
                    raise CryptoError(detail=f"transit {op} refused: {'; '.join(exc.errors)[:200]}") from None
                raise
            answered = data.get("batch_results")
            if not isinstance(answered, list) or len(answered) != len(chunk):
                raise _garbage(f"{op} batch_results")
            for item in answered:
                if not isinstance(item, dict) or item.get("error"):
                    err = item.get("error") if isinstance(item, dict) else "not an object"
                    if bad_input_is_crypto:
                        raise CryptoError(detail=f"transit {op} item refused: {str(err)[:200]}")
                    raise DependencyError(detail=f"transit {op} item failed: {str(err)[:200]}")
                if out_field not in item:
                    raise _garbage(f"{op} result without {out_field}")
                results.append(item[out_field])
        return results

    def _check_context(self, key: str, context: bytes | None) -> None:
        # Transit silently ignores a context on a non-derived key: the caller would believe
        # ciphertexts are bound to a tenant when they are not. Refuse instead.
        if context and not self._key_info(key)[1]:
            raise DependencyError(reason="error.vault_config",
                                  detail=f"a context was given but Transit key {key!r} is not derived")

    @staticmethod
    def _ctx(item: dict[str, Any], context: bytes | None) -> dict[str, Any]:
        if context:
            item["context"] = ct.b64(context)
        return item

    # --- operations -------------------------------------------------------------------------------

    def encrypt(self, key: str, plaintexts: Sequence[bytes], context: bytes | None = None) -> list[str]:
        if not plaintexts:
            return []
        self._check_context(key, context)
        items = [self._ctx({"plaintext": ct.b64(bytes(p))}, context) for p in plaintexts]
        out = self._batch("encrypt", key, items, "ciphertext", bad_input_is_crypto=False)
        if not all(isinstance(c, str) and c.startswith(PREFIX + ":v") for c in out):
            raise _garbage("encrypt ciphertext")
        return out

    def decrypt(self, key: str, ciphertexts: Sequence[str], context: bytes | None = None) -> list[bytes]:
        if not ciphertexts:
            return []
        for c in ciphertexts:
            ct.split(c, PREFIX)  # malformed input never reaches Vault
        self._check_context(key, context)
        items = [self._ctx({"ciphertext": c}, context) for c in ciphertexts]
        out = self._batch("decrypt", key, items, "plaintext", bad_input_is_crypto=True)
        return [_unb64(p, "plaintext") for p in out]

    def rewrap(self, key: str, ciphertexts: Sequence[str], context: bytes | None = None) -> list[str]:
        if not ciphertexts:
            return []
        for c in ciphertexts:
            ct.split(c, PREFIX)
        self._check_context(key, context)
        items = [self._ctx({"ciphertext": c}, context) for c in ciphertexts]
        out = self._batch("rewrap", key, items, "ciphertext", bad_input_is_crypto=True)
        if not all(isinstance(c, str) and c.startswith(PREFIX + ":v") for c in out):
            raise _garbage("rewrap ciphertext")
        return out

    def generate_data_key(self, key: str, context: bytes | None = None) -> DataKey:
        self._check_context(key, context)
        body = self._ctx({"bits": 256}, context)
        data = self.client.request("POST", self._path("datakey/plaintext", key), body).get("data") or {}
        plaintext = _unb64(data.get("plaintext"), "datakey plaintext")
        wrapped, version = data.get("ciphertext"), data.get("key_version")
        if len(plaintext) != 32 or not isinstance(wrapped, str) or not isinstance(version, int):
            raise _garbage("datakey")
        ct.split(wrapped, PREFIX)
        return DataKey(plaintext, wrapped, version)

    def unwrap_data_key(self, key: str, wrapped: str, context: bytes | None = None) -> bytes:
        plaintext = self.decrypt(key, [wrapped], context)[0]
        if len(plaintext) != 32:
            raise CryptoError(detail="wrapped data key is not 32 bytes")
        return plaintext

    def _key_info(self, key: str, *, fresh: bool = False) -> tuple[int, bool]:
        """(latest_version, derived) from ``GET <mount>/keys/<key>``, cached briefly unless ``fresh``."""
        now = time.monotonic()
        with self._lock:
            cached = self._versions.get(key)
        if cached and not fresh and now - cached[2] < VERSION_CACHE_SECONDS:
            return cached[0], cached[1]
        data = self.client.request("GET", self._path("keys", key)).get("data") or {}
        version, derived = data.get("latest_version"), data.get("derived")
        if not isinstance(version, int) or version < 1 or not isinstance(derived, bool):
            raise _garbage("keys/<key>")
        with self._lock:
            self._versions[key] = (version, derived, now)
        return version, derived

    def latest_version(self, key: str) -> int:
        # Always asks Vault: callers cache it themselves, and rewrap must see a rotation at once.
        return self._key_info(key, fresh=True)[0]

    def forget_versions(self) -> None:
        """Drop the latest_version cache (after a rotation this process made)."""
        with self._lock:
            self._versions.clear()

    def hmac(self, key: str, data: bytes, version: int | None = None) -> bytes:
        body: dict[str, Any] = {"input": ct.b64(data)}
        if version is not None:
            body["key_version"] = version
        try:
            answer = self.client.request("POST", self._path("hmac", key) + "/sha2-256", body)
        except VaultRejected as exc:
            # An explicit version comes from a ciphertext: one that does not exist or is retired
            # (min_decryption_version / min_encryption_version) is the ciphertext's fault, not an outage.
            if version is not None and exc.vault_status == 400:
                raise CryptoError(detail=f"transit hmac refused key version {version}: "
                                         f"{'; '.join(exc.errors)[:200]}") from None
            raise
        mac = (answer.get("data") or {}).get("hmac")
        if not isinstance(mac, str) or not mac.startswith(PREFIX + ":v"):
            raise _garbage("hmac")
        return _unb64(mac.split(":", 2)[2], "hmac")

    def get_secret(self, path: str) -> bytes:
        from .kv import read_kv_field

        return read_kv_field(self.client, path)

    def close(self) -> None:
        if self._owns_client:
            self.client.close()
