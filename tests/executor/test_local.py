"""The executor's scheduling semantics, with in-process (python runner) tasks."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from perfect21._errors import ValidationError
from perfect21.executor import (
    EventKind,
    ExecutorSettings,
    InMemoryTaskCache,
    LocalExecutor,
    PythonRunner,
    RunnerResult,
    RunStatus,
    RunStore,
    TaskContext,
    TaskStatus,
)
from perfect21.executor.gates import parse_gate
from perfect21.planner.models import StageMode

from .conftest import make_plan


class Recorder:
    """A python-runner callable that logs start/end times and can sleep, fail or charge."""

    def __init__(self, durations: dict[str, float] | None = None, default: float = 0.02,
                 fail: dict[str, int] | None = None, cost: float | None = None,
                 retryable: bool = True) -> None:
        self.durations = durations or {}
        self.default = default
        self.fail = dict(fail or {})
        self.cost = cost
        self.retryable = retryable
        self.spans: dict[str, tuple[float, float]] = {}
        self.calls: list[str] = []
        self.running = 0
        self.max_running = 0

    async def __call__(self, ctx: TaskContext) -> RunnerResult:
        self.calls.append(ctx.task_id)
        self.running += 1
        self.max_running = max(self.max_running, self.running)
        start = time.monotonic()
        try:
            await asyncio.sleep(self.durations.get(ctx.task_id, self.default))
        finally:
            self.running -= 1
        self.spans[ctx.task_id] = (start, time.monotonic())
        if self.fail.get(ctx.task_id, 0) > 0:
            self.fail[ctx.task_id] -= 1
            return RunnerResult(ok=False, exit_code=1, retryable=self.retryable,
                                error="boom", argv=("py",))
        return RunnerResult(ok=True, exit_code=0, argv=("py",), cost_usd=self.cost,
                            result_text=f"{ctx.task_id} done")


def _executor(func: Any, *, store: RunStore | None = None, workdir: Path, **settings: Any
              ) -> LocalExecutor:
    defaults: dict[str, Any] = {"workers": 4, "retries": 0, "backoff_s": 0.0,
                                "track_files": False}
    defaults.update(settings)
    runner = PythonRunner(func)
    return LocalExecutor(runner, settings=ExecutorSettings(**defaults), store=store,
                         workdir=workdir)


async def test_dependencies_and_sync_points_order_tasks(workdir: Path) -> None:
    """A task starts after its dependencies; a stage starts after the previous one ended."""
    rec = Recorder(durations={"a": 0.08})
    plan = make_plan([["a", "b", "c"], ["d", "e"]], deps={"c": ["a"], "e": ["d"]})
    result = await _executor(rec, workdir=workdir).run(plan)
    assert result.status is RunStatus.SUCCEEDED
    assert rec.spans["c"][0] >= rec.spans["a"][1]
    stage1_end = max(rec.spans[t][1] for t in "abc")
    assert min(rec.spans[t][0] for t in "de") >= stage1_end
    assert rec.spans["e"][0] >= rec.spans["d"][1]


async def test_parallel_up_to_workers_and_global_limit(workdir: Path) -> None:
    """Inside a stage tasks run in parallel up to min(workers, max_concurrency)."""
    plan = make_plan([[f"t{i}" for i in range(12)]])
    rec = Recorder(default=0.05)
    await _executor(rec, workdir=workdir, workers=4).run(plan)
    assert rec.max_running == 4
    limited = Recorder(default=0.05)
    await _executor(limited, workdir=workdir, workers=4, max_concurrency=2).run(plan)
    assert limited.max_running == 2


async def test_sequential_stage_runs_one_after_another(workdir: Path) -> None:
    rec = Recorder(default=0.02)
    plan = make_plan([["a", "b", "c"]], modes=[StageMode.SEQUENTIAL])
    await _executor(rec, workdir=workdir).run(plan)
    assert rec.max_running == 1
    assert rec.calls == ["a", "b", "c"]


async def test_idle_workers_steal_queued_work_and_every_steal_is_an_event(
        workdir: Path) -> None:
    """Estimates say all tasks are equal; one is long, so its queued siblings get stolen."""
    ids = [f"t{i}" for i in range(8)]
    rec = Recorder(durations={"t0": 0.3}, default=0.02)
    executor = _executor(rec, workdir=workdir, workers=2)
    started: dict[str, int] = {}
    steals: list[Any] = []

    def watch(event: Any) -> None:
        if event.kind is EventKind.STEAL:
            assert event.task_id not in started, "a started task was stolen"
            steals.append(event)
        elif event.kind is EventKind.TASK_STARTED:
            started[event.task_id] = event.worker

    executor.events.subscribe(watch)
    result = await executor.run(make_plan([ids]))
    assert result.ok
    assert result.steals == len(steals) >= 1
    for event in steals:
        assert started[event.task_id] == event.worker  # the thief ran it
        assert event.data["victim"] != event.worker
        assert event.data["victim_occupancy"] >= 1.5 * event.data["cost"]
        assert "occ_thief" in event.data["rule"]
    # The short tasks queued behind the long one were all taken by the other worker.
    assert all(worker != started["t0"] for tid, worker in started.items() if tid != "t0")


async def test_retry_with_backoff_then_success(workdir: Path) -> None:
    rec = Recorder(fail={"a": 2})
    executor = _executor(rec, workdir=workdir, retries=2, backoff_s=0.01)
    retries = []
    executor.events.subscribe(lambda e: retries.append(e) if e.kind is EventKind.TASK_RETRY
                              else None)
    result = await executor.run(make_plan([["a"]]))
    assert result.ok
    record = result.task("a")
    assert [a.number for a in record.attempts] == [1, 2, 3]
    assert len(retries) == 2
    assert all(0.005 <= e.data["delay_s"] <= 0.03 for e in retries[:1])


async def test_non_retryable_failure_is_not_retried(workdir: Path) -> None:
    rec = Recorder(fail={"a": 5}, retryable=False)
    result = await _executor(rec, workdir=workdir, retries=3).run(make_plan([["a"]]))
    assert result.status is RunStatus.FAILED
    assert len(result.task("a").attempts) == 1


async def test_failure_skips_dependents_siblings_continue_later_stages_skip(
        workdir: Path) -> None:
    rec = Recorder(fail={"a": 9})
    plan = make_plan([["a", "b", "c"], ["d"]], deps={"c": ["a"]})
    result = await _executor(rec, workdir=workdir, retries=1).run(plan)
    assert result.status is RunStatus.FAILED
    statuses = {t.task_id: t.status for t in result.tasks}
    assert statuses == {"a": TaskStatus.FAILED, "b": TaskStatus.SUCCEEDED,
                        "c": TaskStatus.SKIPPED, "d": TaskStatus.SKIPPED}
    summary = result.summary()
    assert "failed" in summary and "a (agent-a): boom [2 attempt(s)]" in summary
    assert "dependency 'a' failed" in summary
    assert "d" not in rec.calls


async def test_max_cost_stops_scheduling_and_resume_finishes(workdir: Path,
                                                             isolated_home: Path) -> None:
    """Once spend reaches --max-cost nothing new starts; resume with a higher budget ends it."""
    plan = make_plan([["a", "b", "c", "d"]])
    with RunStore(isolated_home) as store:
        rec = Recorder(cost=1.0)
        result = await _executor(rec, store=store, workdir=workdir, workers=1,
                                 max_cost_usd=2.0).run(plan)
        assert result.status is RunStatus.STOPPED
        assert len(rec.calls) == 2
        assert result.cost_usd == pytest.approx(2.0)
        assert result.counts()["pending"] == 2
        same_budget = Recorder(cost=1.0)
        again = await _executor(same_budget, store=store, workdir=workdir, workers=1,
                                max_cost_usd=2.0).resume(result.run_id)
        assert again.status is RunStatus.STOPPED and same_budget.calls == []
        assert "higher --max-cost" in again.error
        rec2 = Recorder(cost=1.0)
        resumed = await _executor(rec2, store=store, workdir=workdir, workers=1,
                                  max_cost_usd=10.0).resume(result.run_id)
        assert resumed.status is RunStatus.SUCCEEDED
        assert sorted(rec2.calls) == sorted(set("abcd") - set(rec.calls))
        assert store.get_run(result.run_id).cost_usd == pytest.approx(4.0)


async def test_cancel_puts_running_tasks_back_and_resume_completes(
        workdir: Path, isolated_home: Path) -> None:
    plan = make_plan([["a", "b", "c"], ["d"]])
    with RunStore(isolated_home) as store:
        rec = Recorder(default=5.0)
        executor = _executor(rec, store=store, workdir=workdir, workers=2)
        job = asyncio.create_task(executor.run(plan))
        await asyncio.sleep(0.2)
        executor.cancel()
        result = await asyncio.wait_for(job, 5)
        assert result.status is RunStatus.INTERRUPTED
        stored = store.get_run(result.run_id)
        assert stored.status is RunStatus.INTERRUPTED
        statuses = sorted(t.status.value for t in stored.tasks)
        assert statuses == ["cancelled", "cancelled", "pending", "pending"]
        interrupted = [t for t in stored.tasks if t.status is TaskStatus.CANCELLED]
        assert all(len(t.attempts) == 1 and t.attempts[0].error == "interrupted"
                   for t in interrupted)  # the interrupted attempt is kept
        rec2 = Recorder(default=0.01)
        resumed = await _executor(rec2, store=store, workdir=workdir).resume(result.run_id)
        assert resumed.ok
        assert sorted(rec2.calls) == ["a", "b", "c", "d"]


async def test_admission_pauses_intake_without_touching_running_work(workdir: Path) -> None:
    class Gate:
        def __init__(self) -> None:
            self.open = asyncio.Event()
            self.waits = 0

        @property
        def accepting(self) -> bool:
            return self.open.is_set()

        async def wait_for_capacity(self) -> None:
            self.waits += 1
            await self.open.wait()

    gate = Gate()
    rec = Recorder()
    executor = LocalExecutor(PythonRunner(rec), workdir=workdir, admission=gate,
                             settings=ExecutorSettings(workers=2, track_files=False))
    waits: list[str] = []
    executor.events.subscribe(lambda e: waits.append(e.task_id)
                              if e.kind is EventKind.ADMISSION_WAIT else None)
    job = asyncio.create_task(executor.run(make_plan([["a", "b"]])))
    await asyncio.sleep(0.1)
    assert rec.calls == []
    assert sorted(waits) == ["a", "b"]
    gate.open.set()
    assert (await job).ok
    assert gate.waits == 2


async def test_cache_hit_replays_files_without_running_the_runner(tmp_path: Path) -> None:
    """A hit writes the task's files and output; --refresh runs again but stores."""
    calls: list[str] = []

    def agent(ctx: TaskContext) -> str:
        calls.append(ctx.task_id)
        (ctx.workdir / f"{ctx.task_id}.txt").write_text(f"made by {ctx.agent}\n")
        return f"{ctx.task_id} result"

    cache = InMemoryTaskCache()
    plan = make_plan([["a", "b"]])

    def executor(work: Path, **kw: Any) -> LocalExecutor:
        work.mkdir()
        return LocalExecutor(PythonRunner(agent, label="agent"), cache=cache, workdir=work,
                             settings=ExecutorSettings(workers=2, retries=0, **kw))

    first = await executor(tmp_path / "w1").run(plan)
    assert first.ok and sorted(calls) == ["a", "b"] and len(cache) == 2
    assert first.task("a").cache == {"hit": False, "stored": True}
    second = await executor(tmp_path / "w2").run(plan)
    assert second.ok and len(calls) == 2
    record = second.task("a")
    assert record.cache["hit"] is True and record.cache["level"] == "l1"
    assert record.result_text == "a result"
    assert (tmp_path / "w2" / "a.txt").read_text() == "made by agent-a\n"
    # Tasks share the workspace: a's window may also have seen b's file (listed as such);
    # whatever the replay order, the files end as the stage left them.
    assert "a.txt" in [f.path for f in record.files]
    assert (tmp_path / "w2" / "b.txt").read_text() == "made by agent-b\n"
    await executor(tmp_path / "w3", refresh_cache=True).run(plan)
    assert len(calls) == 4
    await executor(tmp_path / "w4", use_cache=False).run(plan)
    assert len(calls) == 6


