"""Agent runners: how one task becomes a real process (or a Python call).

Every runner has the same small interface (:class:`Runner`): ``preflight()`` checks, before
anything runs, that it can work at all (executable on PATH, template valid) and raises
:class:`~perfect21._errors.RunnerError` otherwise; ``run(ctx)`` runs one attempt and returns a
:class:`~perfect21.executor.tasks.RunnerResult`.

* ``command`` — a command template with ``{agent} {prompt_file} {task_id} {run_id}
  {workdir}``; the template is split with :func:`shlex.split` first and each word formatted
  afterwards, so a value with spaces stays one argument and no shell is involved (unless
  ``shell=True``, where values are quoted with :func:`shlex.quote`).
* ``claude`` — Claude Code in print mode: ``claude -p BRIEF --output-format json
  --append-system-prompt AGENT_PROMPT [--allowedTools …] [--max-turns N]
  [--permission-mode MODE] [--model M]``; the JSON result's ``result``, ``is_error``,
  ``total_cost_usd``, ``usage`` and ``session_id`` are parsed.
* ``python`` — a sync or async callable, for library use.

Processes start in a new session (their own process group). A timeout, a cancellation or
the end of the task kills the whole group, so an agent's children never outlive it.
Output goes straight to files in the run folder (no pipe a grandchild could hold open).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import os
import shlex
import shutil
import signal
import string
import subprocess
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from perfect21._errors import RunnerError
from perfect21.executor.tasks import RunnerResult, tail

__all__ = [
    "TEMPLATE_FIELDS",
    "ClaudeRunner",
    "CommandRunner",
    "ProcessOutcome",
    "PythonRunner",
    "Runner",
    "TaskContext",
    "make_runner",
    "run_process",
]

TEMPLATE_FIELDS = ("agent", "prompt_file", "task_id", "run_id", "workdir")
# Linux refuses a single argv string above 128 KiB; longer briefs go through stdin.
_MAX_ARG_BYTES = 100_000
_MAX_ENV_BRIEF = 64_000


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskContext:
    """Everything a runner needs for one attempt of one task.

    ``prompt_file``, ``stdout_path`` and ``stderr_path`` exist only for runners whose
    ``uses_files`` is true (the default); a runner without files (``python``) gets the run
    folder there as a placeholder.
    """

    run_id: str
    task_id: str
    agent: str
    stage: str
    brief: str
    system_prompt: str
    prompt_file: Path
    workdir: Path
    stdout_path: Path
    stderr_path: Path
    timeout_s: float
    attempt: int = 1
    tools: tuple[str, ...] = ()
    kill_grace_s: float = 2.0
    on_spawn: Callable[[int, tuple[str, ...]], None] | None = None

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        brief = self.brief
        if len(brief.encode("utf-8")) > _MAX_ENV_BRIEF:
            brief = brief[: _MAX_ENV_BRIEF // 4] + "\n…(truncated; read PERFECT21_PROMPT_FILE)"
        env.update({
            "PERFECT21_AGENT": self.agent,
            "PERFECT21_BRIEF": brief,
            "PERFECT21_TASK_ID": self.task_id,
            "PERFECT21_RUN_ID": self.run_id,
            "PERFECT21_STAGE": self.stage,
            "PERFECT21_PROMPT_FILE": str(self.prompt_file),
            "PERFECT21_WORKDIR": str(self.workdir),
            "PERFECT21_ATTEMPT": str(self.attempt),
        })
        return env


@runtime_checkable
class Runner(Protocol):
    """The interface every runner implements."""

    name: str

    def preflight(self) -> None:
        """Raise :class:`RunnerError` if this runner cannot run at all."""

    def settings(self) -> dict[str, Any]:
        """JSON-able settings: stored with the run (for resume) and part of the cache key."""

    async def run(self, ctx: TaskContext) -> RunnerResult:
        """Run one attempt; never raise for a task failure, report it in the result."""


# --------------------------------------------------------------------------- processes


@dataclass(frozen=True, slots=True)
class ProcessOutcome:
    argv: tuple[str, ...]
    pid: int | None
    exit_code: int | None
    timed_out: bool
    stdout: str
    stderr: str
    started_at: float
    ended_at: float
    error: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)


def _kill_group(pid: int, sig: int) -> bool:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        return False
    return True


async def _exited(proc: subprocess.Popen[bytes], timeout_s: float | None) -> None:
    """Wait for ``proc`` to exit without a thread per child: a pidfd in the event loop.

    asyncio's default child watcher on 3.11 starts one thread per process; under load that
    costs milliseconds per task. Falls back to polling where pidfds are unavailable.
    Raises :class:`TimeoutError` after ``timeout_s``.
    """
    loop = asyncio.get_running_loop()
    try:
        fd = os.pidfd_open(proc.pid)
    except (AttributeError, OSError):
        fd = -1
    if fd >= 0:
        done = loop.create_future()

        def ready() -> None:
            if not done.done():
                done.set_result(None)

        try:
            loop.add_reader(fd, ready)
        except NotImplementedError:
            os.close(fd)
            fd = -1
        else:
            try:
                async with asyncio.timeout(timeout_s):
                    await done
            finally:
                loop.remove_reader(fd)
                os.close(fd)
            return
    async with asyncio.timeout(timeout_s):
        delay = 0.001
        while proc.poll() is None:
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.05)


async def _terminate(proc: subprocess.Popen[bytes], grace_s: float) -> None:
    """SIGTERM the process group, then SIGKILL it after ``grace_s``; reap the leader."""
    _kill_group(proc.pid, signal.SIGTERM)
    with contextlib.suppress(TimeoutError):
        await asyncio.shield(_exited(proc, grace_s))
    _kill_group(proc.pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError):
        proc.kill()
    await asyncio.shield(_exited(proc, None))
    proc.wait()


def _read_text(path: Path, limit: int = 4_000_000) -> str:
    try:
        with path.open("rb") as fh:
            size = fh.seek(0, os.SEEK_END)
            fh.seek(max(0, size - limit))
            return fh.read().decode("utf-8", "replace")
    except OSError:
        return ""


async def run_process(argv: tuple[str, ...], *, cwd: Path, env: Mapping[str, str],
                      stdout_path: Path, stderr_path: Path, timeout_s: float,
                      stdin_text: str | None = None, kill_grace_s: float = 2.0,
                      on_spawn: Callable[[int, tuple[str, ...]], None] | None = None
                      ) -> ProcessOutcome:
    """Run ``argv`` in its own process group with output to files; kill the group on timeout.

    On cancellation the group is terminated (SIGTERM, then SIGKILL) before re-raising.
    """
    stdout_path.parent.mkdir(parents=True, exist_ok=True)
    started = time.time()
    stdin_file = None
    if stdin_text is not None:
        stdin_file = stdout_path.with_suffix(".stdin")
        stdin_file.write_text(stdin_text, encoding="utf-8")
    with stdout_path.open("wb") as out, stderr_path.open("wb") as err, \
            (stdin_file.open("rb") if stdin_file else open(os.devnull, "rb")) as inp:
        try:
            proc = subprocess.Popen(argv, cwd=str(cwd), env=dict(env), stdin=inp, stdout=out,
                                    stderr=err, start_new_session=True, close_fds=True)
        except OSError as exc:
            msg = f"cannot start {argv[0]!r}: {exc.strerror or exc}"
            return ProcessOutcome(argv, None, None, False, "", msg, started, time.time(), msg)
        timed_out = False
        try:
            if on_spawn is not None:
                on_spawn(proc.pid, argv)
            await _exited(proc, timeout_s)
        except TimeoutError:
            timed_out = True
            await _terminate(proc, kill_grace_s)
        except BaseException:  # cancelled (Ctrl-C) or the spawn callback failed
            await _terminate(proc, kill_grace_s)
            raise
        finally:
            # Whatever the leader did, its children never outlive the task.
            _kill_group(proc.pid, signal.SIGKILL)
        proc.wait()
    ended = time.time()
    error = f"timed out after {timeout_s:g} s (process group killed)" if timed_out else ""
    return ProcessOutcome(argv, proc.pid, None if timed_out else proc.returncode, timed_out,
                          _read_text(stdout_path), _read_text(stderr_path), started, ended,
                          error)


def _which(executable: str) -> str | None:
    if os.sep in executable:
        path = Path(executable)
        return str(path) if path.is_file() and os.access(path, os.X_OK) else None
    return shutil.which(executable)


def _agent_json(stdout: str) -> dict[str, Any] | None:
    """The last JSON object printed on stdout (agents print logs before their result)."""
    text = stdout.strip()
    if not text:
        return None
    candidates = [text] + [line for line in reversed(text.splitlines()) if line.startswith("{")]
    for candidate in candidates:
        try:
            value = json.loads(candidate)
        except ValueError:
            continue
        if isinstance(value, dict):
            return value
    return None


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _int(value: Any) -> int | None:
    number = _num(value)
    return None if number is None else int(number)


# --------------------------------------------------------------------------- command runner


class CommandRunner:
    """Runs a command template per task; the agent's JSON on stdout is read if present."""

    name = "command"

    def __init__(self, template: str, *, shell: bool = False) -> None:
        self.template = template
        self.shell = shell

    def settings(self) -> dict[str, Any]:
        return {"command": self.template, "shell": self.shell}

    def preflight(self) -> None:
        template = self.template.strip()
        if not template:
            raise RunnerError("command runner: empty --command template")
        try:
            fields = [f for _, f, _, _ in string.Formatter().parse(template) if f is not None]
        except ValueError as exc:
            raise RunnerError(f"command template {template!r}: {exc}") from None
        for name in fields:
            if name not in TEMPLATE_FIELDS:
                raise RunnerError(
                    f"command template: unknown field {{{name}}}; allowed: "
                    + ", ".join("{" + f + "}" for f in TEMPLATE_FIELDS)
                )
        if self.shell:
            if _which("/bin/sh") is None:
                raise RunnerError("command runner: /bin/sh not found for --shell")
            return
        try:
            words = shlex.split(template)
        except ValueError as exc:
            raise RunnerError(f"command template {template!r}: {exc}") from None
        if not words:
            raise RunnerError("command runner: empty --command template")
        if "{" in words[0]:
            return  # the executable itself is templated; checked when it runs
        if _which(words[0]) is None:
            raise RunnerError(
                f"command runner: executable {words[0]!r} not found on PATH "
                f"(PATH={os.environ.get('PATH', '')})"
            )

    def argv(self, ctx: TaskContext) -> tuple[str, ...]:
        values = {"agent": ctx.agent, "prompt_file": str(ctx.prompt_file),
                  "task_id": ctx.task_id, "run_id": ctx.run_id, "workdir": str(ctx.workdir)}
        if self.shell:
            quoted = {k: shlex.quote(v) for k, v in values.items()}
            return ("/bin/sh", "-c", self.template.format(**quoted))
        return tuple(word.format(**values) for word in shlex.split(self.template))

    async def run(self, ctx: TaskContext) -> RunnerResult:
        argv = self.argv(ctx)
        out = await run_process(argv, cwd=ctx.workdir, env=ctx.env(),
                                stdout_path=ctx.stdout_path, stderr_path=ctx.stderr_path,
                                timeout_s=ctx.timeout_s, kill_grace_s=ctx.kill_grace_s,
                                on_spawn=ctx.on_spawn)
        return _command_result(out)


