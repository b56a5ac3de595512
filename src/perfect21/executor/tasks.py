"""Values of the executor: task and run states, per-task provenance, results and events.

Everything here is a frozen, slotted dataclass or a ``str`` Enum, so it can be shared between
the scheduler, the run store, the progress view and the event stream without copying.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

__all__ = [
    "Attempt",
    "Event",
    "EventKind",
    "FileChange",
    "GateResult",
    "RunStatus",
    "RunnerResult",
    "TaskRecord",
    "TaskStatus",
]

# Longest stdout/stderr tail kept in the database; the full text is in the run folder.
TAIL_CHARS = 4000


class TaskStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"
    CANCELLED = "cancelled"

    @property
    def done(self) -> bool:
        return self in _TERMINAL


_TERMINAL = frozenset({TaskStatus.SUCCEEDED, TaskStatus.FAILED, TaskStatus.SKIPPED,
                       TaskStatus.CANCELLED})


class RunStatus(StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"  # a task failed (after its retries) or a gate failed
    STOPPED = "stopped"  # --max-cost reached; resumable
    INTERRUPTED = "interrupted"  # Ctrl-C / SIGTERM / the executor died; resumable


class EventKind(StrEnum):
    RUN_STARTED = "run_started"
    RUN_FINISHED = "run_finished"
    STAGE_STARTED = "stage_started"
    STAGE_FINISHED = "stage_finished"
    TASK_QUEUED = "task_queued"
    TASK_STARTED = "task_started"
    TASK_RETRY = "task_retry"
    TASK_FINISHED = "task_finished"
    STEAL = "steal"
    CACHE_HIT = "cache_hit"
    GATE_STARTED = "gate_started"
    GATE_FINISHED = "gate_finished"
    BUDGET_REACHED = "budget_reached"
    ADMISSION_WAIT = "admission_wait"  # the memory guard holds new work back
    INTERRUPTED = "interrupted"


@dataclass(frozen=True, slots=True)
class Event:
    """Something the executor did or decided; ``data`` carries the reason and the numbers."""

    kind: EventKind
    run_id: str
    task_id: str = ""
    worker: int = -1
    data: Mapping[str, Any] = field(default_factory=dict)
    ts: float = field(default_factory=time.time)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"event": self.kind.value, "ts": round(self.ts, 6),
                               "run_id": self.run_id}
        if self.task_id:
            out["task_id"] = self.task_id
        if self.worker >= 0:
            out["worker"] = self.worker
        out.update(self.data)
        return out


@dataclass(frozen=True, slots=True)
class FileChange:
    """One file the workspace saw change while a task ran (``None`` hash = absent)."""

    path: str
    before: str | None
    after: str | None

    @property
    def kind(self) -> str:
        if self.before is None:
            return "added"
        if self.after is None:
            return "deleted"
        return "modified"

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "change": self.kind, "before": self.before,
                "after": self.after}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FileChange:
        return cls(str(data["path"]), data.get("before"), data.get("after"))


@dataclass(frozen=True, slots=True, kw_only=True)
class RunnerResult:
    """What a runner reports for one attempt.

    ``retryable`` is the runner's judgement: a crash or a timeout may succeed next time, a
    misconfiguration or an exhausted agent budget will not.
    """

    ok: bool
    exit_code: int | None = None
    argv: tuple[str, ...] = ()
    pid: int | None = None
    stdout_tail: str = ""
    stderr_tail: str = ""
    result_text: str = ""
    cost_usd: float | None = None
    tokens_in: int | None = None
    tokens_out: int | None = None
    retryable: bool = False
    timed_out: bool = False
    error: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class Attempt:
    """One try of a task (a task has 1 + retries attempts at most)."""

    number: int
    started_at: float
    ended_at: float
    exit_code: int | None
    pid: int | None
    error: str = ""
    timed_out: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"number": self.number, "started_at": self.started_at,
                "ended_at": self.ended_at, "duration_s": round(self.ended_at - self.started_at, 6),
                "exit_code": self.exit_code, "pid": self.pid, "error": self.error,
                "timed_out": self.timed_out}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Attempt:
        return cls(number=int(data["number"]), started_at=float(data["started_at"]),
                   ended_at=float(data["ended_at"]), exit_code=data.get("exit_code"),
                   pid=data.get("pid"), error=str(data.get("error", "")),
                   timed_out=bool(data.get("timed_out", False)))


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskRecord:
    """A task's state and provenance: what exactly ran, for how long, and what it changed."""

    run_id: str
    task_id: str
    stage: str
    agent: str
    position: int = 0
    status: TaskStatus = TaskStatus.PENDING
    attempts: tuple[Attempt, ...] = ()
    argv: tuple[str, ...] = ()
    pid: int | None = None
    exit_code: int | None = None
    started_at: float | None = None
    ended_at: float | None = None
    stdout_tail: str = ""
    stderr_tail: str = ""
    result_text: str = ""
    prompt_path: str = ""
    stdout_path: str = ""
    stderr_path: str = ""
    files: tuple[FileChange, ...] = ()
    concurrent_with: tuple[str, ...] = ()
    cost_usd: float | None = None
    tokens_in: int | None = None
    tokens_out: int | None = None
    error: str = ""
    cache: Mapping[str, Any] = field(default_factory=dict)
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def duration_s(self) -> float | None:
        if self.started_at is None or self.ended_at is None:
            return None
        return self.ended_at - self.started_at

    def to_dict(self) -> dict[str, Any]:
        duration = self.duration_s
        return {
            "run_id": self.run_id,
            "task_id": self.task_id,
            "stage": self.stage,
            "agent": self.agent,
            "position": self.position,
            "status": self.status.value,
            "attempts": [a.to_dict() for a in self.attempts],
            "argv": list(self.argv),
            "pid": self.pid,
            "exit_code": self.exit_code,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "duration_s": None if duration is None else round(duration, 6),
            "stdout_tail": self.stdout_tail,
            "stderr_tail": self.stderr_tail,
            "result_text": self.result_text,
            "prompt_path": self.prompt_path,
            "stdout_path": self.stdout_path,
            "stderr_path": self.stderr_path,
            "files_changed": [f.to_dict() for f in self.files],
            "concurrent_with": list(self.concurrent_with),
            "cost_usd": self.cost_usd,
            "tokens_in": self.tokens_in,
            "tokens_out": self.tokens_out,
            "error": self.error,
            "cache": dict(self.cache),
            "extra": dict(self.extra),
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class GateResult:
    """The outcome of one gate command at a stage's sync point."""

    stage: str
    name: str
    command: str
    passed: bool
    exit_code: int | None
    value: float | None = None
    threshold: float | None = None
    output_tail: str = ""
    started_at: float = 0.0
    duration_s: float = 0.0
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"stage": self.stage, "name": self.name, "command": self.command,
                "passed": self.passed, "exit_code": self.exit_code, "value": self.value,
                "threshold": self.threshold, "output_tail": self.output_tail,
                "started_at": self.started_at, "duration_s": round(self.duration_s, 6),
                "reason": self.reason}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GateResult:
        return cls(stage=str(data["stage"]), name=str(data["name"]),
                   command=str(data.get("command", "")), passed=bool(data["passed"]),
                   exit_code=data.get("exit_code"), value=data.get("value"),
                   threshold=data.get("threshold"), output_tail=str(data.get("output_tail", "")),
                   started_at=float(data.get("started_at", 0.0)),
                   duration_s=float(data.get("duration_s", 0.0)),
                   reason=str(data.get("reason", "")))


def tail(text: str, limit: int = TAIL_CHARS) -> str:
    """The last ``limit`` characters of ``text`` (prefixed with an ellipsis when cut)."""
    if len(text) <= limit:
        return text
    return "…" + text[-(limit - 1):]
