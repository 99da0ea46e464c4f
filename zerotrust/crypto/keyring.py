"""What the field schemes share: one Transit key, its provider, the caches, and the I/O flows.

The schemes are written once, as generators that *yield* the key-provider calls
they need (``Call("encrypt", ...)``) and receive the answers (the pattern of httpx's
auth flows). :func:`run_sync` answers with the blocking provider methods,
:func:`run_async` with their ``a``-prefixed twins, so the sync and async APIs cannot
drift apart, and a fully cached encryption never leaves the event loop.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator
from typing import Any, NamedTuple, TypeVar

from ..errors import CryptoError, DependencyError, ZeroTrustError
from .datakeys import DataKeyCache, TTLCache

T = TypeVar("T")


class Call(NamedTuple):
    op: str  # a KeyProvider method name: encrypt, decrypt, rewrap, generate_data_key, ...
    args: tuple[Any, ...]


Flow = Generator[Call, Any, T]


class Keyring:
    """One Transit key as the field schemes see it."""

    def __init__(self, provider: Any, key: str, *, datakey_ttl: float = 300, datakey_max_uses: int = 100_000,
                 clock: Callable[[], float] = time.monotonic, max_cached_keys: int = 1024):
        self.provider = provider
        self.key = key
        # Ciphertexts from the provider look like "<prefix>:v<n>:<base64>"; only the version and bytes are kept.
        self.prefix: str = getattr(provider, "name", "vault")
        self.datakeys = DataKeyCache(datakey_ttl, datakey_max_uses, clock, max_cached_keys)
        self.unwrapped: TTLCache[Any] = TTLCache(datakey_ttl, max_cached_keys, clock)
        self.derived: TTLCache[Any] = TTLCache(datakey_ttl, max_cached_keys, clock)
        self.versions: TTLCache[int] = TTLCache(min(datakey_ttl, 60.0), 16, clock)
        self.clock = clock
        self._version_refreshed = float("-inf")

    def clear(self) -> None:
        """Forget every cached key (e.g. after a suspected compromise or in tests)."""
        for cache in (self.datakeys, self.unwrapped, self.derived, self.versions):
            cache.clear()


def context_bytes(context: str | None) -> bytes | None:
    return None if context is None else context.encode("utf-8")


def latest_version(ring: Keyring, *, fresh: bool = False) -> Flow[int]:
    """The newest Transit key version; cached briefly unless ``fresh`` (rewrap must see a rotation at once)."""
    version = None if fresh else ring.versions.get(ring.key)
    if version is None:
        version = yield Call("latest_version", (ring.key,))
        if not isinstance(version, int) or version < 1:
            raise DependencyError(detail=f"key provider returned version {version!r} for {ring.key}")
        ring.versions.put(ring.key, version)
    return version


VERSION_REFRESH_SECONDS = 1.0


def check_version(ring: Keyring, version: int) -> Flow[None]:
    """Refuse a ciphertext version newer than the key's latest before any key operation.

    A version above the cached latest may be a rotation another process already uses, so
    the latest is asked again, but at most once a second: forged versions cannot buy a
    Vault round trip each.
    """
    latest = yield from latest_version(ring)
    if version > latest and ring.clock() - ring._version_refreshed >= VERSION_REFRESH_SECONDS:
        ring._version_refreshed = ring.clock()
        latest = yield from latest_version(ring, fresh=True)
    if version > latest:
        raise CryptoError(detail=f"key version {version} does not exist (latest is {latest})")


def run_sync(provider: Any, flow: Flow[T]) -> T:
    try:
        call = next(flow)
        while True:
            call = flow.send(_checked(getattr(provider, call.op), call))
    except StopIteration as stop:
        return stop.value


async def run_async(provider: Any, flow: Flow[T]) -> T:
    try:
        call = next(flow)
        while True:
            method = getattr(provider, "a" + call.op)
            try:
                result = await method(*call.args)
            except ZeroTrustError:
                raise
            except Exception as exc:
                raise _unexpected(call, exc) from exc
            call = flow.send(result)
    except StopIteration as stop:
        return stop.value


def _checked(method: Callable[..., Any], call: Call) -> Any:
    try:
        return method(*call.args)
    except ZeroTrustError:
        raise
    except Exception as exc:  # a provider bug must fail closed like an outage, not leak a stack trace
        raise _unexpected(call, exc) from exc


def _unexpected(call: Call, exc: Exception) -> DependencyError:
    return DependencyError(detail=f"key provider {call.op} failed: {type(exc).__name__}")
