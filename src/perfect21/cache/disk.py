"""L3: a persistent SQLite cache tier, bounded in bytes, that survives corruption.

* One file (``<home>/cache/l3.sqlite``) opened through :mod:`perfect21._sqlite` (WAL, busy
  timeout, migrations); several processes may share it, and a write is one transaction, so
  two writers of one key leave one whole value, never a mix.
* Every value carries a CRC-32; a row whose bytes do not match is deleted and reported as a
  miss. A file SQLite calls "malformed" / "not a database" is moved aside to
  ``l3.sqlite.corrupt`` and rebuilt empty. Any other SQLite failure (disk full, locked) is
  logged once and answered as a miss: the cache never crashes a run.
* Bounded by ``max_bytes``: when the stored values exceed it, the least recently used rows
  go first until 90 % of the bound is left.
* Per-key hit counts (buffered in memory, flushed in batches) tell ``warm`` which keys matter.

All SQLite work runs on one private thread that owns the connection, so the event loop never
blocks on disk and the connection is never shared between threads.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
import zlib
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from perfect21 import _sqlite
from perfect21._errors import NotADatabaseError, StoreError

__all__ = ["DiskTier"]

log = logging.getLogger("perfect21.cache")
T = TypeVar("T")

_MIGRATIONS = [
    _sqlite.Migration(
        1,
        "l3 entries",
        """
        CREATE TABLE entries (
            key TEXT PRIMARY KEY,
            value BLOB NOT NULL,
            size INTEGER NOT NULL,
            crc INTEGER NOT NULL,
            expires REAL NOT NULL DEFAULT 0,
            accessed REAL NOT NULL,
            hits INTEGER NOT NULL DEFAULT 0
        );
        CREATE INDEX entries_accessed ON entries (accessed);
        CREATE INDEX entries_hits ON entries (hits);
        CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
        """,
    )
]
_FLUSH_HITS = 128
_CHUNK = 500
_QUICK_CHECK_MAX_BYTES = 64 * 1024 * 1024
_CORRUPT_WORDS = ("malformed", "not a database", "disk image", "file is not a database")


def _is_corruption(exc: BaseException) -> bool:
    if isinstance(exc, NotADatabaseError):
        return True
    return isinstance(exc, sqlite3.DatabaseError | StoreError) and any(
        word in str(exc).lower() for word in _CORRUPT_WORDS
    )


class DiskTier:
    """SQLite-backed bytes tier; see the module docstring for the guarantees."""

    def __init__(self, path: Path | str, max_bytes: int = 1024**3, *, name: str = "l3") -> None:
        self.name = name
        self.path = Path(path)
        self.max_bytes = max_bytes
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="p21-l3")
        self._conn: sqlite3.Connection | None = None
        self._total = 0
        self._pending_hits: dict[str, int] = {}
        self._warned: set[str] = set()
        self._closed = False
        self.evictions = 0
        self.corrupt_entries = 0
        self.rebuilds = 0
        self.errors = 0

    # -- plumbing (worker thread) ---------------------------------------------------------
    async def _run(self, fn: Callable[..., T], *args: Any, default: T) -> T:
        if self._closed:
            return default
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self._guarded, fn, args, default)

    def run_sync(self, fn: Callable[..., T], *args: Any, default: T) -> T:
        """Run ``fn`` on the worker thread and wait (for code without an event loop)."""
        if self._closed:
            return default
        return self._pool.submit(self._guarded, fn, args, default).result()

    def _guarded(self, fn: Callable[..., T], args: tuple[Any, ...], default: T) -> T:
        for attempt in (1, 2):
            try:
                return fn(self._connection(), *args)
            except (sqlite3.Error, StoreError, OSError) as exc:
                if attempt == 1 and _is_corruption(exc):
                    self._rebuild(exc)
                    continue
                self.errors += 1
                self._warn_once(
                    type(exc).__name__, f"disk cache {self.path}: {exc}; treated as a miss"
                )
                self._drop_connection()
                return default
        return default  # pragma: no cover - the loop always returns

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            conn = _sqlite.connect(self.path, synchronous="NORMAL", busy_timeout_s=5.0)
            try:
                _sqlite.migrate(conn, _MIGRATIONS, path=str(self.path))
                if self.path.stat().st_size <= _QUICK_CHECK_MAX_BYTES:
                    row = conn.execute("PRAGMA quick_check(1)").fetchone()
                    if row is None or row[0] != "ok":
                        raise NotADatabaseError(f"{self.path}: quick_check says {row}")
                self._total = int(
                    conn.execute("SELECT COALESCE(SUM(size), 0) FROM entries").fetchone()[0]
                )
            except BaseException:
                conn.close()
                raise
            self._conn = conn
        return self._conn

    def _drop_connection(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(sqlite3.Error):  # closing a broken handle
                self._conn.close()
            self._conn = None

    def _rebuild(self, exc: BaseException) -> None:
        self._drop_connection()
        aside = self.path.with_name(self.path.name + ".corrupt")
        try:
            if self.path.exists():
                self.path.replace(aside)
            for suffix in ("-wal", "-shm"):
                Path(str(self.path) + suffix).unlink(missing_ok=True)
        except OSError as err:  # pragma: no cover - e.g. read-only folder
            log.warning("disk cache %s is corrupt and cannot be moved aside: %s", self.path, err)
            return
        self.rebuilds += 1
        self._pending_hits.clear()
        self._total = 0
        log.warning(
            "disk cache %s was corrupt (%s); moved to %s and rebuilt empty", self.path, exc, aside
        )

    def _warn_once(self, kind: str, message: str) -> None:
        if kind not in self._warned and len(self._warned) < 64:
            self._warned.add(kind)
            log.warning("%s", message)

    # -- operations (worker thread) -------------------------------------------------------
    def _read_rows(self, conn: sqlite3.Connection, keys: Sequence[str]) -> dict[str, bytes]:
        found: dict[str, bytes] = {}
        now = time.time()
        bad: list[str] = []
        for start in range(0, len(keys), _CHUNK):
            chunk = list(keys[start : start + _CHUNK])
            marks = ",".join("?" * len(chunk))
            rows = conn.execute(
                f"SELECT key, value, size, crc, expires FROM entries WHERE key IN ({marks})",
                chunk,
            ).fetchall()
            for key, value, size, crc, expires in rows:
                value = bytes(value)
                if expires and expires < now:
                    bad.append(key)
                elif len(value) != size or zlib.crc32(value) != crc:
                    self.corrupt_entries += 1
                    log.warning("disk cache %s: entry %r is corrupt; dropped", self.path, key)
                    bad.append(key)
                else:
                    found[key] = value
                    self._pending_hits[key] = self._pending_hits.get(key, 0) + 1
        if bad:
            self._delete_rows(conn, bad)
        if len(self._pending_hits) >= _FLUSH_HITS:
            self._flush_hits(conn)
        return found

    def _flush_hits(self, conn: sqlite3.Connection) -> None:
        if not self._pending_hits:
            return
        pending, self._pending_hits = self._pending_hits, {}
        now = time.time()
        with _sqlite.transaction(conn):
            conn.executemany(
                "UPDATE entries SET hits = hits + ?, accessed = ? WHERE key = ?",
                [(n, now, k) for k, n in pending.items()],
            )

    def _delete_rows(self, conn: sqlite3.Connection, keys: Sequence[str]) -> int:
        removed = 0
        with _sqlite.transaction(conn):
            for key in keys:
                row = conn.execute(
                    "DELETE FROM entries WHERE key = ? RETURNING size", (key,)
                ).fetchone()
                if row is not None:
                    removed += 1
                    self._total -= int(row[0])
        return removed

    def _write_rows(
        self, conn: sqlite3.Connection, items: Mapping[str, bytes], ttl_s: float
    ) -> None:
        now = time.time()
        expires = now + ttl_s if ttl_s > 0 else 0.0
        with _sqlite.transaction(conn):
            for key, value in items.items():
                old = conn.execute("SELECT size FROM entries WHERE key = ?", (key,)).fetchone()
                conn.execute(
                    "INSERT INTO entries (key, value, size, crc, expires, accessed, hits)"
                    " VALUES (?, ?, ?, ?, ?, ?, 0)"
                    " ON CONFLICT (key) DO UPDATE SET value = excluded.value,"
                    " size = excluded.size, crc = excluded.crc, expires = excluded.expires,"
                    " accessed = excluded.accessed",
                    (key, value, len(value), zlib.crc32(value), expires, now),
                )
                self._total += len(value) - (int(old[0]) if old else 0)
        if self._total > self.max_bytes:
            self._evict(conn)

    def _evict(self, conn: sqlite3.Connection) -> None:
        self._flush_hits(conn)
        # Other processes write too: re-read the true total before deleting anything.
        self._total = int(conn.execute("SELECT COALESCE(SUM(size), 0) FROM entries").fetchone()[0])
        target = int(self.max_bytes * 0.9)
        now = time.time()
        with _sqlite.transaction(conn):
            expired = conn.execute(
                "DELETE FROM entries WHERE expires > 0 AND expires < ? RETURNING size", (now,)
            ).fetchall()
            self._total -= sum(int(r[0]) for r in expired)
            while self._total > target:
                rows = conn.execute(
                    "SELECT key, size FROM entries ORDER BY accessed, hits LIMIT 256"
                ).fetchall()
                if not rows:
                    break
                for key, size in rows:
                    conn.execute("DELETE FROM entries WHERE key = ?", (key,))
                    self._total -= int(size)
                    self.evictions += 1
                    if self._total <= target:
                        break

    def _clear(self, conn: sqlite3.Connection, prefix: str) -> int:
        self._pending_hits.clear()
        with _sqlite.transaction(conn):
            if prefix:
                cur = conn.execute(
                    "DELETE FROM entries WHERE key >= ? AND key < ?",
                    (prefix, prefix + "\U0010ffff"),
                )
            else:
                cur = conn.execute("DELETE FROM entries")
            removed = cur.rowcount
        self._total = int(conn.execute("SELECT COALESCE(SUM(size), 0) FROM entries").fetchone()[0])
        return removed

    def _most_used(
        self, conn: sqlite3.Connection, prefix: str, limit: int
    ) -> list[tuple[str, int]]:
        self._flush_hits(conn)
        rows = conn.execute(
            "SELECT key, hits FROM entries WHERE key >= ? AND key < ?"
            " AND (expires = 0 OR expires > ?) ORDER BY hits DESC, accessed DESC LIMIT ?",
            (prefix, prefix + "\U0010ffff", time.time(), limit),
        ).fetchall()
        return [(str(k), int(h)) for k, h in rows]

    def _info(self, conn: sqlite3.Connection) -> dict[str, Any]:
        self._flush_hits(conn)
        count, total, hits = conn.execute(
            "SELECT COUNT(*), COALESCE(SUM(size), 0), COALESCE(SUM(hits), 0) FROM entries"
        ).fetchone()
        counters = dict(conn.execute("SELECT name, value FROM counters").fetchall())
        return {
            "entries": int(count),
            "bytes": int(total),
            "stored_hits": int(hits),
            "counters": counters,
        }

    def _add_counters(self, conn: sqlite3.Connection, values: Mapping[str, int]) -> None:
        with _sqlite.transaction(conn):
            conn.executemany(
                "INSERT INTO counters (name, value) VALUES (?, ?)"
                " ON CONFLICT (name) DO UPDATE SET value = value + excluded.value",
                [(k, int(v)) for k, v in values.items() if v],
            )

    # -- the tier API ---------------------------------------------------------------------
    async def get(self, key: str) -> bytes | None:
        empty: dict[str, bytes] = {}
        found = await self._run(self._read_rows, [key], default=empty)
        return found.get(key)

    async def get_many(self, keys: Sequence[str]) -> dict[str, bytes]:
        if not keys:
            return {}
        empty: dict[str, bytes] = {}
        return await self._run(self._read_rows, list(keys), default=empty)

    async def set(self, key: str, value: bytes, *, ttl_s: float = 0.0) -> None:
        await self._run(self._write_rows, {key: bytes(value)}, ttl_s, default=None)

    async def set_many(self, items: Mapping[str, bytes], *, ttl_s: float = 0.0) -> None:
        if items:
            await self._run(
                self._write_rows, {k: bytes(v) for k, v in items.items()}, ttl_s, default=None
            )

    async def delete(self, key: str) -> bool:
        return await self._run(self._delete_rows, [key], default=0) > 0

    async def clear(self, prefix: str = "") -> int:
        return await self._run(self._clear, prefix, default=0)

    async def most_used(self, prefix: str = "", limit: int = 100) -> list[tuple[str, int]]:
        """Keys under ``prefix``, most recorded hits first, then most recently used."""
        return await self._run(self._most_used, prefix, limit, default=[])

    async def add_hits(self, counts: Mapping[str, int]) -> None:
        """Record reads served above this tier (L1 hits), so ``most_used`` sees every read."""
        if counts:
            await self._run(self._merge_hits, dict(counts), default=None)

    def _merge_hits(self, conn: sqlite3.Connection, counts: Mapping[str, int]) -> None:
        pending = self._pending_hits
        for key, n in counts.items():
            pending[key] = pending.get(key, 0) + n
        if len(pending) >= _FLUSH_HITS:
            self._flush_hits(conn)

    async def info(self) -> dict[str, Any]:
        """Entries, bytes and persisted counters, read from the file (all processes)."""
        unavailable: dict[str, Any] = {
            "available": False,
            "entries": 0,
            "stored_hits": 0,
            "counters": {},
        }
        found = await self._run(self._info, default=unavailable)
        return {**self.stats(), "available": True, **found}

    async def add_counters(self, values: Mapping[str, int]) -> None:
        """Add to the persistent counters (cumulative stats across processes and runs)."""
        if any(values.values()):
            await self._run(self._add_counters, dict(values), default=None)

    def stats(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "bytes": self._total,
            "max_bytes": self.max_bytes,
            "evictions": self.evictions,
            "corrupt_entries": self.corrupt_entries,
            "rebuilds": self.rebuilds,
            "errors": self.errors,
        }

    async def aclose(self) -> None:
        if self._closed:
            return
        await self._run(self._flush_hits, default=None)
        self._closed = True
        self._pool.submit(self._drop_connection).result()
        self._pool.shutdown(wait=True)

    def close(self) -> None:
        """Synchronous :meth:`aclose` for code without an event loop."""
        if self._closed:
            return
        self.run_sync(self._flush_hits, default=None)
        self._closed = True
        self._pool.submit(self._drop_connection).result()
        self._pool.shutdown(wait=True)
