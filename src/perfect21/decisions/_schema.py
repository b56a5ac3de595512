"""The decision store's tables, its migrations, and the row <-> :class:`Decision` mapping.

``decisions.number`` is the ADR number and the table's rowid: assigned ``max + 1`` inside the
writer's transaction, so numbers follow commit order even with several writing processes,
and the search index can track "indexed up to number N" (``search_state``).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

from perfect21._sqlite import Migration
from perfect21.decisions._search import document
from perfect21.decisions.models import _NO_LINKS, Decision, Links, Option, Status, trusted

__all__ = [
    "COLUMNS",
    "INSERT_PLAIN_SQL",
    "INSERT_SQL",
    "INSERT_TAG_SQL",
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "decision_from_row",
    "derived_rows",
    "row_of",
]

_V1 = """
CREATE TABLE decisions (
    number     INTEGER PRIMARY KEY,
    id         TEXT NOT NULL UNIQUE,
    title      TEXT NOT NULL,
    status     TEXT NOT NULL,
    context    TEXT NOT NULL,
    decision   TEXT NOT NULL,
    rationale  TEXT NOT NULL,
    extra      TEXT NOT NULL,
    created    TEXT NOT NULL,
    updated    TEXT NOT NULL,
    legacy_id  TEXT,
    import_key TEXT
);
CREATE INDEX decisions_status ON decisions (status, number);
CREATE INDEX decisions_created ON decisions (created);
CREATE INDEX decisions_legacy_id ON decisions (legacy_id) WHERE legacy_id IS NOT NULL;
CREATE UNIQUE INDEX decisions_import_key ON decisions (import_key) WHERE import_key IS NOT NULL;
CREATE TABLE decision_tags (
    tag    TEXT NOT NULL,
    number INTEGER NOT NULL,
    PRIMARY KEY (tag, number)
) WITHOUT ROWID;
CREATE VIRTUAL TABLE decisions_fts USING fts5(
    body, parts, content='', tokenize='unicode61 remove_diacritics 2'
);
CREATE TABLE search_state (
    id           INTEGER PRIMARY KEY CHECK (id = 1),
    indexed_upto INTEGER NOT NULL
);
INSERT INTO search_state (id, indexed_upto) VALUES (1, 0);
"""


# Version 2: the list filters' indexes leave the write path. Measured on 100k records of
# ~450 bytes with synchronous=FULL, the status and created indexes and the tag rows cost as
# much as the record itself (raw executemany 68-93k rows/s with them, 107-154k without).
# They are now derived tables kept up to date by the writer off the write path, like the
# search index, up to ``search_state.indexed_upto``; list queries read them for records up
# to that number and scan the few newer records directly, so list results never lag.
_V2 = """
DROP INDEX decisions_status;
DROP INDEX decisions_created;
CREATE TABLE decision_keys (
    number  INTEGER PRIMARY KEY,
    status  TEXT NOT NULL,
    created TEXT NOT NULL
);
CREATE INDEX decision_keys_status ON decision_keys (status, number);
CREATE INDEX decision_keys_created ON decision_keys (created);
INSERT INTO decision_keys (number, status, created)
    SELECT number, status, created FROM decisions
    WHERE number <= (SELECT indexed_upto FROM search_state);
