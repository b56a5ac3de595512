"""The executor's task-result cache on the layered cache, end to end with the executor."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from perfect21._config import Config
from perfect21.cache.layered import open_cache
from perfect21.cache.task_cache import NAMESPACE, VERSION, LayeredTaskCache, open_task_cache
from perfect21.executor import ExecutorSettings, LocalExecutor, PythonRunner, TaskContext
from perfect21.executor.cache_hook import CachedTaskResult, TaskCache, cache_level
from perfect21.planner.models import Plan, Task

if TYPE_CHECKING:
    from tests.cache.conftest import RedisServer


def _plan(ids: list[str], *, sequential: bool = False) -> Plan:
    """One parallel stage with ``ids``, or one stage per id when ``sequential``."""
    groups = [[t] for t in ids] if sequential else [ids]
    return Plan.from_tasks(
        [[Task(id=t, agent=f"agent-{t}", stage=f"s{n}", brief=f"do {t}") for t in group]
         for n, group in enumerate(groups, 1)],
        id="p",
        request="r",
    )


async def test_put_get_and_the_level_of_the_hit(tmp_path: Path) -> None:
    config = Config(home=tmp_path / "home")
    cache = open_task_cache(config)
    assert isinstance(cache, TaskCache)
    value = CachedTaskResult(stdout="out", result_text="done", files={"a.txt": b"A", "gone": None})
    assert await cache.get("key1") is None and cache_level(cache) == ""
    await cache.put("key1", value)
    got = await cache.get("key1")
    assert got is not None and got.files == value.files and cache_level(cache) == "l1"
    await cache.aclose()
    again = open_task_cache(config)  # a new process: L1 empty, L3 on disk
    got = await again.get("key1")
    assert got is not None and got.result_text == "done" and cache_level(again) == "l3"
    await again.aclose()


async def test_parallel_tasks_see_their_own_level(tmp_path: Path) -> None:
    cache = open_task_cache(Config(home=tmp_path / "home"))
    await cache.put("in-l1", CachedTaskResult(stdout="1"))

    async def probe(key: str) -> str:
        await cache.get(key)
        await asyncio.sleep(0.01)  # others run in between
        return cache.source_of_last_hit

    assert await asyncio.gather(probe("in-l1"), probe("absent")) == ["l1", ""]
    await cache.aclose()


async def test_unreadable_entry_is_dropped(tmp_path: Path) -> None:
    cache = open_task_cache(Config(home=tmp_path / "home"))
    assert isinstance(cache, LayeredTaskCache)
    await cache.cache.set("bad", b"{not a task result")
    assert await cache.get("bad") is None
    assert await cache.cache.get("bad") is None
    await cache.aclose()


async def test_executor_rerun_is_served_from_disk(tmp_path: Path) -> None:
    """A re-run in a fresh process (new L1) replays every file without calling the agent."""
    calls: list[str] = []

    def agent(ctx: TaskContext) -> str:
        calls.append(ctx.task_id)
        (ctx.workdir / f"{ctx.task_id}.txt").write_text(f"by {ctx.agent}\n")
        return "ok"

    config = Config(home=tmp_path / "home")
    for name in ("w1", "w2"):
        work = tmp_path / name
        work.mkdir()
        cache = open_task_cache(config)
        executor = LocalExecutor(
            PythonRunner(agent, label="agent"),
            cache=cache,
            workdir=work,
            settings=ExecutorSettings(workers=2, retries=0),
        )
        result = await executor.run(_plan(["a", "b"]))
        await cache.aclose()
        assert result.ok
    assert sorted(calls) == ["a", "b"]
    record = result.task("a")
    assert record.cache["hit"] is True and record.cache["level"] == "l3"
    assert (tmp_path / "w2" / "a.txt").read_text() == "by agent-a\n"
    assert (tmp_path / "w2" / "b.txt").read_text() == "by agent-b\n"
    with sqlite3.connect(tmp_path / "home" / "cache" / "l3.sqlite") as conn:
        counters = dict(conn.execute("SELECT name, value FROM counters").fetchall())
    assert counters["l3_hits"] == 2


@pytest.mark.integration
async def test_run_survives_redis_killed_mid_run(
    own_redis: RedisServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Redis dies during a run: the run succeeds, one warning, every result kept on disk;
    with Redis back, a second home gets the results stored after the restart via L2."""
    caplog.set_level(logging.WARNING, "perfect21.cache")

    def agent(ctx: TaskContext) -> str:
        if ctx.task_id == "b":
            own_redis.stop()
        (ctx.workdir / f"{ctx.task_id}.txt").write_text(ctx.task_id)
        return "ok"

    config = Config(home=tmp_path / "home", redis_url=own_redis.url)
    work = tmp_path / "w1"
    work.mkdir()
    cache = open_task_cache(config)
    executor = LocalExecutor(
        PythonRunner(agent, label="agent"),
        cache=cache,
        workdir=work,
        settings=ExecutorSettings(workers=1, retries=0),
    )
    staged = _plan(["a", "b", "c"], sequential=True)
    result = await executor.run(staged)
    await cache.aclose()
    assert result.ok
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "unreachable" in warnings[0].getMessage()
    with sqlite3.connect(tmp_path / "home" / "cache" / "l3.sqlite") as conn:
        assert conn.execute("SELECT COUNT(*) FROM entries").fetchone()[0] == 3
    # Redis back (empty): warm pushes this home's results to it; another home reads them.
    own_redis.start()
    await asyncio.sleep(0.1)
    async with open_cache(config, namespace=NAMESPACE, version=VERSION) as layered:
        assert await layered.warm(to_l2=True) == 3
    second = open_task_cache(Config(home=tmp_path / "home2", redis_url=own_redis.url))
    with sqlite3.connect(tmp_path / "home" / "cache" / "l3.sqlite") as conn:
        stored = [k for (k,) in conn.execute("SELECT key FROM entries")]
    for full in stored:
        assert await second.get(full.split("/", 2)[2]) is not None
        assert second.source_of_last_hit == "l2"
    await second.aclose()


async def test_in_memory_task_cache_is_bounded_in_entries_and_bytes() -> None:
    from perfect21.executor.cache_hook import InMemoryTaskCache

    def result(n: int, size: int) -> CachedTaskResult:
        return CachedTaskResult(stdout="x" * size, result_text=f"r{n:03d}")

    one = len(result(0, 1000).to_bytes())
    cache = InMemoryTaskCache(max_entries=100, max_bytes=10 * one)
    for n in range(30):
        await cache.put(f"k{n}", result(n, 1000))
    assert len(cache) == 10 and cache.bytes_used <= cache.max_bytes
    assert await cache.get("k0") is None
    assert (await cache.get("k29")).result_text == "r029"  # type: ignore[union-attr]
    await cache.put("k29", result(29, 10))  # a smaller replacement is counted as such
    assert cache.bytes_used == 9 * one + len(result(29, 10).to_bytes())
    await cache.put("huge", result(99, 20 * one))  # larger than the bound: not kept
    assert await cache.get("huge") is None and cache.bytes_used <= cache.max_bytes
    small = InMemoryTaskCache(max_entries=3)
    for n in range(5):
        await small.put(f"k{n}", result(n, 10))
    assert len(small) == 3
    assert small.clear() == 3 and len(small) == 0 and small.bytes_used == 0