async def test_replay_never_clobbers_a_file_changed_since(tmp_path: Path) -> None:
    """A cached file is written only where the workspace still has its pre-task content."""
    calls: list[str] = []

    def agent(ctx: TaskContext) -> None:
        calls.append(ctx.task_id)
        (ctx.workdir / "shared.txt").write_text("from the task\n")

    cache = InMemoryTaskCache()
    plan = make_plan([["a"]])
    for name, existing in (("w1", None), ("w2", "edited by a human\n")):
        work = tmp_path / name
        work.mkdir()
        if existing is not None:
            (work / "shared.txt").write_text(existing)
        ex = LocalExecutor(PythonRunner(agent, label="agent"), cache=cache, workdir=work,
                           settings=ExecutorSettings(workers=1, retries=0))
        result = await ex.run(plan)
        assert result.ok
    # Different starting content means a different workspace fingerprint: no hit, it ran.
    assert calls == ["a", "a"]
    # Same starting content but the file changed before the replay: kept, not clobbered.
    from perfect21.executor.local import _write_files

    target = tmp_path / "w3"
    target.mkdir()
    (target / "shared.txt").write_text("newer\n")
    kept = _write_files(target, {"shared.txt": b"old\n"}, {"shared.txt": None})
    assert kept == ["shared.txt"]
    assert (target / "shared.txt").read_text() == "newer\n"


