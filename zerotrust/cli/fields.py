"""``zerotrust fields encrypt|decrypt|rewrap``: one JSON document from stdin to stdout.

All or nothing: the whole answer is built in memory and written only on success.
On any error stdout stays empty, stderr says why, and the exit status tells what
kind of error it was (1 input or ciphertext, 2 configuration, 3 key store).
The Transit key is never created here: a typo must not silently start a new key.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from ..config import load_config
from ..crypto import FieldEncryptor, FieldInputError, FieldSpec, field_specs
from ..errors import ConfigError, CryptoError, DependencyError

MAX_INPUT_BYTES = 16 << 20
EXIT_INPUT, EXIT_CONFIG, EXIT_DEPENDENCY = 1, 2, 3


class _Fail(Exception):
    def __init__(self, code: int, message: str):
        self.code, self.message = code, message


def _read_document() -> Any:
    raw = sys.stdin.buffer.read(MAX_INPUT_BYTES + 1)
    if len(raw) > MAX_INPUT_BYTES:
        raise _Fail(EXIT_INPUT, f"stdin is larger than {MAX_INPUT_BYTES} bytes")
    if not raw.strip():
        raise _Fail(EXIT_INPUT, "stdin is empty: expected one JSON document")
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        raise _Fail(EXIT_INPUT, f"stdin is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except (UnicodeDecodeError, RecursionError) as exc:
        raise _Fail(EXIT_INPUT, f"stdin is not valid JSON: {type(exc).__name__}") from None


def _specs(args: argparse.Namespace, configured: list[Any]) -> list[FieldSpec] | None:
    if not args.path and not args.deterministic:
        return None  # the encryptor falls back to fields.paths
    det = {s.path.segments for s in field_specs(configured) if s.deterministic}
    specs = [FieldSpec(s.path, s.path.segments in det) for s in field_specs(args.path)]
    return specs + [FieldSpec(s.path, True) for s in field_specs(args.deterministic)]


def _check_key(enc: FieldEncryptor, config: Any) -> None:
    """Fail early and clearly when the key is missing, instead of deep inside a batch."""
    try:
        enc.provider.latest_version(enc.ring.key)
    except DependencyError as exc:
        if getattr(exc, "vault_status", None) == 404:
            mount = config.vault.transit_mount if config.vault else "transit"
            raise _Fail(EXIT_DEPENDENCY, f"Transit key {enc.ring.key!r} does not exist at mount {mount!r}; "
                        f"create it first: bao write -f {mount}/keys/{enc.ring.key}") from None
        raise


def _run(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.config)
        if config.fields is None:
            raise _Fail(EXIT_CONFIG, f"{args.config}: no 'fields' section")
        specs = _specs(args, config.fields.paths)
        doc = _read_document()
        enc = FieldEncryptor.from_config(config)
        try:
            _check_key(enc, config)
            kw = {} if args.context is None else {"context": args.context}
            if args.command_fields == "encrypt":
                out = enc.encrypt_document(doc, specs, **kw)
            elif args.command_fields == "decrypt":
                out = enc.decrypt_document(doc, specs, **kw)
            else:
                out = enc.rewrap_document(doc, specs, **kw)
        finally:
            enc.close()
        text = json.dumps(out, ensure_ascii=False, indent=2 if args.pretty else None) + "\n"
    except _Fail as f:
        print(f"error: {f.message}", file=sys.stderr)
        return f.code
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"error: {problem}", file=sys.stderr)
        return EXIT_CONFIG
    except DependencyError as exc:
        print(f"error: key store unavailable or refused: {exc.detail or exc.description}", file=sys.stderr)
        return EXIT_DEPENDENCY
    except CryptoError as exc:
        print(f"error: invalid ciphertext: {exc.detail or exc.description}", file=sys.stderr)
        return EXIT_INPUT
    except FieldInputError as exc:
        print(f"error: {exc.detail or exc.description}", file=sys.stderr)
        return EXIT_INPUT
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except OSError as exc:
        print(f"error: cannot write stdout: {exc.strerror}", file=sys.stderr)
        return EXIT_INPUT
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("fields", help="encrypt, decrypt or rewrap JSON fields (stdin -> stdout)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    s = p.add_subparsers(dest="command_fields", required=True)
    for name, text in (("encrypt", "encrypt the selected fields"), ("decrypt", "decrypt the selected fields"),
                       ("rewrap", "move ciphertexts to the newest key version without exposing plaintext")):
        c = s.add_parser(name, help=text)
        c.add_argument("--config", required=True, help="configuration file with a 'fields' section")
        c.add_argument("--path", action="append", default=[], metavar="JSONPATH",
                       help="field to process, e.g. '$.users[*].ssn' (repeatable; default: fields.paths)")
        c.add_argument("--deterministic", action="append", default=[], metavar="JSONPATH",
                       help="field to encrypt deterministically (equality search); repeatable")
        c.add_argument("--context", help="Transit derivation context (tenant); default: fields.context")
        c.add_argument("--pretty", action="store_true", help="indent the output")
        c.set_defaults(func=_run)
