"""The store's behaviour: numbering, reads, filters, group commit, supersede, migrations."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from perfect21._errors import InputError, NotFoundError, StoreError, ValidationError
from perfect21.decisions import Decision, DecisionStore, Status, SyncDecisionStore
from perfect21.decisions._schema import SCHEMA_VERSION

from .conftest import sample


def test_record_returns_the_durable_copy_with_id_and_number(store: SyncDecisionStore) -> None:
    d = sample()
    stored = store.record(d)
    assert stored.number == 1 and stored.ref == "ADR-0001" and len(stored.id) == 26
    assert stored.created.endswith("Z") and stored.created == stored.updated
    assert d.id == "" and d.number == 0  # the caller's value is untouched
    again = store.get(stored.id)
    assert again == stored
    assert store.get(1) == store.get("ADR-0001") == store.get("adr-1") == store.get("0001")


def test_numbers_follow_commit_order_and_ids_sort_with_them(store: SyncDecisionStore) -> None:
    ids = store.record_many([Decision(title=f"d{i}") for i in range(50)])
    ids += [store.record(Decision(title="last")).id]
    listed = store.list(limit=100)
    assert [d.number for d in listed] == list(range(51, 0, -1))
    assert [d.id for d in reversed(listed)] == ids == sorted(ids)


def test_unknown_reference_is_not_found(store: SyncDecisionStore) -> None:
    with pytest.raises(NotFoundError, match="decision not found: ADR-0099"):
        store.get("ADR-0099")
    with pytest.raises(NotFoundError):
        store.get("01ARZ3NDEKTSV4RRFFQ69G5FAV")


def test_list_filters_status_tag_since_limit(store: SyncDecisionStore) -> None:
    store.record(sample("old", status="accepted", created="2025-08-01T00:00:00Z", tags=("db",)))
    store.record(sample("new", status="accepted", created="2025-09-02T00:00:00Z", tags=("ops",)))
    store.record(sample("idea", status="proposed", tags=("db", "ops")))
    assert [d.title for d in store.list(status="accepted")] == ["new", "old"]
    assert [d.title for d in store.list(tag="db")] == ["idea", "old"]
    assert [d.title for d in store.list(since="2025-09-01")] == ["idea", "new"]
    assert [d.title for d in store.list(status=Status.ACCEPTED, tag="ops")] == ["new"]
    assert len(store.list(limit=1)) == 1
    with pytest.raises(ValidationError, match="since: 'Sept' is not a date"):
        store.list(since="Sept")
    with pytest.raises(ValidationError, match="limit: must be between 1 and"):
        store.list(limit=0)


def test_list_filters_use_indexes(store: SyncDecisionStore) -> None:
    """Every list filter is answered from an index (of the derived tables), not a scan."""
    conn = store._read().conn
    statements: list[str] = []
    conn.set_trace_callback(statements.append)
    store.list(status="accepted", tag="db", since="2025-01-01")
    store.list(status="accepted")
    store.list(since="2025-01-01")
    conn.set_trace_callback(None)
    derived = [s for s in statements if "decision_keys" in s]
    assert len(derived) == 3
    for sql in derived:
        plan = " ".join(str(row[-1]) for row in conn.execute("EXPLAIN QUERY PLAN " + sql))
        assert "SCAN" not in plan.replace("SCAN CONSTANT", ""), plan


def test_list_sees_records_the_indexer_has_not_reached(db_path: Path) -> None:
    """List filters never lag: new records are found before their derived rows exist."""
    with SyncDecisionStore.open(db_path) as store:
        store.record(sample("indexed", status="accepted", tags=("db",)))
        store.wait_indexed()
        conn = sqlite3.connect(db_path)
        with conn:  # the indexer has not seen the next record yet
            conn.execute("UPDATE search_state SET indexed_upto = 1")
        conn.close()
        store.record(sample("fresh", status="accepted", tags=("db",)))
        conn = sqlite3.connect(db_path)
        with conn:
            conn.execute("UPDATE search_state SET indexed_upto = 1")
            conn.execute("DELETE FROM decision_keys WHERE number = 2")
            conn.execute("DELETE FROM decision_tags WHERE number = 2")
        conn.close()
        assert [d.title for d in store.list(tag="db")] == ["fresh", "indexed"]
        assert [d.title for d in store.list(status="accepted", tag="db", limit=1)] == ["fresh"]
        assert [d.title for d in store.list(tag="db", since="2000-01-01")] == ["fresh", "indexed"]
        assert store.list(tag="ops") == []


def test_supersede_links_both_and_is_idempotent(store: SyncDecisionStore) -> None:
    old = store.record(sample("Use MySQL", status="accepted"))
    new = store.record(sample("Use PostgreSQL", status="accepted"))
    old2, new2 = store.supersede("ADR-0001", by=new.id)
    assert old2.status is Status.SUPERSEDED and old2.links.superseded_by == new.id
    assert new2.links.supersedes == (old.id,)
    assert store.get(1) == old2 and store.get(2) == new2
    assert store.supersede(1, 2) == (old2, new2)  # again: nothing changes
    with pytest.raises(ValidationError, match="cannot supersede itself"):
        store.supersede(2, 2)
    with pytest.raises(InputError, match="cycle"):
        store.supersede(2, 1)
    with pytest.raises(NotFoundError):
        store.supersede(1, 99)


def test_stats(store: SyncDecisionStore) -> None:
    store.record(sample("a", status="accepted"))
    store.record(sample("b", tags=("db", "ops")))
    stats = store.stats()
    assert stats["total"] == 2 and stats["by_status"]["accepted"] == 1
    assert stats["top_tags"] == {"db": 2, "ops": 1}


def test_record_many_is_one_transaction(store: SyncDecisionStore) -> None:
    """A batch with one bad record (a duplicate id) stores none of the batch."""
    first = store.record(Decision(title="exists"))
    batch = [Decision(title="fine"), Decision(title="dup", id=first.id)]
    with pytest.raises(ValidationError, match="already exists"):
        store.record_many(batch)
    assert store.stats()["total"] == 1


def test_record_rejects_what_is_not_a_decision(store: SyncDecisionStore) -> None:
    with pytest.raises(ValidationError, match=r"decisions\[0\]: expected a Decision"):
        store.record({"title": "dict"})  # type: ignore[arg-type]


def test_migrations_are_recorded_and_not_reapplied(db_path: Path) -> None:
    SyncDecisionStore.open(db_path).close()
    SyncDecisionStore.open(db_path).close()
    conn = sqlite3.connect(db_path)
    rows = conn.execute("SELECT version, name FROM schema_migrations").fetchall()
    assert [r[0] for r in rows] == list(range(1, SCHEMA_VERSION + 1))
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()


def test_closed_store_refuses_work(db_path: Path) -> None:
    store = SyncDecisionStore.open(db_path)
    store.close()
    with pytest.raises(StoreError, match="closed"):
        store.record(Decision(title="late"))
    with pytest.raises(StoreError, match="closed"):
        store.list()


# ------------------------------------------------------------------------------ asyncio API
async def test_concurrent_records_are_grouped_into_few_commits(db_path: Path) -> None:
    """100 producers each awaiting every record: all stored, numbers 1..N, few fsyncs."""
    async with DecisionStore.open(db_path) as store:

        async def producer(p: int) -> list[Decision]:
            return [await store.record(Decision(title=f"p{p}-{i}")) for i in range(20)]

        results = await asyncio.gather(*(producer(p) for p in range(100)))
        writer = store._writer
        assert writer is not None
        commits = writer.commits
    numbers = sorted(d.number for batch in results for d in batch)
    assert numbers == list(range(1, 2001))
    assert commits < 2000 / 5, f"{commits} commits for 2000 concurrent records"


async def test_one_bad_record_does_not_fail_its_batch_neighbours(db_path: Path) -> None:
    async with DecisionStore.open(db_path) as store:
        existing = await store.record(Decision(title="exists"))
        results = await asyncio.gather(
            *(store.record(Decision(title=f"ok{i}")) for i in range(20)),
            store.record(Decision(title="dup", id=existing.id)),
            return_exceptions=True,
        )
        assert sum(isinstance(r, Decision) for r in results) == 20
        assert isinstance(results[-1], ValidationError)
        assert (await store.stats())["total"] == 21


async def test_async_reads_and_supersede(db_path: Path) -> None:
    async with DecisionStore.open(db_path) as store:
        ids = await store.record_many([sample("one"), sample("two")])
        assert (await store.get(ids[0])).title == "one"
        assert [d.title for d in await store.list(tag="db")] == ["two", "one"]
        old, _ = await store.supersede(ids[0], ids[1])
        assert old.status is Status.SUPERSEDED
        await store.wait_indexed()
        assert len(await store.search("postgres")) == 2


async def test_async_store_must_be_started(db_path: Path) -> None:
    store = DecisionStore.open(db_path)
    with pytest.raises(StoreError, match="not open"):
        await store.record(Decision(title="x"))


async def test_cancelled_caller_does_not_break_the_batch(db_path: Path) -> None:
    async with DecisionStore.open(db_path) as store:
        task = asyncio.ensure_future(store.record(Decision(title="cancelled")))
        others = [asyncio.ensure_future(store.record(Decision(title=f"x{i}"))) for i in range(5)]
        task.cancel()
        await asyncio.gather(*others)
        with pytest.raises(asyncio.CancelledError):
            await task
        assert (await store.stats())["total"] in (5, 6)  # the write may have happened


def test_a_row_edited_by_hand_is_a_clear_error(store: SyncDecisionStore, db_path: Path) -> None:
    store.record(Decision(title="x"))
    conn = sqlite3.connect(db_path)
    with conn:
        conn.execute("UPDATE decisions SET extra = 'garbage'")
    conn.close()
    with pytest.raises(StoreError, match="ADR-0001 is unreadable"):
        store.get(1)
    with pytest.raises(StoreError, match="ADR-0001 is unreadable"):
        store.list()


def test_writer_survives_a_job_that_breaks_it(db_path: Path) -> None:
    """A job that fails outside SQLite (here: not a Decision) fails alone; no caller hangs."""
    from perfect21.decisions.writer import RECORD, Job, Writer

    writer = Writer(db_path)
    writer.start()
    try:
        good = Job(RECORD, [Decision(title="fine")])
        bad = Job(RECORD, [object()])  # type: ignore[list-item]
        writer.submit(bad)
        writer.submit(good)
        with pytest.raises(StoreError):
            bad.wait()
        assert good.wait().first == 1
        after = Job(RECORD, [Decision(title="after")])
        writer.submit(after)
        assert after.wait().first == 2
    finally:
        writer.close()


def test_sync_store_is_shared_by_threads(store: SyncDecisionStore) -> None:
    """Threads write through one store (grouped commits) and read on their own connections."""
    import threading

    errors: list[BaseException] = []

    def work(t: int) -> None:
        try:
            for i in range(50):
                d = store.record(Decision(title=f"t{t}-{i}"))
                assert store.get(d.id).title == f"t{t}-{i}"
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert store.stats()["total"] == 400


async def test_async_store_can_be_started_again(db_path: Path) -> None:
    store = DecisionStore.open(db_path)
    async with store:
        await store.record(Decision(title="one"))
    async with store:
        await store.record(Decision(title="two"))
        assert [d.title for d in await store.list()] == ["two", "one"]


def test_migration_from_version_1(db_path: Path) -> None:
    """A version-1 database (list indexes on the write path) is migrated in place."""
    from perfect21._sqlite import connect, migrate
    from perfect21.decisions._schema import INSERT_SQL, MIGRATIONS, row_of

    db_path.parent.mkdir(parents=True)
    conn = connect(db_path)
    migrate(conn, MIGRATIONS[:1])
    rows = [row_of(sample(f"v1 {n}", status="accepted", tags=("db",)), n, f"01J{n:023d}",
                   "2025-09-01T00:00:00.000000Z") for n in (1, 2, 3)]  # fmt: skip
    with conn:
        conn.executemany(INSERT_SQL, rows)
        conn.executemany("INSERT INTO decision_tags VALUES ('db', ?)", [(1,), (2,), (3,)])
        conn.execute("UPDATE search_state SET indexed_upto = 2")  # 3 was never indexed
    conn.close()
    with SyncDecisionStore.open(db_path) as store:
        found = store.list(tag="db", status="accepted")
        assert [d.title for d in found] == ["v1 3", "v1 2", "v1 1"]
        store.wait_indexed()
        assert [d.number for d in store.list(tag="db")] == [3, 2, 1]
        assert store.stats()["top_tags"] == {"db": 3}
    conn = sqlite3.connect(db_path)
    versions = [v for (v,) in conn.execute("SELECT version FROM schema_migrations")]
    assert versions == [1, 2]
    conn.close()


def test_import_and_plain_jobs_share_a_transaction(db_path: Path) -> None:
    """A batch that mixes import jobs (keys) and plain records writes both correctly."""
    from perfect21.decisions.writer import RECORD, Job, Writer

    writer = Writer(db_path)
    writer._open()  # drive the writer's batch step directly, on this thread
    try:
        imported = Job(RECORD, [Decision(title="old", legacy_id="x")], keys=["x#1"])
        plain = [Job(RECORD, [Decision(title=f"new {i}")]) for i in range(3)]
        writer._write_records([imported, *plain])
        assert imported.wait().first == 1 and [j.wait().first for j in plain] == [2, 3, 4]
        again = Job(RECORD, [Decision(title="old", legacy_id="x")], keys=["x#1"])
        more = Job(RECORD, [Decision(title="newer")])
        writer._write_records([again, more])
        assert again.wait().skipped == frozenset({0}) and more.wait().first == 5
    finally:
        assert writer._conn is not None
        writer._conn.close()
    with SyncDecisionStore.open(db_path) as store:
        assert [d.legacy_id for d in store.list()] == ["", "", "", "", "x"]
