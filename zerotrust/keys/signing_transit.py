"""TransitSigner: JWTs signed by Vault Transit; the private key never leaves Vault.

Public keys come from ``<mount>/export/public-key/<key>`` (read directly: hvac's
helper refuses that export type) and creation times from ``<mount>/keys/<key>``.
Every signature Vault returns is verified locally before use: a wrong key version
or a corrupted answer becomes a 503, never a token nobody can verify.
"""

from __future__ import annotations

import base64
import binascii
import re
from datetime import datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from ..errors import DependencyError
from .ciphertext import b64
from .signing import CURVE_FOR, JWTSigner, garbage
from .signing_keys import KeyVersion, PublicKey, public_jwk
from .vault import VaultClient

_FRACTION = re.compile(r"(\.\d{6})\d+")


def _rfc3339(value: Any) -> float:
    # Go prints nanoseconds; Python's fromisoformat stops at microseconds.
    try:
        return datetime.fromisoformat(_FRACTION.sub(r"\1", str(value)).replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise garbage("creation_time") from None


def verify_jws_signature(public_key: PublicKey, signing_input: bytes, signature: bytes) -> bool:
    try:
        if isinstance(public_key, ed25519.Ed25519PublicKey):
            public_key.verify(signature, signing_input)
        else:
            if len(signature) != 64:
                return False
            der = encode_dss_signature(int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big"))
            public_key.verify(der, signing_input, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        return False
    return True


class TransitSigner(JWTSigner):
    def __init__(self, client: VaultClient, key: str, algorithm: str = "ES256", *, mount: str = "transit",
                 **kw: Any):
        super().__init__(key, algorithm, **kw)
        self.client, self.mount = client, mount.strip("/")
        self._public: dict[int, PublicKey] = {}

    def _load_versions(self) -> list[KeyVersion]:
        meta = self.client.request("GET", f"{self.mount}/keys/{self.key}").get("data") or {}
        if meta.get("type") != CURVE_FOR[self.algorithm]:
            raise DependencyError(reason="error.vault_config",
                                  detail=f"Transit key {self.key!r} is {meta.get('type')!r}, "
                                         f"{self.algorithm} needs {CURVE_FOR[self.algorithm]}")
        exported = (self.client.request("GET", f"{self.mount}/export/public-key/{self.key}").get("data") or {})
        versions = []
        for v, material in (exported.get("keys") or {}).items():
            info = (meta.get("keys") or {}).get(v) or {}
            public = self._parse_public(material)
            versions.append(KeyVersion(int(v), _rfc3339(info.get("creation_time")), public,
                                       public_jwk(public, self.algorithm)))
        if not versions:
            raise garbage("no public keys exported")
        self._public = {kv.version: kv.public_key for kv in versions}
        return versions

    def _parse_public(self, material: Any) -> PublicKey:
        try:
            if self.algorithm == "EdDSA":
                return ed25519.Ed25519PublicKey.from_public_bytes(base64.b64decode(material, validate=True))
            key = serialization.load_pem_public_key(str(material).encode())
        except (ValueError, TypeError, binascii.Error):
            raise garbage("unparseable public key") from None
        if not isinstance(key, ec.EllipticCurvePublicKey):
            raise garbage("public key is not EC")
        return key

    def _sign_bytes(self, version: int, signing_input: bytes) -> bytes:
        body: dict[str, Any] = {"input": b64(signing_input), "key_version": version}
        if self.algorithm == "ES256":
            body |= {"hash_algorithm": "sha2-256", "marshaling_algorithm": "jws"}
        data = self.client.request("POST", f"{self.mount}/sign/{self.key}", body).get("data") or {}
        sig = data.get("signature")
        if not isinstance(sig, str) or not sig.startswith(f"vault:v{version}:"):
            raise garbage("signature missing or from another key version")
        body_b64 = sig.split(":", 2)[2]
        try:
            raw = base64.urlsafe_b64decode(body_b64 + "=" * (-len(body_b64) % 4)) if self.algorithm == "ES256" \
                else base64.b64decode(body_b64, validate=True)
        except (ValueError, binascii.Error):
            raise garbage("signature encoding") from None
        public = self._public.get(version)
        if public is None or not verify_jws_signature(public, signing_input, raw):
            raise garbage("Vault's signature does not verify")
        return raw

    def _rotate(self) -> None:
        self.client.request("POST", f"{self.mount}/keys/{self.key}/rotate", retry=False)
