"""Queries on a reader connection (WAL: readers never wait for the writer)."""

from __future__ import annotations

import builtins
import os
import re
import sqlite3
from collections import Counter
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from perfect21._errors import InputError, NotFoundError, StoreError, ValidationError
from perfect21._sqlite import connect, migrate, translate_error
from perfect21.decisions import _schema
from perfect21.decisions._search import compile_query
from perfect21.decisions.models import Decision, Status, format_number, utc_now

__all__ = ["Reader", "open_connection", "parse_since", "supersede_operation"]

_NUMBER = re.compile(r"(?i)(?:adr-?)?0*(\d{1,9})")
_ULID = re.compile(r"[0-9A-HJKMNP-TV-Za-hjkmnp-tv-z]{26}")
MAX_LIMIT = 10_000


def open_connection(path: Path, *, busy_timeout_s: float) -> sqlite3.Connection:
    """A connection to the store at ``path``, created and migrated if needed.

    Usable from any thread (each connection is still used by one thread at a time). A
    read-only folder or file is named as the reason when SQLite cannot open the file.
    """
    try:
        conn = connect(
            path, busy_timeout_s=busy_timeout_s, synchronous="FULL", check_same_thread=False
        )
    except StoreError as exc:
        if type(exc) is StoreError and _read_only(path):
            raise StoreError(
                f"{path}: cannot write the decision store: its folder or file is read-only ({exc})"
            ) from None
        raise
    try:
        if _schema.schema_version(conn) < _schema.SCHEMA_VERSION:
            migrate(conn, _schema.MIGRATIONS, path=str(path))
    except sqlite3.Error as exc:
        conn.close()
        raise translate_error(exc, path, busy_timeout_s) from None
    except BaseException:
        conn.close()
        raise
    return conn


def _read_only(path: Path) -> bool:
    folder = path.parent if path.parent.exists() else path.parent.parent
    return not os.access(folder, os.W_OK) or (path.exists() and not os.access(path, os.W_OK))


