"""LocalSigner: the embedded default's JWT signer, keys in the local key file.

NOT for production: the private key is on this host's disk. Same ``kid`` scheme,
JWKS and rotation rules as :class:`~.signing_transit.TransitSigner`.
"""

from __future__ import annotations

import os
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from ..errors import ConfigError
from .localstore import LocalKeyFile
from .signing import CURVE_FOR, JWTSigner
from .signing_keys import KeyVersion, public_jwk


class LocalSigner(JWTSigner):
    def __init__(self, store: LocalKeyFile | str | os.PathLike[str], key: str, algorithm: str = "ES256", **kw: Any):
        super().__init__(key, algorithm, **kw)
        self.store = store if isinstance(store, LocalKeyFile) else LocalKeyFile(store)
        self.store.ensure_key(key, CURVE_FOR[algorithm])
        if self.store.key_type(key) != CURVE_FOR[algorithm]:
            raise ConfigError(f"local key {key!r} is {self.store.key_type(key)}, {algorithm} needs {CURVE_FOR[algorithm]}")
        self._private: dict[int, Any] = {}

    def _load_versions(self) -> list[KeyVersion]:
        self.store.reload()
        created = self.store.created(self.key)
        versions = []
        for version, material in (self.store.versions(self.key) or {}).items():
            private = serialization.load_der_private_key(material, password=None)
            self._private[version] = private
            public = private.public_key()
            versions.append(KeyVersion(version, created[version], public, public_jwk(public, self.algorithm)))
        return versions

    def _sign_bytes(self, version: int, signing_input: bytes) -> bytes:
        private = self._private[version]
        if isinstance(private, ed25519.Ed25519PrivateKey):
            return private.sign(signing_input)
        r, s = decode_dss_signature(private.sign(signing_input, ec.ECDSA(hashes.SHA256())))
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")

    def _rotate(self) -> None:
        self.store.rotate(self.key)
