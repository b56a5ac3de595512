"""The single writer: one thread owns the write connection and commits records in groups.

Callers (coroutines on any event loop, or plain threads) hand :class:`Job` objects to
:meth:`Writer.submit`. The writer takes every job waiting in the queue — up to
``batch_size`` records — writes them in **one** transaction committed with
``synchronous=FULL``, and only then tells each caller it is done. So an acknowledged record
survives a process kill or a power cut, and 100 concurrent callers cost one fsync, not 100.

How long it waits for a batch to fill (``linger``) adapts: it waits only when the previous
batch showed that several callers are active, and only until as many records as last time
are queued. One caller awaiting each record in turn therefore never waits for a timer.

The write transaction writes only the records. What is derived from them — the search
index and the list filters' tables (``decision_keys``: status and date; ``decision_tags``) —
is written by the same thread *after* the commit, when the queue has been quiet for a moment
(``QUIET_S``), or — if writes never pause — in bounded steps once the oldest unindexed record
is ``MAX_LAG_S`` old. How far that has got is stored in the database (``search_state``) in
the same transaction as the derived rows, so after a crash the next writer catches up.

Failures: a batch that fails on a constraint is retried job by job, so one bad record does
not fail its neighbours; any other error (disk full, read-only, locked past the timeout)
reaches every caller of the batch, and the rollback leaves nothing half-written.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from perfect21._errors import Perfect21Error, StoreError, ValidationError
from perfect21._sqlite import translate_error
from perfect21.decisions import _schema
from perfect21.decisions._ids import IdGenerator
from perfect21.decisions._reader import open_connection
from perfect21.decisions.models import Decision, utc_now

__all__ = ["Job", "Writer", "Written", "insert_rows"]

QUIET_S = 0.02  # index after the queue has been empty this long
MAX_LAG_S = 1.0  # ... or between batches, once the oldest unindexed record is this old
INDEX_CHUNK = 512  # records indexed per transaction
FORCED_SHARE = 0.2  # forced index steps take at most this share of a busy writer's time
CLOSE_INDEX_S = 2.0  # on close, catch the index up for at most this long

RECORD, OPERATION, FLUSH_INDEX = 1, 2, 3


class Written(NamedTuple):
    """What a record job wrote: numbers ``first``… in input order, skipping ``skipped``.

    ``ids`` is the whole batch's list (shared by its jobs, not copied); this job's ids start
    at ``offset``.
    """

    first: int
    ids: list[str]
    offset: int
    now: str
    skipped: frozenset[int] = frozenset()  # input positions already imported (same key)

    def id_at(self, index: int) -> str:
        return self.ids[self.offset + index]

    def job_ids(self, count: int) -> list[str]:
        return self.ids[self.offset : self.offset + count]


class Job:
    """One request to the writer. Completed by ``finish``; awaited via a future or a lock."""

    __slots__ = ("count", "done", "error", "fn", "future", "items", "keys", "kind", "lock",
                 "loop", "result")  # fmt: skip

    def __init__(
        self,
        kind: int,
        items: Sequence[Decision] = (),
        *,
        keys: Sequence[str] | None = None,
        fn: Callable[[sqlite3.Connection], Any] | None = None,
        loop: Any = None,
        future: Any = None,
    ) -> None:
        self.kind = kind
        self.items = items
        self.keys = keys
        self.count = len(items) if kind == RECORD else 0
        self.fn = fn
        self.loop = loop  # an asyncio loop: the future is resolved on it
        self.future = future
        self.result: Any = None
        self.error: BaseException | None = None
        self.done = False
        self.lock: Any = None
        if loop is None:
            self.lock = threading.Lock()
            self.lock.acquire()

    def wait(self) -> Any:
        """Block the calling thread until the writer has finished this job (sync callers)."""
        self.lock.acquire()
        if self.error is not None:
            raise self.error
        return self.result


def _resolve(jobs: list[Job]) -> None:
    """On the caller's event loop: complete the futures of finished jobs."""
    for job in jobs:
        future = job.future
        if future.done():  # cancelled by its caller; the write happened anyway
            continue
        if job.error is not None:
            future.set_exception(job.error)
        else:
            future.set_result(job.result)


