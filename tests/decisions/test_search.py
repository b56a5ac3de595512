"""Search in English and Chinese: segmentation, query shapes, and index lag."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from perfect21._errors import ValidationError
from perfect21.decisions import Decision, DecisionStore, SyncDecisionStore
from perfect21.decisions._search import compile_query, document
from perfect21.decisions.writer import MAX_LAG_S

from .conftest import sample


def test_cjk_runs_become_bigrams_and_camel_case_fragments_are_indexed() -> None:
    body, parts = document("使用JWT认证和会话管理", "PostgreSQL")
    assert body.split() == ["使用", "JWT", "认证", "证和", "和会", "会话", "话管", "管理",
                            "PostgreSQL"]  # fmt: skip
    assert "理" in parts.split() and "SQL" in parts.split()


def test_query_shapes() -> None:
    assert compile_query("jwt 会话") == '"jwt"* AND "会话"'
    assert compile_query("会话管理") == '"会话 话管 管理"'
    assert compile_query("会") == '"会"*'
    assert compile_query("JWT认证") == '"JWT 认证"'
    assert compile_query('a"b') == '"a b"*'  # quotes cannot break out of the phrase
    assert compile_query(" ,; ") is None


@pytest.fixture
def corpus(store: SyncDecisionStore) -> SyncDecisionStore:
    store.record(sample("Use JWT for sessions", context="无状态的会话管理，便于水平扩展"))
    store.record(sample("Primary database", context="主数据库选型", decision="PostgreSQL",
                        tags=("db",)))  # fmt: skip
    store.record(sample("Cache strategy", context="缓存策略: Redis vs in-process LRU",
                        decision="Redis", options=(), consequences=(), tags=()))  # fmt: skip
    store.record(Decision(title="会话存储", context="Session storage in Redis"))
    store.record(Decision(title="Use MySQL", context="MySQL for the reporting service"))
    store.wait_indexed()
    return store


def titles(found: list[Decision]) -> set[str]:
    return {d.title for d in found}


def test_mixed_english_chinese_query_needs_both(corpus: SyncDecisionStore) -> None:
    """The issue's example: "jwt 会话" finds the record with JWT and 会话, only that one."""
    assert titles(corpus.search("jwt 会话")) == {"Use JWT for sessions"}


def test_chinese_substrings_of_any_length(corpus: SyncDecisionStore) -> None:
    assert titles(corpus.search("会话")) == {"Use JWT for sessions", "会话存储"}
    assert titles(corpus.search("数据库")) == {"Primary database"}
    assert titles(corpus.search("缓存策略")) == {"Cache strategy"}
    assert titles(corpus.search("储")) == {"会话存储"}  # last character of a run
    assert corpus.search("会话存储 数据库") == []


def test_english_prefix_case_and_camel_case(corpus: SyncDecisionStore) -> None:
    assert "Primary database" in titles(corpus.search("postgres"))
    assert {"Use MySQL", "Primary database"} <= titles(corpus.search("SQL"))
    assert titles(corpus.search("REDIS")) == {"Cache strategy", "会话存储"}
    assert corpus.search("nosuchword") == []


def test_search_newest_first_with_limit_and_status(corpus: SyncDecisionStore) -> None:
    found = corpus.search("redis", limit=1)
    assert [d.title for d in found] == ["会话存储"]
    assert corpus.search("redis", status="accepted") == []


def test_empty_query_is_a_validation_error(corpus: SyncDecisionStore) -> None:
    with pytest.raises(ValidationError, match="nothing to search for"):
        corpus.search("  ")


async def test_a_recorded_decision_is_searchable_within_a_second(db_path: Path) -> None:
    """No flush: the writer indexes on its own once the queue is quiet (lag <= ~1 s)."""
    async with DecisionStore.open(db_path) as store:
        await store.record(Decision(title="Adopt 事件溯源 for orders"))
        start = time.monotonic()
        while not await store.search("事件溯源"):
            assert time.monotonic() - start < 1.0, "not searchable after 1 s"
            await asyncio_sleep(0.01)


async def test_index_keeps_up_while_writes_never_pause(db_path: Path) -> None:
    """A steady stream of records with no pause: forced index steps still make progress
    (the first forced step comes once the oldest unindexed record is MAX_LAG_S old)."""
    async with DecisionStore.open(db_path) as store:
        first = await store.record(Decision(title="needle 第一条"))
        deadline = time.monotonic() + MAX_LAG_S + 2.0
        found = False
        while time.monotonic() < deadline and not found:
            await store.record_many([Decision(title=f"filler {i}") for i in range(200)])
            found = bool(await store.search("needle"))
        assert found, "first record not searchable while writes continued"
        assert (await store.search("第一条"))[0].id == first.id


def test_index_catches_up_after_a_crash_before_indexing(db_path: Path) -> None:
    """Records committed but never indexed (the writer died first) are indexed on reopen."""
    import sqlite3

    with SyncDecisionStore.open(db_path) as store:
        store.record(sample("before the crash"))
    conn = sqlite3.connect(db_path)
    with conn:  # simulate: index state rolled back to before the record
        conn.execute("INSERT INTO decisions_fts (decisions_fts) VALUES ('delete-all')")
        conn.execute("UPDATE search_state SET indexed_upto = 0")
    conn.close()
    with SyncDecisionStore.open(db_path) as store:
        assert store.stats()["search_backlog"] == 1
        store.wait_indexed()
        assert titles(store.search("crash")) == {"before the crash"}


async def asyncio_sleep(seconds: float) -> None:
    import asyncio

    await asyncio.sleep(seconds)
