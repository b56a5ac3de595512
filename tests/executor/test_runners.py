"""Runners as real processes: the command template, Claude Code (a fake `claude` on PATH),
timeouts that kill the whole process group, crashes and retries, pre-flight checks."""

from __future__ import annotations

import json
import os
import sys
import textwrap
import time
from pathlib import Path

import pytest

from perfect21._errors import RunnerError
from perfect21.executor import (
    ClaudeRunner,
    CommandRunner,
    ExecutorSettings,
    LocalExecutor,
    RunStatus,
    RunStore,
    TaskStatus,
)
from perfect21.executor.cache_hook import CachedTaskResult, task_cache_key
from perfect21.planner.models import AgentSpec

from .conftest import make_plan


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


async def test_command_runner_runs_agents_with_provenance(
        workdir: Path, agent_command: str, isolated_home: Path) -> None:
    """Each task is a real process; argv, pid, exit code, output, files and cost are kept."""
    plan = make_plan([["a", "b"], ["c"]])
    with RunStore(isolated_home) as store:
        executor = LocalExecutor(CommandRunner(agent_command), store=store, workdir=workdir,
                                 settings=ExecutorSettings(workers=2, retries=0))
        result = await executor.run(plan)
        assert result.status is RunStatus.SUCCEEDED, result.summary()
        stored = store.get_run(result.run_id)
    assert sorted((workdir / "ran.log").read_text().split()) == ["a", "b", "c"]
    record = next(t for t in stored.tasks if t.task_id == "c")
    assert record.argv[0] == sys.executable and record.argv[-1].endswith("prompt.md")
    assert record.pid and record.exit_code == 0
    assert record.cost_usd == pytest.approx(0.01) and record.tokens_out == 7
    assert record.result_text == "c ok"
    assert "working on c" in Path(record.stdout_path).read_text()
    assert {f.path: f.kind for f in record.files} == {"c.out": "added", "ran.log": "modified"}
    prompt = Path(record.prompt_path).read_text()
    assert "do c" in prompt and "build a thing" in prompt
    assert stored.cost_usd == pytest.approx(0.03)


async def test_template_values_stay_single_arguments_and_env_carries_the_brief(
        tmp_path: Path) -> None:
    script = tmp_path / "dump.py"
    script.write_text("import json, os, sys\n"
                      "print(json.dumps({'argv': sys.argv[1:], 'brief':"
                      " os.environ['PERFECT21_BRIEF'], 'agent': os.environ['PERFECT21_AGENT'],"
                      " 'run': os.environ['PERFECT21_RUN_ID']}))\n")
    work = tmp_path / "a work dir"
    work.mkdir()
    runner = CommandRunner(f"{sys.executable} {script} --role {{agent}} {{workdir}} "
                           f"{{task_id}} {{run_id}}")
    executor = LocalExecutor(runner, workdir=work, settings=ExecutorSettings(retries=0))
    result = await executor.run(make_plan([["t 1"]]))
    assert result.ok, result.summary()
    out = json.loads(result.task("t 1").stdout_tail)
    assert out["argv"] == ["--role", "agent-t 1", str(work.resolve()), "t 1", result.run_id]
    assert "do t 1" in out["brief"] and out["agent"] == "agent-t 1"


async def test_shell_mode_quotes_values(tmp_path: Path) -> None:
    runner = CommandRunner("echo {task_id} | tr a-z A-Z", shell=True)
    executor = LocalExecutor(runner, workdir=tmp_path, settings=ExecutorSettings(retries=0))
    result = await executor.run(make_plan([["x; rm -rf nothing"]]))
    assert result.ok
    assert result.tasks[0].stdout_tail.strip() == "X; RM -RF NOTHING"


