"""Importing the old system's data: every record kept, idempotent, problems located."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import pytest

from perfect21._errors import NotFoundError
from perfect21.decisions import Status, SyncDecisionStore
from perfect21.decisions.legacy import import_legacy, read_legacy

from .conftest import RunCli


@pytest.fixture
def legacy(shared_dir: Path) -> Path:
    return shared_dir / "data" / "legacy"


def test_imports_every_record_of_both_layouts(store: SyncDecisionStore, legacy: Path) -> None:
    raw = json.loads((legacy / ".perfect21" / "decisions.json").read_text(encoding="utf-8"))
    adr_files = sorted((legacy / "knowledge" / "decisions" / "adr").glob("ADR-*.json"))
    expected = len(raw["decisions"]) + len(adr_files)
    report = import_legacy(store, legacy)
    assert report.problems == []
    assert report.read == report.added == expected == store.stats()["total"]
    stored = store.list(limit=10_000)
    # Colliding legacy ids are different records, and all are kept.
    by_legacy = Counter(d.legacy_id for d in stored)
    assert by_legacy == Counter(r["decision_id"] for r in raw["decisions"]) + Counter(
        p.stem for p in adr_files
    )
    assert max(by_legacy.values()) > 1
    # Numbers follow the old timeline.
    created = [d.created for d in sorted(stored, key=lambda d: d.number)]
    assert created == sorted(created)


def test_fields_are_mapped(store: SyncDecisionStore, legacy: Path) -> None:
    import_legacy(store, legacy)
    raw = json.loads((legacy / ".perfect21" / "decisions.json").read_text(encoding="utf-8"))
    first = raw["decisions"][0]
    (d,) = [d for d in store.list(limit=10_000) if d.title == first["title"]]
    assert d.legacy_id == first["decision_id"]
    assert d.context == first["context"] and d.decision == first["decision"]
    assert d.rationale == first["rationale"]
    assert [o.name for o in d.options] == first["options"]
    assert list(d.consequences) == first["consequences"]
    assert list(d.agents) == first["stakeholders"]
    assert d.deciders == (first["metadata"]["author"],)
    legacy_status = {"active": "accepted"}.get(first["status"], first["status"])
    assert d.status is Status(legacy_status)
    assert d.created.startswith(first["timestamp"][:19])
    adr = legacy / "knowledge" / "decisions" / "adr" / "ADR-20250917-180921.json"
    adr_raw = json.loads(adr.read_text(encoding="utf-8"))
    d = store.get("ADR-20250917-180921")  # a unique legacy id works as a reference
    assert d.title == adr_raw["title"] and d.consequences == (adr_raw["consequences"],)
    assert list(d.agents) == adr_raw["agents_involved"] and d.status is Status.PROPOSED
    assert "complexity-" + adr_raw["metadata"]["complexity"] in d.tags


def test_reimport_adds_nothing(store: SyncDecisionStore, legacy: Path) -> None:
    first = import_legacy(store, legacy)
    again = import_legacy(store, legacy)
    assert again.added == 0 and again.existing == first.added
    assert store.stats()["total"] == first.added


def test_broken_files_and_records_are_listed_and_the_rest_imported(
    store: SyncDecisionStore, legacy: Path, tmp_path: Path
) -> None:
    data = tmp_path / "legacy"
    shutil.copytree(legacy, data)
    book = data / ".perfect21" / "decisions.json"
    raw = json.loads(book.read_text(encoding="utf-8"))
    raw["decisions"][3] = {"decision_id": "decision_1", "context": "no title"}
    raw["decisions"][5]["options"] = "not a list"
    raw["decisions"][7]["title"] = "x" * 600
    raw["decisions"][9]["status"] = "maybe"
    raw["decisions"][11] = "just a string"
    book.write_text(json.dumps(raw, ensure_ascii=False), encoding="utf-8")
    adr_dir = data / "knowledge" / "decisions" / "adr"
    (adr_dir / "ADR-20250917-181543.json").write_text('{"id": "ADR-x", "title": ', "utf-8")
    (adr_dir / "ADR-20250917-192003.json").unlink()  # the index still names it
    (adr_dir / "ADR-bad-bytes.json").write_bytes(b"\xff\xfe\x00garbage")

    report = import_legacy(store, data)
    where = {p.location.replace(str(data.resolve()), ""): p.reason for p in report.problems}
    assert where["/.perfect21/decisions.json:decisions[3]"] == "title: missing"
    assert "options: expected a list" in where["/.perfect21/decisions.json:decisions[5]"]
    assert "the limit is 500" in where["/.perfect21/decisions.json:decisions[7]"]
    assert "unknown status 'maybe'" in where["/.perfect21/decisions.json:decisions[9]"]
    assert "expected an object" in where["/.perfect21/decisions.json:decisions[11]"]
    assert where["/knowledge/decisions/adr/ADR-20250917-181543.json:1:26"].startswith(
        "invalid JSON"
    )
    assert "indexed file is missing" in where[
        "/knowledge/decisions/index/decisions_index.json:ADR-20250917-192003"
    ]
    assert "not UTF-8" in where["/knowledge/decisions/adr/ADR-bad-bytes.json"]
    assert len(report.problems) == 8
    assert report.added == 300 - 5 + 30 - 2 == store.stats()["total"]


def test_missing_path_is_not_found(store: SyncDecisionStore, tmp_path: Path) -> None:
    with pytest.raises(NotFoundError):
        import_legacy(store, tmp_path / "nowhere")


def test_read_legacy_single_files(legacy: Path) -> None:
    records, problems, _ = read_legacy(legacy / ".perfect21" / "decisions.json")
    assert len(records) == 300 and problems == []
    index = legacy / "knowledge" / "decisions" / "index" / "decisions_index.json"
    records, problems, files = read_legacy(index)
    assert len(records) == 30 and problems == [] and len(files) == 31


def test_cli_import_exit_status(run_cli: RunCli, legacy: Path, tmp_path: Path) -> None:
    """0 when everything was imported (also on a re-import), 1 when something was skipped."""
    out = run_cli("decisions", "import", str(legacy))
    assert out.returncode == 0, out.stderr
    assert "330 added, 0 already imported, 0 skipped" in out.stdout
    out = run_cli("decisions", "import", str(legacy), "--format", "json")
    assert out.returncode == 0 and json.loads(out.stdout)["existing"] == 330
    bad = tmp_path / "bad.json"
    bad.write_text('{"decisions": [{"title": "ok"}, {"context": "no title"}]}', "utf-8")
    out = run_cli("decisions", "import", str(bad))
    assert out.returncode == 1
    assert f"skipped {bad.resolve()}:decisions[1]: title: missing" in out.stderr
    assert "1 added" in out.stdout