async def test_failed_results_are_not_cached(workdir: Path) -> None:
    cache = InMemoryTaskCache()
    rec = Recorder(fail={"a": 1})
    executor = LocalExecutor(PythonRunner(rec), cache=cache, workdir=workdir,
                             settings=ExecutorSettings(retries=0, track_files=False))
    result = await executor.run(make_plan([["a"]]))
    assert result.status is RunStatus.FAILED
    assert len(cache) == 0


async def test_failing_gate_stops_the_run_unless_told_to_continue(workdir: Path) -> None:
    import sys

    fail = parse_gate(f"{sys.executable} -c \"print('TOTAL   100   20   80%')\" >= 85")
    plan = make_plan([["a"], ["b"]])
    rec = Recorder()
    executor = LocalExecutor(PythonRunner(rec), workdir=workdir, gates=[fail],
                             settings=ExecutorSettings(track_files=False))
    result = await executor.run(plan)
    assert result.status is RunStatus.FAILED
    assert result.gates[0].value == 80.0 and not result.gates[0].passed
    assert "80% < threshold 85%" in result.summary()
    executor = LocalExecutor(PythonRunner(rec), workdir=workdir, gates=[fail],
                             settings=ExecutorSettings(track_files=False,
                                                       continue_on_gate_failure=True))
    assert (await executor.run(plan)).status is RunStatus.SUCCEEDED


