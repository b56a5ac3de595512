"""Which files a task changed: content-hash snapshots of the working tree before and after.

A snapshot maps each workspace-relative path to the sha256 of its content. Hashing is
incremental: a file whose (size, mtime_ns, inode) did not change keeps its cached hash, so a
snapshot of an unchanged tree costs one ``stat`` per file. ``.git``, tool caches and the
Perfect21 home are excluded. The walk is bounded (``max_files``); files larger than
``max_file_bytes`` are identified by size and mtime instead of content.

Tasks of one stage share the workspace, so a change seen between a task's snapshots may come
from a sibling running at the same time: the task record lists those siblings
(``concurrent_with``) so the attribution is never silently wrong.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from pathlib import Path

from perfect21.executor.tasks import FileChange

__all__ = ["Snapshot", "WorkspaceTracker", "diff_snapshots"]

Snapshot = dict[str, str]

_EXCLUDED = frozenset({".git", ".perfect21", "__pycache__", ".mypy_cache", ".ruff_cache",
                       ".pytest_cache", ".hg", ".svn"})


class WorkspaceTracker:
    """Takes bounded, incremental content snapshots of one working tree (thread-safe)."""

    def __init__(self, root: Path, *, exclude: tuple[Path, ...] = (), max_files: int = 20_000,
                 max_file_bytes: int = 16 * 1024 * 1024) -> None:
        self.root = root.resolve()
        self._exclude = {p.resolve() for p in exclude}
        self.max_files = max_files
        self.max_file_bytes = max_file_bytes
        self._cache: dict[str, tuple[int, int, int, str]] = {}
        self._lock = threading.Lock()
        self.truncated = False
        self.last_duration_s = 0.0

    def snapshot(self) -> Snapshot:
        with self._lock:
            started = time.perf_counter()
            try:
                return self._snapshot()
            finally:
                self.last_duration_s = time.perf_counter() - started

    def _snapshot(self) -> Snapshot:
        out: Snapshot = {}
        seen = 0
        for dirpath, dirnames, filenames in os.walk(self.root):
            base = Path(dirpath)
            dirnames[:] = [d for d in dirnames
                           if d not in _EXCLUDED and (base / d) not in self._exclude]
            for name in filenames:
                seen += 1
                if seen > self.max_files:
                    self.truncated = True
                    return out
                path = base / name
                rel = path.relative_to(self.root).as_posix()
                digest = self._hash(rel, path)
                if digest is not None:
                    out[rel] = digest
        return out

    def _hash(self, rel: str, path: Path) -> str | None:
        try:
            st = path.lstat()
        except OSError:
            return None
        if not _is_regular(st.st_mode):
            return None
        key = (st.st_size, st.st_mtime_ns, st.st_ino)
        cached = self._cache.get(rel)
        if cached is not None and cached[:3] == key:
            return cached[3]
        if st.st_size > self.max_file_bytes:
            digest = f"size:{st.st_size}:mtime:{st.st_mtime_ns}"
        else:
            try:
                digest = hashlib.sha256(path.read_bytes()).hexdigest()
            except OSError:
                return None
        if len(self._cache) < self.max_files * 2:
            self._cache[rel] = (*key, digest)
        return digest

    def read(self, rel: str) -> bytes | None:
        try:
            return (self.root / rel).read_bytes()
        except OSError:
            return None


def _is_regular(mode: int) -> bool:
    import stat

    return stat.S_ISREG(mode)


def diff_snapshots(before: Snapshot, after: Snapshot, *,
                   limit: int = 1000) -> tuple[FileChange, ...]:
    """Files added, modified or deleted between two snapshots (sorted, at most ``limit``)."""
    changes: list[FileChange] = []
    for path in sorted(before.keys() | after.keys()):
        old, new = before.get(path), after.get(path)
        if old != new:
            changes.append(FileChange(path, old, new))
            if len(changes) >= limit:
                break
    return tuple(changes)
