"""``zerotrust`` command line. Each sub-command lives in its own module with a ``register``."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from ..errors import ConfigError, ZeroTrustError

_COMMANDS = ("config_cmd", "apikey", "serve", "fields")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="zerotrust", description="Authentication and policy engine")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging on stderr")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in _COMMANDS:
        try:
            module = importlib.import_module(f"{__name__}.{name}")
        except ImportError as exc:  # an optional extra is missing: the other commands still work
            logging.getLogger("zerotrust.cli").debug("command module %s unavailable: %s", name, exc)
            continue
        module.register(sub)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING, stream=sys.stderr,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args) or 0)
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"error: {problem}", file=sys.stderr)
        return 2
    except ZeroTrustError as exc:
        print(f"error: {exc.detail or exc.description or exc.reason}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
