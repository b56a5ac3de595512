"""``perfect21 run`` and ``perfect21 runs list|show|resume``: thin wrappers on the executor."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from perfect21._config import Config
from perfect21._errors import ExecutionError, GateFailedError, InputError
from perfect21.cli._common import (
    add_command,
    config_from,
    doc_text,
    echo,
    echo_json,
    existing_dir,
    float_range,
    int_range,
    memory_limit,
    read_text_arg,
    subcommands,
)

if TYPE_CHECKING:
    import argparse

__all__ = ["RunInterrupted", "configure_run", "configure_runs", "run", "runs_list",
           "runs_resume", "runs_show"]


class RunInterrupted(ExecutionError):
    """The run was stopped by Ctrl-C or SIGTERM; its state is saved and it can be resumed."""

    exit_code = 130


def load_plan_file(path: Path) -> Any:
    """Read a plan JSON file; invalid JSON is an :class:`InputError` with line and column."""
    from perfect21.planner.models import Plan

    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        from perfect21._errors import NotFoundError

        raise NotFoundError(f"plan file not found: {path}") from None
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: invalid JSON at line {exc.lineno}, column {exc.colno}: "
                         f"{exc.msg}") from None
    try:
        return Plan.from_dict(data)
    except InputError as exc:
        raise type(exc)(f"{path}: {exc}") from None


def _planner(config: Config) -> Any:
    try:
        from perfect21.planner import Planner
    except ImportError:
        return None
    try:
        return Planner.from_config(config)
    except Exception:  # the catalog is optional when a plan file is given
        return None


def _open_cache(config: Config, no_cache: bool) -> Any:
    if no_cache or not config.cache_enabled:
        return None
    import importlib

    try:  # provided by the cache package when it is installed
        module = importlib.import_module("perfect21.cache.task_cache")
    except ImportError:
        return None
    return module.open_task_cache(config)


async def _close(obj: Any) -> None:
    for name in ("aclose", "close"):
        method = getattr(obj, name, None)
        if method is not None:
            value = method()
            if asyncio.iscoroutine(value):
                await value
            return


def _runner_settings(runner: str | None, command: str | None, shell: bool,
                     claude_bin: str | None, model: str | None, max_turns: int | None,
                     permission_mode: str | None, allowed_tools: str | None
                     ) -> tuple[str, dict[str, Any]]:
    name = runner or ("command" if command else "claude")
    if name == "command":
        if not command:
            raise InputError("--runner command needs --command TEMPLATE, e.g. "
                             "--command 'my-agent --role {agent} --brief {prompt_file}'")
        return name, {"command": command, "shell": shell}
    if command:
        raise InputError("--command is only used with --runner command")
    settings: dict[str, Any] = {"executable": claude_bin or "claude", "model": model or "",
                                "max_turns": max_turns,
                                "permission_mode": permission_mode or "acceptEdits"}
    if allowed_tools:
        settings["allowed_tools"] = [t.strip() for t in allowed_tools.split(",") if t.strip()]
    return name, settings


def _events_stream(events: str | None, events_file: Path | None, stack: ExitStack
                   ) -> IO[str] | None:
    if events is None:
        if events_file is not None:
            raise InputError("--events-file needs --events jsonl")
        return None
    if events_file is None:
        return sys.stdout
    return stack.enter_context(events_file.open("a", encoding="utf-8"))


async def _drive(executor: Any, start: Callable[[], Any]) -> Any:
    """Run with Ctrl-C / SIGTERM mapped to ``executor.cancel()`` (clean stop, resumable)."""
    loop = asyncio.get_running_loop()
    installed = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, executor.cancel)
            installed.append(sig)
        except (NotImplementedError, RuntimeError):
            pass
    try:
        return await start()
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)
        if executor.cache is not None:
            await _close(executor.cache)


def _memory_guard(config: Config, limit_mb: float | None, stack: ExitStack) -> Any:
    """The monitor's memory guard as the executor's admission, when --memory-limit is given."""
    if limit_mb is None:
        return None
    from perfect21.monitor.memory import MemoryGuard

    guard = MemoryGuard.for_limit(config, limit_mb)
    return stack.enter_context(guard)


def _execute(config: Config, build: Callable[[Any, Any], Any], start: Callable[[Any], Any],
             *, events: str | None, events_file: Path | None, quiet: bool, fmt: str,
             memory_limit: float | None) -> None:
    """Shared by ``run`` and ``runs resume``: progress, events, signals, the final report."""
    from perfect21.executor.progress import JsonlSink, LineProgress
    from perfect21.executor.runs import RunStore
    from perfect21.executor.tasks import RunStatus

    with ExitStack() as stack:
        store = stack.enter_context(RunStore(config.home,
                                             busy_timeout_s=config.decisions_busy_timeout_s))
        executor = build(store, _memory_guard(config, memory_limit, stack))
        stream = _events_stream(events, events_file, stack)
        if stream is not None:
            executor.events.subscribe(JsonlSink(stream))
        if not quiet:
            if sys.stderr.isatty():
                from perfect21.executor.progress import LiveProgress

                live = stack.enter_context(LiveProgress())
                executor.events.subscribe(live)
            else:
                executor.events.subscribe(LineProgress(sys.stderr))
        result = asyncio.run(_drive(executor, lambda: start(executor)))
    if fmt == "json":
        out = sys.stderr if stream is sys.stdout else sys.stdout
        out.write(json.dumps(result.to_dict(), ensure_ascii=False, indent=2) + "\n")
    else:
        echo(result.summary(), err=True)
    if result.status is RunStatus.SUCCEEDED:
        return
    if result.status is RunStatus.INTERRUPTED:
        raise RunInterrupted(f"run {result.run_id} interrupted; resume with: "
                             f"perfect21 runs resume {result.run_id}")
    hint = f"see `perfect21 runs show {result.run_id}`"
    if result.status is RunStatus.STOPPED:
        raise ExecutionError(f"run {result.run_id} stopped: {result.error}; {hint}")
    if any(not g.passed for g in result.gates):
        raise GateFailedError(f"run {result.run_id} failed: {result.error}; {hint}")
    raise ExecutionError(f"run {result.run_id} failed: {result.error}; {hint}")


def _add_exec_options(parser: argparse.ArgumentParser) -> None:
    """Options shared by ``run`` and ``runs resume``."""
    add = parser.add_argument
    add("-w", "--workers", type=int_range(1, 512), default=None, metavar="N",
        help="Parallel workers (default: executor_workers setting). [1<=x<=512]")
    add("--max-concurrency", type=int_range(1, 4096), default=None, metavar="N",
        help="Global cap on running tasks. [1<=x<=4096]")
    add("--timeout", dest="timeout_s", type=float_range(0.001), default=None, metavar="SECONDS",
        help="Per-task timeout in seconds; the whole process group is killed. [x>=0.001]")
    add("--retries", type=int_range(0, 20), default=None, metavar="N",
        help="Retries for failures the runner marks retryable. [0<=x<=20]")
    add("--backoff", dest="backoff_s", type=float_range(0), default=None, metavar="SECONDS",
        help="First retry delay in seconds (doubles, with jitter). [x>=0]")
    add("--max-cost", dest="max_cost", type=float_range(0), default=None, metavar="USD",
        help="Stop starting tasks once the reported spend reaches this (USD). [x>=0]")
    add("--events", choices=("jsonl",), default=None,
        help="Stream machine-readable events (to stdout or --events-file).")
    add("--events-file", type=Path, default=None, metavar="PATH",
        help="Append the event stream to this file instead of stdout.")
    add("--memory-limit", type=memory_limit, default=None, metavar="SIZE",
        help="Memory guard, e.g. 300MB: over it no new task starts (running ones finish) "
             "until memory is back under 90%% of it.")
    add("-q", "--quiet", action="store_true", help="No progress display.")
    add("--format", dest="fmt", choices=("text", "json"), default="text",
        help="Final report format.")


def configure_run(parser: argparse.ArgumentParser) -> None:
    parser.description = doc_text(run.__doc__)
    add = parser.add_argument
    add("request", nargs="?", metavar="REQUEST", help="What to do; - reads it from stdin.")
    add("--plan", dest="plan_file", type=Path, default=None, metavar="PATH",
        help="Run a plan JSON file (from `perfect21 plan --format json`).")
    add("--runner", choices=("command", "claude"), default=None,
        help="How agents run (default: command if --command is given, else claude).")
    add("--command", dest="command", default=None, metavar="TEMPLATE",
        help="Command template: {agent} {prompt_file} {task_id} {run_id} {workdir}.")
    add("--shell", action="store_true",
        help="Run the command template (and --gate commands) through /bin/sh.")
    add("--workdir", type=existing_dir, default=None, metavar="DIRECTORY",
        help="Workspace the agents work in (default: current directory).")
    add("--gate", dest="gates", action="append", default=[], metavar="CMD",
        help="Gate command after the last stage; repeatable; 'CMD >= 85' sets a "
             "minimum percentage (e.g. coverage).")
    add("--continue-on-gate-failure", action="store_true",
        help="Record a failing gate but keep going.")
    add("--no-cache", action="store_true", help="Do not look up or store task results.")
    add("--refresh", action="store_true", help="Skip cache lookups but store new results.")
    add("--claude-bin", default=None, metavar="PATH",
        help="Claude Code executable (default: claude).")
    add("--model", default=None, help="Model for the claude runner.")
    add("--max-turns", type=int_range(1, 1000), default=None, metavar="N",
        help="Claude Code --max-turns per task. [1<=x<=1000]")
    add("--permission-mode", default=None,
        choices=("default", "acceptEdits", "plan", "bypassPermissions"),
        help="Claude Code --permission-mode (default: acceptEdits).")
    add("--allowed-tools", default=None, metavar="TOOLS",
        help="Comma-separated tools for Claude Code (default: each agent's tools).")
    add("--dry-run", action="store_true",
        help="Check everything and print the command of each task; run nothing.")
    _add_exec_options(parser)
    parser.set_defaults(_handler=run)


def run(request: str | None, plan_file: Path | None, runner: str | None, command: str | None,
        shell: bool, workdir: Path | None, gates: list[str],
        continue_on_gate_failure: bool, no_cache: bool, refresh: bool, claude_bin: str | None,
        model: str | None, max_turns: int | None, permission_mode: str | None,
        allowed_tools: str | None, dry_run: bool, workers: int | None,
        max_concurrency: int | None,
        timeout_s: float | None, retries: int | None, backoff_s: float | None,
        max_cost: float | None, events: str | None, events_file: Path | None,
        memory_limit: float | None, quiet: bool, fmt: str) -> None:
    """Run a workflow: every agent task as a real process, in parallel, with provenance.

    Examples:
      perfect21 run "实现用户登录功能，使用JWT认证" --runner claude
      perfect21 run "add rate limiting" --command 'my-agent --role {agent} --brief {prompt_file}'
      perfect21 run --plan plan.json --workers 8 --max-cost 5.00 --gate "pytest -q"
      perfect21 run --plan plan.json --command './agent.sh {task_id}' --events jsonl > ev.jsonl

    Ctrl-C stops cleanly: running processes are terminated, the state is saved and
    `perfect21 runs resume RUN_ID` continues where it stopped.
    """
    from perfect21.executor.gates import parse_gate, plan_gates
    from perfect21.executor.local import ExecutorSettings, LocalExecutor
    from perfect21.executor.runners import make_runner

    if (request is None) == (plan_file is None):
        raise InputError("give either a REQUEST or --plan FILE (not both)")
    if no_cache and refresh:
        raise InputError("--no-cache and --refresh exclude each other")
    config = config_from()
    runner_name, runner_settings = _runner_settings(runner, command, shell, claude_bin, model,
                                                    max_turns, permission_mode, allowed_tools)
    runner_obj = make_runner(runner_name, runner_settings)
    runner_obj.preflight()  # before planning: a missing binary is reported at once
    plan = load_plan_file(plan_file) if plan_file is not None else None
    planner = _planner(config)  # for the agents' system prompts, also with --plan
    if plan is None:
        if planner is None:
            raise ExecutionError("the planner is not available in this build; use --plan FILE")
        plan = planner.plan(read_text_arg(str(request)))
    settings = ExecutorSettings.from_config(
        config, workers=workers, max_concurrency=max_concurrency, task_timeout_s=timeout_s,
        retries=retries, backoff_s=backoff_s, max_cost_usd=max_cost,
        continue_on_gate_failure=continue_on_gate_failure, use_cache=not no_cache,
        refresh_cache=refresh, shell_gates=shell)
    gate_list = [*plan_gates(plan), *(parse_gate(g) for g in gates)]
    workdir = (workdir or Path.cwd()).resolve()
    agents = planner.catalog.get if planner is not None else None

    def build(store: Any, admission: Any) -> Any:
        return LocalExecutor(runner_obj, settings=settings, store=store,
                             cache=_open_cache(config, no_cache), agents=agents,
                             gates=gate_list, workdir=workdir, home=config.home,
                             admission=admission)

    if dry_run:
        dry = LocalExecutor(runner_obj, settings=settings, gates=gate_list, workdir=workdir)
        dry.preflight(plan)
        _print_dry_run(plan, runner_obj, gate_list, workdir, agents)
        return

    def start(executor: Any) -> Any:
        if not quiet:
            echo(f"planned {len(plan.tasks)} task(s) in {len(plan.stages)} stage(s)",
                       err=True)
        return executor.run(plan)

    _execute(config, build, start, events=events, events_file=events_file, quiet=quiet,
             fmt=fmt, memory_limit=memory_limit)


def _print_dry_run(plan: Any, runner: Any, gates: list[Any], workdir: Path,
                   agents: Any) -> None:
    """What `run` would execute, task by task (prompt files shown as placeholders)."""
    import shlex

    from perfect21.executor.runners import TaskContext

    placeholder = Path("<run>/tasks")
    for stage in plan.stages:
        echo(f"stage {stage.name} ({stage.mode.value}"
                   f"{', sync point' if stage.sync_point else ''})")
        for task in stage.tasks:
            spec = agents(task.agent) if agents is not None else None
            ctx = TaskContext(
                run_id="<run>", task_id=task.id, agent=task.agent, stage=task.stage,
                brief=task.brief, system_prompt=spec.prompt if spec else "",
                prompt_file=placeholder / task.id / "prompt.md", workdir=workdir,
                stdout_path=placeholder, stderr_path=placeholder, timeout_s=1.0,
                tools=spec.tools if spec else ())
            argv = runner.argv(ctx) if hasattr(runner, "argv") else (runner.name,)
            if isinstance(argv, tuple) and argv and isinstance(argv[0], tuple):
                argv = argv[0]  # the claude runner also returns its stdin text
            text = shlex.join(argv)
            echo(f"  {task.id} [{task.agent}]"
                       + (f" after {', '.join(task.depends_on)}" if task.depends_on else ""))
            echo(f"      {text if len(text) < 300 else text[:299] + '…'}")
    for gate in gates:
        threshold = "" if gate.threshold is None else f" (>= {gate.threshold:g}%)"
        echo(f"gate at {gate.stage or 'the end'}: {gate.command}{threshold}")


RUNS_DESCRIPTION = """\
List, show and resume runs (stored in .perfect21/runs.db).