@pytest.mark.parametrize(("template", "message"), [
    ("no-such-agent-binary-xyz {prompt_file}", "not found on PATH"),
    ("python3 {prompt_file} {nope}", "unknown field {nope}"),
    ("python3 'unclosed {prompt_file}", "No closing quotation"),
    ("python3 {prompt_file", "expected '}'"),
    ("   ", "empty"),
])
async def test_preflight_errors_before_anything_runs(
        template: str, message: str, workdir: Path, isolated_home: Path) -> None:
    """A bad runner is reported before any task starts and no run is recorded."""
    with RunStore(isolated_home) as store:
        executor = LocalExecutor(CommandRunner(template), store=store, workdir=workdir)
        with pytest.raises(RunnerError, match=message):
            await executor.run(make_plan([["a"]]))
        assert store.list_runs() == []
    assert list(workdir.iterdir()) == []


async def test_crashing_task_is_retried_then_fails_siblings_continue(
        workdir: Path, agent_command: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENT_BEHAVIOUR_b", "crash")
    monkeypatch.setenv("AGENT_BEHAVIOUR_c", "crash-once")
    executor = LocalExecutor(CommandRunner(agent_command), workdir=workdir,
                             settings=ExecutorSettings(workers=3, retries=2, backoff_s=0.01))
    result = await executor.run(make_plan([["a", "b", "c"], ["d"]]))
    assert result.status is RunStatus.FAILED
    b = result.task("b")
    assert b.status is TaskStatus.FAILED
    assert [a.exit_code for a in b.attempts] == [3, 3, 3]
    assert "agent crashed" in b.stderr_tail and b.error == "exit code 3"
    c = result.task("c")
    assert c.status is TaskStatus.SUCCEEDED and [a.exit_code for a in c.attempts] == [4, 0]
    assert result.task("a").status is TaskStatus.SUCCEEDED
    assert result.task("d").status is TaskStatus.SKIPPED
    summary = result.summary()
    assert "b (agent-b): exit code 3 [3 attempt(s)]" in summary
    assert "d (agent-d)" in summary


async def test_hanging_task_is_killed_with_its_children_at_the_timeout(
        workdir: Path, agent_command: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The whole process group dies: the agent and the `sleep` it spawned."""
    monkeypatch.setenv("AGENT_BEHAVIOUR_h", "hang")
    executor = LocalExecutor(CommandRunner(agent_command), workdir=workdir,
                             settings=ExecutorSettings(task_timeout_s=2.0, retries=0,
                                                       kill_grace_s=0.2))
    started = time.monotonic()
    result = await executor.run(make_plan([["h", "ok"]]))
    assert time.monotonic() - started < 8
    hung = result.task("h")
    assert hung.status is TaskStatus.FAILED and hung.attempts[0].timed_out
    assert "timed out after 2 s" in hung.error
    assert result.task("ok").status is TaskStatus.SUCCEEDED
    child = int((workdir / "h.child").read_text())
    deadline = time.monotonic() + 3
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(child), "the agent's child process outlived the timeout"
    assert hung.pid is not None and not _alive(hung.pid)


FAKE_CLAUDE = textwrap.dedent(
    '''
    #!{python}
    """A fake Claude Code CLI: checks its arguments and prints the documented JSON result."""
    import json, os, sys

    args = sys.argv[1:]
    def value(flag):
        return args[args.index(flag) + 1] if flag in args else None
    problems = []
    if args[:1] != ["-p"] or len(args) < 2:
        problems.append("expected -p PROMPT first")
    if value("--output-format") != "json":
        problems.append("expected --output-format json")
    if value("--append-system-prompt") != os.environ.get("EXPECT_SYSTEM_PROMPT"):
        problems.append("system prompt: " + repr(value("--append-system-prompt")))
    if value("--allowedTools") != os.environ.get("EXPECT_TOOLS"):
        problems.append("tools: " + repr(value("--allowedTools")))
    if value("--max-turns") != "7" or value("--permission-mode") != "acceptEdits":
        problems.append("max-turns/permission-mode")
    if problems:
        print("bad arguments: " + "; ".join(problems), file=sys.stderr)
        sys.exit(2)
    prompt = args[1]
    open(os.path.join(os.getcwd(), "claude-was-here.txt"), "w").write(prompt)
    error = os.environ.get("FAKE_CLAUDE_ERROR")
    print(json.dumps({{
        "type": "result", "subtype": error or "success", "is_error": bool(error),
        "duration_ms": 1234, "duration_api_ms": 1000, "num_turns": 3,
        "result": "done: " + prompt.splitlines()[0], "session_id": "0e639165-79b1",
        "total_cost_usd": 0.0123,
        "usage": {{"input_tokens": 100, "cache_read_input_tokens": 50, "output_tokens": 20}},
    }}))
    '''
).lstrip()


@pytest.fixture
def fake_claude(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    exe = bin_dir / "claude"
    exe.write_text(FAKE_CLAUDE.format(python=sys.executable))
    exe.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("EXPECT_SYSTEM_PROMPT", "You review code carefully.")
    monkeypatch.setenv("EXPECT_TOOLS", "Read,Grep")
    return exe


def _agents(name: str) -> AgentSpec | None:
    return AgentSpec(name=name, description="reviewer", prompt="You review code carefully.",
                     tools=("Read", "Grep"))


async def test_claude_runner_builds_print_mode_argv_and_parses_json(
        fake_claude: Path, workdir: Path) -> None:
    runner = ClaudeRunner(max_turns=7)
    runner.preflight()
    executor = LocalExecutor(runner, workdir=workdir, agents=_agents,
                             settings=ExecutorSettings(retries=0))
    result = await executor.run(make_plan([["review"]]))
    record = result.task("review")
    assert result.ok, record.stderr_tail
    assert record.argv[:2] == (str(fake_claude), "-p")
    assert record.cost_usd == pytest.approx(0.0123)
    assert (record.tokens_in, record.tokens_out) == (150, 20)
    assert record.result_text == "done: # Task review: agent agent-review, stage stage1"
    assert record.extra["session_id"] == "0e639165-79b1" and record.extra["num_turns"] == 3
    assert (workdir / "claude-was-here.txt").exists()
    assert result.cost_usd == pytest.approx(0.0123)


async def test_claude_error_results_fail_and_max_turns_is_final(
        fake_claude: Path, workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_CLAUDE_ERROR", "error_max_turns")
    executor = LocalExecutor(ClaudeRunner(max_turns=7), workdir=workdir, agents=_agents,
                             settings=ExecutorSettings(retries=2, backoff_s=0.01))
    result = await executor.run(make_plan([["review"]]))
    record = result.task("review")
    assert record.status is TaskStatus.FAILED
    assert len(record.attempts) == 1  # not retryable
    assert "error_max_turns" in record.error


async def test_claude_runner_reports_bad_arguments_as_failure(
        fake_claude: Path, workdir: Path) -> None:
    """The fake checks its argv: a different system prompt makes it refuse (exit 2)."""
    executor = LocalExecutor(ClaudeRunner(max_turns=7), workdir=workdir, agents=None,
                             settings=ExecutorSettings(retries=0))
    result = await executor.run(make_plan([["review"]]))
    record = result.task("review")
    assert record.status is TaskStatus.FAILED
    assert "bad arguments" in record.stderr_tail


def test_claude_runner_missing_binary_is_a_preflight_error(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(RunnerError, match="'claude' not found on PATH"):
        ClaudeRunner().preflight()
    with pytest.raises(RunnerError, match="permission mode"):
        ClaudeRunner(executable=sys.executable, permission_mode="yolo").preflight()


def test_long_briefs_go_through_stdin(tmp_path: Path) -> None:
    from perfect21.executor.runners import TaskContext

    ctx = TaskContext(run_id="r", task_id="t", agent="a", stage="s", brief="x" * 200_000,
                      system_prompt="", prompt_file=tmp_path / "p", workdir=tmp_path,
                      stdout_path=tmp_path / "o", stderr_path=tmp_path / "e", timeout_s=1)
    argv, stdin = ClaudeRunner(executable=sys.executable).argv(ctx)
    assert stdin == "x" * 200_000 and len(argv[2]) < 100


def test_cached_result_round_trips_deterministically() -> None:
    value = CachedTaskResult(stdout="out", result_text="r", cost_usd=0.5, tokens_in=3,
                             tokens_out=4, files={"b/x.bin": b"\x00\xff", "a.txt": None},
                             before={"a.txt": "ab" * 32, "b/x.bin": None})
    blob = value.to_bytes()
    assert CachedTaskResult.from_bytes(blob) == value
    assert CachedTaskResult.from_bytes(blob).to_bytes() == blob
    from perfect21._errors import CacheError

    with pytest.raises(CacheError):
        CachedTaskResult.from_bytes(b'{"format": 1, "files": {"../etc/passwd": ""}}')
    with pytest.raises(CacheError):
        CachedTaskResult.from_bytes(b"not json")


def test_task_cache_key_is_namespaced_and_sensitive_to_every_input() -> None:
    base = ("spec", "brief", "command", {"command": "x"}, "fp")
    key = task_cache_key(*base)
    assert key.startswith("p21-task-v1:") and len(key) == len("p21-task-v1:") + 64
    assert task_cache_key(*base) == key
    for i in range(5):
        changed = list(base)
        changed[i] = {"command": "y"} if i == 3 else "other"
        assert task_cache_key(*changed) != key  # type: ignore[arg-type]


def test_workspace_fingerprint_tracks_content_not_tool_folders(tmp_path: Path) -> None:
    from perfect21.executor.cache_hook import workspace_fingerprint

    (tmp_path / "a.txt").write_text("one")
    first = workspace_fingerprint(tmp_path)
    (tmp_path / ".perfect21").mkdir()
    (tmp_path / ".perfect21" / "runs.db").write_text("noise")
    assert workspace_fingerprint(tmp_path) == first
    (tmp_path / "a.txt").write_text("two")
    assert workspace_fingerprint(tmp_path) != first


def test_cli_claude_runner_uses_the_catalog_prompt_and_tools(
        fake_claude: Path, tmp_path: Path, workdir: Path, monkeypatch: pytest.MonkeyPatch
        ) -> None:
    """`perfect21 run --runner claude`: the agent's catalog prompt and tools reach claude."""
    import subprocess

    from perfect21._config import load_config
    from perfect21.planner import Planner
    from perfect21.planner.models import Plan, Stage, StageMode, Task

    spec = Planner.from_config(load_config()).catalog.get("python-pro")
    assert spec is not None
    monkeypatch.setenv("EXPECT_SYSTEM_PROMPT", spec.prompt)
    monkeypatch.setenv("EXPECT_TOOLS", ",".join(spec.tools))
    base = make_plan([["x"]])
    task = Task(id="impl", agent="python-pro", stage="build", brief="write hello.py")
    plan = Plan(id="p", request="hello", catalog_version="", analysis=base.analysis,
                agents=(), stages=(Stage("build", "", StageMode.PARALLEL, ("python-pro",),
                                         (task,)),), estimated_hours=0.0)
    plan_file = tmp_path / "plan.json"
    plan_file.write_text(json.dumps(plan.to_dict()))
    out = subprocess.run([sys.executable, "-m", "perfect21", "run", "--plan", str(plan_file),
                          "--runner", "claude", "--max-turns", "7", "--workdir", str(workdir),
                          "--format", "json", "--quiet"], capture_output=True, text=True,
                         timeout=60, check=False)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    record = report["tasks"][0]
    assert record["cost_usd"] == pytest.approx(0.0123)
    assert record["extra"]["session_id"] == "0e639165-79b1"
    assert record["argv"][record["argv"].index("--permission-mode") + 1] == "acceptEdits"
