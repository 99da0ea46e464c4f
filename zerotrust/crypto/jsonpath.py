"""A strict subset of JSONPath (RFC 9535) for naming the fields to encrypt.

Grammar::

    path     := "$" segment+
    segment  := "." name | ".*" | "[" selector "]"
    name     := [A-Za-z_][A-Za-z0-9_-]*
    selector := "*" | index | quoted
    index    := "0" | [1-9][0-9]*          (non-negative array index)
    quoted   := "'" ... "'" | '"' ... '"'  (backslash escapes \\ \' \")

``*`` selects every element of an array and every member of an object. Filters,
slices, recursive descent and negative indices are rejected: a path that could mean
two things is worse than none. Paths that do not match a document are skipped.

Every matched location gets a *binding*: its concrete path with array indices
erased (``$["users"][*]["ssn"]``). Ciphertexts are bound to it, so a value moved to
another field fails to decrypt, while reordering array elements stays harmless.
Bindings key several caches, so a member name in one is at most ``MAX_MEMBER_CHARS``:
a longer name in a path is a :class:`PathError`, one that ``*`` meets in a document a
:class:`FieldInputError` (the client chose it).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from .values import FieldInputError

MAX_PATH_CHARS = 1024
MAX_MEMBER_CHARS = 256
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
_INDEX = re.compile(r"0|[1-9][0-9]{0,8}")

WILDCARD = None  # a segment of a parsed path that is "*"
Segment = str | int | None  # member name, array index, or WILDCARD
Location = tuple[str | int, ...]  # a concrete place in one document


class PathError(ValueError):
    """A JSON path is not valid; the message names the offset and what was expected."""


@dataclass(frozen=True, slots=True)
class JsonPath:
    text: str
    segments: tuple[Segment, ...]

    def __str__(self) -> str:
        return self.text

    def find(self, doc: Any) -> list[Location]:
        """Each concrete location this path matches, in document order."""
        return [loc for loc, _, _ in self.matches(doc)]

    def matches(self, doc: Any) -> list[tuple[Location, str, Any]]:
        """(location, binding, value) for each match, in document order.

        Breadth-first, one list per segment: no recursion, no generator chain (this
        runs once per document on the request path).
        """
        frontier: list[tuple[Location, str, Any]] = [((), "$", doc)]
        for seg in self.segments:
            nxt: list[tuple[Location, str, Any]] = []
            add = nxt.append
            if seg is WILDCARD:
                for here, bound, node in frontier:
                    if isinstance(node, list):
                        star = bound + "[*]"
                        for i, child in enumerate(node):
                            add((here + (i,), star, child))
                    elif isinstance(node, dict):
                        for k, child in node.items():
                            if len(k) > MAX_MEMBER_CHARS:
                                raise FieldInputError(detail=f"{bound}: a member name is longer than "
                                                             f"{MAX_MEMBER_CHARS} characters")
                            add((here + (k,), bound + _member(k), child))
            elif isinstance(seg, int):
                for here, bound, node in frontier:
                    if isinstance(node, list) and seg < len(node):
                        add((here + (seg,), bound + "[*]", node[seg]))
            else:
                member = _member(seg)
                for here, bound, node in frontier:
                    if isinstance(node, dict) and seg in node:
                        add((here + (seg,), bound + member, node[seg]))
            frontier = nxt
            if not frontier:
                break
        return frontier


@lru_cache(maxsize=4096)
def _member(name: str) -> str:
    return "[" + json.dumps(name) + "]"


def binding(location: Location) -> str:
    """The canonical, unambiguous field name a ciphertext is bound to (indices erased)."""
    return "$" + "".join("[*]" if isinstance(s, int) else _member(s) for s in location)


def parse(text: str) -> JsonPath:
    if not isinstance(text, str):
        raise PathError("a JSON path must be a string")
    if len(text) > MAX_PATH_CHARS:
        raise PathError(f"JSON path is longer than {MAX_PATH_CHARS} characters")
    if not text.startswith("$"):
        raise PathError(f"JSON path {text!r} must start with '$'")
    segments: list[Segment] = []
    i = 1
    while i < len(text):
        ch = text[i]
        if ch == ".":
            if text.startswith(".*", i):
                segments.append(WILDCARD)
                i += 2
                continue
            m = _NAME.match(text, i + 1)
            if not m:
                raise PathError(f"JSON path {text!r}: expected a member name after '.' at offset {i}")
            segments.append(m.group())
            i = m.end()
        elif ch == "[":
            seg, i = _bracket(text, i + 1)
            segments.append(seg)
        else:
            raise PathError(f"JSON path {text!r}: unexpected {ch!r} at offset {i} (expected '.' or '[')")
    if not segments:
        raise PathError(f"JSON path {text!r} selects the whole document; name a field below '$'")
    if any(isinstance(s, str) and len(s) > MAX_MEMBER_CHARS for s in segments):
        raise PathError(f"JSON path {text[:40]!r}...: a member name is longer than {MAX_MEMBER_CHARS} characters")
    return JsonPath(text, tuple(segments))


def _bracket(text: str, i: int) -> tuple[Segment, int]:
    if text.startswith("*]", i):
        return WILDCARD, i + 2
    if i < len(text) and text[i] in "'\"":
        return _quoted(text, i)
    m = _INDEX.match(text, i)
    if m and text.startswith("]", m.end()):
        return int(m.group()), m.end() + 1
    raise PathError(f"JSON path {text!r}: expected '*', an index or a quoted name with ']' at offset {i}")


def _quoted(text: str, i: int) -> tuple[str, int]:
    quote, out, j = text[i], [], i + 1
    while j < len(text):
        ch = text[j]
        if ch == "\\":
            if j + 1 >= len(text) or text[j + 1] not in "\\'\"":
                raise PathError(f"JSON path {text!r}: bad escape at offset {j} (only \\\\ \\' \\\" are allowed)")
            out.append(text[j + 1])
            j += 2
        elif ch == quote:
            if not text.startswith("]", j + 1):
                raise PathError(f"JSON path {text!r}: expected ']' at offset {j + 1}")
            return "".join(out), j + 2
        elif ord(ch) < 0x20:
            raise PathError(f"JSON path {text!r}: control character at offset {j}")
        else:
            out.append(ch)
            j += 1
    raise PathError(f"JSON path {text!r}: unterminated quoted name starting at offset {i}")


def get(doc: Any, location: Location) -> Any:
    for part in location:
        doc = doc[part]
    return doc


def assign(doc: Any, updates: dict[Location, Any]) -> Any:
    """Return ``doc`` with ``updates`` applied, copying only the containers on the way.

    The caller's document is never modified, and untouched branches are shared.
    Locations must not overlap (one a prefix of another); callers check that.
    """
    if not updates:
        return doc
    if () in updates:
        return updates[()]
    root: Any = list(doc) if isinstance(doc, list) else dict(doc)
    copies: dict[Location, Any] = {(): root}
    for loc, value in updates.items():
        parent = copies.get(loc[:-1])
        if parent is None:
            parent = root
            for depth in range(1, len(loc)):
                prefix = loc[:depth]
                copied = copies.get(prefix)
                if copied is None:
                    child = parent[loc[depth - 1]]
                    copied = list(child) if isinstance(child, list) else dict(child)
                    parent[loc[depth - 1]] = copies[prefix] = copied
                parent = copied
        parent[loc[-1]] = value
    return root
