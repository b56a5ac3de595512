"""The executor's task-result cache hook: the contract, the key, the value and a test double.

The executor looks a task up before running it (unless ``--no-cache``); a hit replays the
files the task changed and its output without invoking the runner. ``--refresh`` skips the
lookup but stores the new result. Only successful results are stored.

The layered implementation (memory, Redis, disk) lives in :mod:`perfect21.cache`; this module
only defines what the executor needs, so the executor does not depend on it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from perfect21._errors import CacheError

__all__ = [
    "CachedTaskResult",
    "InMemoryTaskCache",
    "TaskCache",
    "task_cache_key",
    "workspace_fingerprint",
]

KEY_NAMESPACE = "p21-task-v1"
_FORMAT = 1
# Bounds of the non-git workspace fingerprint.
_FP_MAX_FILES = 20_000
_FP_MAX_FILE_BYTES = 8 * 1024 * 1024
_EXCLUDED_DIRS = frozenset({".git", ".perfect21", "__pycache__", ".mypy_cache", ".ruff_cache",
                            ".pytest_cache", ".venv", "node_modules"})


@dataclass(frozen=True, slots=True, kw_only=True)
class CachedTaskResult:
    """A successful task result that can be replayed.

    ``files`` maps a workspace-relative POSIX path to the bytes the task left there, or to
    ``None`` when the task deleted the file.
    """

    stdout: str = ""
    result_text: str = ""
    cost_usd: float | None = None
    tokens_in: int | None = None
    tokens_out: int | None = None
    files: Mapping[str, bytes | None] = field(default_factory=dict)
    # sha256 of each file before the task ran (None = absent). Replay writes a file only if
    # the workspace still has that content (or already has the result), so replaying never
    # clobbers a change someone else made since.
    before: Mapping[str, str | None] = field(default_factory=dict)

    def to_bytes(self) -> bytes:
        """Deterministic JSON (sorted keys, base64 file contents), UTF-8."""
        data = {
            "format": _FORMAT,
            "stdout": self.stdout,
            "result_text": self.result_text,
            "cost_usd": self.cost_usd,
            "tokens_in": self.tokens_in,
            "tokens_out": self.tokens_out,
            "files": {
                path: None if content is None else base64.b64encode(content).decode("ascii")
                for path, content in sorted(self.files.items())
            },
            "before": dict(sorted(self.before.items())),
        }
        return json.dumps(data, sort_keys=True, separators=(",", ":"),
                          ensure_ascii=False).encode("utf-8")

    @classmethod
    def from_bytes(cls, blob: bytes) -> CachedTaskResult:
        try:
            data = json.loads(blob.decode("utf-8"))
            if not isinstance(data, dict) or data.get("format") != _FORMAT:
                raise ValueError("unknown format")
            files_raw = data.get("files", {})
            if not isinstance(files_raw, dict):
                raise ValueError("files must be an object")
            files: dict[str, bytes | None] = {}
            for path, content in files_raw.items():
                _check_relative(path)
                files[path] = None if content is None else base64.b64decode(content,
                                                                           validate=True)
            before_raw = data.get("before", {})
            if not isinstance(before_raw, dict):
                raise ValueError("before must be an object")
            before = {str(k): None if v is None else str(v) for k, v in before_raw.items()}
            return cls(stdout=str(data.get("stdout", "")),
                       result_text=str(data.get("result_text", "")),
                       cost_usd=_opt_float(data.get("cost_usd")),
                       tokens_in=_opt_int(data.get("tokens_in")),
                       tokens_out=_opt_int(data.get("tokens_out")), files=files,
                       before=before)
        except (ValueError, UnicodeDecodeError, TypeError) as exc:
            raise CacheError(f"cached task result cannot be decoded: {exc}") from None


def _opt_float(value: Any) -> float | None:
    return None if value is None else float(value)


def _opt_int(value: Any) -> int | None:
    return None if value is None else int(value)


def _check_relative(path: str) -> None:
    parts = Path(path).parts
    if not parts or Path(path).is_absolute() or ".." in parts:
        raise ValueError(f"unsafe path in cached result: {path!r}")


@runtime_checkable
class TaskCache(Protocol):
    """What the executor needs from a cache of task results."""

    async def get(self, key: str) -> CachedTaskResult | None: ...

    async def put(self, key: str, value: CachedTaskResult) -> None: ...


def cache_level(cache: object) -> str:
    """The level of the last hit (``l1``/``l2``/``l3``) when the cache says so, else ``""``."""
    level = getattr(cache, "source_of_last_hit", "")
    if callable(level):
        level = level()
    return str(level or "")


class InMemoryTaskCache:
    """A bounded in-process cache of serialised results (LRU); for tests and library use.

    Bounded by ``max_entries`` and by ``max_bytes`` of serialised results (a single result
    may be up to 32 MiB, so an entry count alone does not bound memory); the least recently
    used results go first. A result larger than ``max_bytes`` is not kept.
    """

    def __init__(self, max_entries: int = 1024, max_bytes: int = 64 * 1024 * 1024) -> None:
        self._data: OrderedDict[str, bytes] = OrderedDict()
        self._max = max_entries
        self.max_bytes = max_bytes
        self.bytes_used = 0
        self.source_of_last_hit = ""
        self.hits = 0
        self.misses = 0

    async def get(self, key: str) -> CachedTaskResult | None:
        blob = self._data.get(key)
        if blob is None:
            self.misses += 1
            return None
        self._data.move_to_end(key)
        self.hits += 1
        self.source_of_last_hit = "l1"
        return CachedTaskResult.from_bytes(blob)

    async def put(self, key: str, value: CachedTaskResult) -> None:
        blob = value.to_bytes()
        old = self._data.pop(key, None)
        if old is not None:
            self.bytes_used -= len(old)
        if len(blob) > self.max_bytes:
            return
        self._data[key] = blob
        self.bytes_used += len(blob)
        while len(self._data) > self._max or self.bytes_used > self.max_bytes:
            self.bytes_used -= len(self._data.popitem(last=False)[1])

    def clear(self) -> int:
        """Drop every result (the memory guard's clean-up hook); returns how many."""
        dropped = len(self._data)
        self._data.clear()
        self.bytes_used = 0
        return dropped

    def __len__(self) -> int:
        return len(self._data)


def task_cache_key(agent_spec_text: str, brief: str, runner_name: str,
                   runner_settings: Mapping[str, Any], workspace_fp: str) -> str:
    """sha256 over the namespace and every input that can change a task's result."""
    payload = json.dumps(
        {"agent": agent_spec_text, "brief": brief, "runner": runner_name,
         "settings": dict(runner_settings), "workspace": workspace_fp},
        sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str,
    )
    digest = hashlib.sha256()
    digest.update(KEY_NAMESPACE.encode("ascii"))
    digest.update(b"\x00")
    digest.update(payload.encode("utf-8"))
    return f"{KEY_NAMESPACE}:{digest.hexdigest()}"


def workspace_fingerprint(workdir: Path) -> str:
    """A hash of the workspace's content: git HEAD tree + diff + untracked, or a tree walk."""
    fp = _git_fingerprint(workdir)
    if fp is not None:
        return fp
    return _walk_fingerprint(workdir)


def _git(workdir: Path, *args: str) -> bytes | None:
    try:
        proc = subprocess.run(["git", "-C", str(workdir), *args], capture_output=True,
                              timeout=30, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return proc.stdout if proc.returncode == 0 else None


def _git_fingerprint(workdir: Path) -> str | None:
    inside = _git(workdir, "rev-parse", "--is-inside-work-tree")
    if inside is None or inside.strip() != b"true":
        return None
    digest = hashlib.sha256(b"git\x00")
    head = _git(workdir, "rev-parse", "HEAD^{tree}")
    digest.update(head or b"no-head")
    digest.update(b"\x00")
    digest.update(_git(workdir, "diff", "HEAD", "--binary") or b"")
    digest.update(b"\x00")
    untracked = _git(workdir, "ls-files", "--others", "--exclude-standard", "-z") or b""
    for name in sorted(n for n in untracked.split(b"\x00") if n)[:_FP_MAX_FILES]:
        rel = name.decode("utf-8", "surrogateescape")
        if rel.split("/", 1)[0] in _EXCLUDED_DIRS:
            continue
        digest.update(name + b"\x00" + _file_hash(workdir / rel).encode() + b"\x00")
    return "git:" + digest.hexdigest()


def _walk_fingerprint(workdir: Path) -> str:
    digest = hashlib.sha256(b"tree\x00")
    for count, rel in enumerate(sorted(iter_files(workdir)), 1):
        if count > _FP_MAX_FILES:
            digest.update(b"...truncated")
            break
        digest.update(rel.encode("utf-8", "surrogateescape") + b"\x00")
        digest.update(_file_hash(workdir / rel).encode() + b"\x00")
    return "tree:" + digest.hexdigest()


def iter_files(root: Path, excluded: frozenset[str] = _EXCLUDED_DIRS) -> list[str]:
    """Workspace-relative POSIX paths of regular files, skipping tool and VCS folders."""
    out: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in excluded)
        base = Path(dirpath)
        for name in filenames:
            path = base / name
            if path.is_file() and not path.is_symlink():
                out.append(path.relative_to(root).as_posix())
    return out


def _file_hash(path: Path) -> str:
    try:
        size = path.stat().st_size
        if size > _FP_MAX_FILE_BYTES:
            return f"size:{size}"
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return "unreadable"
