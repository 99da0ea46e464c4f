"""``zerotrust config validate FILE`` and ``zerotrust config schema``."""

from __future__ import annotations

import argparse

from ..config import json_schema, load_config


def _validate(args: argparse.Namespace) -> int:
    load_config(args.file)
    print(f"{args.file}: OK")
    return 0


def _schema(args: argparse.Namespace) -> int:
    print(json_schema())
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("config", help="validate configuration, print its JSON Schema")
    s = p.add_subparsers(dest="config_command", required=True)
    v = s.add_parser("validate", help="report every problem in a config file, with its path and line")
    v.add_argument("file")
    v.set_defaults(func=_validate)
    sc = s.add_parser("schema", help="print the configuration JSON Schema")
    sc.set_defaults(func=_schema)
