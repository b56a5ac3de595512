"""The benchmark's output shape (a quick, scaled-down run) and the progress views.

No performance is asserted here: `perfect21 bench executor` measures it."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys

from perfect21.bench.executor import make_workload
from perfect21.executor.progress import JsonlSink, LineProgress, LiveProgress
from perfect21.executor.tasks import Event, EventKind


def test_workload_is_skewed_and_scaled_to_its_lower_bound() -> None:
    workload = make_workload(21, 100, 2.0)
    durations = sorted(workload.durations)
    median = durations[50]
    assert sum(d > 10 * median for d in durations) == 3
    assert abs(workload.lower_bound - 2.0) < 0.01
    assert len(workload.estimates) == 100 and workload.estimates != workload.durations


def test_bench_json_has_the_issue_keys() -> None:
    out = subprocess.run([sys.executable, "-m", "perfect21", "bench", "executor", "--json",
                          "--scale", "0.05"], capture_output=True, text=True, timeout=120,
                         check=False, env=dict(os.environ))
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    for mode in ("subprocess", "inprocess"):
        for key in ("efficiency", "concurrency", "makespan_s", "lower_bound_s",
                    "overhead_us_per_task", "steals", "baseline_efficiency",
                    "baseline_makespan_s", "speedup_vs_baseline"):
            assert isinstance(report[mode][key], int | float), (mode, key)
    assert "stands in for an agent" in report["subprocess_task"]
    assert "[executor]" in out.stderr


def _events() -> list[Event]:
    return [
        Event(EventKind.RUN_STARTED, "r1", data={"tasks": 2, "stages": ["s1"], "workers": 2,
                                                 "runner": "command", "to_run": 2}),
        Event(EventKind.STAGE_STARTED, "r1", data={"stage": "s1", "to_run": 2}),
        Event(EventKind.TASK_STARTED, "r1", "a", 0, {"agent": "python-pro", "stage": "s1"}),
        Event(EventKind.STEAL, "r1", "b", 1, {"thief": 1, "victim": 0, "cost": 1.0}),
        Event(EventKind.TASK_RETRY, "r1", "a", 0, {"attempt": 1, "error": "exit code 3",
                                                   "delay_s": 0.5}),
        Event(EventKind.TASK_FINISHED, "r1", "a", 0, {"status": "succeeded",
                                                      "duration_s": 1.5, "cost_usd": 0.02}),
        Event(EventKind.RUN_FINISHED, "r1", data={"status": "succeeded", "counts": {},
                                                  "makespan_s": 2.0, "steals": 1}),
    ]


def test_line_progress_and_jsonl_stream() -> None:
    lines, jsonl = io.StringIO(), io.StringIO()
    line_view, sink = LineProgress(lines), JsonlSink(jsonl)
    for event in _events():
        line_view(event)
        sink(event)
    text = lines.getvalue()
    assert "start  a (python-pro) on worker 0" in text
    assert "steal  b: worker 1 <- 0" in text and "retry  a after attempt 1" in text
    rows = [json.loads(line) for line in jsonl.getvalue().splitlines()]
    assert [r["event"] for r in rows][:2] == ["run_started", "stage_started"]
    assert rows[3]["worker"] == 1 and rows[3]["victim"] == 0


def test_live_view_renders_stages_agents_and_steals() -> None:
    from rich.console import Console

    live = LiveProgress()
    for event in _events():
        live(event)
    console = Console(file=io.StringIO(), width=100)
    console.print(live._render())
    screen = console.file.getvalue()  # type: ignore[attr-defined]
    assert "run r1" in screen and "steals 1" in screen and "s1:running" in screen
    assert "python-pro" in screen and "succeeded" in screen
