"""Run a plan for real: work-stealing asyncio executor, agent runners, gates, provenance.

Public names are re-exported here; heavy or optional parts (rich) are imported only where
they are used.
"""

from __future__ import annotations

from perfect21.executor.cache_hook import (
    CachedTaskResult,
    InMemoryTaskCache,
    TaskCache,
    task_cache_key,
    workspace_fingerprint,
)
from perfect21.executor.events import EventBus
from perfect21.executor.gates import GateCommand, parse_gate
from perfect21.executor.local import ExecutorSettings, LocalExecutor, RunResult
from perfect21.executor.runners import (
    ClaudeRunner,
    CommandRunner,
    PythonRunner,
    Runner,
    TaskContext,
    make_runner,
)
from perfect21.executor.runs import RunRecord, RunStore
from perfect21.executor.tasks import (
    Event,
    EventKind,
    FileChange,
    GateResult,
    RunnerResult,
    RunStatus,
    TaskRecord,
    TaskStatus,
)

__all__ = [
    "CachedTaskResult",
    "ClaudeRunner",
    "CommandRunner",
    "Event",
    "EventBus",
    "EventKind",
    "ExecutorSettings",
    "FileChange",
    "GateCommand",
    "GateResult",
    "InMemoryTaskCache",
    "LocalExecutor",
    "PythonRunner",
    "RunRecord",
    "RunResult",
    "RunStatus",
    "RunStore",
    "Runner",
    "RunnerResult",
    "TaskCache",
    "TaskContext",
    "TaskRecord",
    "TaskStatus",
    "make_runner",
    "parse_gate",
    "task_cache_key",
    "workspace_fingerprint",
]
