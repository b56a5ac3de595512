"""The run store: runs, tasks with provenance, and gate results in SQLite (``runs.db``).

Layout under the Perfect21 home::

    runs.db                       one row per run, per task, per gate result
    runs/RUN_ID/plan.json         the plan as it was run
    runs/RUN_ID/tasks/TASK/prompt.md, attempt-N.stdout, attempt-N.stderr

Every state change is committed before the executor moves on, so after ``kill -9`` the
database says which tasks had succeeded; ``resume`` re-runs the others only. The database
uses WAL with ``synchronous=NORMAL``: a commit survives the death of the process (the case
resume is for); only a power cut may lose the last commits, which resume then re-runs.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import sqlite3
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from perfect21._errors import NotFoundError, StoreError
from perfect21._sqlite import Migration, connect, migrate, transaction, translate_error
from perfect21.executor.tasks import (
    Attempt,
    FileChange,
    GateResult,
    RunStatus,
    TaskRecord,
    TaskStatus,
)
from perfect21.planner.models import Plan

__all__ = ["RunRecord", "RunStore", "new_run_id", "safe_name"]

_MIGRATIONS = (
    Migration(1, "runs, tasks, gates", """
CREATE TABLE runs (
    id TEXT PRIMARY KEY,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    status TEXT NOT NULL,
    request TEXT NOT NULL,
    plan_json TEXT NOT NULL,
    runner TEXT NOT NULL,
    runner_settings TEXT NOT NULL,
    options TEXT NOT NULL,
    workdir TEXT NOT NULL,
    executor_pid INTEGER,
    cost_usd REAL NOT NULL DEFAULT 0,
    error TEXT NOT NULL DEFAULT '',
    resumes INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX runs_created ON runs (created_at);
CREATE TABLE tasks (
    run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    task_id TEXT NOT NULL,
    position INTEGER NOT NULL,
    stage TEXT NOT NULL,
    agent TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts TEXT NOT NULL DEFAULT '[]',
    argv TEXT NOT NULL DEFAULT '[]',
    pid INTEGER,
    proc_start TEXT,
    exit_code INTEGER,
    started_at REAL,
    ended_at REAL,
    stdout_tail TEXT NOT NULL DEFAULT '',
    stderr_tail TEXT NOT NULL DEFAULT '',
    result_text TEXT NOT NULL DEFAULT '',
    prompt_path TEXT NOT NULL DEFAULT '',
    stdout_path TEXT NOT NULL DEFAULT '',
    stderr_path TEXT NOT NULL DEFAULT '',
    files TEXT NOT NULL DEFAULT '[]',
    concurrent_with TEXT NOT NULL DEFAULT '[]',
    cost_usd REAL,
    tokens_in INTEGER,
    tokens_out INTEGER,
    error TEXT NOT NULL DEFAULT '',
    cache TEXT NOT NULL DEFAULT '{}',
    extra TEXT NOT NULL DEFAULT '{}',
    PRIMARY KEY (run_id, task_id)
);
CREATE TABLE gates (
    run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    stage TEXT NOT NULL,
    name TEXT NOT NULL,
    result TEXT NOT NULL,
    passed INTEGER NOT NULL,
    PRIMARY KEY (run_id, stage, name)
);
"""),
)


def new_run_id() -> str:
    """Sortable and unique: ``r-YYYYmmdd-HHMMSS-xxxxxx``."""
    return time.strftime("r-%Y%m%d-%H%M%S-", time.gmtime()) + secrets.token_hex(3)


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def safe_name(text: str) -> str:
    """A file-system-safe folder name for a task id (stable, collision-free)."""
    clean = _UNSAFE.sub("_", text)[:80] or "_"
    if clean != text or clean in {".", ".."}:
        import hashlib

        clean += "-" + hashlib.sha256(text.encode()).hexdigest()[:8]
    return clean


@dataclass(frozen=True, slots=True, kw_only=True)
class RunRecord:
    """A run: the plan, how it is run (runner + options), where, and how it stands."""

    id: str
    created_at: float
    updated_at: float
    status: RunStatus
    request: str
    plan: Plan
    runner: str
    runner_settings: Mapping[str, Any]
    options: Mapping[str, Any]
    workdir: str
    executor_pid: int | None = None
    cost_usd: float = 0.0
    error: str = ""
    resumes: int = 0
    tasks: tuple[TaskRecord, ...] = ()
    gates: tuple[GateResult, ...] = field(default=())

    def counts(self) -> dict[str, int]:
        counts = {s.value: 0 for s in TaskStatus}
        for task in self.tasks:
            counts[task.status.value] += 1
        return counts

    def to_dict(self, *, with_plan: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id, "status": self.status.value, "request": self.request,
            "created_at": self.created_at, "updated_at": self.updated_at,
            "runner": self.runner, "runner_settings": dict(self.runner_settings),
            "options": dict(self.options), "workdir": self.workdir,
            "executor_pid": self.executor_pid, "cost_usd": round(self.cost_usd, 6),
            "error": self.error, "resumes": self.resumes, "counts": self.counts(),
            "tasks": [t.to_dict() for t in self.tasks],
            "gates": [g.to_dict() for g in self.gates],
        }
        if with_plan:
            out["plan"] = self.plan.to_dict()
        return out


class RunStore:
    """Runs and their provenance in ``home/runs.db``; folders under ``home/runs/``."""

    def __init__(self, home: Path, *, busy_timeout_s: float = 5.0) -> None:
        self.home = home
        self.path = home / "runs.db"
        self.runs_dir = home / "runs"
        self._timeout = busy_timeout_s
        self._conn = connect(self.path, busy_timeout_s=busy_timeout_s, synchronous="NORMAL")
        migrate(self._conn, _MIGRATIONS, path=str(self.path))

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> RunStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ folders

    def run_dir(self, run_id: str) -> Path:
        return self.runs_dir / run_id

    def task_dir(self, run_id: str, task_id: str) -> Path:
        return self.run_dir(run_id) / "tasks" / safe_name(task_id)

    # ------------------------------------------------------------------ writes

    def _write(self, sql: str, params: Iterable[Any]) -> None:
        try:
            with transaction(self._conn):
                self._conn.execute(sql, tuple(params))
        except sqlite3.Error as exc:
            raise translate_error(exc, self.path, self._timeout) from None

    def create_run(self, *, run_id: str, plan: Plan, runner: str,
                   runner_settings: Mapping[str, Any], options: Mapping[str, Any],
                   workdir: Path) -> None:
        now = time.time()
        run_dir = self.run_dir(run_id)
        try:
            run_dir.mkdir(parents=True, exist_ok=True)
            (run_dir / "plan.json").write_text(
                json.dumps(plan.to_dict(), ensure_ascii=False, indent=2), encoding="utf-8")
        except OSError as exc:
            raise StoreError(f"{run_dir}: cannot write run folder: {exc.strerror}") from None
        try:
            with transaction(self._conn):
                self._conn.execute(
                    "INSERT INTO runs (id, created_at, updated_at, status, request, plan_json,"
                    " runner, runner_settings, options, workdir, executor_pid)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (run_id, now, now, RunStatus.RUNNING.value, plan.request,
                     json.dumps(plan.to_dict(), ensure_ascii=False), runner,
                     json.dumps(dict(runner_settings), default=str),
                     json.dumps(dict(options), default=str), str(workdir), os.getpid()),
                )
                self._conn.executemany(
                    "INSERT INTO tasks (run_id, task_id, position, stage, agent, status)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    [(run_id, t.id, i, t.stage, t.agent, TaskStatus.PENDING.value)
                     for i, t in enumerate(plan.tasks)],
                )
        except sqlite3.Error as exc:
            raise translate_error(exc, self.path, self._timeout) from None

    def set_run_status(self, run_id: str, status: RunStatus, *, error: str = "",
                       cost_usd: float | None = None) -> None:
        if cost_usd is None:
            self._write("UPDATE runs SET status = ?, error = ?, updated_at = ? WHERE id = ?",
                        (status.value, error, time.time(), run_id))
        else:
            self._write("UPDATE runs SET status = ?, error = ?, updated_at = ?, cost_usd = ?"
                        " WHERE id = ?", (status.value, error, time.time(), cost_usd, run_id))

    def mark_resumed(self, run: RunRecord) -> bool:
        """Claim ``run`` for this process; False if another resume claimed it first.

        A compare-and-set on (status, executor pid) as read, so two concurrent resumes
        cannot both run the same tasks.
        """
        try:
            with transaction(self._conn):
                cur = self._conn.execute(
                    "UPDATE runs SET status = ?, resumes = resumes + 1, executor_pid = ?,"
                    " error = '', updated_at = ? WHERE id = ? AND status = ?"
                    " AND executor_pid IS ?",
                    (RunStatus.RUNNING.value, os.getpid(), time.time(), run.id,
                     run.status.value, run.executor_pid))
                return cur.rowcount == 1
        except sqlite3.Error as exc:
            raise translate_error(exc, self.path, self._timeout) from None

    def task_started(self, run_id: str, task_id: str, *, started_at: float,
                     prompt_path: str) -> None:
        self._write("UPDATE tasks SET status = ?, started_at = ?, ended_at = NULL,"
                    " prompt_path = ?, pid = NULL, proc_start = NULL"
                    " WHERE run_id = ? AND task_id = ?",
                    (TaskStatus.RUNNING.value, started_at, prompt_path, run_id, task_id))

    def task_spawned(self, run_id: str, task_id: str, *, pid: int, argv: tuple[str, ...],
                     stdout_path: str, stderr_path: str) -> None:
        """Recorded as soon as the process exists, so a resume can kill an orphaned group."""
        self._write("UPDATE tasks SET pid = ?, proc_start = ?, argv = ?, stdout_path = ?,"
                    " stderr_path = ? WHERE run_id = ? AND task_id = ?",
                    (pid, proc_start_time(pid), json.dumps(list(argv)), stdout_path,
                     stderr_path, run_id, task_id))

    def save_task(self, record: TaskRecord) -> None:
        """Write a task's whole record (used when it finishes, is skipped or reset)."""
        self._write(
            "UPDATE tasks SET status = ?, attempts = ?, argv = ?, pid = ?, exit_code = ?,"
            " started_at = ?, ended_at = ?, stdout_tail = ?, stderr_tail = ?, result_text = ?,"
            " prompt_path = ?, stdout_path = ?, stderr_path = ?, files = ?,"
            " concurrent_with = ?, cost_usd = ?, tokens_in = ?, tokens_out = ?, error = ?,"
            " cache = ?, extra = ? WHERE run_id = ? AND task_id = ?",
            (record.status.value, json.dumps([a.to_dict() for a in record.attempts]),
             json.dumps(list(record.argv)), record.pid, record.exit_code, record.started_at,
             record.ended_at, record.stdout_tail, record.stderr_tail, record.result_text,
             record.prompt_path, record.stdout_path, record.stderr_path,
             json.dumps([f.to_dict() for f in record.files]),
             json.dumps(list(record.concurrent_with)), record.cost_usd, record.tokens_in,
             record.tokens_out, record.error, json.dumps(dict(record.cache), default=str),
             json.dumps(dict(record.extra), default=str), record.run_id, record.task_id),
        )

    def save_gate(self, run_id: str, result: GateResult) -> None:
        self._write("INSERT OR REPLACE INTO gates (run_id, stage, name, result, passed)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (run_id, result.stage, result.name, json.dumps(result.to_dict()),
                     int(result.passed)))

    def add_cost(self, run_id: str, cost_usd: float) -> None:
        self._write("UPDATE runs SET cost_usd = cost_usd + ?, updated_at = ? WHERE id = ?",
                    (cost_usd, time.time(), run_id))

    # ------------------------------------------------------------------ reads

    def _query(self, sql: str, params: Iterable[Any] = ()) -> list[sqlite3.Row]:
        try:
            cur = self._conn.execute(sql, tuple(params))
            cur.row_factory = sqlite3.Row
            return list(cur.fetchall())
        except sqlite3.Error as exc:
            raise translate_error(exc, self.path, self._timeout) from None

    def list_runs(self, *, limit: int = 50) -> list[RunRecord]:
        rows = self._query("SELECT * FROM runs ORDER BY created_at DESC, id DESC LIMIT ?",
                           (limit,))
        counts: dict[str, list[tuple[str, int]]] = {}
        for row in self._query("SELECT run_id, status, COUNT(*) AS n FROM tasks GROUP BY"
                               " run_id, status"):
            counts.setdefault(row["run_id"], []).append((row["status"], row["n"]))
        out = []
        for row in rows:
            run = _run_from_row(row)
            stub_tasks = tuple(
                TaskRecord(run_id=run.id, task_id="", stage="", agent="",
                           status=TaskStatus(status))
                for status, n in counts.get(run.id, []) for _ in range(n)
            )
            out.append(_replace_tasks(run, stub_tasks, ()))
        return out

    def get_run(self, run_id: str) -> RunRecord:
        rows = self._query("SELECT * FROM runs WHERE id = ?", (run_id,))
        if not rows:
            prefix = self._query("SELECT id FROM runs WHERE id LIKE ? ORDER BY id LIMIT 2",
                                 (run_id.replace("%", "") + "%",))
            if len(prefix) == 1:
                return self.get_run(str(prefix[0]["id"]))
            raise NotFoundError(f"run not found: {run_id} (see `perfect21 runs list`)")
        run = _run_from_row(rows[0])
        tasks = tuple(_task_from_row(r) for r in self._query(
            "SELECT * FROM tasks WHERE run_id = ? ORDER BY position", (run.id,)))
        gates = tuple(GateResult.from_dict(json.loads(r["result"])) for r in self._query(
            "SELECT result FROM gates WHERE run_id = ? ORDER BY rowid", (run.id,)))
        return _replace_tasks(run, tasks, gates)

    def orphans(self, run_id: str) -> list[tuple[str, int, str | None]]:
        """Tasks left ``running`` by a dead executor: (task id, pid, recorded start time)."""
        return [(r["task_id"], int(r["pid"]), r["proc_start"]) for r in self._query(
            "SELECT task_id, pid, proc_start FROM tasks WHERE run_id = ? AND status = ?"
            " AND pid IS NOT NULL", (run_id, TaskStatus.RUNNING.value))]


