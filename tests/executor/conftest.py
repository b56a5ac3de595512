"""Plans built by hand and a real agent script for the executor tests."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path

import pytest

from perfect21.planner.models import Plan, StageMode, Task

AGENT_SCRIPT = textwrap.dedent(
    '''
    """A stand-in agent: reads its brief, works for a while, writes a file, prints JSON."""
    import json, os, sys, time

    task = os.environ["PERFECT21_TASK_ID"]
    workdir = os.environ["PERFECT21_WORKDIR"]
    brief = open(sys.argv[1], encoding="utf-8").read()
    behaviour = os.environ.get("AGENT_BEHAVIOUR_" + task.replace("-", "_"), "ok")
    attempt = int(os.environ["PERFECT21_ATTEMPT"])
    duration = float(os.environ.get("AGENT_SECONDS", "0.05"))
    if behaviour == "crash":
        print("agent crashed", file=sys.stderr)
        sys.exit(3)
    if behaviour == "crash-once" and attempt == 1:
        sys.exit(4)
    if behaviour == "hang":
        import subprocess
        child = subprocess.Popen(["sleep", "300"])
        with open(os.path.join(workdir, task + ".child"), "w") as fh:
            fh.write(str(child.pid))
        time.sleep(300)
    time.sleep(duration)
    with open(os.path.join(workdir, task + ".out"), "w", encoding="utf-8") as fh:
        fh.write(f"{task} done by {os.environ['PERFECT21_AGENT']}\\n")
    with open(os.path.join(workdir, "ran.log"), "a", encoding="utf-8") as fh:
        fh.write(task + "\\n")
    print("working on", task)
    print(json.dumps({"type": "result", "is_error": False, "result": f"{task} ok",
                      "total_cost_usd": 0.01,
                      "usage": {"input_tokens": len(brief), "output_tokens": 7}}))
    '''
)


def make_plan(stages: Sequence[Sequence[str]], *, request: str = "build a thing",
              deps: dict[str, Sequence[str]] | None = None,
              estimates: dict[str, float] | None = None,
              modes: Sequence[StageMode] | None = None) -> Plan:
    """A plan with one stage per entry; each task id becomes a task of agent ``agent-<id>``."""
    deps = deps or {}
    estimates = estimates or {}
    groups = [
        [Task(id=tid, agent=f"agent-{tid}", stage=f"stage{index}", brief=f"do {tid}",
              depends_on=tuple(deps.get(tid, ())), estimated_hours=estimates.get(tid, 0.0))
         for tid in ids]
        for index, ids in enumerate(stages, 1)
    ]
    return Plan.from_tasks(groups, id="plan-test", request=request, modes=modes)


@pytest.fixture
def agent_script(tmp_path: Path) -> Path:
    path = tmp_path / "agent.py"
    path.write_text(AGENT_SCRIPT, encoding="utf-8")
    return path


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    path = tmp_path / "work"
    path.mkdir()
    return path


@pytest.fixture
def agent_command(agent_script: Path) -> str:
    return f"{sys.executable} {agent_script} {{prompt_file}}"