def _command_result(out: ProcessOutcome) -> RunnerResult:
    doc = _agent_json(out.stdout) or {}
    raw_usage = doc.get("usage")
    usage: dict[str, Any] = raw_usage if isinstance(raw_usage, dict) else {}
    cost = _num(doc.get("total_cost_usd", doc.get("cost_usd")))
    tokens_in = _int(usage.get("input_tokens", doc.get("tokens_in")))
    tokens_out = _int(usage.get("output_tokens", doc.get("tokens_out")))
    result_text = doc.get("result")
    ok = out.exit_code == 0 and not out.timed_out and not doc.get("is_error", False)
    error = out.error
    if not ok and not error:
        if out.exit_code not in (0, None):
            error = f"exit code {out.exit_code}"
        elif doc.get("is_error"):
            error = f"agent reported an error: {tail(str(result_text or ''), 300)}"
    # 126/127: the shell could not execute / find the program; retrying will not help.
    retryable = not ok and out.pid is not None and out.exit_code not in (126, 127)
    return RunnerResult(ok=ok, exit_code=out.exit_code, argv=out.argv, pid=out.pid,
                        stdout_tail=tail(out.stdout), stderr_tail=tail(out.stderr),
                        result_text=tail(str(result_text)) if result_text is not None else "",
                        cost_usd=cost, tokens_in=tokens_in, tokens_out=tokens_out,
                        retryable=retryable, timed_out=out.timed_out, error=error)


