"""The key-provider interface: everything field encryption, API-key peppers and token
signing need from a key store, with Vault Transit semantics.

Ciphertexts are opaque strings ``<prefix>:v<version>:<base64>``: ``vault:`` from Transit,
``local:`` from the embedded provider. A ciphertext names its key version, so rotation
never breaks old data, and ``rewrap`` moves it to the newest version without the caller
ever seeing plaintext.

``context`` is Transit's key-derivation context: with a ``derived`` key each context (a
tenant id, a column name) gets its own key, and a ciphertext only decrypts with the
context it was made with. Providers raise :class:`~zerotrust.errors.DependencyError`
(503) when the key store is unreachable, sealed or refuses us, and
:class:`~zerotrust.errors.CryptoError` when a ciphertext is malformed, tampered with or
bound to another context. No method ever returns partial plaintext on failure.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import NamedTuple, Protocol, TypeVar, runtime_checkable

T = TypeVar("T")


class DataKey(NamedTuple):
    """A fresh data key: use ``plaintext`` locally, store ``wrapped`` next to the data."""

    plaintext: bytes
    wrapped: str
    version: int


@runtime_checkable
class KeyProvider(Protocol):
    """Synchronous operations; each has an ``a``-prefixed async twin (see :class:`AsyncKeyOps`)."""

    name: str  # "vault" or "local", for logs and metrics

    def encrypt(self, key: str, plaintexts: Sequence[bytes], context: bytes | None = None) -> list[str]: ...

    def decrypt(self, key: str, ciphertexts: Sequence[str], context: bytes | None = None) -> list[bytes]: ...

    def rewrap(self, key: str, ciphertexts: Sequence[str], context: bytes | None = None) -> list[str]: ...

    def generate_data_key(self, key: str, context: bytes | None = None) -> DataKey: ...

    def unwrap_data_key(self, key: str, wrapped: str, context: bytes | None = None) -> bytes: ...

    def latest_version(self, key: str) -> int: ...

    def hmac(self, key: str, data: bytes, version: int | None = None) -> bytes: ...

    def get_secret(self, path: str) -> bytes: ...

    async def aencrypt(self, key: str, plaintexts: Sequence[bytes],
                       context: bytes | None = None) -> list[str]: ...

    async def adecrypt(self, key: str, ciphertexts: Sequence[str],
                       context: bytes | None = None) -> list[bytes]: ...

    async def arewrap(self, key: str, ciphertexts: Sequence[str],
                      context: bytes | None = None) -> list[str]: ...

    async def agenerate_data_key(self, key: str, context: bytes | None = None) -> DataKey: ...

    async def aunwrap_data_key(self, key: str, wrapped: str, context: bytes | None = None) -> bytes: ...

    async def alatest_version(self, key: str) -> int: ...

    async def ahmac(self, key: str, data: bytes, version: int | None = None) -> bytes: ...

    async def aget_secret(self, path: str) -> bytes: ...

    def close(self) -> None: ...


class AsyncKeyOps:
    """Async twins that run the blocking call in a worker thread (hvac is synchronous).

    A provider whose operations never block (the local one) sets ``_offload_to_thread``
    to False and runs inline, saving the thread hop per call.
    """

    _offload_to_thread: bool = True

    async def _run(self, fn: Callable[..., T], *args: object) -> T:
        if self._offload_to_thread:
            return await asyncio.to_thread(fn, *args)
        return fn(*args)

    async def aencrypt(self, key: str, plaintexts: Sequence[bytes], context: bytes | None = None) -> list[str]:
        return await self._run(self.encrypt, key, plaintexts, context)  # type: ignore[attr-defined]

    async def adecrypt(self, key: str, ciphertexts: Sequence[str], context: bytes | None = None) -> list[bytes]:
        return await self._run(self.decrypt, key, ciphertexts, context)  # type: ignore[attr-defined]

    async def arewrap(self, key: str, ciphertexts: Sequence[str], context: bytes | None = None) -> list[str]:
        return await self._run(self.rewrap, key, ciphertexts, context)  # type: ignore[attr-defined]

    async def agenerate_data_key(self, key: str, context: bytes | None = None) -> DataKey:
        return await self._run(self.generate_data_key, key, context)  # type: ignore[attr-defined]

    async def aunwrap_data_key(self, key: str, wrapped: str, context: bytes | None = None) -> bytes:
        return await self._run(self.unwrap_data_key, key, wrapped, context)  # type: ignore[attr-defined]

    async def alatest_version(self, key: str) -> int:
        return await self._run(self.latest_version, key)  # type: ignore[attr-defined]

    async def ahmac(self, key: str, data: bytes, version: int | None = None) -> bytes:
        return await self._run(self.hmac, key, data, version)  # type: ignore[attr-defined]

    async def aget_secret(self, path: str) -> bytes:
        return await self._run(self.get_secret, path)  # type: ignore[attr-defined]

    def close(self) -> None:
        """Release connections and background threads; the default holds none."""