DELETE FROM decision_tags WHERE number > (SELECT indexed_upto FROM search_state);
"""

MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "decisions, tags, search index", _V1),
    Migration(2, "list indexes off the write path", _V2),
)
SCHEMA_VERSION = MIGRATIONS[-1].version

COLUMNS = (
    "number, id, title, status, context, decision, rationale, extra, created, updated,"
    " legacy_id, import_key"
)
INSERT_SQL = f"INSERT INTO decisions ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
# Most records have neither a legacy id nor an import key: two fewer parameters to bind.
PLAIN_COLUMNS = "number, id, title, status, context, decision, rationale, extra, created, updated"
INSERT_PLAIN_SQL = (
    f"INSERT INTO decisions ({PLAIN_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
INSERT_TAG_SQL = "INSERT OR IGNORE INTO decision_tags (tag, number) VALUES (?, ?)"
INSERT_KEY_SQL = "INSERT OR REPLACE INTO decision_keys (number, status, created) VALUES (?, ?, ?)"
SELECT_SQL = f"SELECT {COLUMNS} FROM decisions"

# The list-valued fields share one column, ``extra``, in a compact text form built with
# ``str.join`` only: ASCII information separators (which validation keeps out of those
# fields) delimit the parts. Measured against JSON for the same fields: 1.6 µs a record
# instead of 3.8-5.3 µs — a fifth of the ingest cost of a whole record.
#   extra   = options RS consequences RS deciders RS agents RS tags RS links
#   options = name FS pros FS cons, joined by GS;  pros/cons/other lists joined by US
#   links   = supersedes FS superseded_by FS workflow_id FS run_id FS related ("" if none)
FS, GS, RS, US = "\x1c", "\x1d", "\x1e", "\x1f"
_EMPTY: tuple[str, ...] = ()


def extra_of(d: Decision) -> str:
    """The ``extra`` column of ``d``.

    Built with one ``str.join`` over the pieces, so each character is copied once (nested
    joins copied most of them three times: ~15% fewer instructions per record).
    """
    join = US.join
    links = d.links
    link_text = (
        ""
        if links is _NO_LINKS or not links
        else f"{join(links.supersedes)}{FS}{links.superseded_by}{FS}{links.workflow_id}{FS}"
        f"{links.run_id}{FS}{join(links.related)}"
    )
    options = d.options
    if not options:
        return (
            f"{RS}{join(d.consequences)}{RS}{join(d.deciders)}{RS}{join(d.agents)}"
            f"{RS}{join(d.tags)}{RS}{link_text}"
        )
    parts: list[str] = []
    for o in options:
        parts += (GS, o.name, FS, join(o.pros), FS, join(o.cons))
    parts[0] = ""
    parts += (RS, join(d.consequences), RS, join(d.deciders), RS, join(d.agents), RS,
              join(d.tags), RS, link_text)  # fmt: skip
    return "".join(parts)


def _split(text: str) -> tuple[str, ...]:
    return tuple(text.split(US)) if text else _EMPTY


def parse_extra(text: str) -> tuple[Any, ...]:
    """``(options, consequences, deciders, agents, tags, links)`` from ``extra``.

    The inverse of :func:`extra_of`; the values were validated when written.
    """
    options, consequences, deciders, agents, tags, links = text.split(RS)
    return (
        tuple(
            trusted(Option, name, _split(pros), _split(cons))
            for name, pros, cons in (o.split(FS) for o in options.split(GS))
        )
        if options
        else _EMPTY,
        _split(consequences),
        _split(deciders),
        _split(agents),
        _split(tags),
        _links(links) if links else _NO_LINKS,
    )


def _links(text: str) -> Links:
    supersedes, superseded_by, workflow_id, run_id, related = text.split(FS)
    return trusted(Links, _split(supersedes), superseded_by, workflow_id, run_id, _split(related))


def row_of(
    d: Decision, number: int, id_: str, now: str, import_key: str | None = None
) -> tuple[Any, ...]:
    """The ``decisions`` row for ``d`` (``COLUMNS`` order)."""
    return (
        number,
        d.id or id_,
        d.title,
        d.status._value_,
        d.context,
        d.decision,
        d.rationale,
        extra_of(d),
        d.created or now,
        d.updated or now,
        d.legacy_id or None,
        import_key,
    )


def decision_from_row(row: Sequence[Any]) -> Decision:
    """The :class:`Decision` of a ``decisions`` row (``COLUMNS`` order)."""
    (number, id_, title, status, context, decision, rationale, extra, created, updated,
     legacy_id, _key) = row  # fmt: skip
    options, consequences, deciders, agents, tags, links = parse_extra(extra)
    return trusted(
        Decision, title, context, decision, rationale, _STATUS[status], options, consequences,
        deciders, agents, tags, links, legacy_id or "", id_, number, created, updated,
    )  # fmt: skip


_STATUS = {s.value: s for s in Status}


class Derived(NamedTuple):
    """What the indexer writes for a batch of ``decisions`` rows."""

    search: list[tuple[int, str, str]]  # (rowid, body, parts) for decisions_fts
    keys: list[tuple[int, str, str]]  # (number, status, created) for decision_keys
    tags: list[tuple[str, int]]  # (tag, number) for decision_tags


def derived_rows(rows: Iterable[Sequence[Any]]) -> Derived:
    """The search, key and tag rows for ``decisions`` rows (the indexer's work)."""
    out = Derived([], [], [])
    for row in rows:
        (number, _id, title, status, context, decision, rationale, extra, created, _u,
         legacy_id, _key) = row  # fmt: skip
        # every text of the record; the separators in ``extra`` split words like spaces
        texts = [title, context, decision, rationale, extra]
        if legacy_id:
            texts.append(legacy_id)
        body, parts = document(*texts)
        out.search.append((number, body, parts))
        out.keys.append((number, status, created))
        out.tags.extend((tag, number) for tag in tags_of_extra(extra))
    return out


def tags_of_extra(extra: str) -> tuple[str, ...]:
    """The tags stored in an ``extra`` column."""
    return _split(extra.split(RS)[4])


def schema_version(conn: sqlite3.Connection) -> int:
    """The highest applied migration, 0 for a new database (no write lock taken)."""
    row = conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'"
    ).fetchone()
    if row is None:
        return 0
    (version,) = conn.execute("SELECT coalesce(max(version), 0) FROM schema_migrations").fetchone()
    return int(version)
