"""`perfect21 run` and `perfect21 runs …` as a user runs them: real processes end to end."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from perfect21.executor import RunStatus, RunStore, TaskStatus

from .conftest import make_plan


def _cli(*args: str, cwd: Path, timeout: float = 60, **env: str
         ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "perfect21", *args], cwd=cwd, text=True,
                          capture_output=True, timeout=timeout, env={**os.environ, **env},
                          check=False)


def _plan_file(tmp_path: Path, stages: list[list[str]], name: str = "plan.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(make_plan(stages).to_dict()), encoding="utf-8")
    return path


def test_invalid_plan_json_reports_the_position(tmp_path: Path) -> None:
    bad = tmp_path / "plan.json"
    bad.write_text('{\n  "id": "x",\n  "stages": [,]\n}\n')
    out = _cli("run", "--plan", str(bad), "--command", "true", cwd=tmp_path)
    assert out.returncode == 2
    assert "invalid JSON at line 3, column 14" in out.stderr
    missing_key = tmp_path / "p2.json"
    missing_key.write_text('{"id": "x"}')
    out = _cli("run", "--plan", str(missing_key), "--command", "true", cwd=tmp_path)
    assert out.returncode == 2 and "missing key 'request'" in out.stderr


def test_missing_runner_binary_fails_before_anything_runs(tmp_path: Path,
                                                          isolated_home: Path) -> None:
    plan = _plan_file(tmp_path, [["a"]])
    out = _cli("run", "--plan", str(plan), "--command", "no-such-agent-xyz {prompt_file}",
               cwd=tmp_path)
    assert out.returncode == 1
    assert "executable 'no-such-agent-xyz' not found on PATH" in out.stderr
    out = _cli("run", "--plan", str(plan), "--runner", "claude", cwd=tmp_path,
               PATH=str(tmp_path))
    assert out.returncode == 1 and "'claude' not found on PATH" in out.stderr
    assert not (isolated_home / "runs").exists()


def test_run_list_show_and_events(tmp_path: Path, agent_command: str, workdir: Path) -> None:
    plan = _plan_file(tmp_path, [["a", "b"], ["c"]])
    out = _cli("run", "--plan", str(plan), "--command", agent_command, "--workdir",
               str(workdir), "--workers", "2", "--events", "jsonl", "--gate",
               f"{sys.executable} -c \"print('TOTAL 9 1 90%')\" >= 80", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    events = [json.loads(line) for line in out.stdout.splitlines()]
    kinds = [e["event"] for e in events]
    assert kinds[0] == "run_started" and kinds[-1] == "run_finished"
    assert kinds.count("task_finished") == 3 and "gate_finished" in kinds
    run_id = events[0]["run_id"]
    assert "succeeded" in out.stderr

    listed = json.loads(_cli("runs", "list", "--format", "json", cwd=tmp_path).stdout)
    assert [r["id"] for r in listed] == [run_id]
    assert listed[0]["counts"]["succeeded"] == 3

    shown = json.loads(_cli("runs", "show", run_id, "--format", "json", cwd=tmp_path).stdout)
    assert shown["status"] == "succeeded" and shown["gates"][0]["value"] == 90.0
    task = next(t for t in shown["tasks"] if t["task_id"] == "c")
    for key in ("argv", "pid", "exit_code", "started_at", "ended_at", "duration_s",
                "stdout_tail", "files_changed", "cost_usd", "tokens_in",
                "attempts", "prompt_path", "stdout_path"):
        assert task[key] not in (None, [], ""), key
    text = _cli("runs", "show", run_id[:12], cwd=tmp_path)
    assert text.returncode == 0 and "argv:" in text.stdout and "+c.out" in text.stdout
    one = _cli("runs", "show", run_id, "--task", "c", cwd=tmp_path)
    assert "attempt 1: exit 0" in one.stdout
    missing = _cli("runs", "show", "r-nope", cwd=tmp_path)
    assert missing.returncode == 3 and "run not found" in missing.stderr


def test_events_file_and_json_report(tmp_path: Path, agent_command: str,
                                     workdir: Path) -> None:
    plan = _plan_file(tmp_path, [["a"]])
    events = tmp_path / "events.jsonl"
    out = _cli("run", "--plan", str(plan), "--command", agent_command, "--workdir",
               str(workdir), "--events", "jsonl", "--events-file", str(events), "--format",
               "json", "--quiet", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["status"] == "succeeded" and report["tasks"][0]["exit_code"] == 0
    kinds = [json.loads(line)["event"] for line in events.read_text().splitlines()]
    assert kinds[0] == "run_started" and kinds[-1] == "run_finished"
    bad = _cli("run", "--plan", str(plan), "--command", agent_command, "--events-file",
               str(events), cwd=tmp_path)
    assert bad.returncode == 2 and "--events-file needs --events jsonl" in bad.stderr


def test_dry_run_prints_each_command_and_runs_nothing(tmp_path: Path, agent_command: str,
                                                       workdir: Path,
                                                       isolated_home: Path) -> None:
    plan = _plan_file(tmp_path, [["a", "b"], ["c"]])
    out = _cli("run", "--plan", str(plan), "--command", agent_command + " --role {agent}",
               "--workdir", str(workdir), "--dry-run", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "stage stage1 (parallel, sync point)" in out.stdout
    assert "--role agent-c" in out.stdout and "tasks/c/prompt.md" in out.stdout
    assert list(workdir.iterdir()) == [] and not (isolated_home / "runs.db").exists()


def test_failed_run_exits_nonzero_with_a_summary(tmp_path: Path, agent_command: str,
                                                 workdir: Path) -> None:
    plan = _plan_file(tmp_path, [["a", "b"]])
    out = _cli("run", "--plan", str(plan), "--command", agent_command, "--workdir",
               str(workdir), "--retries", "1", "--backoff", "0", cwd=tmp_path,
               AGENT_BEHAVIOUR_a="crash")
    assert out.returncode == 1
    assert "a (agent-a): exit code 3 [2 attempt(s)]" in out.stderr
    assert "error: run r-" in out.stderr and "runs show" in out.stderr


def _wait_for(predicate: object, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.02)
    raise AssertionError("condition not reached in time")


def _lines(path: Path) -> list[str]:
    return path.read_text().split() if path.exists() else []


@pytest.mark.parametrize("how", ["kill9", "sigint"])
def test_killed_executor_is_resumed_and_succeeded_tasks_never_rerun(
        tmp_path: Path, agent_command: str, workdir: Path, isolated_home: Path,
        how: str) -> None:
    """kill -9 (or Ctrl-C) mid-run, then `runs resume`: each task ran exactly once overall
    when it had succeeded before the kill; the run ends succeeded."""
    ids = [f"t{i}" for i in range(8)]
    plan = _plan_file(tmp_path, [ids[:5], ids[5:]])
    env = {**os.environ, "AGENT_SECONDS": "0.25"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "perfect21", "run", "--plan", str(plan), "--command",
         agent_command, "--workdir", str(workdir), "--workers", "2", "--quiet"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    ran = workdir / "ran.log"
    _wait_for(lambda: len(_lines(ran)) >= 3)
    if how == "kill9":
        proc.kill()
    else:
        proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=20)
    if how == "sigint":
        assert proc.returncode == 130, stderr
        assert "resume with: perfect21 runs resume" in stderr
    with RunStore(isolated_home) as store:
        (run,) = store.list_runs()
        before = store.get_run(run.id)
    done_before = {t.task_id for t in before.tasks if t.status is TaskStatus.SUCCEEDED}
    assert 1 <= len(done_before) < len(ids)
    expected = RunStatus.RUNNING if how == "kill9" else RunStatus.INTERRUPTED
    assert before.status is expected

    if how == "kill9":
        listed = _cli("runs", "list", cwd=tmp_path).stdout
        assert "orphaned" in listed
    out = _cli("runs", "resume", run.id, "--quiet", cwd=tmp_path, AGENT_SECONDS="0.05")
    assert out.returncode == 0, out.stderr
    with RunStore(isolated_home) as store:
        after = store.get_run(run.id)
    assert after.status is RunStatus.SUCCEEDED and after.resumes == 1
    assert all(t.status is TaskStatus.SUCCEEDED for t in after.tasks)
    ran_ids = _lines(ran)
    for task_id in done_before:
        assert ran_ids.count(task_id) == 1, (task_id, ran_ids)
    assert set(ran_ids) == set(ids)
    again = _cli("runs", "resume", run.id, "--quiet", cwd=tmp_path)
    assert again.returncode == 0
    assert sorted(_lines(ran)) == sorted(ran_ids)  # nothing ran a second time
