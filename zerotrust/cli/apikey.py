"""``zerotrust apikey create | list | revoke``: administer the API-key database.

``create`` prints the new key alone on the last line of stdout (``| tail -n 1``);
it is the only time the key exists outside the client. Nothing else ever prints it.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from datetime import datetime, timezone

from ..config import Config, load_config
from ..credentials.api_key_format import generate_key
from ..credentials.api_key_pepper import key_digest, load_pepper, pepper_check
from ..credentials.api_key_record import APIKeyRecord, new_key_id, validate_name, validate_scopes
from ..credentials.api_key_store import APIKeyStore
from ..errors import ConfigError, ZeroTrustError

_DURATION = re.compile(r"([1-9][0-9]{0,5})([smhdw])\Z")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_expiry(text: str, now: float) -> float:
    """``30d``, ``12h``, ``90m``, ``2w`` from now, or an ISO 8601 instant (no zone means UTC)."""
    m = _DURATION.match(text)
    if m:
        return now + int(m.group(1)) * _UNIT[m.group(2)]
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"--expires {text!r}: use a duration like 30d/12h/90m or 2027-01-01T00:00:00Z") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    if when.timestamp() <= now:
        raise ValueError(f"--expires {text!r} is in the past")
    return when.timestamp()


def _iso(ts: float | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _open(args: argparse.Namespace) -> tuple[Config, bytes, APIKeyStore]:
    config = load_config(args.config)
    if config.api_keys is None:
        raise ConfigError(f"{args.config}: api_keys is not configured")
    pepper = load_pepper(config)
    # A CLI may wait for the write lock longer than the request path ever does.
    return config, pepper, APIKeyStore.open(config.api_keys.database, pepper_check(pepper), busy_timeout=5.0)


def _create(args: argparse.Namespace) -> int:
    now = time.time()
    try:
        name = validate_name(args.name)
        scopes = validate_scopes(args.scope)
        expires_at = parse_expiry(args.expires, now) if args.expires else None
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    config, pepper, store = _open(args)
    assert config.api_keys is not None
    key = generate_key(config.api_keys.prefix)
    record = APIKeyRecord(id=new_key_id(), name=name, key_hash=key_digest(pepper, key), scopes=scopes,
                          created_at=now, expires_at=expires_at)
    try:
        store.insert(record)
    finally:
        store.close()
    print(f"id: {record.id}\nname: {record.name}\nscopes: {' '.join(scopes) or '-'}\n"
          f"expires: {_iso(expires_at) or 'never'}")
    print("This is the only time the key is shown; store it now.", file=sys.stderr)
    print(key, flush=True)
    return 0


def _list(args: argparse.Namespace) -> int:
    _, _, store = _open(args)
    try:
        records = store.list()
    finally:
        store.close()
    now = time.time()
    rows = [{"id": r.id, "name": r.name, "scopes": list(r.scopes), "created": _iso(r.created_at),
             "expires": _iso(r.expires_at), "last_used": _iso(r.last_used_at), "revoked": _iso(r.revoked_at),
             "status": r.status(now)} for r in records]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    header = ("ID", "NAME", "SCOPES", "CREATED", "EXPIRES", "LAST USED", "STATUS")
    table = [header] + [(r["id"], r["name"], ",".join(r["scopes"]) or "-", r["created"], r["expires"] or "never",
                         r["last_used"] or "never", r["status"]) for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for row in table:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
    return 0


def _revoke(args: argparse.Namespace) -> int:
    _, _, store = _open(args)
    try:
        record = store.get(args.key)
        if record is None:
            raise ZeroTrustError(detail=f"no API key with id or name {args.key!r}")
        changed = store.revoke(record.id, time.time())
    finally:
        store.close()
    print(f"{'revoked' if changed else 'already revoked'}: {record.id} ({record.name})")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("apikey", help="create, list and revoke API keys")
    s = p.add_subparsers(dest="apikey_command", required=True)
    c = s.add_parser("create", help="create a key; prints it once, alone on the last line of stdout")
    c.add_argument("--config", required=True)
    c.add_argument("--name", required=True, help="unique; the principal's subject is apikey:<name>")
    c.add_argument("--scope", action="append", default=[], help="repeat for several scopes")
    c.add_argument("--expires", help="30d, 12h, 90m, 2w, or an ISO 8601 time such as 2027-01-01T00:00:00Z")
    c.set_defaults(func=_create)
    ls = s.add_parser("list", help="list keys (never the keys themselves)")
    ls.add_argument("--config", required=True)
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=_list)
    r = s.add_parser("revoke", help="revoke a key by id or name; takes effect without a restart")
    r.add_argument("--config", required=True)
    r.add_argument("key", metavar="ID-or-NAME")
    r.set_defaults(func=_revoke)
