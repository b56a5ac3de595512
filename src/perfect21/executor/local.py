"""The local executor: asyncio, N workers with their own deques, work stealing, sync points.

How a run proceeds:

1. Stages are grouped into *segments*: a segment ends at a stage with a sync point. Segments
   run in order; inside one, a task is ready when its dependencies succeeded (a
   ``sequential`` stage chains its tasks).
2. A ready task is placed on the least occupied worker's deque (largest estimate first).
   Workers take from the left of their own deque; an idle worker steals from the right of
   the most loaded one (policy: :mod:`perfect21.executor.stealing`). Every steal is an event.
3. A task runs through its runner with a timeout (the process group is killed), retries with
   exponential backoff and jitter when the runner says the failure is retryable, and the
   cache hook (a hit replays files and output without running the runner).
4. A failed task skips its dependents; siblings continue; later segments do not start.
5. At the segment's sync point its gates run; a failing gate stops the run unless
   ``continue_on_gate_failure``.
6. ``max_cost_usd``: once the reported spend reaches it, nothing new starts; the run is
   ``stopped`` and resumable. ``cancel()`` (Ctrl-C) kills running process groups, puts their
   tasks back to pending and leaves the run ``interrupted`` and resumable.

Every state change is written to the :class:`~perfect21.executor.runs.RunStore` (when one is
given) before the executor moves on.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import signal
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

from perfect21._errors import ExecutionError, ValidationError
from perfect21.executor.cache_hook import (
    CachedTaskResult,
    TaskCache,
    cache_level,
    task_cache_key,
    workspace_fingerprint,
)
from perfect21.executor.events import EventBus
from perfect21.executor.gates import FINAL_STAGE, GateCommand, run_gate
from perfect21.executor.runners import Runner, TaskContext
from perfect21.executor.runs import RunStore, new_run_id, proc_start_time, safe_name
from perfect21.executor.stealing import STEAL_RULE, WorkerQueue, choose_steal, choose_worker
from perfect21.executor.tasks import (
    Attempt,
    Event,
    EventKind,
    FileChange,
    GateResult,
    RunnerResult,
    RunStatus,
    TaskRecord,
    TaskStatus,
    tail,
)
from perfect21.executor.workspace import Snapshot, WorkspaceTracker, diff_snapshots
from perfect21.planner.models import AgentSpec, Plan, Stage, StageMode, Task

__all__ = ["Admission", "ExecutorSettings", "LocalExecutor", "RunResult", "check_plan"]

_MAX_CACHED_BYTES = 32 * 1024 * 1024
_MAX_CONCURRENT_LISTED = 50
_NO_PATH = Path()
_INTERRUPTED = "interrupted (process group terminated); resume runs it again"


class Admission(Protocol):
    """The memory guard's side of the executor: pause intake, never kill running work."""

    async def wait_for_capacity(self) -> None: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class ExecutorSettings:
    workers: int = 4
    max_concurrency: int = 64
    task_timeout_s: float = 1800.0
    retries: int = 2
    backoff_s: float = 1.0
    backoff_max_s: float = 60.0
    max_cost_usd: float | None = None
    continue_on_gate_failure: bool = False
    use_cache: bool = True
    refresh_cache: bool = False
    track_files: bool = True
    kill_grace_s: float = 2.0
    shell_gates: bool = False

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise ValidationError("workers must be at least 1")
        if self.max_concurrency < 1:
            raise ValidationError("max concurrency must be at least 1")
        if self.task_timeout_s <= 0:
            raise ValidationError("task timeout must be positive")
        if self.retries < 0:
            raise ValidationError("retries must be 0 or more")
        if self.backoff_s < 0:
            raise ValidationError("backoff must be 0 or more")
        if self.max_cost_usd is not None and self.max_cost_usd < 0:
            raise ValidationError("--max-cost must be 0 or more")

    @classmethod
    def from_config(cls, config: Any, **overrides: Any) -> ExecutorSettings:
        values: dict[str, Any] = {
            "workers": config.executor_workers,
            "max_concurrency": config.executor_max_concurrency,
            "task_timeout_s": config.executor_task_timeout_s,
            "retries": config.executor_retries,
            "backoff_s": config.executor_backoff_s,
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ExecutorSettings:
        known = {k: v for k, v in data.items() if k in cls.__slots__}
        return cls(**known)


@dataclass(frozen=True, slots=True, kw_only=True)
class RunResult:
    run_id: str
    status: RunStatus
    tasks: tuple[TaskRecord, ...]
    gates: tuple[GateResult, ...] = ()
    cost_usd: float = 0.0
    steals: int = 0
    makespan_s: float = 0.0
    busy_s: float = 0.0
    error: str = ""
    run_dir: str = ""

    @property
    def ok(self) -> bool:
        return self.status is RunStatus.SUCCEEDED

    def task(self, task_id: str) -> TaskRecord:
        for record in self.tasks:
            if record.task_id == task_id:
                return record
        raise KeyError(task_id)

    def counts(self) -> dict[str, int]:
        counts = {s.value: 0 for s in TaskStatus}
        for record in self.tasks:
            counts[record.status.value] += 1
        return counts

    def summary(self) -> str:
        counts = ", ".join(f"{n} {s}" for s, n in self.counts().items() if n)
        lines = [f"run {self.run_id}: {self.status.value} ({counts}) in {self.makespan_s:.2f} s,"
                 f" {self.steals} steals, cost ${self.cost_usd:.4f}"]
        for record in self.tasks:
            if record.status in (TaskStatus.FAILED, TaskStatus.SKIPPED, TaskStatus.CANCELLED):
                lines.append(f"  {record.status.value:9} {record.task_id} ({record.agent}): "
                             f"{record.error or '-'} [{len(record.attempts)} attempt(s)]")
        for gate in self.gates:
            if not gate.passed:
                lines.append(f"  gate failed at {gate.stage or 'end'}: {gate.name}: "
                             f"{gate.reason}")
        if self.error:
            lines.append(f"  {self.error}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "status": self.status.value, "counts": self.counts(),
                "cost_usd": round(self.cost_usd, 6), "steals": self.steals,
                "makespan_s": round(self.makespan_s, 6), "busy_s": round(self.busy_s, 6),
                "error": self.error, "run_dir": self.run_dir,
                "tasks": [t.to_dict() for t in self.tasks],
                "gates": [g.to_dict() for g in self.gates]}


def check_plan(plan: Plan) -> None:
    """A dependency must be an earlier task of the same stage or a task of an earlier stage."""
    stage_of: dict[str, int] = {}
    for index, stage in enumerate(plan.stages):
        for task in stage.tasks:
            stage_of[task.id] = index
    for index, stage in enumerate(plan.stages):
        for task in stage.tasks:
            for dep in task.depends_on:
                if dep not in stage_of:
                    raise ValidationError(f"task {task.id!r} depends on unknown task {dep!r}")
                if stage_of[dep] > index:
                    raise ValidationError(f"task {task.id!r} (stage {stage.name!r}) depends on "
                                          f"{dep!r} of a later stage")
    _check_cycles(plan)


def _check_cycles(plan: Plan) -> None:
    deps: dict[str, tuple[str, ...]] = {}
    for stage in plan.stages:
        previous: tuple[str, ...] = ()
        for task in stage.tasks:
            # A sequential stage chains its tasks: that order counts as a dependency too.
            deps[task.id] = (*task.depends_on, *previous)
            if stage.mode is StageMode.SEQUENTIAL:
                previous = (task.id,)
    state: dict[str, int] = {}
    for start in deps:
        stack = [(start, iter(deps[start]))]
        state[start] = state.get(start, 0) or 1
        if state[start] == 2:
            continue
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                state[node] = 2
                stack.pop()
            elif state.get(child, 0) == 1:
                raise ValidationError(f"dependency cycle through task {child!r}")
            elif state.get(child, 0) == 0:
                state[child] = 1
                stack.append((child, iter(deps[child])))


def _segments(plan: Plan) -> list[list[Stage]]:
    segments: list[list[Stage]] = [[]]
    for stage in plan.stages:
        segments[-1].append(stage)
        if stage.sync_point:
            segments.append([])
    return [s for s in segments if s]


def _cost(task: Task) -> float:
    return task.estimated_hours if task.estimated_hours > 0 else 1.0


class _State:
    """Mutable state of one run inside one executor call."""

    def __init__(self, run_id: str, plan: Plan, records: dict[str, TaskRecord],
                 workers: int) -> None:
        self.run_id = run_id
        self.plan = plan
        self.tasks = {t.id: t for t in plan.tasks}
        self.stage_by_name = {s.name: s for s in plan.stages}
        self.records = records
        self.queues = [WorkerQueue(w) for w in range(workers)]
        self.wake = [asyncio.Event() for _ in range(workers)]
        self.running: dict[str, int] = {}
        self.overlaps: dict[str, set[str]] = {}
        self.waiting: dict[str, set[str]] = {}
        self.dependents: dict[str, list[str]] = {}
        self.settled: set[str] = set()
        self.remaining = 0
        self.segment_done = asyncio.Event()
        self.cost = 0.0
        self.steals = 0
        self.busy = 0.0
        self.stopped = False
        self.interrupted = False
        self.fatal: BaseException | None = None
        self.workspace_fp = ""
        # Results waiting for the sync point to be stored: (key, task id, files, stdout).
        self.pending_cache: list[tuple[str, str, tuple[FileChange, ...], Path]] = []


class _Outcome:
    """What the attempts of one task produced so far (mutable, private to one task)."""

    __slots__ = ("attempt_started", "attempts", "cost", "has_cost", "pid", "result",
                 "stderr_path", "stdout_path", "tokens_in", "tokens_out")

    def __init__(self, attempts: list[Attempt]) -> None:
        self.attempts = attempts
        self.result = RunnerResult(ok=False, error="not run")
        self.cost = 0.0
        self.has_cost = False
        self.tokens_in: int | None = None
        self.tokens_out: int | None = None
        self.pid: int | None = None
        self.attempt_started = 0.0
        self.stdout_path = _NO_PATH
        self.stderr_path = _NO_PATH

    def add(self, number: int, result: RunnerResult) -> None:
        self.result = result
        self.attempts.append(Attempt(number=number, started_at=self.attempt_started,
                                     ended_at=time.time(), exit_code=result.exit_code,
                                     pid=result.pid, error=result.error,
                                     timed_out=result.timed_out))
        if result.cost_usd is not None:
            self.cost += result.cost_usd
            self.has_cost = True
        if result.tokens_in is not None:
            self.tokens_in = (self.tokens_in or 0) + result.tokens_in
        if result.tokens_out is not None:
            self.tokens_out = (self.tokens_out or 0) + result.tokens_out


class LocalExecutor:
    """Runs plans with a runner; see the module docstring for the semantics."""

    def __init__(self, runner: Runner, *, settings: ExecutorSettings | None = None,
                 store: RunStore | None = None, cache: TaskCache | None = None,
                 admission: Admission | None = None, events: EventBus | None = None,
                 agents: Callable[[str], AgentSpec | None] | None = None,
                 gates: Sequence[GateCommand] = (), workdir: Path | None = None,
                 run_root: Path | None = None, limiter: asyncio.Semaphore | None = None,
                 home: Path | None = None) -> None:
        self.runner = runner
        self.settings = settings or ExecutorSettings()
        self.store = store
        self.cache = cache
        self.admission = admission
        self.events = events or EventBus()
        self.agents = agents
        self.gates = tuple(gates)
        self.workdir = (workdir or Path.cwd()).resolve()
        self._run_root = run_root
        self._shared_limiter = limiter
        self._limiter: asyncio.Semaphore | None = None
        self._home = home if home is not None else (store.home if store else None)
        self._uses_files = bool(getattr(runner, "uses_files", True))
        self._tracker: WorkspaceTracker | None = None
        self._state: _State | None = None
        self._aux: set[asyncio.Task[Any]] = set()
        self._run_dir_cache: tuple[str, Path] = ("", _NO_PATH)

    # ------------------------------------------------------------------ public API

    def preflight(self, plan: Plan) -> None:
        """Everything that can be checked before anything runs; raises, runs nothing."""
        check_plan(plan)
        self.runner.preflight()
        from perfect21.executor.gates import preflight_gate

        for gate in self.gates:
            preflight_gate(gate, shell=self.settings.shell_gates)
        if not self.workdir.is_dir():
            raise ExecutionError(f"workdir {self.workdir} is not a directory")

    async def run(self, plan: Plan, *, run_id: str | None = None) -> RunResult:
        """Run ``plan`` from the start (a new run)."""
        self.preflight(plan)
        run_id = run_id or new_run_id()
        if self.store is not None:
            self.store.create_run(run_id=run_id, plan=plan, runner=self.runner.name,
                                  runner_settings=self.runner.settings(),
                                  options=self._options(), workdir=self.workdir)
        records = {t.id: TaskRecord(run_id=run_id, task_id=t.id, stage=t.stage, agent=t.agent,
                                    position=i) for i, t in enumerate(plan.tasks)}
        return await self._execute_run(run_id, plan, records, passed_gates=set())

    async def resume(self, run_id: str) -> RunResult:
        """Continue a stored run: only tasks that have not succeeded run (again)."""
        if self.store is None:
            raise ExecutionError("resume needs a run store")
        run = self.store.get_run(run_id)
        run_id = run.id
        if run.status is RunStatus.RUNNING and _executor_alive(run.executor_pid):
            raise ExecutionError(f"run {run_id} is still running (executor pid "
                                 f"{run.executor_pid}); stop it first")
        self.preflight(run.plan)
        if not self.store.mark_resumed(run):
            raise ExecutionError(f"run {run_id} was resumed by another process just now")
        killed = self._kill_orphans(run_id)
        records: dict[str, TaskRecord] = {}
        for record in run.tasks:
            if record.status is not TaskStatus.SUCCEEDED:
                record = replace(record, status=TaskStatus.PENDING)
            records[record.task_id] = record
        passed = {(g.stage, g.name) for g in run.gates if g.passed}
        if killed:
            self._emit(EventKind.INTERRUPTED, run_id,
                       data={"reason": "resume killed orphaned task processes",
                             "tasks": killed})
        return await self._execute_run(run_id, run.plan, records, passed_gates=passed,
                                       cost=run.cost_usd)

    def cancel(self) -> None:
        """Stop now: running process groups are killed, their tasks go back to pending."""
        state = self._state
        if state is None:
            return
        state.interrupted = True
        state.segment_done.set()
        for queue in state.queues:
            for task_id in queue.drain():
                self._settle(state, task_id)
        for task in list(self._aux):
            task.cancel()

    # ------------------------------------------------------------------ run

    def _options(self) -> dict[str, Any]:
        return {"settings": self.settings.to_dict(),
                "gates": [g.to_dict() for g in self.gates]}

    def _emit(self, kind: EventKind, run_id: str, task_id: str = "", worker: int = -1,
              data: Mapping[str, Any] | None = None) -> None:
        self.events.emit(Event(kind, run_id, task_id, worker, data or {}))

    def _run_dir(self, run_id: str) -> Path:
        if self.store is not None:
            return self.store.run_dir(run_id)
        if self._run_root is None:  # library use without a store: created only if written
            self._run_root = Path(tempfile.gettempdir()) / "perfect21-runs"
        if self._run_dir_cache[0] != run_id:  # one entry: bounded for long-lived executors
            self._run_dir_cache = (run_id, self._run_root / run_id)
        return self._run_dir_cache[1]

    def _task_dir(self, run_id: str, task_id: str) -> Path:
        return self._run_dir(run_id) / "tasks" / safe_name(task_id)

    async def _execute_run(self, run_id: str, plan: Plan, records: dict[str, TaskRecord],
                           *, passed_gates: set[tuple[str, str]], cost: float = 0.0
                           ) -> RunResult:
        workers = min(self.settings.workers, self.settings.max_concurrency)
        state = _State(run_id, plan, records, workers)
        state.cost = cost
        budget = self.settings.max_cost_usd
        state.stopped = budget is not None and cost >= budget  # resumed without more budget
        self._state = state
        # A semaphore belongs to one event loop: a fresh one per run unless one is shared.
        self._limiter = self._shared_limiter or asyncio.Semaphore(self.settings.max_concurrency)
        if self.settings.track_files:
            exclude = (self._home,) if self._home is not None else ()
            self._tracker = WorkspaceTracker(self.workdir, exclude=exclude)
        started = time.time()
        t0 = time.perf_counter()
        self._emit(EventKind.RUN_STARTED, run_id, data={
            "tasks": len(plan.tasks), "stages": [s.name for s in plan.stages],
            "workers": workers, "runner": self.runner.name, "workdir": str(self.workdir),
            "to_run": sum(1 for r in records.values() if r.status is not TaskStatus.SUCCEEDED),
        })
        gate_results: list[GateResult] = []
        status, error = RunStatus.SUCCEEDED, ""
        segments = _segments(plan)
        try:
            for index, segment in enumerate(segments):
                last = index == len(segments) - 1
                status, error = await self._run_segment(state, segment, last, passed_gates,
                                                        gate_results)
                if status is not RunStatus.SUCCEEDED:
                    self._skip_later(state, segments[index + 1:], status)
                    break
        except asyncio.CancelledError:
            state.interrupted = True
            self._finish_interrupted(state)
            self._store_status(run_id, RunStatus.INTERRUPTED, "cancelled", state.cost)
            raise
        except BaseException as exc:
            self._finish_interrupted(state)
            self._store_status(run_id, RunStatus.FAILED, f"executor error: {exc}", state.cost)
            raise
        finally:
            self._state = None
        if state.fatal is not None:
            self._finish_interrupted(state)
            self._store_status(run_id, RunStatus.FAILED, f"executor error: {state.fatal}",
                               state.cost)
            raise ExecutionError(f"run {run_id}: executor error: {state.fatal}") from state.fatal
        if state.interrupted:
            status, error = RunStatus.INTERRUPTED, "interrupted; resume with `perfect21 runs "\
                f"resume {run_id}`"
            self._finish_interrupted(state)
        self._store_status(run_id, status, error, state.cost)
        makespan = time.perf_counter() - t0
        result = RunResult(run_id=run_id, status=status,
                           tasks=tuple(state.records[t.id] for t in plan.tasks),
                           gates=tuple(gate_results), cost_usd=state.cost, steals=state.steals,
                           makespan_s=makespan, busy_s=state.busy, error=error,
                           run_dir=str(self._run_dir(run_id)))
        self._emit(EventKind.RUN_FINISHED, run_id, data={
            "status": status.value, "counts": result.counts(), "makespan_s": round(makespan, 6),
            "steals": state.steals, "cost_usd": round(state.cost, 6), "error": error,
            "started_at": started,
        })
        return result

    def _store_status(self, run_id: str, status: RunStatus, error: str, cost: float) -> None:
        if self.store is not None:
            self.store.set_run_status(run_id, status, error=error, cost_usd=cost)

    def _finish_interrupted(self, state: _State) -> None:
        """Tasks that were running when the run stopped are ``cancelled`` (resume reruns them)."""
        for task_id in list(state.running):
            record = state.records[task_id]
            if record.status is not TaskStatus.CANCELLED:
                self._save(state, replace(record, status=TaskStatus.CANCELLED,
                                          error=_INTERRUPTED))

    def _skip_later(self, state: _State, segments: Sequence[list[Stage]],
                    status: RunStatus) -> None:
        if status in (RunStatus.STOPPED, RunStatus.INTERRUPTED):
            return  # left pending: a resume runs them
        for segment in segments:
            for stage in segment:
                for task in stage.tasks:
                    record = state.records[task.id]
                    if record.status is TaskStatus.PENDING:
                        self._save(state, replace(record, status=TaskStatus.SKIPPED,
                                                  error="an earlier stage did not succeed"))

    async def _run_segment(self, state: _State, segment: list[Stage], last: bool,
                           passed_gates: set[tuple[str, str]], gate_results: list[GateResult]
                           ) -> tuple[RunStatus, str]:
        names = [s.name for s in segment]
        todo = [t for s in segment for t in s.tasks
                if state.records[t.id].status is not TaskStatus.SUCCEEDED]
        for name in names:
            self._emit(EventKind.STAGE_STARTED, state.run_id,
                       data={"stage": name, "tasks": len(state.stage_by_name[name].tasks),
                             "to_run": sum(1 for t in todo if t.stage == name)})
        if todo:
            await self._run_tasks(state, segment, todo)
        if state.pending_cache and not state.interrupted:
            await self._flush_cache(state)
        counts: dict[str, int] = {}
        for stage in segment:
            for task in stage.tasks:
                key = state.records[task.id].status.value
                counts[key] = counts.get(key, 0) + 1
        for name in names:
            self._emit(EventKind.STAGE_FINISHED, state.run_id,
                       data={"stage": name, "counts": counts})
        if state.interrupted:
            return RunStatus.INTERRUPTED, ""
        failed = [t.id for t in todo if state.records[t.id].status is not TaskStatus.SUCCEEDED
                  and state.records[t.id].status is not TaskStatus.PENDING]
        if failed:
            return RunStatus.FAILED, (f"{len(failed)} task(s) did not succeed in stage(s) "
                                      f"{', '.join(names)}: {', '.join(failed[:10])}")
        if state.stopped or any(state.records[t.id].status is TaskStatus.PENDING for t in todo):
            return RunStatus.STOPPED, (f"--max-cost {self.settings.max_cost_usd} reached "
                                       f"(spent ${state.cost:.4f}); resume with a higher "
                                       "--max-cost to continue")
        return await self._run_gates(state, names, last, passed_gates, gate_results)

    async def _run_gates(self, state: _State, names: list[str], last: bool,
                         passed_gates: set[tuple[str, str]], gate_results: list[GateResult]
                         ) -> tuple[RunStatus, str]:
        gates = [g for g in self.gates if g.stage in names or (last and g.stage == FINAL_STAGE)]
        for gate in gates:
            if (gate.stage, gate.name) in passed_gates:
                continue
            self._emit(EventKind.GATE_STARTED, state.run_id,
                       data={"stage": gate.stage, "gate": gate.name, "command": gate.command})
            job = asyncio.create_task(run_gate(
                gate, stage=gate.stage, workdir=self.workdir,
                out_dir=self._run_dir(state.run_id) / "gates",
                timeout_s=self.settings.task_timeout_s, shell=self.settings.shell_gates))
            self._aux.add(job)
            try:
                result = await job
            except asyncio.CancelledError:
                if state.interrupted:
                    return RunStatus.INTERRUPTED, ""
                raise
            finally:
                self._aux.discard(job)
            gate_results.append(result)
            if self.store is not None:
                self.store.save_gate(state.run_id, result)
            self._emit(EventKind.GATE_FINISHED, state.run_id, data=result.to_dict())
            if not result.passed and not self.settings.continue_on_gate_failure:
                return RunStatus.FAILED, (f"gate {gate.name!r} failed at "
                                          f"{gate.stage or 'the end'}: {result.reason}")
        return RunStatus.SUCCEEDED, ""

    # ------------------------------------------------------------------ scheduling

    async def _run_tasks(self, state: _State, segment: list[Stage], todo: list[Task]) -> None:
        ids = {t.id for t in todo}
        state.waiting.clear()
        state.dependents.clear()
        state.settled.clear()
        state.remaining = len(todo)
        state.segment_done.clear()
        for stage in segment:
            previous = ""
            for task in stage.tasks:
                deps = set(task.depends_on)
                if stage.mode is StageMode.SEQUENTIAL and previous:
                    deps.add(previous)
                previous = task.id
                if task.id not in ids:
                    continue
                state.waiting[task.id] = {d for d in deps if d in ids}
                for dep in state.waiting[task.id]:
                    state.dependents.setdefault(dep, []).append(task.id)
        if self.cache is not None and self.settings.use_cache:
            state.workspace_fp = await asyncio.to_thread(workspace_fingerprint, self.workdir)
        ready = [t.id for t in todo if not state.waiting[t.id]]
        if not ready:
            raise ValidationError(f"stage(s) {', '.join(s.name for s in segment)}: no task can "
                                  "start (dependencies form a cycle with the sequential order)")
        workers = [asyncio.create_task(self._worker(state, w))
                   for w in range(len(state.queues))]
        self._aux.update(workers)
        self._dispatch(state, ready)
        try:
            await state.segment_done.wait()
        finally:
            for worker in workers:
                worker.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
            self._aux.difference_update(workers)

    def _dispatch(self, state: _State, task_ids: list[str]) -> None:
        """Place ready tasks, largest estimate first, each on the least occupied worker."""
        ordered = sorted(task_ids, key=lambda t: (-_cost(state.tasks[t]),
                                                  state.records[t].position))
        loads = [q.load() for q in state.queues]
        for task_id in ordered:
            if state.stopped or state.interrupted:
                self._abandon(state, task_id)
                continue
            worker = choose_worker(loads)
            state.queues[worker].push(task_id, _cost(state.tasks[task_id]))
            loads[worker] = state.queues[worker].load()
            self._emit(EventKind.TASK_QUEUED, state.run_id, task_id, worker)
            state.wake[worker].set()

    def _steal(self, state: _State, worker: int) -> str | None:
        if not any(len(q) for q in state.queues):
            return None
        loads = [q.load() for q in state.queues]
        decision = choose_steal(loads[worker], loads)
        if decision is None:
            return None
        victim = state.queues[decision.victim]
        if not victim.steal(decision.task_id):  # second phase: still queued, not started
            return None
        state.steals += 1
        self._emit(EventKind.STEAL, state.run_id, decision.task_id, worker, data={
            "victim": decision.victim, "thief": decision.thief, "cost": decision.cost,
            "thief_occupancy": decision.thief_occupancy,
            "victim_occupancy": decision.victim_occupancy, "rule": STEAL_RULE})
        return decision.task_id

    async def _worker(self, state: _State, worker: int) -> None:
        queue, wake = state.queues[worker], state.wake[worker]
        while True:
            task_id = queue.pop_own()
            if task_id is None:
                task_id = self._steal(state, worker)
            if task_id is None:
                wake.clear()
                await wake.wait()
                continue
            try:
                await self._execute(state, worker, task_id)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a bug or a store failure: stop the run, loudly
                state.fatal = exc
                state.segment_done.set()
                return
            # Someone may now be stealable or ready: idle workers look again.
            if not any(len(q) for q in state.queues):
                continue
            for other, other_queue in enumerate(state.queues):
                if other != worker and len(other_queue) == 0 and other_queue.running_cost == 0:
                    state.wake[other].set()

    def _settle(self, state: _State, task_id: str) -> None:
        if task_id in state.settled:
            return
        state.settled.add(task_id)
        state.remaining -= 1
        if state.remaining <= 0:
            state.segment_done.set()

    def _abandon(self, state: _State, task_id: str) -> None:
        """Not started because the run stops: the task and its dependents stay pending."""
        for tid in [task_id, *self._descendants(state, task_id)]:
            self._settle(state, tid)

    def _descendants(self, state: _State, task_id: str) -> list[str]:
        out: list[str] = []
        stack = list(state.dependents.get(task_id, ()))
        seen: set[str] = set()
        while stack:
            tid = stack.pop()
            if tid in seen:
                continue
            seen.add(tid)
            out.append(tid)
            stack.extend(state.dependents.get(tid, ()))
        return out

    def _completed(self, state: _State, task_id: str) -> None:
        record = state.records[task_id]
        self._settle(state, task_id)
        if record.status is TaskStatus.SUCCEEDED:
            ready = []
            for dependent in state.dependents.get(task_id, ()):
                waiting = state.waiting[dependent]
                waiting.discard(task_id)
                if not waiting:
                    ready.append(dependent)
            if ready:
                self._dispatch(state, ready)
        elif record.status is TaskStatus.PENDING:
            self._abandon(state, task_id)
        else:
            for tid in self._descendants(state, task_id):
                if tid in state.settled:
                    continue
                skipped = replace(state.records[tid], status=TaskStatus.SKIPPED,
                                  error=f"dependency {task_id!r} {record.status.value}")
                self._save(state, skipped)
                self._emit(EventKind.TASK_FINISHED, state.run_id, tid,
                           data={"status": "skipped", "error": skipped.error,
                                 "agent": skipped.agent, "stage": skipped.stage})
                self._settle(state, tid)

    # ------------------------------------------------------------------ one task

    def _save(self, state: _State, record: TaskRecord) -> None:
        state.records[record.task_id] = record
        if self.store is not None:
            self.store.save_task(record)

    async def _execute(self, state: _State, worker: int, task_id: str) -> None:
        if state.stopped or state.interrupted:
            self._abandon(state, task_id)
            return
        task = state.tasks[task_id]
        queue = state.queues[worker]
        queue.running_cost = _cost(task)
        assert self._limiter is not None
        try:
            async with self._limiter:
                if self.admission is not None:
                    if not getattr(self.admission, "accepting", True):
                        self._emit(EventKind.ADMISSION_WAIT, state.run_id, task_id, worker,
                                   data={"reason": "memory guard over its hard limit; "
                                                   "running tasks continue"})
                    await self.admission.wait_for_capacity()
                if state.stopped or state.interrupted:
                    self._abandon(state, task_id)
                    return
                others = set(state.running)
                state.overlaps[task_id] = others
                for other in others:
                    state.overlaps.setdefault(other, set()).add(task_id)
                state.running[task_id] = worker
                record = await self._run_task(state, worker, task)
                state.running.pop(task_id, None)
        except asyncio.CancelledError:
            record = state.records[task_id]
            self._save(state, replace(record, status=TaskStatus.CANCELLED, error=_INTERRUPTED,
                                      ended_at=time.time()))
            raise
        finally:
            queue.running_cost = 0.0
        self._save(state, record)
        if record.cost_usd:
            state.cost += record.cost_usd
        if record.started_at is not None and record.ended_at is not None:
            state.busy += record.ended_at - record.started_at
        self._emit(EventKind.TASK_FINISHED, state.run_id, task_id, worker, data={
            "status": record.status.value, "agent": record.agent, "stage": record.stage,
            "attempts": len(record.attempts), "exit_code": record.exit_code,
            "duration_s": None if record.duration_s is None else round(record.duration_s, 6),
            "cost_usd": record.cost_usd, "error": record.error,
            "cached": bool(record.cache.get("hit")),
        })
        budget = self.settings.max_cost_usd
        if budget is not None and state.cost >= budget and not state.stopped:
            state.stopped = True
            self._emit(EventKind.BUDGET_REACHED, state.run_id,
                       data={"spent_usd": round(state.cost, 6), "max_cost_usd": budget})
            for other_queue in state.queues:
                for tid in other_queue.drain():
                    self._abandon(state, tid)
        self._completed(state, task_id)

    def _brief(self, state: _State, task: Task) -> str:
        stage = state.stage_by_name.get(task.stage)
        lines = [f"# Task {task.id}: agent {task.agent}, stage {task.stage}", "",
                 f"Request: {state.plan.request}"]
        if stage is not None and stage.goal:
            lines.append(f"Stage goal: {stage.goal}")
        if task.depends_on:
            lines.append("Builds on: " + ", ".join(task.depends_on))
        lines += ["", task.brief or "(no brief)", "",
                  "Work in the current directory (the shared workspace); other agents may "
                  "work in it at the same time."]
        return "\n".join(lines) + "\n"

    def _agent(self, name: str) -> AgentSpec | None:
        if self.agents is None:
            return None
        try:
            return self.agents(name)
        except Exception:
            return None

    async def _run_task(self, state: _State, worker: int, task: Task) -> TaskRecord:
        run_id = state.run_id
        record = state.records[task.id]
        spec = self._agent(task.agent)
        system_prompt = spec.prompt if spec is not None and spec.prompt else (
            f"You are the {task.agent} agent of a multi-agent software team.")
        brief = self._brief(state, task)
        # Runners without files (python) get the run folder as a placeholder path: building
        # per-task paths would be most of the executor's per-task cost for them.
        task_dir = self._task_dir(run_id, task.id) if self._uses_files else self._run_dir(run_id)
        prompt_path = task_dir / "prompt.md" if self._uses_files else task_dir
        if self._uses_files:
            _write_prompt(prompt_path, brief)  # a few KiB: cheaper inline than via a thread
        started = time.time()
        # The record stays as it was until the task ends (one record per task on this path);
        # "running" lives in state.running and in the store.
        if self.store is not None:
            self.store.task_started(run_id, task.id, started_at=started,
                                    prompt_path=str(prompt_path))
        self._emit(EventKind.TASK_STARTED, run_id, task.id, worker,
                   data={"agent": task.agent, "stage": task.stage})

        cache_key = ""
        if self.cache is not None and self.settings.use_cache:
            spec_text = json.dumps(spec.to_dict(), sort_keys=True) if spec else task.agent
            cache_key = task_cache_key(spec_text, brief, self.runner.name,
                                       self.runner.settings(), state.workspace_fp)
            if not self.settings.refresh_cache:
                hit = await self.cache.get(cache_key)
                if hit is not None:
                    record = replace(record, started_at=started,
                                     prompt_path=str(prompt_path) if self._uses_files else "")
                    return await self._replay(state, worker, record, hit, cache_key)

        before = await self._snapshot()
        outcome = _Outcome(list(record.attempts))
        try:
            await self._attempts(state, worker, task, outcome, brief=brief,
                                 system_prompt=system_prompt, spec=spec, task_dir=task_dir,
                                 prompt_path=prompt_path)
        except asyncio.CancelledError:
            # Keep what happened so far: the interrupted attempt is part of the provenance.
            outcome.attempts.append(Attempt(number=len(outcome.attempts) + 1,
                                            started_at=outcome.attempt_started,
                                            ended_at=time.time(), exit_code=None,
                                            pid=outcome.pid, error="interrupted"))
            state.records[task.id] = replace(record, attempts=tuple(outcome.attempts),
                                             started_at=started, pid=outcome.pid)
            raise
        result = outcome.result
        after = await self._snapshot()
        files = diff_snapshots(before, after) if before is not None and after is not None else ()
        status = TaskStatus.SUCCEEDED if result.ok else TaskStatus.FAILED
        overlaps = state.overlaps.pop(task.id, set())
        record = replace(
            record, status=status, started_at=started,
            prompt_path=str(prompt_path) if self._uses_files else "",
            concurrent_with=tuple(sorted(overlaps))[:_MAX_CONCURRENT_LISTED],
            attempts=tuple(outcome.attempts), argv=result.argv, pid=result.pid,
            exit_code=result.exit_code, ended_at=time.time(), stdout_tail=result.stdout_tail,
            stderr_tail=result.stderr_tail, result_text=result.result_text,
            stdout_path=str(outcome.stdout_path) if self._uses_files else "",
            stderr_path=str(outcome.stderr_path) if self._uses_files else "",
            files=files, cost_usd=outcome.cost if outcome.has_cost else None,
            tokens_in=outcome.tokens_in, tokens_out=outcome.tokens_out,
            error="" if result.ok else result.error,
            cache={"hit": False, "stored": False} if cache_key else {},
            extra=dict(result.extra),
        )
        if result.ok and self.cache is not None and cache_key:
            # Stored at the sync point, with the files' content as the stage left them: a
            # sibling's half-written file seen during this task's window is never cached.
            state.pending_cache.append((cache_key, task.id, files, outcome.stdout_path))
        return record

    async def _attempts(self, state: _State, worker: int, task: Task, out: _Outcome, *,
                        brief: str, system_prompt: str, spec: AgentSpec | None,
                        task_dir: Path, prompt_path: Path) -> None:
        """Run attempts until success, a final failure or the retry budget is spent."""
        first = len(out.attempts) + 1
        last = first + self.settings.retries
        out.stdout_path = out.stderr_path = task_dir
        for number in range(first, last + 1):
            if self._uses_files:
                out.stdout_path = task_dir / f"attempt-{number}.stdout"
                out.stderr_path = task_dir / f"attempt-{number}.stderr"
            out.attempt_started = time.time()
            out.pid = None
            ctx = TaskContext(
                run_id=state.run_id, task_id=task.id, agent=task.agent, stage=task.stage,
                brief=brief, system_prompt=system_prompt, prompt_file=prompt_path,
                workdir=self.workdir, stdout_path=out.stdout_path,
                stderr_path=out.stderr_path, timeout_s=self.settings.task_timeout_s,
                attempt=number, tools=spec.tools if spec else (),
                kill_grace_s=self.settings.kill_grace_s,
                on_spawn=self._on_spawn(state.run_id, task.id, out),
            )
            result = await self.runner.run(ctx)
            out.add(number, result)
            if result.ok or not result.retryable or number == last or state.interrupted:
                return
            # Exponential step with jitter (so parallel retries do not all fire together).
            delay = min(self.settings.backoff_max_s,
                        self.settings.backoff_s * 2 ** (number - first)
                        * (0.5 + random.random()))
            self._emit(EventKind.TASK_RETRY, state.run_id, task.id, worker, data={
                "attempt": number, "error": result.error, "delay_s": round(delay, 3)})
            await asyncio.sleep(delay)

    def _on_spawn(self, run_id: str, task_id: str, out: _Outcome
                  ) -> Callable[[int, tuple[str, ...]], None]:
        store = self.store

        def spawned(pid: int, argv: tuple[str, ...]) -> None:
            out.pid = pid
            if store is not None:
                store.task_spawned(run_id, task_id, pid=pid, argv=argv,
                                   stdout_path=str(out.stdout_path),
                                   stderr_path=str(out.stderr_path))

        return spawned

    async def _snapshot(self) -> Snapshot | None:
        tracker = self._tracker
        if tracker is None:
            return None
        # A small tree is hashed inline (a thread hand-off costs more than the walk); a tree
        # whose last snapshot took longer than 2 ms is walked in a worker thread.
        if tracker.last_duration_s < 0.002:
            return tracker.snapshot()
        return await asyncio.to_thread(tracker.snapshot)

    async def _flush_cache(self, state: _State) -> None:
        """Store the segment's successful results (called at its sync point)."""
        pending, state.pending_cache = state.pending_cache, []
        for key, task_id, files, stdout_path in pending:
            record = state.records[task_id]
            if record.status is not TaskStatus.SUCCEEDED:
                continue
            stored = await self._store_in_cache(key, record, files, stdout_path)
            self._save(state, replace(record, cache={"hit": False, "stored": stored}))

    def _final_contents(self, files: tuple[FileChange, ...]) -> dict[str, bytes | None] | None:
        contents: dict[str, bytes | None] = {}
        total = 0
        for change in files:
            path = self.workdir / change.path
            try:
                data: bytes | None = path.read_bytes() if path.is_file() else None
            except OSError:
                return None
            total += len(data or b"")
            if total > _MAX_CACHED_BYTES:
                return None
            contents[change.path] = data
        return contents

    async def _store_in_cache(self, key: str, record: TaskRecord,
                              files: tuple[FileChange, ...], stdout_path: Path) -> bool:
        assert self.cache is not None
        before = {change.path: change.before for change in files}
        contents = await asyncio.to_thread(self._final_contents, files)
        if contents is None:
            return False
        stdout = ""
        if self._uses_files:
            with contextlib.suppress(OSError):
                stdout = stdout_path.read_text(encoding="utf-8", errors="replace")
        value = CachedTaskResult(stdout=stdout or record.stdout_tail,
                                 result_text=record.result_text, cost_usd=record.cost_usd,
                                 tokens_in=record.tokens_in, tokens_out=record.tokens_out,
                                 files=contents, before=before)
        try:
            await self.cache.put(key, value)
        except Exception as exc:  # a cache outage must not fail a task that succeeded
            self._emit(EventKind.CACHE_HIT, record.run_id, record.task_id,
                       data={"stored": False, "error": f"{type(exc).__name__}: {exc}"})
            return False
        return True

    async def _replay(self, state: _State, worker: int, record: TaskRecord,
                      hit: CachedTaskResult, key: str) -> TaskRecord:
        level = cache_level(self.cache)
        before = await self._snapshot()
        kept = await asyncio.to_thread(_write_files, self.workdir, hit.files, hit.before)
        after = await self._snapshot()
        files = diff_snapshots(before, after) if before is not None and after is not None else ()
        self._emit(EventKind.CACHE_HIT, state.run_id, record.task_id, worker,
                   data={"level": level, "files": len(hit.files), "kept": kept})
        overlaps = state.overlaps.pop(record.task_id, set())
        return replace(record, status=TaskStatus.SUCCEEDED, ended_at=time.time(),
                       concurrent_with=tuple(sorted(overlaps))[:_MAX_CONCURRENT_LISTED],
                       argv=(), pid=None, exit_code=0, stdout_tail=tail(hit.stdout),
                       result_text=hit.result_text, files=files, cost_usd=0.0,
                       tokens_in=hit.tokens_in, tokens_out=hit.tokens_out,
                       cache={"hit": True, "level": level, "key": key,
                              "cached_cost_usd": hit.cost_usd, "kept_newer": kept})

    def _kill_orphans(self, run_id: str) -> list[str]:
        """Kill process groups left by a dead executor (only if the pid is still that process)."""
        assert self.store is not None
        killed = []
        for task_id, pid, start in self.store.orphans(run_id):
            if start is not None and proc_start_time(pid) == start:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(pid, signal.SIGKILL)
                    killed.append(task_id)
        return killed


def _write_prompt(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def _write_files(root: Path, files: Mapping[str, bytes | None],
                 before: Mapping[str, str | None]) -> list[str]:
    """Replay cached files; a file changed by someone else since is kept (and listed)."""
    import hashlib

    kept = []
    for rel, content in sorted(files.items()):
        path = (root / rel).resolve()
        if root.resolve() not in path.parents:
            raise ExecutionError(f"cached file escapes the workspace: {rel!r}")
        if rel in before:
            try:
                current: str | None = hashlib.sha256(path.read_bytes()).hexdigest()
            except OSError:
                current = None
            wanted = None if content is None else hashlib.sha256(content).hexdigest()
            if current not in (before[rel], wanted):
                kept.append(rel)
                continue
        if content is None:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content)
    return kept


def _executor_alive(pid: int | None) -> bool:
    if not pid or pid == os.getpid():
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return b"perfect21" in cmdline