# --------------------------------------------------------------------------- claude runner

PERMISSION_MODES = ("default", "acceptEdits", "plan", "bypassPermissions")
# Subtypes of Claude Code's JSON result after which trying again cannot help.
_FINAL_SUBTYPES = frozenset({"error_max_turns", "error_max_budget_usd"})


class ClaudeRunner:
    """Claude Code's CLI in print mode with JSON output, one process per task."""

    name = "claude"

    def __init__(self, *, executable: str = "claude", model: str = "",
                 max_turns: int | None = None, permission_mode: str = "acceptEdits",
                 allowed_tools: tuple[str, ...] = (), use_agent_tools: bool = True,
                 extra_args: tuple[str, ...] = ()) -> None:
        self.executable = executable
        self.model = model
        self.max_turns = max_turns
        self.permission_mode = permission_mode
        self.allowed_tools = allowed_tools
        self.use_agent_tools = use_agent_tools
        self.extra_args = extra_args

    def settings(self) -> dict[str, Any]:
        return {"executable": self.executable, "model": self.model,
                "max_turns": self.max_turns, "permission_mode": self.permission_mode,
                "allowed_tools": list(self.allowed_tools),
                "use_agent_tools": self.use_agent_tools, "extra_args": list(self.extra_args)}

    def preflight(self) -> None:
        if _which(self.executable) is None:
            raise RunnerError(
                f"claude runner: executable {self.executable!r} not found on PATH; install "
                "Claude Code (npm install -g @anthropic-ai/claude-code) or pass --claude-bin"
            )
        if self.permission_mode and self.permission_mode not in PERMISSION_MODES:
            raise RunnerError(f"claude runner: unknown permission mode "
                              f"{self.permission_mode!r}; one of {', '.join(PERMISSION_MODES)}")
        if self.max_turns is not None and self.max_turns < 1:
            raise RunnerError("claude runner: --max-turns must be at least 1")

    def argv(self, ctx: TaskContext) -> tuple[tuple[str, ...], str | None]:
        """The argv and the text for stdin (only when the brief is too long for argv)."""
        exe = _which(self.executable) or self.executable
        brief, stdin_text = ctx.brief, None
        if len(brief.encode("utf-8")) > _MAX_ARG_BYTES:
            stdin_text = brief
            brief = "Carry out the task described in the input above."
        argv: list[str] = [exe, "-p", brief, "--output-format", "json"]
        if ctx.system_prompt:
            argv += ["--append-system-prompt", ctx.system_prompt]
        tools = self.allowed_tools or (ctx.tools if self.use_agent_tools else ())
        if tools:
            argv += ["--allowedTools", ",".join(tools)]
        if self.max_turns is not None:
            argv += ["--max-turns", str(self.max_turns)]
        if self.permission_mode:
            argv += ["--permission-mode", self.permission_mode]
        if self.model:
            argv += ["--model", self.model]
        argv += list(self.extra_args)
        return tuple(argv), stdin_text

    async def run(self, ctx: TaskContext) -> RunnerResult:
        argv, stdin_text = self.argv(ctx)
        out = await run_process(argv, cwd=ctx.workdir, env=ctx.env(),
                                stdout_path=ctx.stdout_path, stderr_path=ctx.stderr_path,
                                timeout_s=ctx.timeout_s, stdin_text=stdin_text,
                                kill_grace_s=ctx.kill_grace_s, on_spawn=ctx.on_spawn)
        return parse_claude_result(out)


