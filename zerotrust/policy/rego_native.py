"""A faster, stricter way to hand a Python document to rego-cpp as ``input``.

``regopy.Input`` walks the document with ``isinstance`` checks against ABCs and
copies every string into a fresh buffer through a GIL-releasing ``CDLL`` call:
about 160 us for a typical input, as much as the evaluation itself. The same
C entry points called through ``PyDLL`` (no GIL round trip for calls this short)
with a dispatch on exact types take about 55 us.

It is also stricter: the C API takes NUL-terminated strings, so a claim such as
``"acme\\u0000evil"`` would silently reach the policy as ``"acme"``. Such strings
(and integers outside int64) raise :class:`UnrepresentableInput` instead.
"""

from __future__ import annotations

import ctypes
from typing import Any

import regopy
from regopy import rego_shared


class UnrepresentableInput(ValueError):
    """The document cannot be given to rego-cpp without changing its meaning."""


_lib = ctypes.PyDLL(rego_shared.path)
_V, _U32 = ctypes.c_void_p, ctypes.c_uint32


def _fn(name: str, *args: Any) -> Any:
    f = getattr(_lib, name)
    f.argtypes, f.restype = list(args), _U32
    return f


_new = _lib.regoNewInput
_new.argtypes, _new.restype = [], _V
_free = _lib.regoFreeInput
_free.argtypes, _free.restype = [_V], None
_str = _fn("regoInputString", _V, ctypes.c_char_p)
_int = _fn("regoInputInt", _V, ctypes.c_int64)
_float = _fn("regoInputFloat", _V, ctypes.c_double)
_bool = _fn("regoInputBoolean", _V, ctypes.c_bool)
_null = _fn("regoInputNull", _V)
_item = _fn("regoInputObjectItem", _V)
_object = _fn("regoInputObject", _V, _U32)
_array = _fn("regoInputArray", _V, _U32)

_INT64 = 2 ** 63


def _encode(s: str) -> bytes:
    if "\x00" in s:
        raise UnrepresentableInput("string with a NUL character")
    try:
        return s.encode()
    except UnicodeEncodeError:  # lone surrogates
        raise UnrepresentableInput("string that is not valid Unicode") from None


def _add(p: int, v: Any) -> None:
    t = type(v)
    if t is str:
        rc = _str(p, _encode(v))
    elif t is dict:
        for k, x in v.items():
            if type(k) is not str:
                raise UnrepresentableInput("object key that is not a string")
            _str(p, _encode(k))
            _add(p, x)
            _item(p)
        rc = _object(p, len(v))
    elif t is list or t is tuple:
        for x in v:
            _add(p, x)
        rc = _array(p, len(v))
    elif v is None:
        rc = _null(p)
    elif t is bool:
        rc = _bool(p, v)
    elif t is int:
        if not -_INT64 <= v < _INT64:
            raise UnrepresentableInput("integer outside int64")
        rc = _int(p, v)
    elif t is float:
        rc = _float(p, v)
    else:  # claims from a JSON parser never get here; anything else is a caller bug
        raise UnrepresentableInput(f"value of type {t.__name__}")
    if rc:
        raise UnrepresentableInput(f"rego-cpp refused the value (code {rc})")


def to_input(document: Any) -> regopy.Input:
    """A ``regopy.Input`` that owns the native value (freed by its destructor)."""
    p = _new()
    try:
        _add(p, document)
    except BaseException:
        _free(p)
        raise
    value = regopy.Input.__new__(regopy.Input)
    value._impl = p
    return value
