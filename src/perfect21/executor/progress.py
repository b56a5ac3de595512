"""Showing a run: a rich live view on a TTY, plain line logs otherwise, JSONL events.

All three are event-bus subscribers; none of them keeps more than a bounded amount of state.
``rich`` is imported only by :class:`LiveProgress`, i.e. only on a TTY.
"""

from __future__ import annotations

import json
import time
from collections import deque
from typing import IO, Any

from perfect21.executor.tasks import Event, EventKind

__all__ = ["JsonlSink", "LineProgress", "LiveProgress"]


class JsonlSink:
    """One JSON object per event and line (``--events jsonl``); flushed per line."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream

    def __call__(self, event: Event) -> None:
        self.stream.write(json.dumps(event.to_dict(), ensure_ascii=False, default=str) + "\n")
        self.stream.flush()


class LineProgress:
    """Plain, greppable log lines (for CI logs and pipes)."""

    def __init__(self, stream: IO[str], *, show_queued: bool = False) -> None:
        self.stream = stream
        self.show_queued = show_queued
        self.t0 = time.monotonic()

    def _line(self, text: str) -> None:
        self.stream.write(f"[{time.monotonic() - self.t0:7.2f}s] {text}\n")
        self.stream.flush()

    def __call__(self, event: Event) -> None:
        d: dict[str, Any] = dict(event.data)
        kind = event.kind
        if kind is EventKind.RUN_STARTED:
            self.t0 = time.monotonic()
            self._line(f"run {event.run_id}: {d.get('to_run')} of {d.get('tasks')} task(s) to "
                       f"run, {d.get('workers')} worker(s), runner {d.get('runner')}")
        elif kind is EventKind.STAGE_STARTED:
            self._line(f"stage {d.get('stage')}: {d.get('to_run')} task(s) to run")
        elif kind is EventKind.TASK_STARTED:
            self._line(f"  start  {event.task_id} ({d.get('agent')}) on worker {event.worker}")
        elif kind is EventKind.TASK_FINISHED:
            extra = f" {d['duration_s']:.2f}s" if d.get("duration_s") is not None else ""
            error = f" — {d['error']}" if d.get("error") else ""
            cached = " (cache)" if d.get("cached") and d.get("status") == "succeeded" else ""
            self._line(f"  {d.get('status', '?'):9} {event.task_id}{extra}{cached}{error}")
        elif kind is EventKind.TASK_RETRY:
            self._line(f"  retry  {event.task_id} after attempt {d.get('attempt')} "
                       f"({d.get('error')}), waiting {d.get('delay_s')}s")
        elif kind is EventKind.STEAL:
            self._line(f"  steal  {event.task_id}: worker {d.get('thief')} <- {d.get('victim')}")
        elif kind is EventKind.CACHE_HIT and "level" in d:
            self._line(f"  cache  {event.task_id} hit ({d.get('level') or 'cache'})")
        elif kind is EventKind.GATE_STARTED:
            self._line(f"gate {d.get('gate')} ({d.get('stage') or 'end'})")
        elif kind is EventKind.GATE_FINISHED:
            verdict = "passed" if d.get("passed") else f"FAILED: {d.get('reason')}"
            self._line(f"gate {d.get('name')}: {verdict}")
        elif kind is EventKind.ADMISSION_WAIT:
            self._line(f"  wait   {event.task_id}: {d.get('reason')}")
        elif kind is EventKind.BUDGET_REACHED:
            self._line(f"budget reached: spent ${d.get('spent_usd')} of "
                       f"${d.get('max_cost_usd')}; nothing new starts")
        elif kind is EventKind.RUN_FINISHED:
            self._line(f"run {event.run_id}: {d.get('status')} {d.get('counts')} in "
                       f"{d.get('makespan_s')}s, {d.get('steals')} steal(s)")


class LiveProgress:
    """A live table (rich) of stages and per-agent status; use as a context manager."""

    def __init__(self, *, max_rows: int = 40) -> None:
        from rich.console import Console
        from rich.live import Live

        self.console = Console(stderr=True)
        self.max_rows = max_rows
        self.tasks: dict[str, dict[str, Any]] = {}
        self.stages: dict[str, str] = {}
        self.log: deque[str] = deque(maxlen=6)
        self.steals = 0
        self.cost = 0.0
        self.run_id = ""
        self.t0 = time.monotonic()
        self._live = Live(console=self.console, refresh_per_second=4,
                          get_renderable=self._render, transient=False)

    def __enter__(self) -> LiveProgress:
        self._live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._live.__exit__(None, None, None)

    def __call__(self, event: Event) -> None:
        d = event.data
        kind = event.kind
        if kind is EventKind.RUN_STARTED:
            self.run_id = event.run_id
            self.t0 = time.monotonic()
            for stage in d.get("stages", ()):
                self.stages.setdefault(str(stage), "waiting")
        elif kind is EventKind.STAGE_STARTED:
            self.stages[str(d.get("stage"))] = "running"
        elif kind is EventKind.STAGE_FINISHED:
            self.stages[str(d.get("stage"))] = "done"
        elif kind is EventKind.TASK_QUEUED:
            self.tasks.setdefault(event.task_id, {"status": "queued", "agent": ""})
        elif kind is EventKind.TASK_STARTED:
            self.tasks[event.task_id] = {"status": "running", "agent": d.get("agent", ""),
                                         "stage": d.get("stage", ""), "start": time.monotonic(),
                                         "worker": event.worker}
        elif kind is EventKind.TASK_FINISHED:
            info = self.tasks.setdefault(event.task_id, {"agent": d.get("agent", "")})
            info.update(status=d.get("status"), duration=d.get("duration_s"))
            if d.get("cost_usd"):
                self.cost += float(d["cost_usd"])
        elif kind is EventKind.STEAL:
            self.steals += 1
        elif kind in (EventKind.TASK_RETRY, EventKind.GATE_FINISHED, EventKind.BUDGET_REACHED,
                      EventKind.ADMISSION_WAIT):
            self.log.append(f"{kind.value}: {event.task_id or d.get('name', '')} "
                            f"{d.get('error') or d.get('reason') or ''}")

    def _render(self) -> Any:
        from rich.console import Group
        from rich.table import Table
        from rich.text import Text

        elapsed = time.monotonic() - self.t0
        stages = "  ".join(f"{name}:{state}" for name, state in self.stages.items())
        header = Text(f"run {self.run_id}  {elapsed:6.1f}s  steals {self.steals}  "
                      f"cost ${self.cost:.4f}\n{stages}")
        table = Table(show_edge=False, pad_edge=False)
        for column in ("task", "agent", "status", "worker", "time"):
            table.add_column(column)
        now = time.monotonic()
        # Running and failed tasks first: with many tasks, what is happening now matters.
        rank = {"running": 0, "failed": 1, "queued": 2}
        rows = sorted(self.tasks.items(), key=lambda kv: rank.get(str(kv[1].get("status")), 3))
        for shown, (task_id, info) in enumerate(rows):
            if shown >= self.max_rows:
                table.add_row("…", "", f"{len(self.tasks) - shown} more", "", "")
                break
            status = str(info.get("status", ""))
            if status == "running":
                secs = now - float(info.get("start", now))
            else:
                secs = float(info.get("duration") or 0.0)
            style = {"succeeded": "green", "failed": "red", "running": "yellow",
                     "skipped": "dim"}.get(status, "")
            table.add_row(task_id, str(info.get("agent", "")), Text(status, style=style),
                          str(info.get("worker", "")), f"{secs:.1f}s")
        return Group(header, table, Text("\n".join(self.log)))
