"""Render docs/configuration.md's key reference from the config model (every key, its type, default, meaning).

Run: python scripts/gen_config_docs.py > docs/configuration-reference.md
tests/unit/test_config_docs.py fails when the committed file is out of date.
"""

from __future__ import annotations

import sys
import types
import typing

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from zerotrust.config import Config


def _type_name(tp: object) -> str:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is typing.Literal:
        return " \\| ".join(repr(a) for a in args)
    if origin in (typing.Union, types.UnionType):
        return " \\| ".join(_type_name(a) for a in args)
    if origin in (list, tuple):
        return f"list[{_type_name(args[0])}]" if args else "list"
    if origin is dict:
        return f"map[{_type_name(args[0])}, {_type_name(args[1])}]"
    if tp is type(None):
        return "null"
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return "mapping"
    return getattr(tp, "__name__", str(tp))


def _models_in(tp: object) -> list[type[BaseModel]]:
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return [tp]
    return [m for a in typing.get_args(tp) for m in _models_in(a)]


def rows(model: type[BaseModel], prefix: str = "") -> list[tuple[str, str, str, str]]:
    out = []
    for name, field in model.model_fields.items():
        key = f"{prefix}{name}"
        if field.default_factory is not None:
            default = repr(field.default_factory())
            default = "(see below)" if len(default) > 40 or "=" in default else default
        elif field.default is PydanticUndefined:
            default = "**required**"
        elif isinstance(field.default, BaseModel):
            default = "(see below)"
        else:
            default = repr(field.default)
        desc = (field.description or "").replace("|", "\\|")
        out.append((key, _type_name(field.annotation), default, desc))
        for sub in _models_in(field.annotation):
            is_list = typing.get_origin(field.annotation) is list or any(
                typing.get_origin(a) is list for a in typing.get_args(field.annotation))
            out.extend(rows(sub, f"{key}[]." if is_list else f"{key}."))
    return out


def main() -> None:
    w = sys.stdout.write
    w("# Configuration key reference\n\n")
    w("Generated from `zerotrust/config.py` by `python scripts/gen_config_docs.py`; do not edit by hand.\n")
    w("Every string value may use `${VAR}` or `${VAR:-default}`. Unknown keys are errors.\n\n")
    w("| key | type | default | meaning |\n|---|---|---|---|\n")
    for key, tp, default, desc in rows(Config):
        w(f"| `{key}` | {tp} | {default.replace('|', chr(92) + '|')} | {desc} |\n")


if __name__ == "__main__":
    main()
