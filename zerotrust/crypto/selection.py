"""Which fields of a document a call touches: path specs, matching, and the checks on them."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .jsonpath import WILDCARD, JsonPath, Location, PathError, binding, parse
from .values import MAX_FIELDS, FieldInputError


@dataclass(frozen=True, slots=True)
class FieldSpec:
    path: JsonPath
    deterministic: bool = False


PathsArg = Iterable[Any] | None  # str, FieldSpec, or anything with .path and .deterministic (FieldPathConfig)


def field_specs(paths: Iterable[Any]) -> tuple[FieldSpec, ...]:
    out = []
    for p in paths:
        if isinstance(p, FieldSpec):
            out.append(p)
            continue
        text, det = (p, False) if isinstance(p, str) else (p.path, bool(getattr(p, "deterministic", False)))
        try:
            out.append(FieldSpec(parse(text), det))
        except PathError as exc:
            raise FieldInputError(detail=str(exc)) from None
    return tuple(out)


def collect(doc: Any, specs: tuple[FieldSpec, ...]) -> list[tuple[Location, str, Any, bool]]:
    """Every selected field once as (location, binding, value, deterministic); refuse ambiguity
    (overlapping paths, disagreeing flags) and unbounded work."""
    if len(specs) == 1:  # the common case: one path never matches a location twice nor overlaps itself
        found = specs[0].path.matches(doc)
        if len(found) > MAX_FIELDS:
            raise FieldInputError(detail=f"more than {MAX_FIELDS} fields selected in one document")
        det = specs[0].deterministic
        return [(loc, b, value, det) for loc, b, value in found]
    seen: dict[Location, tuple[Location, str, Any, bool]] = {}
    for spec in specs:
        for loc, b, value in spec.path.matches(doc):
            prev = seen.setdefault(loc, (loc, b, value, spec.deterministic))
            if prev[3] != spec.deterministic:
                raise FieldInputError(detail=f"{b} is selected both as deterministic and not")
            if len(seen) > MAX_FIELDS:
                raise FieldInputError(detail=f"more than {MAX_FIELDS} fields selected in one document")
    for loc in seen:
        for n in range(1, len(loc)):
            if loc[:n] in seen:
                raise FieldInputError(detail=f"paths overlap: {binding(loc[:n])} contains {binding(loc)}")
    return list(seen.values())


def location_of(path: str) -> Location:
    try:
        segments = parse(path).segments
    except PathError as exc:
        raise FieldInputError(detail=str(exc)) from None
    # A search term names one field; bindings erase array indices, so any index (or '*') will do.
    return tuple(0 if s is WILDCARD or isinstance(s, int) else s for s in segments)


def document_with(loc: Location, value: Any) -> Any:
    """The smallest document holding ``value`` at ``loc``."""
    for seg in reversed(loc):
        value = [value] if isinstance(seg, int) else {seg: value}
    return value
