"""The embedded key file: versioned keys and secrets in one JSON file, mode 0600.

NOT for production: the keys sit on the same disk as the data they protect. It exists
so the embedded default and tests work with no Vault. The file is created on first use;
writers take an ``flock`` and replace the file atomically, so several processes can
share it and a crash never leaves half a file. A file readable by group or others is
refused, as ssh refuses a loose private key.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from ..errors import ConfigError

KEY_TYPES = ("aes256-gcm96", "ecdsa-p256", "ed25519")
_WARNING = "zerotrust local keys: NOT FOR PRODUCTION. Keep this file secret (0600); use Vault in production."


def _new_material(key_type: str) -> bytes:
    if key_type == "aes256-gcm96":
        return secrets.token_bytes(32)
    private = ec.generate_private_key(ec.SECP256R1()) if key_type == "ecdsa-p256" else \
        ed25519.Ed25519PrivateKey.generate()
    return private.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                 serialization.NoEncryption())


class LocalKeyFile:
    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path)
        self._lock = threading.Lock()
        self._data: dict[str, Any] = {"format": 1, "warning": _WARNING, "keys": {}, "secrets": {}}
        if self.path.exists():
            self._data = self._read()

    # --- reading ---------------------------------------------------------------------

    def _read(self) -> dict[str, Any]:
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_NOFOLLOW)
        except OSError as exc:
            raise ConfigError(f"{self.path}: cannot open local key file: {exc.strerror}") from None
        with os.fdopen(fd, "rb") as f:
            if os.fstat(f.fileno()).st_mode & 0o077:
                raise ConfigError(f"{self.path}: local key file is readable by others; chmod 600 it")
            try:
                data = json.loads(f.read())
            except ValueError:
                raise ConfigError(f"{self.path}: local key file is not valid JSON") from None
        if not isinstance(data, dict) or data.get("format") != 1:
            raise ConfigError(f"{self.path}: not a zerotrust local key file (format 1)")
        return data

    def versions(self, name: str) -> dict[int, bytes] | None:
        entry = self._data["keys"].get(name)
        if entry is None:
            return None
        return {int(v): base64.b64decode(m["material"]) for v, m in entry["versions"].items()}

    def created(self, name: str) -> dict[int, float]:
        """Version -> unix time it was created (signing-key rotation needs it)."""
        entry = self._data["keys"].get(name) or {"versions": {}}
        return {int(v): float(m["created"]) for v, m in entry["versions"].items()}

    def key_type(self, name: str) -> str | None:
        entry = self._data["keys"].get(name)
        return None if entry is None else entry["type"]

    def reload(self) -> None:
        """Pick up another process's rotation (called when a version is unknown)."""
        with self._lock:
            if self.path.exists():
                self._data = self._read()

    # --- writing ---------------------------------------------------------------------

    @contextmanager
    def _writing(self) -> Iterator[dict[str, Any]]:
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        lock_path = self.path.with_name(self.path.name + ".lock")
        lock_fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_EX)
            with self._lock:
                data = self._read() if self.path.exists() else self._data
                yield data
                tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.{secrets.token_hex(4)}")
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
                with os.fdopen(fd, "w") as f:
                    json.dump(data, f, indent=1, sort_keys=True)
                    f.flush()
                    os.fsync(f.fileno())
                os.replace(tmp, self.path)
                self._data = data
        finally:
            os.close(lock_fd)

    def ensure_key(self, name: str, key_type: str = "aes256-gcm96") -> None:
        if key_type not in KEY_TYPES:
            raise ConfigError(f"local key type must be one of {', '.join(KEY_TYPES)}")
        if name in self._data["keys"]:
            return
        with self._writing() as data:
            data["keys"].setdefault(name, {"type": key_type, "latest": 1, "versions": {
                "1": {"material": base64.b64encode(_new_material(key_type)).decode(), "created": time.time()}}})

    def rotate(self, name: str) -> int:
        with self._writing() as data:
            entry = data["keys"][name]
            entry["latest"] += 1
            entry["versions"][str(entry["latest"])] = {
                "material": base64.b64encode(_new_material(entry["type"])).decode(), "created": time.time()}
            return int(entry["latest"])

    def latest(self, name: str) -> int:
        return int(self._data["keys"][name]["latest"])

    def secret(self, path: str, make: Callable[[], bytes] = lambda: secrets.token_bytes(32)) -> bytes:
        value = self._data["secrets"].get(path)
        if value is None:
            with self._writing() as data:
                value = data["secrets"].setdefault(path, base64.b64encode(make()).decode())
        return base64.b64decode(value)
