"""LocalKeyProvider: Transit semantics on a local key file, for the embedded default.

NOT for production (see :mod:`.localstore`). AES-256-GCM with a random 96-bit nonce;
``context`` is bound as associated data, so a ciphertext made for one context fails
to decrypt under another, as with a derived Transit key. HMAC keys are derived from
each version's material with HKDF so the encryption key is never used for two jobs.
"""

from __future__ import annotations

import hashlib
import hmac as _hmac
import logging
import os
import secrets
from collections.abc import Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from ..config import Config
from ..errors import CryptoError
from . import ciphertext as ct
from .localstore import LocalKeyFile
from .provider import AsyncKeyOps, DataKey

log = logging.getLogger("zerotrust.keys")

PREFIX = "local"
_NONCE = 12


def _hmac_key(material: bytes) -> bytes:
    return HKDF(hashes.SHA256(), 32, salt=None, info=b"zerotrust local hmac v1").derive(material)


class LocalKeyProvider(AsyncKeyOps):
    name = "local"
    _offload_to_thread = False  # microseconds of CPU; a thread hop would cost more

    def __init__(self, path: str | os.PathLike[str], *, quiet: bool = False):
        self.store = LocalKeyFile(path)
        if not quiet:
            log.warning("local key provider: keys are in %s on this host; NOT FOR PRODUCTION, use Vault",
                        self.store.path)

    @classmethod
    def from_config(cls, config: Config) -> LocalKeyProvider:
        return cls(config.local_keys.path)

    # --- key management (what `bao write transit/keys/...` does for Vault) -----------------

    def create_key(self, key: str, key_type: str = "aes256-gcm96") -> None:
        self.store.ensure_key(key, key_type)

    def rotate(self, key: str) -> int:
        self.store.ensure_key(key)
        return self.store.rotate(key)

    def _versions(self, key: str) -> dict[int, bytes]:
        versions = self.store.versions(key)
        if versions is None:
            self.store.ensure_key(key)  # created on first use, like the file itself
            versions = self.store.versions(key)
            assert versions is not None
        return versions

    def _material(self, key: str, version: int) -> bytes:
        versions = self._versions(key)
        if version not in versions:
            self.store.reload()  # another process may have rotated
            versions = self._versions(key)
        if version not in versions:
            raise CryptoError(detail=f"key {key!r} has no version {version}")
        return versions[version]

    # --- operations -------------------------------------------------------------------------

    def latest_version(self, key: str) -> int:
        self._versions(key)
        return self.store.latest(key)

    def encrypt(self, key: str, plaintexts: Sequence[bytes], context: bytes | None = None) -> list[str]:
        version = self.latest_version(key)
        aead = AESGCM(self._material(key, version))
        out = []
        for pt in plaintexts:
            nonce = secrets.token_bytes(_NONCE)
            out.append(ct.join(PREFIX, version, nonce + aead.encrypt(nonce, bytes(pt), context or None)))
        return out

    def decrypt(self, key: str, ciphertexts: Sequence[str], context: bytes | None = None) -> list[bytes]:
        out = []
        for c in ciphertexts:
            version, raw = ct.parse(c, PREFIX)
            if len(raw) < _NONCE + 16:
                raise ct.invalid("ciphertext too short")
            try:
                out.append(AESGCM(self._material(key, version)).decrypt(raw[:_NONCE], raw[_NONCE:], context or None))
            except InvalidTag:
                raise ct.invalid("authentication failed (tampered, wrong key or wrong context)") from None
        return out

    def rewrap(self, key: str, ciphertexts: Sequence[str], context: bytes | None = None) -> list[str]:
        latest = self.latest_version(key)
        plain = self.decrypt(key, ciphertexts, context)
        fresh = self.encrypt(key, plain, context)
        # Like Transit, leave ciphertexts already at the latest version untouched.
        return [old if ct.split(old, PREFIX)[0] == latest else new for old, new in zip(ciphertexts, fresh)]

    def generate_data_key(self, key: str, context: bytes | None = None) -> DataKey:
        plaintext = secrets.token_bytes(32)
        wrapped = self.encrypt(key, [plaintext], context)[0]
        return DataKey(plaintext, wrapped, ct.split(wrapped, PREFIX)[0])

    def unwrap_data_key(self, key: str, wrapped: str, context: bytes | None = None) -> bytes:
        plaintext = self.decrypt(key, [wrapped], context)[0]
        if len(plaintext) != 32:
            raise ct.invalid("wrapped data key is not 32 bytes")
        return plaintext

    def hmac(self, key: str, data: bytes, version: int | None = None) -> bytes:
        material = self._material(key, version or self.latest_version(key))
        return _hmac.digest(_hmac_key(material), data, hashlib.sha256)

    def get_secret(self, path: str) -> bytes:
        return self.store.secret(path)
