"""Import the old system's decision files (both of its layouts) without losing a record.

Layout 1 — ``.perfect21/decisions.json``: ``{"metadata": {...}, "decisions": [...]}``, each
record ``{"decision_id": "decision_<unix seconds>", "title", "context", "options": [..],
"decision", "rationale", "consequences": [..], "stakeholders": [agents], "status":
"active|deprecated|superseded", "tags", "timestamp", "metadata": {"author", ...}}``. Its ids
collide (one per second), so an id does not identify a record.

Layout 2 — ``knowledge/decisions/adr/ADR-<date>-<time>.json`` (one record per file: ``id,
title, date, status, context, decision, consequences`` (text), ``agents_involved``,
``metadata.complexity``) and ``knowledge/decisions/index/decisions_index.json`` mapping ids to
those files.

Every record is imported; two records with the same legacy id are two decisions. Each gets an
idempotency key made of its legacy id and a hash of its content, so importing the same data
again adds nothing. A record that cannot be used, or a file that cannot be read, is reported
with its location and the reason, and everything else is still imported.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from perfect21._errors import NotFoundError, ValidationError
from perfect21.decisions.models import Decision, Links, Option, Status

__all__ = ["ImportReport", "LegacyRecord", "Problem", "import_legacy", "read_legacy"]

# The old system's statuses, and the words people used for them.
_STATUS = {
    "active": Status.ACCEPTED,
    "accepted": Status.ACCEPTED,
    "approved": Status.ACCEPTED,
    "proposed": Status.PROPOSED,
    "draft": Status.PROPOSED,
    "pending": Status.PROPOSED,
    "rejected": Status.REJECTED,
    "declined": Status.REJECTED,
    "deprecated": Status.DEPRECATED,
    "obsolete": Status.DEPRECATED,
    "superseded": Status.SUPERSEDED,
    "replaced": Status.SUPERSEDED,
}
MAX_FILE_BYTES = 256 * 1024 * 1024
CHUNK = 1000


@dataclass(frozen=True, slots=True)
class Problem:
    """A record or file that was not imported: where it is and why."""

    location: str
    reason: str

    def __str__(self) -> str:
        return f"{self.location}: {self.reason}"


@dataclass(frozen=True, slots=True)
class LegacyRecord:
    decision: Decision
    key: str  # idempotency key: legacy id + content hash
    location: str


@dataclass(slots=True)
class ImportReport:
    read: int = 0  # valid records found
    added: int = 0
    existing: int = 0  # already imported earlier (same key)
    problems: list[Problem] = field(default_factory=list)
    files: list[str] = field(default_factory=list)

    @property
    def skipped(self) -> int:
        return len(self.problems)

    def to_dict(self) -> dict[str, Any]:
        return {
            "files": self.files,
            "read": self.read,
            "added": self.added,
            "existing": self.existing,
            "skipped": self.skipped,
            "problems": [{"location": p.location, "reason": p.reason} for p in self.problems],
        }


class _Importer(Protocol):
    def import_many(self, pairs: list[tuple[Decision, str]]) -> Any: ...


def _key(legacy_id: str, raw: Any) -> str:
    canonical = json.dumps(raw, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    digest = hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:32]
    return f"{legacy_id}#{digest}"


def _texts(raw: Any, name: str) -> tuple[str, ...]:
    """A list of text; one text becomes a list of one; null becomes empty."""
    if raw is None or raw == "":
        return ()
    if isinstance(raw, str):
        return (raw,)
    if not isinstance(raw, list):
        raise ValidationError(f"{name}: expected a list, got {type(raw).__name__}")
    for i, item in enumerate(raw):
        if not isinstance(item, str):
            raise ValidationError(f"{name}[{i}]: expected text, got {type(item).__name__}")
    return tuple(item for item in raw if item.strip())


def _text(raw: Any, name: str) -> str:
    if raw is None:
        return ""
    if not isinstance(raw, str):
        raise ValidationError(f"{name}: expected text, got {type(raw).__name__}")
    return raw


def _status(raw: Any) -> Status:
    if raw is None or raw == "":
        return Status.PROPOSED
    if isinstance(raw, str) and raw.strip().lower() in _STATUS:
        return _STATUS[raw.strip().lower()]
    raise ValidationError(f"status: unknown status {raw!r} (known: {', '.join(_STATUS)})")


def _options(raw: Any) -> tuple[Option, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise ValidationError(f"options: expected a list, got {type(raw).__name__}")
    return tuple(Option.from_value(item) for item in raw)


def _record_v1(raw: Any) -> Decision:
    """A record of ``.perfect21/decisions.json``."""
    if not isinstance(raw, Mapping):
        raise ValidationError(f"expected an object, got {type(raw).__name__}")
    if "title" not in raw:
        raise ValidationError("title: missing")
    meta = raw.get("metadata") or {}
    if not isinstance(meta, Mapping):
        raise ValidationError(f"metadata: expected an object, got {type(meta).__name__}")
    author = _text(meta.get("author"), "metadata.author")
    return Decision(
        title=_text(raw["title"], "title"),
        context=_text(raw.get("context"), "context"),
        options=_options(raw.get("options")),
        decision=_text(raw.get("decision"), "decision"),
        rationale=_text(raw.get("rationale"), "rationale"),
        consequences=_texts(raw.get("consequences"), "consequences"),
        agents=_texts(raw.get("stakeholders"), "stakeholders"),
        deciders=(author,) if author.strip() else (),
        status=_status(raw.get("status")),
        tags=_texts(raw.get("tags"), "tags"),
        links=Links(related=_texts(meta.get("related_decisions"), "related_decisions")),
        legacy_id=_text(raw.get("decision_id"), "decision_id"),
        created=_text(raw.get("timestamp"), "timestamp"),
        updated=_text(raw.get("timestamp"), "timestamp"),
    )


def _record_v2(raw: Any) -> Decision:
    """One ``knowledge/decisions/adr/ADR-*.json`` file (a planner workflow decision)."""
    if not isinstance(raw, Mapping):
        raise ValidationError(f"expected an object, got {type(raw).__name__}")
    if "title" not in raw:
        raise ValidationError("title: missing")
    meta = raw.get("metadata") or {}
    if not isinstance(meta, Mapping):
        raise ValidationError(f"metadata: expected an object, got {type(meta).__name__}")
    tags = ["workflow"]
    complexity = meta.get("complexity")
    if isinstance(complexity, str) and complexity.strip():
        tags.append(f"complexity-{complexity.strip()}")
    session = meta.get("session_id")
    return Decision(
        title=_text(raw["title"], "title"),
        context=_text(raw.get("context"), "context"),
        decision=_text(raw.get("decision"), "decision"),
        consequences=_texts(raw.get("consequences"), "consequences"),
        agents=_texts(raw.get("agents_involved"), "agents_involved"),
        status=_status(raw.get("status")),
        tags=tuple(tags),
        links=Links(run_id=session if isinstance(session, str) else ""),
        legacy_id=_text(raw.get("id"), "id"),
        created=_text(raw.get("date"), "date"),
        updated=_text(raw.get("date"), "date"),
    )


def _load(path: Path, problems: list[Problem]) -> Any:
    """Parsed JSON, or None after recording why the file cannot be used."""
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            problems.append(Problem(str(path), f"file too large ({size:,} bytes)"))
            return None
        data = path.read_bytes()
    except OSError as exc:
        problems.append(Problem(str(path), f"cannot read: {exc.strerror or exc}"))
        return None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        problems.append(Problem(str(path), f"not UTF-8 text (byte {exc.start})"))
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        problems.append(Problem(f"{path}:{exc.lineno}:{exc.colno}", f"invalid JSON: {exc.msg}"))
        return None


def _from_v1_file(path: Path, data: Any, problems: list[Problem]) -> Iterator[LegacyRecord]:
    records = data.get("decisions") if isinstance(data, Mapping) else data
    if not isinstance(records, list):
        problems.append(Problem(str(path), "no 'decisions' list"))
        return
    for index, raw in enumerate(records):
        location = f"{path}:decisions[{index}]"
        try:
            decision = _record_v1(raw)
        except ValidationError as exc:
            problems.append(Problem(location, str(exc)))
            continue
        yield LegacyRecord(decision, _key(decision.legacy_id, raw), location)


def _from_adr_file(path: Path, data: Any, problems: list[Problem]) -> Iterator[LegacyRecord]:
    try:
        decision = _record_v2(data)
    except ValidationError as exc:
        problems.append(Problem(str(path), str(exc)))
        return
    yield LegacyRecord(decision, _key(decision.legacy_id, data), str(path))


def _index_files(path: Path, data: Any, problems: list[Problem]) -> list[Path]:
    """The ADR files an index names (relative to the folder above ``index/``)."""
    if not isinstance(data, Mapping):
        problems.append(Problem(str(path), "index: expected an object of id -> entry"))
        return []
    base = path.parent.parent
    files = []
    for adr_id, entry in data.items():
        file_path = entry.get("file_path") if isinstance(entry, Mapping) else None
        if not isinstance(file_path, str) or not file_path:
            problems.append(Problem(f"{path}:{adr_id}", "index entry without a file_path"))
            continue
        target = (base / file_path).resolve()
        if not target.is_file():
            problems.append(Problem(f"{path}:{adr_id}", f"indexed file is missing: {file_path}"))
            continue
        files.append(target)
    return files


def _kind(path: Path, data: Any) -> str:
    if isinstance(data, Mapping) and isinstance(data.get("decisions"), list):
        return "v1"
    if isinstance(data, list):
        return "v1"
    if isinstance(data, Mapping) and "title" in data:
        return "adr"
    if isinstance(data, Mapping) and data and all(
        isinstance(v, Mapping) and "file_path" in v for v in data.values()
    ):
        return "index"
    return "unknown"


def read_legacy(path: Path) -> tuple[list[LegacyRecord], list[Problem], list[str]]:
    """Every valid record under ``path`` (a file or a folder), the problems, the files read."""
    path = Path(path)
    if not path.exists():
        raise NotFoundError(f"legacy data not found: {path}")
    problems: list[Problem] = []
    records: list[LegacyRecord] = []
    if path.is_dir():
        candidates = sorted(
            {
                *path.rglob("decisions.json"),
                *path.rglob("ADR-*.json"),
                *path.rglob("decisions_index.json"),
            }
        )
    else:
        candidates = [path]
    seen: set[Path] = set()
    files: list[str] = []
    queue = [c.resolve() for c in candidates]
    while queue:
        file = queue.pop(0)
        if file in seen:
            continue
        seen.add(file)
        data = _load(file, problems)
        if data is None:
            continue
        files.append(str(file))
        kind = _kind(file, data)
        if kind == "v1":
            records.extend(_from_v1_file(file, data, problems))
        elif kind == "adr":
            records.extend(_from_adr_file(file, data, problems))
        elif kind == "index":
            queue.extend(f for f in _index_files(file, data, problems) if f not in seen)
        else:
            problems.append(Problem(str(file), "not a decision file of the old system"))
    return records, problems, files


def import_legacy(store: _Importer, path: Path) -> ImportReport:
    """Read ``path`` and store every valid record (idempotent); report the rest."""
    records, problems, files = read_legacy(path)
    # Oldest first, so that ADR numbers follow the old system's timeline.
    records.sort(key=lambda r: r.decision.created or "~")
    report = ImportReport(read=len(records), problems=problems, files=files)
    for start in range(0, len(records), CHUNK):
        chunk = records[start : start + CHUNK]
        result = store.import_many([(r.decision, r.key) for r in chunk])
        report.added += result.added
        report.existing += result.existing
    return report
