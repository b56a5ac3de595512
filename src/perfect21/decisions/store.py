"""The decision store: :class:`DecisionStore` (asyncio) and :class:`SyncDecisionStore`.

Both put writes through one :class:`~perfect21.decisions.writer.Writer` (group commit,
``synchronous=FULL``) and read on their own connections. ``record()`` returns once the record
is durable. Search is updated off the write path and may lag writes by up to about a second.

This module does not import :mod:`asyncio` at import time, so the CLI (which uses the
synchronous store) starts without it.
"""

from __future__ import annotations

import builtins
import operator
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from perfect21._config import Config, load_config
from perfect21._errors import StoreError, ValidationError
from perfect21.decisions._reader import Reader, open_connection, supersede_operation
from perfect21.decisions.models import Decision, Status
from perfect21.decisions.writer import FLUSH_INDEX, OPERATION, RECORD, Job, Writer, Written

if TYPE_CHECKING:
    from concurrent.futures import ThreadPoolExecutor
    from datetime import date, datetime

__all__ = ["DecisionStore", "ImportResult", "SyncDecisionStore", "default_path"]

DB_NAME = "decisions.db"


def default_path(config: Config | None = None) -> Path:
    """``<home>/decisions.db`` (``./.perfect21`` unless ``PERFECT21_HOME`` says otherwise)."""
    return (config or load_config()).path(DB_NAME)


class ImportResult:
    """What an import wrote: the new decisions' ids and how many were already there."""

    __slots__ = ("existing", "ids")

    def __init__(self, ids: list[str], existing: int) -> None:
        self.ids = ids
        self.existing = existing

    @property
    def added(self) -> int:
        return len(self.ids)


def _make_stored() -> Callable[[Decision, str, int, str], Decision]:
    """``_stored(d, id_, number, now)``: ``d`` as stored, copied field by field.

    Straight-line code (no loop, no intermediate list): it runs once per ``record()`` on the
    caller's event loop, where it was a quarter of the caller's cost per record.
    """
    assigned = {"id": "d.id or id_", "number": "number", "created": "d.created or now",
                "updated": "d.updated or now"}  # fmt: skip
    lines = ["def _stored(d, id_, number, now):", "    o = new(Decision)"]
    scope: dict[str, Any] = {"new": object.__new__, "Decision": Decision}
    for i, name in enumerate(Decision.__dataclass_fields__):
        scope[f"set{i}"] = Decision.__dict__[name].__set__  # the slot's descriptor
        lines.append(f"    set{i}(o, {assigned.get(name, f'd.{name}')})")
    lines.append("    return o")
    exec("\n".join(lines), scope)  # fixed source, built from the field names only
    stored: Callable[[Decision, str, int, str], Decision] = scope["_stored"]
    return stored


_stored = _make_stored()


def _ids_of(items: Sequence[Decision], written: Written) -> list[str]:
    ids = written.job_ids(len(items))
    if not written.skipped and not any(map(_GET_ID, items)):
        return ids
    return [d.id or i for pos, (d, i) in enumerate(zip(items, ids, strict=True))
            if pos not in written.skipped]  # fmt: skip


_GET_ID = operator.attrgetter("id")


def _check_items(decisions: Iterable[Any]) -> list[Decision]:
    items: list[Decision] = list(decisions)
    for i, d in enumerate(items):
        if type(d) is not Decision:
            raise ValidationError(f"decisions[{i}]: expected a Decision, got {type(d).__name__}")
    return items


class _Settings:
    __slots__ = ("batch_size", "busy_timeout_s", "index_on_close", "linger_ms", "path", "pragmas")

    def __init__(
        self,
        path: str | Path | None,
        config: Config | None,
        batch_size: int | None,
        linger_ms: float | None,
        busy_timeout_s: float | None,
        pragmas: dict[str, Any] | None,
        index_on_close: bool = True,
    ) -> None:
        config = config or load_config()
        self.path = Path(path) if path is not None else default_path(config)
        self.batch_size = config.decisions_batch_size if batch_size is None else batch_size
        self.linger_ms = config.decisions_linger_ms if linger_ms is None else linger_ms
        self.busy_timeout_s = (
            config.decisions_busy_timeout_s if busy_timeout_s is None else busy_timeout_s
        )
        self.pragmas = dict(pragmas or {})
        self.index_on_close = index_on_close

    def writer(self) -> Writer:
        return Writer(
            self.path,
            batch_size=self.batch_size,
            linger_ms=self.linger_ms,
            busy_timeout_s=self.busy_timeout_s,
            pragmas=self.pragmas,
            index_on_close=self.index_on_close,
        )

    def reader(self) -> Reader:
        """A reader connection; creates and migrates the database if needed."""
        conn = open_connection(self.path, busy_timeout_s=self.busy_timeout_s)
        return Reader(conn, str(self.path), self.busy_timeout_s)


