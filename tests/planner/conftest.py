"""Fixtures for the planner tests: a real ``perfect21`` subprocess and agent-file helpers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from perfect21.planner import Planner
from perfect21.planner.catalog import load_catalog
from perfect21.planner.models import draft_class

DATA = Path(__file__).resolve().parent / "data"
USER_AGENTS = DATA / "user_agents"

RunCli = Callable[..., "subprocess.CompletedProcess[str]"]


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """An empty project directory used as the subprocess's cwd."""
    path = tmp_path / "project"
    path.mkdir()
    return path


@pytest.fixture(scope="session")
def shared_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A PERFECT21_HOME shared by the CLI tests, so each test does not recompile the catalog.

    Safe to share: the compiled catalog is keyed by the content of every agent file. Tests
    about the catalog cache itself pass their own home (``env={"PERFECT21_HOME": ...}``).
    """
    return tmp_path_factory.mktemp("p21-shared-home")


@pytest.fixture
def run_cli(workdir: Path, shared_home: Path) -> RunCli:
    """Run ``python -m perfect21 ARGS`` in ``workdir`` (an empty project directory).

    HOME is this test's temporary directory (set by the autouse ``isolated_home`` fixture,
    so there are no user agents unless the test writes some); PERFECT21_HOME is
    ``shared_home`` unless ``env`` says otherwise.
    """

    def run(
        *args: str,
        stdin: str | bytes | None = None,
        cwd: Path | None = None,
        env: Mapping[str, str] | None = None,
        timeout: float = 30.0,
    ) -> subprocess.CompletedProcess[str]:
        full_env = dict(os.environ)
        full_env.pop("PYTHONHASHSEED", None)
        full_env["PERFECT21_HOME"] = str(shared_home)
        if env:
            full_env.update(env)
        data = stdin.encode("utf-8") if isinstance(stdin, str) else stdin
        proc = subprocess.run(
            [sys.executable, "-m", "perfect21", *args],
            input=data,
            capture_output=True,
            cwd=cwd or workdir,
            env=full_env,
            timeout=timeout,
            check=False,
        )
        return subprocess.CompletedProcess(
            proc.args,
            proc.returncode,
            proc.stdout.decode("utf-8", "replace"),
            proc.stderr.decode("utf-8", "replace"),
        )

    return run


def write_agent(directory: Path, name: str, description: str, *, extra: str = "",
                body: str = "You are a helpful specialist.") -> Path:
    """Write a Claude Code subagent file with front matter ``name`` + ``description``."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.md"
    # Quoted like careful agent authors do: a plain YAML scalar may not contain ": ".
    front = f"name: {name}\ndescription: {json.dumps(description, ensure_ascii=False)}\n{extra}"
    path.write_text(f"---\n{front.rstrip()}\n---\n{textwrap.dedent(body)}\n", encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def builtin_planner() -> Planner:
    """A planner over the built-in catalog only (no user agents, no disk cache)."""
    return Planner(load_catalog(user=False, cache_dir=None))


# Quality numbers measured by test_quality.py, printed at the end of every pytest run (with or
# without -s) so that passing runs report them too.
QUALITY_REPORT: dict[str, dict[str, float]] = {}


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not QUALITY_REPORT:
        return
    terminalreporter.section("planner routing quality")
    for name, numbers in QUALITY_REPORT.items():
        values = "  ".join(f"{k}={v:g}" for k, v in numbers.items())
        terminalreporter.write_line(f"{name:<24} {values}")


def built_as_draft(cls: type[Any], *values: object) -> Any:
    """``cls(*values)`` built the way the planner builds its values on the hot path: a draft
    (``models.draft_class``), every field stored, then made a ``cls``."""
    obj = draft_class(cls)()
    for name, value in zip(cls._fields, values, strict=True):
        setattr(obj, name, value)
    obj.__class__ = cls
    return obj