def _replace_tasks(run: RunRecord, tasks: tuple[TaskRecord, ...],
                   gates: tuple[GateResult, ...]) -> RunRecord:
    from dataclasses import replace

    return replace(run, tasks=tasks, gates=gates)


def _run_from_row(row: sqlite3.Row) -> RunRecord:
    return RunRecord(
        id=row["id"], created_at=row["created_at"], updated_at=row["updated_at"],
        status=RunStatus(row["status"]), request=row["request"],
        plan=Plan.from_dict(json.loads(row["plan_json"])), runner=row["runner"],
        runner_settings=json.loads(row["runner_settings"]), options=json.loads(row["options"]),
        workdir=row["workdir"], executor_pid=row["executor_pid"], cost_usd=row["cost_usd"],
        error=row["error"], resumes=row["resumes"],
    )


def _task_from_row(row: sqlite3.Row) -> TaskRecord:
    return TaskRecord(
        run_id=row["run_id"], task_id=row["task_id"], stage=row["stage"], agent=row["agent"],
        position=row["position"], status=TaskStatus(row["status"]),
        attempts=tuple(Attempt.from_dict(a) for a in json.loads(row["attempts"])),
        argv=tuple(json.loads(row["argv"])), pid=row["pid"], exit_code=row["exit_code"],
        started_at=row["started_at"], ended_at=row["ended_at"],
        stdout_tail=row["stdout_tail"], stderr_tail=row["stderr_tail"],
        result_text=row["result_text"], prompt_path=row["prompt_path"],
        stdout_path=row["stdout_path"], stderr_path=row["stderr_path"],
        files=tuple(FileChange.from_dict(f) for f in json.loads(row["files"])),
        concurrent_with=tuple(json.loads(row["concurrent_with"])), cost_usd=row["cost_usd"],
        tokens_in=row["tokens_in"], tokens_out=row["tokens_out"], error=row["error"],
        cache=json.loads(row["cache"]), extra=json.loads(row["extra"]),
    )


def proc_start_time(pid: int) -> str | None:
    """The kernel's start time of ``pid`` (field 22 of /proc/PID/stat): tells pid reuse apart."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may contain spaces and parentheses: split after the last ")".
    fields = text[text.rfind(")") + 2:].split()
    return fields[19] if len(fields) > 19 else None
