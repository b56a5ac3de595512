"""Fixtures of the decision store tests: real SQLite files, real child processes."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pytest

from perfect21.decisions import Decision, Option, SyncDecisionStore

RunCli = Callable[..., "subprocess.CompletedProcess[str]"]


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "store" / "decisions.db"


@pytest.fixture
def store(db_path: Path) -> Iterator[SyncDecisionStore]:
    """A synchronous store on a fresh file."""
    with SyncDecisionStore.open(db_path) as s:
        yield s


def sample(title: str = "Use PostgreSQL", **fields: object) -> Decision:
    """A decision with every kind of field filled in."""
    values: dict[str, object] = {
        "context": "We need joins and transactions; 需要支持JWT认证和会话管理",
        "decision": "PostgreSQL",
        "rationale": "mature and the team knows it",
        "options": (Option("PostgreSQL", ("mature",), ("ops cost",)), Option("MongoDB")),
        "consequences": ("team learns SQL", "更好的数据一致性"),
        "deciders": ("alice",),
        "agents": ("database-specialist",),
        "tags": ("db",),
    }
    values.update(fields)
    return Decision(title=title, **values)  # type: ignore[arg-type]


def python(code: str, *args: str, **kwargs: object) -> subprocess.Popen[str]:
    """A child Python process running ``code`` (stdout/stderr piped, text mode)."""
    return subprocess.Popen(  # type: ignore[call-overload,no-any-return]
        [sys.executable, "-c", code, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,
    )


@pytest.fixture
def run_cli(tmp_path: Path) -> RunCli:
    """``python -m perfect21 ARGS`` in ``tmp_path`` with the test's PERFECT21_HOME."""

    def run(
        *args: str, env: Mapping[str, str] | None = None, timeout: float = 60.0
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "perfect21", *args],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            env={**os.environ, **(env or {})},
            timeout=timeout,
            check=False,
        )

    return run
