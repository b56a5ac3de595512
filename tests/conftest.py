"""Fixtures shared by every test area."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"


@pytest.fixture(autouse=True)
def isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Every test gets its own PERFECT21_HOME and no user agents from ~/.claude."""
    home = tmp_path / "p21home"
    monkeypatch.setenv("PERFECT21_HOME", str(home))
    monkeypatch.setenv("HOME", str(tmp_path / "userhome"))
    monkeypatch.delenv("PERFECT21_REDIS_URL", raising=False)
    monkeypatch.delenv("PERFECT21_CONFIG", raising=False)
    monkeypatch.delenv("PERFECT21_API_TOKEN", raising=False)
    yield home


@pytest.fixture
def shared_dir() -> Path:
    """``../shared`` beside the repo (data for tests); skips when absent."""
    if not SHARED.is_dir():
        pytest.skip("../shared is not present")
    return SHARED
