"""One API key row, and the rules for its public fields (id, name, scopes)."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field

KEY_ID = re.compile(r"key_[0-9a-f]{12}\Z")
# Names end up in the subject ("apikey:<name>"), headers and logs: keep them plain.
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@:-]{0,63}\Z")
SCOPE = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]{1,128}\Z")  # RFC 6749 section 3.3 scope-token
MAX_SCOPES = 64


def new_key_id() -> str:
    """Public, loggable id; 48 random bits are plenty for uniqueness, the PRIMARY KEY catches the rest."""
    return "key_" + secrets.token_hex(6)


def validate_name(name: str) -> str:
    if not NAME.match(name):
        raise ValueError("name must be 1-64 characters of A-Z a-z 0-9 . _ @ : - and start with a letter or digit")
    if KEY_ID.match(name):
        raise ValueError("name must not look like a key id (key_ + 12 hex digits)")
    return name


def validate_scopes(scopes: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    if len(scopes) > MAX_SCOPES:
        raise ValueError(f"at most {MAX_SCOPES} scopes")
    for s in scopes:
        if not SCOPE.match(s):
            raise ValueError(f"invalid scope {s!r}: RFC 6749 scope-token, no spaces or quotes")
    return tuple(dict.fromkeys(scopes))  # de-duplicated, order kept


@dataclass(frozen=True, slots=True)
class APIKeyRecord:
    """Times are epoch seconds. ``key_hash`` is HMAC-SHA256(pepper, key); the key itself is never stored."""

    id: str
    name: str
    key_hash: bytes = field(repr=False)
    scopes: tuple[str, ...]
    created_at: float
    expires_at: float | None = None
    revoked_at: float | None = None
    last_used_at: float | None = None

    def status(self, now: float) -> str:
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and now >= self.expires_at:
            return "expired"
        return "active"