Examples:
  perfect21 runs list
  perfect21 runs show r-20250101-120000-ab12cd --format json
  perfect21 runs resume r-20250101-120000-ab12cd
"""


def configure_runs(parser: argparse.ArgumentParser) -> None:
    parser.description = RUNS_DESCRIPTION
    subs = subcommands(parser)
    p = add_command(subs, "list", runs_list)
    p.add_argument("--limit", type=int_range(1, 10_000), default=20, metavar="N",
                   help="[default: 20; 1<=x<=10000]")
    p.add_argument("--format", dest="fmt", choices=("text", "json"), default="text")
    p = add_command(subs, "show", runs_show)
    p.add_argument("run_id", metavar="RUN_ID")
    p.add_argument("--task", dest="task_id", default=None,
                   help="Only this task, with full detail.")
    p.add_argument("--format", dest="fmt", choices=("text", "json"), default="text")
    p = add_command(subs, "resume", runs_resume)
    p.add_argument("run_id", metavar="RUN_ID")
    p.add_argument("--no-cache", action="store_true",
                   help="Do not look up or store task results.")
    _add_exec_options(p)


def _status(record: Any) -> str:
    """The stored status, or a note when a "running" run's executor no longer exists."""
    from perfect21.executor.local import _executor_alive
    from perfect21.executor.tasks import RunStatus

    status = str(record.status.value)
    if record.status is RunStatus.RUNNING and not _executor_alive(record.executor_pid):
        return "running (executor gone: resume it)"
    return status


