"""The pepper and the keyed hash that is all the database ever holds of a key.

Keys are 190-bit random strings, so a fast hash is enough against guessing; the
pepper (a secret kept outside the database, in the config or in Vault) means a
stolen or writable database alone can neither confirm a key nor mint a new one.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import time
from collections.abc import Callable

from ..config import Config
from ..errors import ConfigError, DependencyError

log = logging.getLogger("zerotrust.api_key")

MIN_PEPPER_BYTES = 32
_CHECK_SALT = b"zerotrust api-key pepper check v1"


def key_digest(pepper: bytes, key: str) -> bytes:
    """HMAC-SHA256(pepper, key): the lookup index and the stored value."""
    return hmac.digest(pepper, key.encode("ascii"), "sha256")


def pepper_check(pepper: bytes) -> bytes:
    """A value stored once per database to detect a changed pepper.

    scrypt, not HMAC: this is a value an attacker with the file could use to test
    pepper guesses offline, so make each guess cost ~50 ms and 16 MiB.
    """
    return hashlib.scrypt(pepper, salt=_CHECK_SALT, n=2**14, r=8, p=1, dklen=32)


def load_pepper(config: Config) -> bytes:
    """The pepper as bytes: from Vault when ``vault.pepper`` is set, else ``api_keys.pepper``."""
    if config.vault is not None and config.vault.pepper:
        try:
            from zerotrust.keys import pepper_from_vault
        except ImportError as exc:
            raise ConfigError(f"vault.pepper is set but the Vault key provider is unavailable: {exc}") from None
        pepper = pepper_from_vault(config)
        where = "vault.pepper"
    else:
        assert config.api_keys is not None
        if config.api_keys.pepper is None:
            raise ConfigError("api_keys.pepper is required unless vault.pepper is set")
        pepper = config.api_keys.pepper.encode("utf-8")
        where = "api_keys.pepper"
    if not isinstance(pepper, bytes) or len(pepper) < MIN_PEPPER_BYTES:
        raise ConfigError(f"{where}: the pepper must be at least {MIN_PEPPER_BYTES} bytes")
    return pepper


class PepperSource:
    """Holds the pepper; if Vault was down at start-up, retries later instead of killing the process.

    Until the pepper is known every API key request is a 503 (fail closed).
    """

    def __init__(self, load: Callable[[], bytes], *, retry_interval: float = 5.0,
                 clock: Callable[[], float] = time.monotonic):
        self._load = load
        self._retry_interval = retry_interval
        self._clock = clock
        self._last_try: float | None = None
        self.value: bytes | None = None
        self.error: str | None = None

    def try_load(self) -> bytes | None:
        """Load now; a dependency failure is remembered, a configuration error raised."""
        self._last_try = self._clock()
        try:
            self.value = self._load()
            self.error = None
        except ConfigError:
            raise
        except Exception as exc:  # Vault down or answering garbage: retry later, deny meanwhile
            self.error = getattr(exc, "detail", None) or type(exc).__name__
            log.error("API-key pepper unavailable, retrying in %.0fs: %s", self._retry_interval, self.error)
        return self.value

    async def get(self) -> bytes:
        if self.value is not None:
            return self.value
        if self._last_try is None or self._clock() - self._last_try >= self._retry_interval:
            # Vault calls block: keep them off the event loop.
            try:
                value = await asyncio.to_thread(self.try_load)
            except ConfigError as exc:  # e.g. Vault now holds a short pepper: still fail closed with a 503
                self.error = "; ".join(exc.problems)
                value = None
            if value is not None:
                return value
        raise DependencyError(reason="error.api_key.pepper", detail=f"API-key pepper unavailable: {self.error}")