class _Readers:
    """One reader connection per thread (SQLite connections are not shared across threads)."""

    def __init__(self, settings: _Settings) -> None:
        self._settings = settings
        self._local = threading.local()
        self._all: list[Reader] = []
        self._lock = threading.Lock()
        self.closed = False

    def get(self) -> Reader:
        reader: Reader | None = getattr(self._local, "reader", None)
        if reader is None:
            if self.closed:
                raise StoreError(f"{self._settings.path}: the decision store is closed")
            reader = self._settings.reader()
            with self._lock:
                if self.closed:
                    reader.conn.close()
                    raise StoreError(f"{self._settings.path}: the decision store is closed")
                self._all.append(reader)
            self._local.reader = reader
        elif self.closed:
            raise StoreError(f"{self._settings.path}: the decision store is closed")
        return reader

    def close(self) -> None:
        with self._lock:
            self.closed = True
            readers, self._all = self._all, []
        for reader in readers:
            reader.conn.close()


class SyncDecisionStore:
    """The decision store for scripts and the CLI: plain blocking calls, no event loop.

    ::

        with SyncDecisionStore.open() as store:
            d = store.record(Decision(title="Use PostgreSQL", decision="PostgreSQL"))
            store.search("postgres")

    The writer thread starts on the first write; each thread reads on its own connection.
    Safe to share between threads: their writes are committed together.
    """

    def __init__(self, settings: _Settings) -> None:
        self._settings = settings
        self._readers = _Readers(settings)
        self._writer: Writer | None = None
        self._lock = threading.Lock()

    @classmethod
    def open(
        cls,
        path: str | Path | None = None,
        *,
        config: Config | None = None,
        batch_size: int | None = None,
        linger_ms: float | None = None,
        busy_timeout_s: float | None = None,
        pragmas: dict[str, Any] | None = None,
        index_on_close: bool = True,
    ) -> SyncDecisionStore:
        """Open (creating and migrating) the store at ``path`` or ``<home>/decisions.db``.

        Settings default to the config (``decisions_batch_size``, ``decisions_linger_ms``,
        ``decisions_busy_timeout_s``). ``pragmas`` are set on the write connection (e.g.
        ``max_page_count``). ``index_on_close=False`` skips catching the search index up
        (at most 2 s) on close; the next writer to open the store does it instead.
        """
        settings = _Settings(
            path, config, batch_size, linger_ms, busy_timeout_s, pragmas, index_on_close
        )
        store = cls(settings)
        store._readers.get()  # opens (creates, migrates) the database now: errors show here
        return store

    @property
    def path(self) -> Path:
        return self._settings.path

    def __enter__(self) -> SyncDecisionStore:
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Finish queued writes, catch the search index up, close connections."""
        with self._lock:
            writer, self._writer = self._writer, None
            self._readers.closed = True
        if writer is not None:
            writer.close()
        self._readers.close()

    def _read(self) -> Reader:
        return self._readers.get()

    def _write(self, job: Job) -> Any:
        with self._lock:
            if self._readers.closed:
                raise StoreError(f"{self._settings.path}: the decision store is closed")
            if self._writer is None:
                writer = self._settings.writer()
                writer.start()
                self._writer = writer
            writer = self._writer
        writer.submit(job)
        return job.wait()

    # -- writes ------------------------------------------------------------------------------
    def record(self, decision: Decision) -> Decision:
        """Store one decision; returns it with id, number and timestamps once durable."""
        items = _check_items((decision,))
        written: Written = self._write(Job(RECORD, items))
        return _stored(decision, written.id_at(0), written.first, written.now)

    def record_many(self, decisions: Iterable[Decision]) -> list[str]:
        """Store all of ``decisions`` in one transaction; returns their ids, in order."""
        items = _check_items(decisions)
        if not items:
            return []
        return _ids_of(items, self._write(Job(RECORD, items)))

    def import_many(self, pairs: Sequence[tuple[Decision, str]]) -> ImportResult:
        """Store decisions with idempotency keys; those whose key is stored are skipped."""
        items = _check_items(d for d, _ in pairs)
        if not items:
            return ImportResult([], 0)
        keys = [k for _, k in pairs]
        written: Written = self._write(Job(RECORD, items, keys=keys))
        return ImportResult(_ids_of(items, written), len(written.skipped))

    def supersede(self, old: str | int, by: str | int) -> tuple[Decision, Decision]:
        """Mark ``old`` superseded by ``by`` (both accept an id or a number)."""
        result: tuple[Decision, Decision] = self._write(
            Job(OPERATION, fn=supersede_operation(old, by))
        )
        return result

    def wait_indexed(self) -> None:
        """Return once every decision committed so far is searchable."""
        upto, top = self._read().index_state()
        if upto < top:
            self._write(Job(FLUSH_INDEX))

    # -- reads -------------------------------------------------------------------------------
    def get(self, ref: str | int) -> Decision:
        """By id, number (``12``, ``ADR-0012``) or unique legacy id; else NotFoundError."""
        return self._read().get(ref)

    def list(
        self,
        *,
        status: Status | str | None = None,
        tag: str | None = None,
        since: str | date | datetime | None = None,
        limit: int = 50,
    ) -> builtins.list[Decision]:
        """Newest first, filtered by status, tag and creation time."""
        return self._read().list(status=status, tag=tag, since=since, limit=limit)

    def iter_all(self, *, page: int = 1000) -> Iterator[Decision]:
        """Every decision, oldest first, read in pages."""
        after = 0
        while True:
            chunk = self._read().list(limit=page, cursor=after, oldest_first=True)
            yield from chunk
            if len(chunk) < page:
                return
            after = chunk[-1].number

    def search(
        self, query: str, *, limit: int = 20, status: Status | str | None = None
    ) -> builtins.list[Decision]:
        """Full-text search (EN + ZH), newest first. May lag writes by up to ~1 s."""
        return self._read().search(query, limit=limit, status=status)

    def stats(self) -> dict[str, Any]:
        return self._read().stats()


class DecisionStore:
    """The asyncio decision store. ``record()`` returns when the record is durable.

    ::

        async with DecisionStore.open(".perfect21/decisions.db") as store:
            d = await store.record(Decision(title="Use PostgreSQL"))
            await store.record_many([...])
            await store.get(d.id)
            await store.search("jwt 会话")

    Concurrent ``record()`` calls — from any number of tasks — are committed together in one
    transaction (group commit). Reads run on a small thread pool with their own connections.
    Cancelling a ``record()`` does not cancel the write.
    """

    def __init__(self, settings: _Settings, read_threads: int = 2) -> None:
        self._settings = settings
        self._writer: Writer | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._read_threads = read_threads
        self._readers = _Readers(settings)

    @classmethod
    def open(
        cls,
        path: str | Path | None = None,
        *,
        config: Config | None = None,
        batch_size: int | None = None,
        linger_ms: float | None = None,
        busy_timeout_s: float | None = None,
        pragmas: dict[str, Any] | None = None,
        index_on_close: bool = True,
    ) -> DecisionStore:
        """The store at ``path`` (default ``<home>/decisions.db``); use ``async with``.

        The keywords are those of :meth:`SyncDecisionStore.open`.
        """
        settings = _Settings(
            path, config, batch_size, linger_ms, busy_timeout_s, pragmas, index_on_close
        )
        return cls(settings)

    @property
    def path(self) -> Path:
        return self._settings.path

    async def __aenter__(self) -> DecisionStore:
        await self.start()
        return self

    async def __aexit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def start(self) -> None:
        """Open the database (creating and migrating it) and start the writer thread."""
        import asyncio
        from concurrent.futures import ThreadPoolExecutor

        global _get_running_loop
        _get_running_loop = asyncio.get_running_loop
        if self._writer is not None:
            return
        writer = self._settings.writer()
        await asyncio.to_thread(writer.start)
        self._writer = writer
        self._readers = _Readers(self._settings)
        self._pool = ThreadPoolExecutor(self._read_threads, "perfect21-decisions-read")

    async def close(self) -> None:
        """Finish queued writes, catch the search index up, close everything."""
        import asyncio

        writer, self._writer = self._writer, None
        pool, self._pool = self._pool, None
        if writer is not None:
            await asyncio.to_thread(writer.close)
        if pool is not None:
            await asyncio.to_thread(pool.shutdown, wait=True)
        self._readers.close()

    def _submit(self, job: Job) -> None:
        writer = self._writer
        if writer is None:
            raise StoreError(f"{self._settings.path}: the decision store is not open")
        writer.submit(job)

    # -- writes ------------------------------------------------------------------------------
    async def record(self, decision: Decision) -> Decision:
        """Store one decision; returns it with id, number and timestamps once durable."""
        if type(decision) is not Decision:
            raise ValidationError(f"decision: expected a Decision, got {type(decision).__name__}")
        loop = _get_running_loop()
        future = loop.create_future()
        self._submit(Job(RECORD, (decision,), loop=loop, future=future))
        written: Written = await future
        return _stored(decision, written.id_at(0), written.first, written.now)

    async def record_many(self, decisions: Iterable[Decision]) -> list[str]:
        """Store all of ``decisions`` in one transaction; returns their ids, in order."""
        items = _check_items(decisions)
        if not items:
            return []
        loop = _get_running_loop()
        future = loop.create_future()
        self._submit(Job(RECORD, items, loop=loop, future=future))
        return _ids_of(items, await future)

    async def import_many(self, pairs: Sequence[tuple[Decision, str]]) -> ImportResult:
        """Store decisions with idempotency keys; those whose key is stored are skipped."""
        items = _check_items(d for d, _ in pairs)
        if not items:
            return ImportResult([], 0)
        loop = _get_running_loop()
        future = loop.create_future()
        self._submit(Job(RECORD, items, keys=[k for _, k in pairs], loop=loop, future=future))
        written: Written = await future
        return ImportResult(_ids_of(items, written), len(written.skipped))

    async def supersede(self, old: str | int, by: str | int) -> tuple[Decision, Decision]:
        """Mark ``old`` superseded by ``by`` (both accept an id or a number)."""
        loop = _get_running_loop()
        future = loop.create_future()
        self._submit(Job(OPERATION, fn=supersede_operation(old, by), loop=loop, future=future))
        result: tuple[Decision, Decision] = await future
        return result

    async def wait_indexed(self) -> None:
        """Return once every decision committed so far is searchable."""
        loop = _get_running_loop()
        future = loop.create_future()
        self._submit(Job(FLUSH_INDEX, loop=loop, future=future))
        await future

    # -- reads -------------------------------------------------------------------------------
    async def _read(self, method: str, *args: Any, **kwargs: Any) -> Any:
        pool = self._pool
        if pool is None:
            raise StoreError(f"{self._settings.path}: the decision store is not open")

        def call() -> Any:
            return getattr(self._readers.get(), method)(*args, **kwargs)

        return await _get_running_loop().run_in_executor(pool, call)

    async def get(self, ref: str | int) -> Decision:
        """By id, number (``12``, ``ADR-0012``) or unique legacy id; else NotFoundError."""
        result: Decision = await self._read("get", ref)
        return result

    async def list(
        self,
        *,
        status: Status | str | None = None,
        tag: str | None = None,
        since: str | date | datetime | None = None,
        limit: int = 50,
    ) -> builtins.list[Decision]:
        """Newest first, filtered by status, tag and creation time."""
        result: builtins.list[Decision] = await self._read(
            "list", status=status, tag=tag, since=since, limit=limit
        )
        return result

    async def search(
        self, query: str, *, limit: int = 20, status: Status | str | None = None
    ) -> builtins.list[Decision]:
        """Full-text search (EN + ZH), newest first. May lag writes by up to ~1 s."""
        found: builtins.list[Decision] = await self._read(
            "search", query, limit=limit, status=status
        )
        return found

    async def stats(self) -> dict[str, Any]:
        result: dict[str, Any] = await self._read("stats")
        return result


def _no_loop() -> Any:
    raise StoreError("DecisionStore: call start() (or use `async with`) first")


_get_running_loop: Any = _no_loop