def _ts(value: float | None) -> str:
    if value is None:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(value))


def runs_list(limit: int, fmt: str) -> None:
    """List recent runs, newest first.

    Example:
      perfect21 runs list --limit 5
    """
    from perfect21.executor.runs import RunStore

    config = config_from()
    with RunStore(config.home) as store:
        records = store.list_runs(limit=limit)
    if fmt == "json":
        echo_json([{**r.to_dict(with_plan=False), "tasks": len(r.tasks)} for r in records])
        return
    if not records:
        echo("no runs yet (start one with `perfect21 run`)")
        return
    for r in records:
        counts = r.counts()
        done = f"{counts['succeeded']}/{len(r.tasks)}"
        request = r.request.replace("\n", " ")
        request = request if len(request) <= 50 else request[:49] + "…"
        status = "orphaned" if _status(r) != r.status.value else r.status.value
        echo(f"{r.id}  {status:11} {done:>7} ok  ${r.cost_usd:<8.4f} "
                   f"{_ts(r.created_at)}  {request}")


def runs_show(run_id: str, task_id: str | None, fmt: str) -> None:
    """Show what exactly happened: per task the argv, pid, exit code, times, output tails,
    files changed, cost and tokens, attempts, cache; and the gates.

    Examples:
      perfect21 runs show r-20250101-120000-ab12cd
      perfect21 runs show r-20250101-120000-ab12cd --task implement-1 --format json
    """
    from perfect21._errors import NotFoundError
    from perfect21.executor.runs import RunStore

    config = config_from()
    with RunStore(config.home) as store:
        record = store.get_run(run_id)
    if task_id is not None:
        matches = [t for t in record.tasks if t.task_id == task_id]
        if not matches:
            raise NotFoundError(f"run {record.id} has no task {task_id!r}")
        if fmt == "json":
            echo_json(matches[0].to_dict())
        else:
            _show_task(matches[0], full=True)
        return
    if fmt == "json":
        echo_json(record.to_dict())
        return
    echo(f"run {record.id}: {_status(record)}")
    echo(f"  request: {record.request}")
    echo(f"  runner:  {record.runner} {json.dumps(dict(record.runner_settings))}")
    echo(f"  workdir: {record.workdir}")
    echo(f"  created: {_ts(record.created_at)}  updated: {_ts(record.updated_at)}  "
               f"resumes: {record.resumes}  cost: ${record.cost_usd:.4f}")
    if record.error:
        echo(f"  error:   {record.error}")
    stage = None
    for task in record.tasks:
        if task.stage != stage:
            stage = task.stage
            echo(f"stage {stage}")
        _show_task(task, full=False)
    if record.gates:
        echo("gates")
        for gate in record.gates:
            verdict = "passed" if gate.passed else f"FAILED ({gate.reason})"
            value = "" if gate.value is None else f" value {gate.value:g}%"
            echo(f"  {gate.name} [{gate.stage or 'end'}]: {verdict}{value} "
                       f"exit {gate.exit_code} in {gate.duration_s:.2f}s")