def parse_since(value: str | date | datetime | None) -> str | None:
    """A lower bound for ``created`` in the stored form (``--since 2025-09-01``)."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        moment = datetime(value.year, value.month, value.day)
    else:
        try:
            moment = datetime.fromisoformat(value.strip())
        except ValueError:
            raise ValidationError(
                f"since: {value!r} is not a date (YYYY-MM-DD) or ISO 8601 timestamp"
            ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _limit(limit: int) -> int:
    if not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise ValidationError(f"limit: must be between 1 and {MAX_LIMIT:,}, got {limit!r}")
    return limit


def resolve(conn: sqlite3.Connection, ref: str | int) -> tuple[Any, ...]:
    """The row for an id, a number (12, ADR-0012) or a unique legacy id."""
    text = str(ref).strip()
    if isinstance(ref, int) or _NUMBER.fullmatch(text):
        number = ref if isinstance(ref, int) else int(_NUMBER.fullmatch(text).group(1))  # type: ignore[union-attr]
        row = conn.execute(f"{_schema.SELECT_SQL} WHERE number = ?", (number,)).fetchone()
        if row is not None:
            return tuple(row)
    if _ULID.fullmatch(text):
        row = conn.execute(f"{_schema.SELECT_SQL} WHERE id = ?", (text.upper(),)).fetchone()
        if row is not None:
            return tuple(row)
    if text:
        rows = conn.execute(
            f"{_schema.SELECT_SQL} WHERE legacy_id = ? ORDER BY number LIMIT 11", (text,)
        ).fetchall()
        if len(rows) == 1:
            return tuple(rows[0])
        if rows:
            refs = ", ".join(format_number(r[0]) for r in rows[:10])
            more = " …" if len(rows) > 10 else ""
            raise InputError(
                f"legacy id {text!r} is ambiguous: it names {refs}{more}; use one of those"
            )
    raise NotFoundError(f"decision not found: {text or repr(ref)}")


class Reader:
    """Read queries on one connection. Not thread-safe: one per thread."""

    def __init__(self, conn: sqlite3.Connection, path: str, busy_timeout_s: float) -> None:
        self.conn = conn
        self.path = path
        self.busy_timeout_s = busy_timeout_s

    def _run(self, sql: str, args: tuple[Any, ...] | list[Any] = ()) -> list[Any]:
        try:
            return self.conn.execute(sql, args).fetchall()
        except sqlite3.Error as exc:
            raise translate_error(exc, self.path, self.busy_timeout_s) from None

    def _decisions(self, sql: str, args: list[Any]) -> list[Decision]:
        return [self._decision(row) for row in self._run(sql, args)]

    def _decision(self, row: Any) -> Decision:
        try:
            return _schema.decision_from_row(row)
        except (ValueError, KeyError, TypeError):
            raise StoreError(
                f"{self.path}: {format_number(row[0])} is unreadable (a malformed row; "
                "was the file edited by hand?)"
            ) from None

    def get(self, ref: str | int) -> Decision:
        try:
            row = resolve(self.conn, ref)
        except sqlite3.Error as exc:
            raise translate_error(exc, self.path, self.busy_timeout_s) from None
        return self._decision(row)

    def list(
        self,
        *,
        status: Status | str | None = None,
        tag: str | None = None,
        since: str | date | datetime | None = None,
        limit: int = 50,
        cursor: int | None = None,
        oldest_first: bool = False,
    ) -> builtins.list[Decision]:
        """Newest first (or oldest first); ``cursor``: only numbers past it, for paging.

        Filters use the derived tables (``decision_keys``, ``decision_tags``) for records the
        indexer has reached and look at the few newer records directly, in one snapshot, so
        a record is listed as soon as it is recorded.
        """
        wanted = Status.parse(status).value if status else None
        lower = parse_since(since)
        limit = _limit(limit)
        order = "ASC" if oldest_first else "DESC"
        past = "> ?" if oldest_first else "< ?"
        if wanted is None and not tag and lower is None:
            sql, args = _schema.SELECT_SQL, []
            if cursor is not None:
                sql += f" WHERE number {past}"
                args.append(cursor)
            return self._decisions(f"{sql} ORDER BY number {order} LIMIT ?", [*args, limit])
        try:
            self.conn.execute("BEGIN")  # one snapshot for both parts
            try:
                ((upto,),) = self._run("SELECT indexed_upto FROM search_state")
                indexed = self._indexed(upto, wanted, tag, lower, cursor, order, past, limit)
                tail = self._tail(upto, wanted, tag, lower, cursor, order, past, limit)
            finally:
                self.conn.execute("COMMIT")
        except sqlite3.Error as exc:
            raise translate_error(exc, self.path, self.busy_timeout_s) from None
        # every tail number is above every indexed one
        found = indexed + tail if oldest_first else tail + indexed
        return found[:limit]

    def _indexed(
        self, upto: int, status: str | None, tag: str | None, lower: str | None,
        cursor: int | None, order: str, past: str, limit: int,
    ) -> builtins.list[Decision]:  # fmt: skip
        where: builtins.list[str] = ["k.number <= ?"]
        args: builtins.list[Any] = [upto]
        if status is not None:
            where.append("k.status = ?")
            args.append(status)
        if lower is not None:
            where.append("k.created >= ?")
            args.append(lower)
        if tag:
            where.append("k.number IN (SELECT number FROM decision_tags WHERE tag = ?)")
            args.append(tag)
        if cursor is not None:
            where.append(f"k.number {past}")
            args.append(cursor)
        columns = ", ".join(f"d.{c.strip()}" for c in _schema.COLUMNS.split(","))
        sql = (
            f"SELECT {columns} FROM decision_keys AS k JOIN decisions AS d ON d.number = k.number"
            f" WHERE {' AND '.join(where)} ORDER BY k.number {order} LIMIT ?"
        )
        return self._decisions(sql, [*args, limit])

    def _tail(
        self, upto: int, status: str | None, tag: str | None, lower: str | None,
        cursor: int | None, order: str, past: str, limit: int,
    ) -> builtins.list[Decision]:  # fmt: skip
        """Matching records the indexer has not reached yet (normally none or a few)."""
        where: builtins.list[str] = ["number > ?"]
        args: builtins.list[Any] = [upto]
        if status is not None:
            where.append("status = ?")
            args.append(status)
        if lower is not None:
            where.append("created >= ?")
            args.append(lower)
        if cursor is not None:
            where.append(f"number {past}")
            args.append(cursor)
        sql = f"{_schema.SELECT_SQL} WHERE {' AND '.join(where)} ORDER BY number {order}"
        if not tag:
            return self._decisions(f"{sql} LIMIT ?", [*args, limit])
        found = []
        for row in self.conn.execute(sql, args):
            d = self._decision(row)
            if tag in d.tags:
                found.append(d)
                if len(found) == limit:
                    break
        return found

    def search(
        self, query: str, *, limit: int = 20, status: Status | str | None = None
    ) -> builtins.list[Decision]:
        """Full-text search, newest first; see :mod:`perfect21.decisions._search`."""
        if not isinstance(query, str):
            raise ValidationError("query: expected text")
        expression = compile_query(query)
        if expression is None:
            raise ValidationError("query: nothing to search for (give one or more words)")
        sql = (
            f"SELECT {', '.join('d.' + c.strip() for c in _schema.COLUMNS.split(','))}"
            " FROM decisions_fts JOIN decisions AS d ON d.number = decisions_fts.rowid"
            " WHERE decisions_fts MATCH ?"
        )
        args: list[Any] = [expression]
        if status:
            sql += " AND d.status = ?"
            args.append(Status.parse(status).value)
        sql += " ORDER BY decisions_fts.rowid DESC LIMIT ?"
        args.append(_limit(limit))
        return self._decisions(sql, args)

    def index_state(self) -> tuple[int, int]:
        """``(indexed_upto, highest number)``: search lags while the first is smaller."""
        ((upto,),) = self._run("SELECT indexed_upto FROM search_state")
        ((top,),) = self._run("SELECT coalesce(max(number), 0) FROM decisions")
        return int(upto), int(top)

    def stats(self) -> dict[str, Any]:
        """Counts by status, the ten most used tags, dates, and the index backlog."""
        try:
            self.conn.execute("BEGIN")  # one snapshot
            try:
                by_status = dict.fromkeys((s.value for s in Status), 0)
                for status, count in self._run(
                    "SELECT status, count(*) FROM decisions GROUP BY status"
                ):
                    by_status[status] = count
                upto, top = self.index_state()
                tags = Counter(dict(self._run(
                    "SELECT tag, count(*) FROM decision_tags WHERE number <= ? GROUP BY tag",
                    (upto,),
                )))  # fmt: skip
                for (extra,) in self._run("SELECT extra FROM decisions WHERE number > ?", (upto,)):
                    tags.update(_schema.tags_of_extra(extra))
                ((first, last, imported),) = self._run(
                    "SELECT min(created), max(created), count(legacy_id) FROM decisions"
                )
            finally:
                self.conn.execute("COMMIT")
        except sqlite3.Error as exc:
            raise translate_error(exc, self.path, self.busy_timeout_s) from None
        top_tags = sorted(tags.items(), key=lambda item: (-item[1], item[0]))[:10]
        return {
            "total": sum(by_status.values()),
            "by_status": by_status,
            "top_tags": dict(top_tags),
            "imported": imported,
            "first_created": first,
            "last_created": last,
            "highest_number": top,
            "search_indexed_upto": upto,
            "search_backlog": top - upto,
        }


def supersede_operation(old_ref: str | int, new_ref: str | int) -> Any:
    """A writer operation: ``old`` becomes superseded by ``new``; returns both, updated."""

    def operation(conn: sqlite3.Connection) -> tuple[Decision, Decision]:
        old = _schema.decision_from_row(resolve(conn, old_ref))
        new = _schema.decision_from_row(resolve(conn, new_ref))
        if old.number == new.number:
            raise ValidationError(f"supersede: {old.ref} cannot supersede itself")
        if old.id in new.links.supersedes and old.links.superseded_by == new.id:
            return old, new  # already done: idempotent
        if old.links.superseded_by:
            raise InputError(
                f"supersede: {old.ref} is already superseded (by {old.links.superseded_by})"
            )
        if new.links.superseded_by == old.id:
            raise InputError(f"supersede: {new.ref} is superseded by {old.ref}; that is a cycle")
        now = utc_now()
        old = replace(
            old,
            status=Status.SUPERSEDED,
            links=replace(old.links, superseded_by=new.id),
            updated=now,
        )
        new = replace(
            new,
            links=replace(new.links, supersedes=(*new.links.supersedes, old.id))
            if old.id not in new.links.supersedes
            else new.links,
            updated=now,
        )
        for d in (old, new):
            row = _schema.row_of(d, d.number, d.id, now)
            conn.execute(
                "UPDATE decisions SET status = ?, extra = ?, updated = ? WHERE number = ?",
                (row[3], row[7], row[9], d.number),
            )
            # the derived copy, if the indexer has made it already
            conn.execute("UPDATE decision_keys SET status = ? WHERE number = ?", (row[3], d.number))
        return old, new

    return operation