def parse_claude_result(out: ProcessOutcome) -> RunnerResult:
    """Read Claude Code's ``--output-format json`` result object from the process output."""
    doc = _agent_json(out.stdout)

    def result(ok: bool, retryable: bool, error: str, **more: Any) -> RunnerResult:
        return RunnerResult(ok=ok, retryable=retryable, error=error, exit_code=out.exit_code,
                            argv=out.argv, pid=out.pid, stdout_tail=tail(out.stdout),
                            stderr_tail=tail(out.stderr), timed_out=out.timed_out, **more)

    if out.timed_out or out.pid is None:
        return result(False, out.pid is not None, out.error)
    if doc is None or doc.get("type", "result") != "result":
        error = (f"claude exited with code {out.exit_code} without a JSON result"
                 if out.exit_code else "claude printed no JSON result")
        return result(False, True, error)
    raw_usage = doc.get("usage")
    usage: dict[str, Any] = raw_usage if isinstance(raw_usage, dict) else {}
    tokens_in = sum(_int(usage.get(k)) or 0 for k in
                    ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens"))
    subtype = str(doc.get("subtype", ""))
    is_error = bool(doc.get("is_error", False)) or out.exit_code != 0
    result_text = str(doc.get("result", "") or "")
    error = ""
    if is_error:
        error = f"claude reported an error ({subtype or 'is_error'}): {tail(result_text, 300)}"
    extra: dict[str, Any] = {k: doc[k] for k in ("session_id", "subtype", "num_turns",
                                                 "duration_ms", "duration_api_ms",
                                                 "stop_reason") if k in doc}
    return result(not is_error, is_error and subtype not in _FINAL_SUBTYPES, error,
                  result_text=tail(result_text), cost_usd=_num(doc.get("total_cost_usd")),
                  tokens_in=tokens_in if usage else None,
                  tokens_out=_int(usage.get("output_tokens")), extra=extra)


# --------------------------------------------------------------------------- python runner

PythonFunc = Callable[[TaskContext], Any]


class PythonRunner:
    """Runs a callable per task: ``func(ctx)`` returning a result, text, a dict or ``None``.

    Async callables are awaited (and cancelled at the timeout); sync ones run in a thread
    (a thread cannot be killed: a sync callable that hangs keeps its thread until it returns).
    An exception counts as a retryable failure.
    """

    name = "python"
    uses_files = False  # no prompt or output files: the callable gets the brief directly

    def __init__(self, func: PythonFunc, *, label: str = "") -> None:
        self.func = func
        self.label = label or getattr(func, "__qualname__", repr(func))
        self._is_async = inspect.iscoroutinefunction(func)

    def settings(self) -> dict[str, Any]:
        return {"callable": self.label}

    def preflight(self) -> None:
        if not callable(self.func):
            raise RunnerError(f"python runner: {self.func!r} is not callable")

    async def run(self, ctx: TaskContext) -> RunnerResult:
        argv = (f"python:{self.label}",)
        try:
            async with asyncio.timeout(ctx.timeout_s):
                if self._is_async:
                    value = await self.func(ctx)
                else:
                    value = await asyncio.to_thread(self.func, ctx)
                    if inspect.isawaitable(value):
                        value = await value
        except TimeoutError:
            return RunnerResult(ok=False, argv=argv, retryable=True, timed_out=True,
                                error=f"timed out after {ctx.timeout_s:g} s")
        except Exception as exc:  # a task's own failure, reported, never raised
            return RunnerResult(ok=False, argv=argv, retryable=True,
                                error=f"{type(exc).__name__}: {exc}")
        return _python_value(value, argv)


def _python_value(value: Any, argv: tuple[str, ...]) -> RunnerResult:
    if isinstance(value, RunnerResult):
        return value
    if value is None:
        return RunnerResult(ok=True, argv=argv)
    if isinstance(value, str):
        return RunnerResult(ok=True, argv=argv, result_text=tail(value))
    if isinstance(value, Mapping):
        return RunnerResult(ok=not value.get("is_error", False), argv=argv,
                            result_text=tail(str(value.get("result", ""))),
                            cost_usd=_num(value.get("total_cost_usd", value.get("cost_usd"))),
                            tokens_in=_int(value.get("tokens_in")),
                            tokens_out=_int(value.get("tokens_out")))
    return RunnerResult(ok=True, argv=argv, result_text=tail(repr(value)))


# --------------------------------------------------------------------------- factory


def make_runner(name: str, settings: Mapping[str, Any]) -> Runner:
    """Build a runner by name from its stored settings (used by ``run`` and ``resume``)."""
    if name == "command":
        template = str(settings.get("command", "") or "")
        return CommandRunner(template, shell=bool(settings.get("shell", False)))
    if name == "claude":
        max_turns = settings.get("max_turns")
        return ClaudeRunner(
            executable=str(settings.get("executable") or "claude"),
            model=str(settings.get("model") or ""),
            max_turns=None if max_turns is None else int(max_turns),
            permission_mode=str(settings.get("permission_mode", "acceptEdits") or ""),
            allowed_tools=tuple(settings.get("allowed_tools") or ()),
            use_agent_tools=bool(settings.get("use_agent_tools", True)),
            extra_args=tuple(settings.get("extra_args") or ()),
        )
    if name == "python":
        raise RunnerError("the python runner takes a callable: use it from Python, not the CLI")
    raise RunnerError(f"unknown runner {name!r}; one of: command, claude")


AsyncTaskFunc = Callable[[TaskContext], Awaitable[Any]]