def _copy_error(error: BaseException) -> BaseException:
    """A fresh exception per caller, so tracebacks do not pile up on one shared object."""
    if isinstance(error, Perfect21Error):
        return type(error)(*error.args)
    return StoreError(f"decision store writer failed: {error!r}")


def insert_rows(
    items: list[Decision],
    ids: list[str],
    first: int,
    now: str,
    keys: Sequence[str | None] | None,
) -> tuple[str, list[tuple[Any, ...]]]:
    """The INSERT statement and the ``decisions`` rows of ``items``, numbered from ``first``.

    The hot loop of the store: one tuple per record, fields read straight off the value.
    """
    extra_of = _schema.extra_of
    if keys or any(d.legacy_id for d in items):
        return _schema.INSERT_SQL, [
            (first + i, d.id or ids[i], d.title, d.status._value_, d.context, d.decision,
             d.rationale, extra_of(d), d.created or now, d.updated or now, d.legacy_id or None,
             keys[i] if keys else None)
            for i, d in enumerate(items)
        ]  # fmt: skip
    return _schema.INSERT_PLAIN_SQL, [
        (first + i, d.id or ids[i], d.title, d.status._value_, d.context, d.decision,
         d.rationale, extra_of(d), d.created or now, d.updated or now)
        for i, d in enumerate(items)
    ]  # fmt: skip


