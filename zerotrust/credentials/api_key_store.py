"""The SQLite key database: hashed keys only, WAL mode, versioned schema, mode 0600.

WAL lets the request path read while the CLI writes in another process, and
``PRAGMA data_version`` tells a long-lived reader cheaply that someone else
committed (a revocation), which is what the verifier's cache keys off.
Every SQLite or file-system failure becomes a :class:`DependencyError` (503).
"""

from __future__ import annotations

import contextlib
import hmac
import json
import logging
import os
import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path

from ..errors import DependencyError, ZeroTrustError
from .api_key_record import APIKeyRecord

log = logging.getLogger("zerotrust.api_key")

# One tuple of statements per schema version; PRAGMA user_version records how many ran.
_MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """CREATE TABLE api_keys (
             id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, key_hash BLOB NOT NULL UNIQUE,
             scopes TEXT NOT NULL, created_at REAL NOT NULL, expires_at REAL, revoked_at REAL,
             last_used_at REAL) STRICT""",
        "CREATE TABLE meta (name TEXT PRIMARY KEY, value BLOB NOT NULL) STRICT",
    ),
)
SCHEMA_VERSION = len(_MIGRATIONS)
_COLUMNS = "id, name, key_hash, scopes, created_at, expires_at, revoked_at, last_used_at"


class APIKeyConflict(ZeroTrustError):
    """A key with that name already exists (CLI only; never on the request path)."""

    status = 409
    error_code = None
    reason = "error.api_key.conflict"


@contextlib.contextmanager
def _db_errors(what: str) -> Iterator[None]:
    try:
        yield
    except sqlite3.Error as exc:
        raise DependencyError(reason="error.api_key.database", detail=f"API-key database {what}: {exc}") from None
    except OSError as exc:
        raise DependencyError(reason="error.api_key.database",
                              detail=f"API-key database {what}: {exc.strerror}") from None


def _row(r: tuple) -> APIKeyRecord:
    return APIKeyRecord(id=r[0], name=r[1], key_hash=bytes(r[2]), scopes=tuple(json.loads(r[3])),
                        created_at=r[4], expires_at=r[5], revoked_at=r[6], last_used_at=r[7])


class APIKeyStore:
    def __init__(self, conn: sqlite3.Connection, path: Path):
        self._conn = conn
        self.path = path

    @classmethod
    def open(cls, path: str | os.PathLike[str], pepper_check: bytes, *, busy_timeout: float = 0.05) -> APIKeyStore:
        """Open (creating with mode 0600 on first use), migrate, and check the pepper matches the database's."""
        p = Path(path).expanduser()
        with _db_errors("open"):
            # Create it ourselves so the mode is 0600 from the first byte; SQLite gives -wal/-shm the same mode.
            os.close(os.open(p, os.O_CREAT | os.O_RDWR, 0o600))
            if os.stat(p).st_mode & (stat.S_IRWXG | stat.S_IRWXO):
                log.warning("API-key database %s is readable by group/others; chmod 600 it", p)
            conn = sqlite3.connect(p, timeout=busy_timeout, isolation_level=None, check_same_thread=False)
            try:
                store = cls(conn, p)
                store._prepare(pepper_check)
            except BaseException:
                conn.close()
                raise
        return store

    def _prepare(self, pepper_check: bytes) -> None:
        c = self._conn
        if c.execute("PRAGMA journal_mode=WAL").fetchone()[0].lower() != "wal":
            raise sqlite3.OperationalError("cannot switch to WAL journal mode")
        c.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: durable across process crashes, fsync at checkpoint
        # Read first: a verifier starting while the CLI holds the write lock must not wait for it.
        if self._schema_version() != SCHEMA_VERSION or self._pepper_check() is None:
            with self._transaction():
                version = self._schema_version()
                for statements in _MIGRATIONS[version:]:
                    for statement in statements:
                        c.execute(statement)
                c.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                c.execute("INSERT OR IGNORE INTO meta (name, value) VALUES ('pepper_check', ?)", (pepper_check,))
        stored = self._pepper_check()
        if stored is None or not hmac.compare_digest(stored, pepper_check):
            raise DependencyError(reason="error.api_key.pepper", detail=(
                f"the API-key pepper does not match the one {self.path} was created with; every key would be unknown"))

    def _schema_version(self) -> int:
        version = self._conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise DependencyError(reason="error.api_key.database", detail=(
                f"API-key database {self.path} has schema version {version}; this zerotrust knows {SCHEMA_VERSION}"))
        return version

    def _pepper_check(self) -> bytes | None:
        if self._schema_version() == 0:
            return None
        row = self._conn.execute("SELECT value FROM meta WHERE name = 'pepper_check'").fetchone()
        return bytes(row[0]) if row else None

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")

    # -- request path -----------------------------------------------------------

    # try/except inline rather than _db_errors: a generator context manager costs ~1.5 us per call here.

    def data_version(self) -> int:
        """Changes whenever another connection (any process) commits. ~3 us: SQLite checks the WAL index."""
        try:
            return self._conn.execute("PRAGMA data_version").fetchone()[0]
        except sqlite3.Error as exc:
            raise DependencyError(reason="error.api_key.database", detail=f"API-key database read: {exc}") from None

    def find(self, key_hash: bytes) -> APIKeyRecord | None:
        try:
            r = self._conn.execute(f"SELECT {_COLUMNS} FROM api_keys WHERE key_hash = ?", (key_hash,)).fetchone()
        except sqlite3.Error as exc:
            raise DependencyError(reason="error.api_key.database", detail=f"API-key database read: {exc}") from None
        return _row(r) if r else None

    def touch(self, key_id: str, when: float) -> None:
        """Record use; a single short UPDATE (busy_timeout bounds the wait for the write lock)."""
        with _db_errors("write"):
            self._conn.execute("UPDATE api_keys SET last_used_at = ? WHERE id = ? "
                               "AND (last_used_at IS NULL OR last_used_at < ?)", (when, key_id, when))

    # -- administration (CLI) -----------------------------------------------------

    def insert(self, record: APIKeyRecord) -> None:
        try:
            with _db_errors("write"), self._transaction():
                self._conn.execute(
                    f"INSERT INTO api_keys ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (record.id, record.name, record.key_hash, json.dumps(list(record.scopes)), record.created_at,
                     record.expires_at, record.revoked_at, record.last_used_at))
        except DependencyError as exc:
            if "UNIQUE constraint failed: api_keys.name" in (exc.detail or ""):
                raise APIKeyConflict(detail=f"an API key named {record.name!r} already exists") from None
            raise

    def list(self) -> list[APIKeyRecord]:
        with _db_errors("read"):
            return [_row(r) for r in self._conn.execute(f"SELECT {_COLUMNS} FROM api_keys ORDER BY created_at, id")]

    def get(self, id_or_name: str) -> APIKeyRecord | None:
        with _db_errors("read"):
            r = self._conn.execute(f"SELECT {_COLUMNS} FROM api_keys WHERE id = ? OR name = ?",
                                   (id_or_name, id_or_name)).fetchone()
        return _row(r) if r else None

    def revoke(self, key_id: str, when: float) -> bool:
        """True if this call revoked it; False if it was already revoked."""
        with _db_errors("write"):
            cur = self._conn.execute("UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
                                     (when, key_id))
        return cur.rowcount == 1

    def close(self) -> None:
        self._conn.close()
