"""The one SQLite helper: connections, pragmas, ``transaction()`` and registered migrations.

Every SQLite store of Perfect21 (decisions, runs, disk cache) opens its connections here, so
they all get the same guarantees:

* WAL journal, ``synchronous=FULL`` by default (a committed transaction survives a power
  cut), a busy timeout instead of an immediate "database is locked";
* a file that exists but is not a SQLite database is refused *before* SQLite touches it;
* schema changes only through :class:`Migration` objects applied by :func:`migrate`, each in
  its own transaction and recorded in ``schema_migrations``;
* ``sqlite3`` errors are translated to :mod:`perfect21._errors` at this boundary.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from perfect21._errors import DatabaseLockedError, NotADatabaseError, StoreError

__all__ = ["Migration", "connect", "migrate", "transaction", "translate_error"]

_HEADER = b"SQLite format 3\x00"


@dataclass(frozen=True, slots=True)
class Migration:
    """One schema change: ``version`` orders them, ``apply`` is SQL or a callable."""

    version: int
    name: str
    apply: str | Callable[[sqlite3.Connection], None]


def _check_is_database(path: Path) -> None:
    try:
        with path.open("rb") as fh:
            header = fh.read(len(_HEADER))
    except FileNotFoundError:
        return
    except IsADirectoryError:
        raise NotADatabaseError(f"{path}: is a directory, not a SQLite database") from None
    except OSError as exc:
        raise StoreError(f"{path}: cannot read: {exc.strerror}") from None
    if header and header != _HEADER:
        raise NotADatabaseError(f"{path}: not a SQLite database (file left untouched)")


def translate_error(exc: sqlite3.Error, path: Path | str, timeout_s: float = 0.0) -> StoreError:
    """Map a ``sqlite3`` error to a Perfect21 error with a message a user can act on."""
    text = str(exc)
    lowered = text.lower()
    if "locked" in lowered or "busy" in lowered:
        return DatabaseLockedError(
            f"{path}: database is locked by another process (waited {timeout_s:g} s); "
            "try again or raise the busy timeout"
        )
    if "not a database" in lowered or "malformed" in lowered:
        return NotADatabaseError(f"{path}: not a SQLite database or corrupt ({text})")
    if "readonly" in lowered or "read-only" in lowered:
        return StoreError(f"{path}: read-only database or folder ({text})")
    if "disk" in lowered and "full" in lowered:
        return StoreError(f"{path}: disk full ({text})")
    if "unable to open" in lowered:
        return StoreError(f"{path}: cannot open database ({text})")
    return StoreError(f"{path}: {text}")


def connect(
    path: Path | str,
    *,
    busy_timeout_s: float = 5.0,
    synchronous: str = "FULL",
    readonly: bool = False,
    check_same_thread: bool = True,
) -> sqlite3.Connection:
    """Open ``path`` with Perfect21's pragmas; the parent folder is created if needed.

    The connection is in autocommit mode: use :func:`transaction` for writes.
    """
    path = Path(path)
    _check_is_database(path)
    try:
        if readonly:
            uri = f"file:{path.resolve()}?mode=ro"
            conn = sqlite3.connect(
                uri,
                uri=True,
                timeout=busy_timeout_s,
                isolation_level=None,
                check_same_thread=check_same_thread,
            )
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(
                path,
                timeout=busy_timeout_s,
                isolation_level=None,
                check_same_thread=check_same_thread,
            )
        conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_s * 1000)}")
        if not readonly:
            _set_wal(conn, busy_timeout_s)
        conn.execute(f"PRAGMA synchronous = {synchronous}")
        conn.execute("PRAGMA foreign_keys = ON")
    except sqlite3.Error as exc:
        raise translate_error(exc, path, busy_timeout_s) from None
    except OSError as exc:
        raise StoreError(f"{path}: cannot open database: {exc.strerror}") from None
    return conn


def _set_wal(conn: sqlite3.Connection, busy_timeout_s: float) -> None:
    # Switching to WAL needs an exclusive moment; a concurrent opener may briefly hold a lock
    # that the busy handler does not cover, so retry until the timeout.
    deadline = time.monotonic() + busy_timeout_s
    while True:
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc).lower() or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


@contextmanager
def transaction(conn: sqlite3.Connection, *, immediate: bool = True) -> Iterator[None]:
    """``BEGIN [IMMEDIATE]`` … ``COMMIT``; rolls back on any exception."""
    conn.execute("BEGIN IMMEDIATE" if immediate else "BEGIN")
    try:
        yield
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def migrate(conn: sqlite3.Connection, migrations: Sequence[Migration], *, path: str = "") -> int:
    """Apply the migrations not yet recorded; return how many were applied.

    Safe against concurrent processes: each migration runs in an IMMEDIATE transaction that
    re-checks the recorded version first.
    """
    versions = [m.version for m in migrations]
    if versions != sorted(set(versions)):
        raise StoreError("migrations must have unique, increasing versions")
    applied = 0
    try:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
        )
        for migration in migrations:
            with transaction(conn):
                row = conn.execute(
                    "SELECT 1 FROM schema_migrations WHERE version = ?", (migration.version,)
                ).fetchone()
                if row:
                    continue
                if isinstance(migration.apply, str):
                    for statement in _split_sql(migration.apply):
                        conn.execute(statement)
                else:
                    migration.apply(conn)
                conn.execute(
                    "INSERT INTO schema_migrations (version, name, applied_at)"
                    " VALUES (?, ?, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))",
                    (migration.version, migration.name),
                )
                applied += 1
    except sqlite3.Error as exc:
        raise translate_error(exc, path or "database") from None
    return applied


def _split_sql(script: str) -> list[str]:
    """Split a migration script into statements (``sqlite3.complete_statement`` aware)."""
    statements: list[str] = []
    current = ""
    for line in script.splitlines(keepends=True):
        current += line
        if sqlite3.complete_statement(current):
            if current.strip():
                statements.append(current.strip())
            current = ""
    if current.strip():
        statements.append(current.strip())
    return statements