def _show_task(task: Any, *, full: bool) -> None:
    mark = {"succeeded": "✓", "failed": "✗", "skipped": "-", "running": "…",
            "pending": "·", "cancelled": "x"}.get(task.status.value, "?")
    duration = "-" if task.duration_s is None else f"{task.duration_s:.2f}s"
    numbers = [f"attempts {len(task.attempts)}", duration]
    if task.exit_code is not None:
        numbers.append(f"exit {task.exit_code}")
    if task.pid is not None:
        numbers.append(f"pid {task.pid}")
    if task.cost_usd is not None:
        numbers.append(f"${task.cost_usd:.4f}")
    if task.tokens_in is not None or task.tokens_out is not None:
        numbers.append(f"tokens {task.tokens_in}/{task.tokens_out}")
    if task.cache.get("hit"):
        numbers.append(f"cache hit ({task.cache.get('level') or 'cache'})")
    echo(f"  {mark} {task.task_id} [{task.agent}] {task.status.value}  "
               + "  ".join(numbers))
    if task.argv:
        import shlex

        argv = shlex.join(task.argv)
        echo(f"      argv: {argv if full or len(argv) < 160 else argv[:159] + '…'}")
    if task.error:
        echo(f"      error: {task.error}")
    if task.files:
        signs = {"added": "+", "modified": "~", "deleted": "-"}
        shown = ", ".join(f"{signs[f.kind]}{f.path}" for f in task.files[: 50 if full else 8])
        more = "" if full or len(task.files) <= 8 else f" (+{len(task.files) - 8} more)"
        echo(f"      files: {shown}{more}")
        if task.concurrent_with:
            echo(f"      (ran alongside: {', '.join(task.concurrent_with[:8])})")
    lines = 40 if full else 3
    for label, text in (("stdout", task.stdout_tail), ("stderr", task.stderr_tail)):
        tail_lines = [line for line in text.splitlines() if line.strip()][-lines:]
        if tail_lines:
            echo(f"      {label}: " + "\n              ".join(tail_lines))
    if full:
        echo(f"      started {_ts(task.started_at)}  ended {_ts(task.ended_at)}")
        echo(f"      prompt: {task.prompt_path}")
        echo(f"      full output: {task.stdout_path}  {task.stderr_path}")
        for attempt in task.attempts:
            echo(f"      attempt {attempt.number}: exit {attempt.exit_code} pid "
                       f"{attempt.pid} {attempt.ended_at - attempt.started_at:.2f}s "
                       f"{attempt.error}")
        if task.extra:
            echo(f"      runner: {json.dumps(dict(task.extra), ensure_ascii=False)}")


