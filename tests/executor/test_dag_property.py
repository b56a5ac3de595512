"""Property: on any DAG, with any failures, every task runs at most once, only after its
dependencies succeeded, and exactly the descendants of failed tasks are skipped."""

from __future__ import annotations

import asyncio
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from perfect21.executor import (
    ExecutorSettings,
    LocalExecutor,
    PythonRunner,
    RunnerResult,
    TaskContext,
    TaskStatus,
)

from .conftest import make_plan


@st.composite
def dags(draw: st.DrawFn) -> tuple[int, dict[str, list[str]], set[str], dict[str, float]]:
    n = draw(st.integers(1, 14))
    ids = [f"t{i}" for i in range(n)]
    deps = {tid: draw(st.lists(st.sampled_from(ids[:i]), max_size=3, unique=True)) if i else []
            for i, tid in enumerate(ids)}
    failing = set(draw(st.lists(st.sampled_from(ids), max_size=3, unique=True)))
    estimates = {tid: draw(st.sampled_from([0.0, 0.5, 1.0, 4.0])) for tid in ids}
    workers = draw(st.integers(1, 4))
    return workers, deps, failing, estimates


@settings(max_examples=40, deadline=None)
@given(dags())
def test_random_dags_respect_dependencies_and_failures(
        case: tuple[int, dict[str, list[str]], set[str], dict[str, float]]) -> None:
    workers, deps, failing, estimates = case
    ids = list(deps)
    order: list[str] = []
    running: set[str] = set()

    async def agent(ctx: TaskContext) -> RunnerResult:
        for dep in deps[ctx.task_id]:
            assert dep in order and dep not in running, "started before a dependency ended"
        assert ctx.task_id not in order, "ran twice"
        running.add(ctx.task_id)
        await asyncio.sleep(0.001 * (len(order) % 3))
        running.discard(ctx.task_id)
        order.append(ctx.task_id)
        return RunnerResult(ok=ctx.task_id not in failing, retryable=False, error="no")

    plan = make_plan([ids], deps=deps, estimates=estimates)
    executor = LocalExecutor(PythonRunner(agent), workdir=Path.cwd(),
                             settings=ExecutorSettings(workers=workers, retries=0,
                                                       track_files=False))
    result = asyncio.run(executor.run(plan))

    doomed: set[str] = set()
    for tid in ids:  # ids are in topological order
        if any(d in failing or d in doomed for d in deps[tid]):
            doomed.add(tid)
    for record in result.tasks:
        if record.task_id in doomed:
            assert record.status is TaskStatus.SKIPPED
            assert record.task_id not in order
        elif record.task_id in failing:
            assert record.status is TaskStatus.FAILED
        else:
            assert record.status is TaskStatus.SUCCEEDED
    assert sorted(order) == sorted(set(ids) - doomed)
    assert result.ok == (not failing)
