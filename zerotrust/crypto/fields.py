"""Field-level encryption of JSON documents: the library API.

    enc = FieldEncryptor.from_config(config)
    stored = enc.encrypt_document(doc)                  # config paths, or paths=["$.ssn", ...]
    shown = await enc.adecrypt_document(stored)
    upgraded = enc.rewrap_document(stored)              # after a Transit key rotation

Input documents are never modified; a new document is returned that shares every
branch it did not have to change. Paths that match nothing are skipped. Any
failure raises and returns nothing: there is no partially encrypted result.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

from ..errors import ConfigError, CryptoError
from . import ciphertext as fmt
from . import deterministic, envelope, transit
from .jsonpath import JsonPath, Location, assign, get
from .keyring import Flow, Keyring, latest_version, run_async, run_sync
from .selection import FieldSpec, PathsArg, collect, document_with, field_specs, location_of
from .values import MAX_CONTEXT_CHARS, FieldInputError, decode_value, encode_value

_DEFAULT: Any = object()
_SCHEMES = {fmt.ENVELOPE: envelope, fmt.TRANSIT: transit, fmt.DETERMINISTIC: deterministic}


class FieldEncryptor:
    def __init__(self, provider: Any, key: str, *, mode: str = "envelope", context: str | None = None,
                 paths: Iterable[Any] = (), datakey_ttl: float = 300, datakey_max_uses: int = 100_000,
                 clock: Callable[[], float] = time.monotonic):
        if mode not in ("envelope", "transit", "local"):
            raise ValueError(f"unknown field encryption mode {mode!r}")
        if not fmt.KEY_NAME.fullmatch(key):
            raise ValueError("key name must match [A-Za-z0-9_-]{1,128} (it is part of every ciphertext)")
        self.provider = provider
        self.mode = mode
        self.context = context
        self.paths = field_specs(paths)
        self.ring = Keyring(provider, key, datakey_ttl=datakey_ttl, datakey_max_uses=datakey_max_uses, clock=clock)
        self._random = transit if mode == "transit" else envelope  # "local" is envelope on the local provider

    @classmethod
    def from_config(cls, config: Any, provider: Any = None, **kw: Any) -> FieldEncryptor:
        """Build from a :class:`~zerotrust.config.Config` (its ``fields`` section) and its key provider."""
        fields = config.fields
        if fields is None:
            raise FieldInputError(detail="the configuration has no 'fields' section")
        if provider is None:
            provider = _provider_for(config)
        return cls(provider, fields.key, mode=fields.mode, context=fields.context, paths=fields.paths,
                   datakey_ttl=fields.datakey_ttl, datakey_max_uses=fields.datakey_max_uses, **kw)

    # --- public API: sync and async twins share one flow each ----------------------------

    def encrypt_document(self, doc: Any, paths: PathsArg = None, *, context: str | None = _DEFAULT) -> Any:
        return run_sync(self.provider, self._encrypt(doc, self._specs(paths), self._ctx(context)))

    async def aencrypt_document(self, doc: Any, paths: PathsArg = None, *, context: str | None = _DEFAULT) -> Any:
        return await run_async(self.provider, self._encrypt(doc, self._specs(paths), self._ctx(context)))

    def decrypt_document(self, doc: Any, paths: PathsArg = None, *, context: str | None = _DEFAULT,
                         strict: bool = True) -> Any:
        return run_sync(self.provider, self._decrypt(doc, self._specs(paths), self._ctx(context), strict))

    async def adecrypt_document(self, doc: Any, paths: PathsArg = None, *, context: str | None = _DEFAULT,
                                strict: bool = True) -> Any:
        return await run_async(self.provider, self._decrypt(doc, self._specs(paths), self._ctx(context), strict))

    def rewrap_document(self, doc: Any, paths: PathsArg = None, *, context: str | None = _DEFAULT) -> Any:
        return run_sync(self.provider, self._rewrap(doc, self._specs(paths), self._ctx(context)))

    async def arewrap_document(self, doc: Any, paths: PathsArg = None, *, context: str | None = _DEFAULT) -> Any:
        return await run_async(self.provider, self._rewrap(doc, self._specs(paths), self._ctx(context)))

    def encrypt_value(self, value: Any, path: str, *, deterministic: bool = False,
                      context: str | None = _DEFAULT) -> str:
        """One value as it would be stored at ``path`` (with ``[*]`` or an index for arrays).

        With ``deterministic=True`` this is the search term for an equality lookup.
        """
        loc = location_of(path)
        doc = document_with(loc, value)
        out = self.encrypt_document(doc, [FieldSpec(JsonPath(path, loc), deterministic)], context=context)
        return get(out, loc)

    def clear_cache(self) -> None:
        self.ring.clear()

    def close(self) -> None:
        self.ring.clear()
        close = getattr(self.provider, "close", None)
        if close is not None:
            close()

    # --- flows ----------------------------------------------------------------------------

    def _specs(self, paths: PathsArg) -> tuple[FieldSpec, ...]:
        specs = self.paths if paths is None else field_specs(paths)
        if not specs:
            raise FieldInputError(detail="no field paths given and none configured (fields.paths)")
        return specs

    def _ctx(self, context: str | None) -> str | None:
        context = self.context if context is _DEFAULT else context
        if context is not None and len(context) > MAX_CONTEXT_CHARS:
            raise FieldInputError(detail=f"context is longer than {MAX_CONTEXT_CHARS} characters")
        return context

    def _encrypt(self, doc: Any, specs: tuple[FieldSpec, ...], context: str | None) -> Flow[Any]:
        groups: dict[Any, list[tuple[Location, str, bytes]]] = {self._random: [], deterministic: []}
        for loc, b, value, det in collect(doc, specs):
            groups[deterministic if det else self._random].append((loc, b, encode_value(value, b)))
        updates: dict[Location, Any] = {}
        for scheme, items in groups.items():
            if items:
                texts = yield from scheme.encrypt(self.ring, context, [(b, d) for _, b, d in items])
                updates.update(zip((loc for loc, _, _ in items), texts))
        return assign(doc, updates)

    def _parsed(self, doc: Any, specs: tuple[FieldSpec, ...], strict: bool
                ) -> dict[str, list[tuple[Location, str, fmt.FieldCiphertext]]]:
        groups: dict[str, list[tuple[Location, str, fmt.FieldCiphertext]]] = {s: [] for s in _SCHEMES}
        for loc, b, value, _ in collect(doc, specs):
            if not fmt.looks_like(value):
                if strict:
                    raise CryptoError(detail=f"{b}: not a {fmt.PREFIX} ciphertext")
                continue
            try:
                c = fmt.parse(value)
            except CryptoError as exc:
                raise CryptoError(detail=f"{b}: {exc.detail}") from None
            if c.key != self.ring.key:
                raise CryptoError(detail=f"{b}: encrypted under key {c.key!r}, not the configured {self.ring.key!r}")
            groups[c.scheme].append((loc, b, c))
        return groups

    def _decrypt(self, doc: Any, specs: tuple[FieldSpec, ...], context: str | None, strict: bool) -> Flow[Any]:
        updates: dict[Location, Any] = {}
        for scheme, items in self._parsed(doc, specs, strict).items():
            if items:
                plains = yield from _SCHEMES[scheme].decrypt(self.ring, context, [(b, c) for _, b, c in items])
                for (loc, b, _), data in zip(items, plains):
                    updates[loc] = decode_value(data, b)
        return assign(doc, updates)

    def _rewrap(self, doc: Any, specs: tuple[FieldSpec, ...], context: str | None) -> Flow[Any]:
        groups = self._parsed(doc, specs, strict=True)
        if not any(groups.values()):
            return doc
        forget = getattr(self.provider, "forget_versions", None)
        if forget is not None:  # the provider caches versions too; a rotation must be seen at once
            forget()
        latest = yield from latest_version(self.ring, fresh=True)
        updates: dict[Location, Any] = {}
        for scheme, items in groups.items():
            if not items:
                continue
            if scheme == fmt.DETERMINISTIC:
                fresh = yield from deterministic.rewrap(self.ring, context, [(b, c) for _, b, c in items], latest)
            else:
                fresh = yield from _SCHEMES[scheme].rewrap(self.ring, context, [c for _, _, c in items], latest)
            for (loc, _, old), new in zip(items, fresh):
                if new is not old:
                    updates[loc] = new.encode()
        return assign(doc, updates)


def _provider_for(config: Any) -> Any:
    from ..keys import LocalKeyProvider, build_key_provider

    if config.fields.mode == "local":
        return LocalKeyProvider.from_config(config)
    if config.vault is None:
        raise ConfigError(f"fields.mode is {config.fields.mode!r}, which needs a 'vault' section "
                          "(mode 'local' keeps keys in a local file: not for production)")
    return build_key_provider(config)


__all__ = ["FieldEncryptor", "FieldSpec", "field_specs"]
