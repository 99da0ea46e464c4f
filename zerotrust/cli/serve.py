"""``zerotrust serve --config FILE [--listen HOST:PORT] [--admin-listen HOST:PORT]``.

Runs the ext_authz HTTP endpoint and the admin endpoint (health, readiness,
metrics) in one process. Prints one line to stderr once both listen; the Envoy and
nginx end-to-end tests wait for it, so keep its shape.
"""

from __future__ import annotations

import argparse

from ..config import load_config


def _serve(args: argparse.Namespace) -> int:
    config = load_config(args.config)  # ConfigError: the CLI frame prints every problem and exits 2
    from zerotrust.sidecar.server import run

    run(config, listen=args.listen, admin_listen=args.admin_listen)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="run the ext_authz / auth_request sidecar and its admin endpoint")
    p.add_argument("--config", required=True, help="configuration file (YAML)")
    p.add_argument("--listen", default=None, help="ext_authz HOST:PORT (default: server.listen)")
    p.add_argument("--admin-listen", default=None, help="admin HOST:PORT for /healthz /readyz /metrics "
                                                        "(default: server.admin_listen)")
    p.set_defaults(func=_serve)