async def test_stage_gate_runs_at_its_sync_point_before_the_next_stage(workdir: Path) -> None:
    import sys

    from perfect21.executor.gates import GateCommand

    gate = GateCommand("check", f"{sys.executable} -c \"import sys; sys.exit(1)\"",
                       stage="stage1")
    rec = Recorder()
    executor = LocalExecutor(PythonRunner(rec), workdir=workdir, gates=[gate],
                             settings=ExecutorSettings(track_files=False))
    result = await executor.run(make_plan([["a"], ["b"]]))
    assert result.status is RunStatus.FAILED
    assert rec.calls == ["a"]
    assert result.task("b").status is TaskStatus.SKIPPED


def test_plan_with_forward_or_cyclic_dependencies_is_rejected(workdir: Path) -> None:
    executor = _executor(Recorder(), workdir=workdir)
    with pytest.raises(ValidationError, match="later stage"):
        executor.preflight(make_plan([["a"], ["b"]], deps={"a": ["b"]}))
    with pytest.raises(ValidationError, match="cycle"):
        executor.preflight(make_plan([["a", "b"]], deps={"a": ["b"], "b": ["a"]}))
    with pytest.raises(ValidationError, match="cycle"):  # against the sequential order
        executor.preflight(make_plan([["a", "b"]], deps={"a": ["b"]},
                                     modes=[StageMode.SEQUENTIAL]))