def runs_resume(run_id: str, no_cache: bool, workers: int | None,
                max_concurrency: int | None, timeout_s: float | None, retries: int | None,
                backoff_s: float | None, max_cost: float | None, events: str | None,
                events_file: Path | None, memory_limit: float | None, quiet: bool,
                fmt: str) -> None:
    """Continue a run: only tasks that have not succeeded run; succeeded ones never run again.

    Works after Ctrl-C, after --max-cost stopped a run (raise it with --max-cost) and after
    the executor was killed (its orphaned process groups are killed first).

    Examples:
      perfect21 runs resume r-20250101-120000-ab12cd
      perfect21 runs resume r-20250101-120000-ab12cd --max-cost 10 --workers 8
    """
    from dataclasses import replace

    from perfect21.executor.gates import GateCommand
    from perfect21.executor.local import ExecutorSettings, LocalExecutor
    from perfect21.executor.runners import make_runner
    from perfect21.executor.runs import RunStore

    config = config_from()
    with RunStore(config.home) as peek:
        record = peek.get_run(run_id)
    options = dict(record.options)
    settings = ExecutorSettings.from_dict(options.get("settings", {}))
    overrides: dict[str, Any] = {"workers": workers, "max_concurrency": max_concurrency,
                                 "task_timeout_s": timeout_s, "retries": retries,
                                 "backoff_s": backoff_s, "max_cost_usd": max_cost}
    settings = replace(settings, **{k: v for k, v in overrides.items() if v is not None})
    if no_cache:
        settings = replace(settings, use_cache=False)
    runner_obj = make_runner(record.runner, record.runner_settings)
    gate_list = [GateCommand.from_dict(g) for g in options.get("gates", [])]
    planner = _planner(config)
    agents = planner.catalog.get if planner is not None else None

    def build(store: Any, admission: Any) -> Any:
        return LocalExecutor(runner_obj, settings=settings, store=store,
                             cache=_open_cache(config, not settings.use_cache), agents=agents,
                             gates=gate_list, workdir=Path(record.workdir), home=config.home,
                             admission=admission)

    def start(executor: Any) -> Any:
        return executor.resume(record.id)

    _execute(config, build, start, events=events, events_file=events_file, quiet=quiet,
             fmt=fmt, memory_limit=memory_limit)