class Writer:
    """Owns the write connection of one decision database; see the module docstring."""

    def __init__(
        self,
        path: Path,
        *,
        batch_size: int = 1024,
        linger_ms: float = 1.0,
        busy_timeout_s: float = 5.0,
        pragmas: dict[str, Any] | None = None,
        index_on_close: bool = True,
    ) -> None:
        if batch_size < 1:
            raise ValidationError(f"decisions_batch_size: must be >= 1, got {batch_size}")
        if linger_ms < 0:
            raise ValidationError(f"decisions_linger_ms: must be >= 0, got {linger_ms}")
        self.path = path
        self.batch_size = batch_size
        self.linger_s = linger_ms / 1000.0
        self.busy_timeout_s = busy_timeout_s
        self.pragmas = dict(pragmas or {})
        self.index_on_close = index_on_close
        self._cond = threading.Condition(threading.Lock())
        self._queue: deque[Job] = deque()
        self._pending = 0  # records queued
        self._wake_at = 1  # submit() notifies once this many records are queued
        self._expect = 0  # records in the last batch: how many to linger for
        self._stopping = False
        self._closed = False
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._start_error: BaseException | None = None
        self._conn: sqlite3.Connection | None = None
        self._ids = IdGenerator()
        # search index bookkeeping (writer thread only)
        self._dirty = False  # records committed that the index has not seen
        self._dirty_since = 0.0
        self._index_due = 0.0  # when the idle writer indexes next
        self._next_forced = 0.0
        self.index_error: str = ""
        self.indexed_upto = 0
        self.commits = 0
        self.records = 0

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> None:
        """Open the database (migrating it) on the writer thread; raise its error if any."""
        self._thread = threading.Thread(
            target=self._run, name=f"perfect21-decisions-writer:{self.path.name}", daemon=True
        )
        self._thread.start()
        self._ready.wait()
        if self._start_error is not None:
            self._thread.join()
            raise self._start_error

    def close(self) -> None:
        """Finish every queued job, catch the index up (bounded), close the connection."""
        with self._cond:
            if self._closed:
                return
            self._closed = True
            self._stopping = True
            self._cond.notify()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def submit(self, job: Job) -> None:
        with self._cond:
            if self._closed:
                raise StoreError(f"{self.path}: the decision store is closed")
            self._queue.append(job)
            self._pending += job.count or 1
            if self._pending >= self._wake_at:
                self._cond.notify()

    # -- the thread --------------------------------------------------------------------------
    def _run(self) -> None:
        try:
            self._open()
        except BaseException as exc:
            self._start_error = exc if isinstance(exc, Perfect21Error) else StoreError(str(exc))
            self._closed = True
            self._ready.set()
            return
        self._ready.set()
        try:
            while True:
                jobs = self._next_jobs()
                if jobs is None:
                    break
                if not jobs:
                    self._index_while_idle()
                    continue
                self._maybe_forced_index()
                self._process(jobs)
            self._close_index()
        except BaseException as exc:  # a bug: no caller may hang on it
            with self._cond:
                self._closed = True
                left = list(self._queue)
                self._queue.clear()
            self._fail(left, StoreError(f"decision store writer stopped: {exc!r}"))
            raise
        finally:
            if self._conn is not None:
                self._conn.close()

    def _open(self) -> None:
        conn = open_connection(self.path, busy_timeout_s=self.busy_timeout_s)
        try:
            for name, value in self.pragmas.items():
                conn.execute(f"PRAGMA {name} = {int(value) if isinstance(value, bool) else value}")
            (upto,) = conn.execute("SELECT indexed_upto FROM search_state").fetchone()
            (top,) = conn.execute("SELECT coalesce(max(number), 0) FROM decisions").fetchone()
        except sqlite3.Error as exc:
            conn.close()
            raise translate_error(exc, self.path, self.busy_timeout_s) from None
        except BaseException:
            conn.close()
            raise
        self._conn = conn
        if top > upto:  # a previous process did not finish indexing: catch up soon
            self._dirty = True
            self._dirty_since = time.monotonic() - MAX_LAG_S

    def _next_jobs(self) -> list[Job] | None:
        """The next batch; ``[]`` when the index is due; ``None`` when stopping and empty."""
        cond, queue = self._cond, self._queue
        with cond:
            while not queue:
                if self._stopping:
                    return None
                timeout = None
                if self._dirty:
                    timeout = self._index_due - time.monotonic()
                    if timeout <= 0:
                        return []
                self._wake_at = 1
                cond.wait(timeout)
            target = min(self._expect, self.batch_size)
            if self.linger_s > 0 and self._pending < target and not self._stopping:
                # Several callers were active last time: give them a moment to catch up.
                deadline = time.monotonic() + self.linger_s
                self._wake_at = target
                while self._pending < target:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0 or not cond.wait(remaining):
                        break
                self._wake_at = 1
            first = queue.popleft()
            jobs = [first]
            taken = first.count or 1
            if first.kind == RECORD:
                limit = self.batch_size
                while queue and queue[0].kind == RECORD and taken + queue[0].count <= limit:
                    job = queue.popleft()
                    jobs.append(job)
                    taken += job.count
            self._pending -= taken
            if first.kind == RECORD:
                self._expect = taken
        return jobs

    def _process(self, jobs: list[Job]) -> None:
        kind = jobs[0].kind
        try:
            if kind == RECORD:
                self._write_records(jobs)
            elif kind == OPERATION:
                self._run_operation(jobs[0])
            else:
                self._flush_index(jobs[0])
        except Exception as exc:  # not an SQLite error: a bad job; fail it, keep serving
            self._rollback()
            pending = [job for job in jobs if not job.done]
            if len(pending) > 1:  # find the culprit: the others still commit
                for job in pending:
                    job.result = job.error = None
                    self._process([job])
            else:
                error = exc if isinstance(exc, Perfect21Error) else StoreError(f"{exc!r}")
                self._fail(pending, error)
        self._index_due = time.monotonic() + QUIET_S

    # -- records ----------------------------------------------------------------------------
    def _write_records(self, jobs: list[Job]) -> None:
        conn = self._conn
        assert conn is not None
        total = sum(job.count for job in jobs)
        ids = self._ids.take(total)
        now = utc_now()
        try:
            conn.execute("BEGIN IMMEDIATE")
            (number,) = conn.execute("SELECT coalesce(max(number), 0) FROM decisions").fetchone()
            if any(job.keys for job in jobs):
                sql, rows = _schema.INSERT_SQL, self._keyed_rows(conn, jobs, ids, number, now)
            else:
                items = [d for job in jobs for d in job.items]
                sql, rows = insert_rows(items, ids, number + 1, now, None)
                at = 0
                for job in jobs:
                    job.result = Written(number + 1 + at, ids, at, now)
                    at += job.count
            conn.executemany(sql, rows)
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            self._rollback()
            if isinstance(exc, sqlite3.IntegrityError) and len(jobs) > 1:
                for job in jobs:  # isolate the bad record(s); the others still commit
                    job.result = None
                    self._write_records([job])
                return
            error = self._error(exc)
            for job in jobs:
                job.result = None
                job.error = error
        else:
            self.commits += 1
            self.records += len(rows)
            if rows and not self._dirty:
                self._dirty = True
                self._dirty_since = time.monotonic()
        self._finish(jobs)

    def _keyed_rows(
        self, conn: sqlite3.Connection, jobs: list[Job], ids: list[str], number: int, now: str
    ) -> list[tuple[Any, ...]]:
        """Rows of import jobs: records whose key is already stored are skipped."""
        rows: list[tuple[Any, ...]] = []
        at = 0
        for job in jobs:
            keys = job.keys
            skipped = self._existing_keys(conn, keys) if keys else frozenset()
            job.result = Written(number + 1, ids, at, now, skipped)
            keep = [i for i in range(job.count) if i not in skipped]
            rows += insert_rows(
                [job.items[i] for i in keep],
                [ids[at + i] for i in keep],
                number + 1,
                now,
                [keys[i] for i in keep] if keys else [None] * len(keep),
            )[1]
            number += len(keep)
            at += job.count
        return rows

    def _existing_keys(self, conn: sqlite3.Connection, keys: Sequence[str]) -> frozenset[int]:
        """Positions in ``keys`` already stored, or repeated earlier in ``keys``."""
        present: set[str] = set()
        unique = list(dict.fromkeys(keys))
        for start in range(0, len(unique), 500):
            chunk = unique[start : start + 500]
            marks = ",".join("?" * len(chunk))
            present.update(
                key
                for (key,) in conn.execute(
                    f"SELECT import_key FROM decisions WHERE import_key IN ({marks})", chunk
                )
            )
        skipped = set()
        seen: set[str] = set()
        for i, key in enumerate(keys):
            if key in present or key in seen:
                skipped.add(i)
            seen.add(key)
        return frozenset(skipped)

    def _run_operation(self, job: Job) -> None:
        conn = self._conn
        assert conn is not None and job.fn is not None
        try:
            conn.execute("BEGIN IMMEDIATE")
            job.result = job.fn(conn)
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            self._rollback()
            job.error = self._error(exc)
        except Perfect21Error as exc:
            self._rollback()
            job.error = exc
        self._finish([job])

    def _rollback(self) -> None:
        conn = self._conn
        if conn is not None and conn.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")

    def _error(self, exc: sqlite3.Error) -> Perfect21Error:
        if isinstance(exc, sqlite3.IntegrityError):
            text = str(exc)
            if "decisions.id" in text:
                return ValidationError("id: a decision with this id already exists")
            return ValidationError(f"decision rejected by the store: {text}")
        return translate_error(exc, self.path, self.busy_timeout_s)

    def _finish(self, jobs: list[Job]) -> None:
        """Tell every caller: sync callers directly, each event loop with one wake-up."""
        by_loop: dict[Any, list[Job]] = {}
        for job in jobs:
            job.done = True
            error = job.error
            if error is not None and len(jobs) > 1:
                job.error = _copy_error(error)
            if job.loop is None:
                job.lock.release()
            else:
                by_loop.setdefault(job.loop, []).append(job)
        for loop, items in by_loop.items():
            # RuntimeError: the loop is closed, so nobody is waiting any more.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_resolve, items)

    def _fail(self, jobs: list[Job], error: Perfect21Error) -> None:
        for job in jobs:
            job.result = None
            job.error = error
        self._finish(jobs)

    # -- search index -----------------------------------------------------------------------
    def _index_step(self) -> bool:
        """Index up to ``INDEX_CHUNK`` records; True if more may be waiting."""
        conn = self._conn
        assert conn is not None
        # The index can be rebuilt from the table, so its commits need no fsync; the next
        # record commit (synchronous=FULL) makes them durable anyway.
        conn.execute("PRAGMA synchronous = NORMAL")
        try:
            conn.execute("BEGIN IMMEDIATE")
            (upto,) = conn.execute("SELECT indexed_upto FROM search_state").fetchone()
            rows = conn.execute(
                f"{_schema.SELECT_SQL} WHERE number > ? ORDER BY number LIMIT ?",
                (upto, INDEX_CHUNK),
            ).fetchall()
            if rows:
                derived = _schema.derived_rows(rows)
                conn.executemany(
                    "INSERT INTO decisions_fts (rowid, body, parts) VALUES (?, ?, ?)",
                    derived.search,
                )
                conn.executemany(_schema.INSERT_KEY_SQL, derived.keys)
                if derived.tags:
                    conn.executemany(_schema.INSERT_TAG_SQL, derived.tags)
                upto = rows[-1][0]
                conn.execute("UPDATE search_state SET indexed_upto = ?", (upto,))
            conn.execute("COMMIT")
            self.indexed_upto = upto
        except sqlite3.Error as exc:
            self._rollback()
            self.index_error = str(translate_error(exc, self.path, self.busy_timeout_s))
            self._index_due = self._next_forced = time.monotonic() + 1.0  # back off
            raise
        finally:
            conn.execute("PRAGMA synchronous = FULL")
        self.index_error = ""
        return len(rows) == INDEX_CHUNK

    def _index_until_done(self, *, deadline: float, yield_to_jobs: bool) -> bool:
        """Index until caught up (True), the deadline passes, or jobs arrive (False)."""
        while time.monotonic() < deadline:
            try:
                more = self._index_step()
            except sqlite3.Error:
                return False
            if not more:
                self._dirty = False
                return True
            if yield_to_jobs and self._queue:
                return False
        return False

    def _index_while_idle(self) -> None:
        self._index_until_done(deadline=time.monotonic() + 3600, yield_to_jobs=True)

    def _maybe_forced_index(self) -> None:
        """Writes never pause: keep the index lag bounded at a bounded cost to throughput."""
        if not self._dirty:
            return
        now = time.monotonic()
        if now - self._dirty_since < MAX_LAG_S or now < self._next_forced:
            return
        try:
            more = self._index_step()
        except sqlite3.Error:
            return
        spent = time.monotonic() - now
        self._next_forced = now + spent / FORCED_SHARE
        if not more:
            self._dirty = False

    def _flush_index(self, job: Job) -> None:
        """Index every record committed before this request (``wait_indexed``).

        Records other processes commit meanwhile are left to the normal schedule, so a
        flush ends even while they keep writing.
        """
        conn = self._conn
        assert conn is not None
        try:
            (target,) = conn.execute("SELECT coalesce(max(number), 0) FROM decisions").fetchone()
            while self._index_step() and self.indexed_upto < target:
                pass
            if self.indexed_upto >= target:
                self._dirty = False
        except sqlite3.Error as exc:
            job.error = translate_error(exc, self.path, self.busy_timeout_s)
        self._finish([job])

    def _close_index(self) -> None:
        if self._dirty and self.index_on_close:
            self._index_until_done(deadline=time.monotonic() + CLOSE_INDEX_S, yield_to_jobs=False)