def test_settings_are_validated() -> None:
    with pytest.raises(ValidationError):
        ExecutorSettings(workers=0)
    with pytest.raises(ValidationError):
        ExecutorSettings(max_cost_usd=-1)


async def test_event_history_is_bounded(workdir: Path) -> None:
    executor = _executor(Recorder(default=0.0), workdir=workdir)
    executor.events.history = type(executor.events.history)(maxlen=10)
    await executor.run(make_plan([[f"t{i}" for i in range(30)]]))
    assert len(executor.events.history) == 10


async def test_python_runner_sync_callable_errors_are_retryable_failures(
        workdir: Path) -> None:
    attempts: list[int] = []

    def flaky(ctx: TaskContext) -> dict[str, object]:
        attempts.append(ctx.attempt)
        if ctx.attempt == 1:
            raise RuntimeError("model overloaded")
        return {"result": "ok", "cost_usd": 0.5}

    executor = LocalExecutor(PythonRunner(flaky), workdir=workdir,
                             settings=ExecutorSettings(retries=1, backoff_s=0.0,
                                                       track_files=False))
    result = await executor.run(make_plan([["a"]]))
    record = result.task("a")
    assert result.ok and attempts == [1, 2]
    assert record.attempts[0].error == "RuntimeError: model overloaded"
    assert record.cost_usd == 0.5 and record.result_text == "ok"


async def test_resume_refuses_a_run_whose_executor_is_alive(workdir: Path,
                                                            isolated_home: Path) -> None:
    import subprocess
    import sys

    from perfect21._errors import ExecutionError

    with RunStore(isolated_home) as store:
        result = await _executor(Recorder(), store=store, workdir=workdir).run(
            make_plan([["a"]]))
        holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)",
                                   "perfect21"])
        deadline = time.monotonic() + 10
        while b"perfect21" not in Path(f"/proc/{holder.pid}/cmdline").read_bytes():
            assert time.monotonic() < deadline
            await asyncio.sleep(0.01)  # until the child has exec'd
        try:
            store.set_run_status(result.run_id, RunStatus.RUNNING)
            store._write("UPDATE runs SET executor_pid = ? WHERE id = ?",
                         (holder.pid, result.run_id))
            with pytest.raises(ExecutionError, match="still running"):
                await _executor(Recorder(), store=store, workdir=workdir).resume(result.run_id)
        finally:
            holder.kill()
            holder.wait()
        resumed = await _executor(Recorder(), store=store, workdir=workdir).resume(
            result.run_id)
        assert resumed.ok


async def test_unknown_run_is_not_found(isolated_home: Path, workdir: Path) -> None:
    from perfect21._errors import NotFoundError

    with RunStore(isolated_home) as store, pytest.raises(NotFoundError, match="not found"):
        await _executor(Recorder(), store=store, workdir=workdir).resume("r-missing")


async def test_two_resumes_cannot_claim_the_same_run(workdir: Path, isolated_home: Path) -> None:
    with RunStore(isolated_home) as store:
        rec = Recorder(cost=1.0)
        result = await _executor(rec, store=store, workdir=workdir, workers=1,
                                 max_cost_usd=1.0).run(make_plan([["a", "b"]]))
        stale = store.get_run(result.run_id)
        assert store.mark_resumed(stale)
        assert not store.mark_resumed(stale)  # the second claimant read the same state
