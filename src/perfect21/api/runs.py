"""Runs started over HTTP: the executor in the server's event loop, events fanned out live.

The manager adds no execution logic of its own: it picks the server-side
:class:`~perfect21.api.profiles.RunnerProfile`, builds a
:class:`~perfect21.executor.LocalExecutor` for it and keeps, per run, the executor's event
bus so that WebSocket clients can replay what happened and follow what happens.

Bounded: at most ``max_active`` runs at once (more → :class:`CapacityError`, HTTP 503), at
most ``keep_finished`` finished runs kept in memory for late subscribers (older ones are
served from the run store), at most ``MAX_SUBSCRIBERS`` WebSocket clients per run, each with
a queue of ``QUEUE_SIZE`` events (a client that falls behind loses events, never the run).
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from perfect21._config import Config
from perfect21._errors import CapacityError, NotFoundError
from perfect21.api.profiles import RunnerProfile
from perfect21.planner.models import AgentSpec, Gate, Plan

__all__ = ["LiveRun", "RunManager", "strip_gate_commands"]

log = logging.getLogger("perfect21.api")

MAX_SUBSCRIBERS = 32
QUEUE_SIZE = 1000
END = None  # sentinel put on subscriber queues when the run is over


def strip_gate_commands(plan: Plan) -> Plan:
    """A plan from a client keeps its gate names but loses their commands.

    The executor only runs gates it is given explicitly (the profile's), so this is defence
    in depth: a stored plan never carries a command line that came from a request.
    """
    stages = []
    for stage in plan.stages:
        if stage.gate is not None and any(c.command for c in stage.gate.checks):
            checks = tuple(c.replace(command="") for c in stage.gate.checks)
            stage = stage.replace(gate=Gate(stage.gate.name, checks))
        stages.append(stage)
    return plan.replace(stages=tuple(stages))


class LiveRun:
    """One run of this server process: its executor, task and subscribers."""

    __slots__ = ("executor", "profile", "run_id", "status", "subscribers", "task")

    def __init__(self, run_id: str, profile: str, executor: Any) -> None:
        self.run_id = run_id
        self.profile = profile
        self.executor = executor
        self.task: asyncio.Task[Any] | None = None
        self.subscribers: set[asyncio.Queue[dict[str, Any] | None]] = set()
        self.status = "running"
        executor.events.subscribe(self._publish)

    @property
    def done(self) -> bool:
        return self.task is not None and self.task.done()

    def _publish(self, event: Any) -> None:
        data = event.to_dict()
        for queue in tuple(self.subscribers):
            if queue.full():
                continue  # this client is too slow: it misses events, the run goes on
            queue.put_nowait(data)

    def subscribe(self) -> tuple[list[dict[str, Any]], asyncio.Queue[dict[str, Any] | None]]:
        """The events so far and a queue of the ones to come (no await in between: no gap)."""
        if len(self.subscribers) >= MAX_SUBSCRIBERS:
            raise CapacityError(f"run {self.run_id} already has {MAX_SUBSCRIBERS} watchers")
        queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue(QUEUE_SIZE)
        history = [e.to_dict() for e in self.executor.events.history]
        if self.done:
            queue.put_nowait(END)
        else:
            self.subscribers.add(queue)
        return history, queue

    def unsubscribe(self, queue: asyncio.Queue[dict[str, Any] | None]) -> None:
        self.subscribers.discard(queue)

    def finish(self, status: str) -> None:
        self.status = status
        for queue in tuple(self.subscribers):
            if queue.full():
                queue.get_nowait()
            queue.put_nowait(END)
        self.subscribers.clear()


class RunManager:
    """Starts, tracks, cancels and streams the runs of one server."""

    def __init__(self, config: Config, profiles: dict[str, RunnerProfile], *,
                 agents: Callable[[str], AgentSpec | None] | None = None,
                 admission: Any = None, max_active: int = 4, keep_finished: int = 32,
                 on_result: Callable[[Any, int], None] | None = None) -> None:
        self.config = config
        self.profiles = profiles
        self.agents = agents
        self.admission = admission
        self.max_active = max_active
        self.keep_finished = keep_finished
        self.on_result = on_result
        self.live: OrderedDict[str, LiveRun] = OrderedDict()
        self._store: Any = None
        self._limiter: asyncio.Semaphore | None = None

    @property
    def store(self) -> Any:
        """The run store (``home/runs.db``), opened on first use, in the loop's thread."""
        if self._store is None:
            from perfect21.executor.runs import RunStore

            self._store = RunStore(self.config.home,
                                   busy_timeout_s=self.config.decisions_busy_timeout_s)
        return self._store

    def profile(self, name: str) -> RunnerProfile:
        profile = self.profiles.get(name)
        if profile is None:
            known = ", ".join(sorted(self.profiles)) or "none configured"
            raise NotFoundError(f"runner profile {name!r} is not configured on this server "
                                f"(known: {known})")
        return profile

    def active(self) -> int:
        return sum(1 for run in self.live.values() if not run.done)

    async def start(self, profile_name: str, plan: Plan) -> LiveRun:
        """Start ``plan`` with a configured profile; returns once the run is stored."""
        from perfect21.executor.gates import parse_gate
        from perfect21.executor.local import ExecutorSettings, LocalExecutor
        from perfect21.executor.runners import make_runner
        from perfect21.executor.runs import new_run_id

        profile = self.profile(profile_name)
        if self.active() >= self.max_active:
            raise CapacityError(f"{self.max_active} runs are in progress; try again later")
        if self.admission is not None:
            self.admission.check_capacity()
        plan = strip_gate_commands(plan)
        settings = ExecutorSettings.from_config(
            self.config, workers=profile.workers, task_timeout_s=profile.timeout_s,
            use_cache=False)
        if self._limiter is None:
            self._limiter = asyncio.Semaphore(self.config.executor_max_concurrency)
        executor = LocalExecutor(
            make_runner(profile.runner, profile.settings), settings=settings,
            store=self.store, agents=self.agents,
            gates=[parse_gate(g) for g in profile.gates], workdir=profile.workdir,
            limiter=self._limiter, home=self.config.home, admission=self.admission)
        executor.preflight(plan)  # a bad plan is a 422 now, not a failed run later
        run = LiveRun(new_run_id(), profile.name, executor)
        run.task = asyncio.create_task(self._drive(run, plan), name=f"run {run.run_id}")
        self.live[run.run_id] = run
        self._forget_old()
        await asyncio.sleep(0)  # let the run create its record before we answer
        return run

    async def _drive(self, run: LiveRun, plan: Plan) -> None:
        status = "failed"
        try:
            result = await run.executor.run(plan, run_id=run.run_id)
            status = result.status.value
            if self.on_result is not None:
                self.on_result(result, run.executor.settings.workers)
        except asyncio.CancelledError:
            status = "interrupted"
            raise
        except Exception:  # stored by the executor as the run's error; log the detail here
            log.exception("run %s stopped with an executor error", run.run_id)
        finally:
            run.finish(status)

    def _forget_old(self) -> None:
        finished = [rid for rid, run in self.live.items() if run.done]
        for rid in finished[: max(0, len(finished) - self.keep_finished)]:
            del self.live[rid]

    def cancel(self, run_id: str) -> dict[str, Any]:
        run = self.live.get(run_id)
        if run is not None and not run.done:
            run.executor.cancel()
            return {"id": run_id, "cancelling": True, "status": "running"}
        record = self.store.get_run(run_id)  # NotFoundError → 404
        return {"id": record.id, "cancelling": False, "status": record.status.value}

    async def shutdown(self, timeout_s: float = 5.0) -> None:
        """Cancel what is still running (tasks go back to pending; runs stay resumable)."""
        pending = [run for run in self.live.values() if not run.done]
        for run in pending:
            run.executor.cancel()
        tasks = [run.task for run in pending if run.task is not None]
        if tasks:
            _done, still = await asyncio.wait(tasks, timeout=timeout_s)
            for task in still:
                task.cancel()
        if self._store is not None:
            self._store.close()
            self._store = None
