"""The run store's own edges and the workspace tracker's bounds."""

from __future__ import annotations

from pathlib import Path

import pytest

from perfect21._errors import NotADatabaseError, NotFoundError
from perfect21.executor.runs import RunStore, safe_name
from perfect21.executor.workspace import WorkspaceTracker, diff_snapshots

from .conftest import make_plan


def test_a_file_that_is_not_a_database_is_refused_and_left_alone(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "runs.db").write_bytes(b"my notes, not sqlite")
    with pytest.raises(NotADatabaseError):
        RunStore(home)
    assert (home / "runs.db").read_bytes() == b"my notes, not sqlite"


def test_run_ids_resolve_by_unique_prefix(tmp_path: Path) -> None:
    with RunStore(tmp_path) as store:
        for run_id in ("r-1-aaa", "r-1-aab", "r-2-xyz"):
            store.create_run(run_id=run_id, plan=make_plan([["a"]]), runner="command",
                             runner_settings={}, options={}, workdir=tmp_path)
        assert store.get_run("r-2").id == "r-2-xyz"
        with pytest.raises(NotFoundError):
            store.get_run("r-1-aa")  # ambiguous
        assert [r.id for r in store.list_runs(limit=2)] == ["r-2-xyz", "r-1-aab"]


def test_task_folder_names_are_safe_and_distinct() -> None:
    assert safe_name("implement.python-pro") == "implement.python-pro"
    odd = {safe_name(x) for x in ("a/b", "a:b", "a b", "..", "a_b")}
    assert len(odd) == 5 and all("/" not in n and n not in {".", ".."} for n in odd)


def test_workspace_snapshots_are_bounded_and_skip_tool_folders(tmp_path: Path) -> None:
    for i in range(30):
        (tmp_path / f"f{i}.txt").write_text(str(i))
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "HEAD").write_text("ref")
    home = tmp_path / "home"
    home.mkdir()
    (home / "runs.db").write_text("x")
    tracker = WorkspaceTracker(tmp_path, exclude=(home,), max_files=10)
    snap = tracker.snapshot()
    assert len(snap) == 10 and tracker.truncated
    full = WorkspaceTracker(tmp_path, exclude=(home,)).snapshot()
    assert len(full) == 30 and not any(p.startswith((".git", "home")) for p in full)
    (tmp_path / "f1.txt").write_text("changed")
    (tmp_path / "f2.txt").unlink()
    changes = diff_snapshots(full, WorkspaceTracker(tmp_path, exclude=(home,)).snapshot())
    assert [(c.path, c.kind) for c in changes] == [("f1.txt", "modified"), ("f2.txt", "deleted")]
