"""The executor's task-result cache on the layered cache, end to end with the executor."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from perfect21._config import Config
from perfect21.cache.task_cache import LayeredTaskCache, open_task_cache
from perfect21.executor import ExecutorSettings, LocalExecutor, PythonRunner, TaskContext
from perfect21.executor.cache_hook import CachedTaskResult, TaskCache, cache_level
from perfect21.planner.models import Analysis, Complexity, Plan, Stage, StageMode, Task


def _plan(ids: list[str]) -> Plan:
    tasks = tuple(Task(id=t, agent=f"agent-{t}", stage="s1", brief=f"do {t}") for t in ids)
    analysis = Analysis(
        complexity=Complexity.SIMPLE,
        domains=(),
        stack=(),
        terms=(),
        estimated_loc=0,
        modules=1,
        language="en",
        reasons=(),
    )
    stage = Stage(
        name="s1",
        goal="g",
        mode=StageMode.PARALLEL,
        agents=tuple(t.agent for t in tasks),
        tasks=tasks,
    )
    return Plan(
        id="p",
        request="r",
        catalog_version="t",
        analysis=analysis,
        agents=(),
        stages=(stage,),
        estimated_hours=0.0,
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
