"""Request-path normalisation (RFC 3986 sections 5.2.4 and 6.2.2).

Policy rules are matched against the path the upstream will act on. Two modes:

* ``strict`` (default): a path that is not already in canonical form (dot segments,
  ``//``, percent-encoded unreserved characters such as ``%2e``) is rejected with
  400, so no disagreement between us and the upstream is possible.
* ``normalize``: such paths are rewritten to canonical form and judged as that.

In both modes an encoded ``/``, ``\\`` or NUL, a raw backslash, control characters,
invalid percent escapes and any ``;`` are rejected: upstreams disagree about what
they mean (Tomcat and Spring strip ``;params`` and would serve ``/public/..;/admin``
or ``/admin;x`` as ``/admin``).
"""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import unquote_to_bytes

from .errors import InvalidRequest

_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_PCT = re.compile(r"%([0-9A-Fa-f]{2})")
_FORBIDDEN_ENCODED = frozenset({"2F", "5C", "00"})
_BAD = re.compile(r"[\x00-\x20\x7f\\#]|%(?![0-9A-Fa-f]{2})")
_DOUBLE = re.compile(r"%25[0-9A-Fa-f]{2}")
_HIGH = re.compile(r"%[89A-Fa-f][0-9A-Fa-f]")
_MAX_PATH = 8192


def _reject(why: str) -> InvalidRequest:
    return InvalidRequest("The request path is not acceptable", reason="deny.bad_path", detail=why)


def _decode_unreserved(m: re.Match[str]) -> str:
    hexpair = m.group(1).upper()
    if hexpair in _FORBIDDEN_ENCODED:
        raise _reject(f"encoded %{hexpair}")
    ch = chr(int(hexpair, 16))
    return ch if ch in _UNRESERVED else m.group(0)


def _check_escapes(raw: str) -> None:
    """Refuse escapes that some upstream decodes into something else than we judge.

    * ``%25`` + hex: double encoding (``%252e%252e`` is ``..`` to a server that decodes twice);
    * escaped bytes that are not valid UTF-8, overlong forms included (``%c0%ae`` is ``.`` to lenient decoders);
    * escaped characters whose compatibility form (NFKC) adds ``.``, ``/`` or ``\\`` (fullwidth ``%ef%bc%8e`` is
      ``.`` to servers that normalise Unicode).
    """
    if _DOUBLE.search(raw):
        raise _reject("double percent-encoding")
    if not _HIGH.search(raw):
        return
    try:
        text = unquote_to_bytes(raw).decode("utf-8")
    except UnicodeDecodeError:
        raise _reject("escaped bytes are not UTF-8") from None
    folded = unicodedata.normalize("NFKC", text)
    if folded != text and any(folded.count(c) != text.count(c) for c in "./\\%"):
        raise _reject("escaped characters that normalise to path syntax")


def _remove_dot_segments(path: str) -> str:
    out: list[str] = []
    for seg in path.split("/")[1:]:
        if seg == "..":
            if not out:
                raise _reject("dot segment above root")
            out.pop()
        elif seg not in (".", ""):
            out.append(seg)
    trailing = path.endswith(("/", "/.", "/..")) and bool(out)
    return "/" + "/".join(out) + ("/" if trailing else "")


def split_target(target: str) -> tuple[str, str]:
    """Split a request target into (path, query). The query is never interpreted here."""
    path, _, query = target.partition("?")
    return path, query


def normalize_path(raw: str, mode: str = "strict") -> str:
    """Return the canonical path, or raise :class:`InvalidRequest` (400)."""
    if not raw.startswith("/") or len(raw) > _MAX_PATH:
        raise _reject("not an absolute path or too long")
    if _BAD.search(raw):
        raise _reject("forbidden character or bad escape")
    if ";" in raw:  # Tomcat/Spring strip ";params": /admin;x and /public/..;/admin would be served as /admin
        raise _reject("path parameter")
    fast = "%" not in raw and "//" not in raw and "/." not in raw
    if fast:
        return raw
    if "%" in raw:
        _check_escapes(raw)
    decoded = _PCT.sub(_decode_unreserved, raw) if "%" in raw else raw
    canonical = _remove_dot_segments(decoded)
    if canonical != raw and mode == "strict":
        raise _reject("non-canonical path")
    return canonical
