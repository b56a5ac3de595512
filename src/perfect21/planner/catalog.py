"""The agent catalog: built-in agents, the user's Claude Code agents, and its compiled index.

Sources, later overriding earlier by ``name`` (Claude Code's own precedence):

1. built-in agents shipped in ``perfect21/planner/agents/**/*.md`` (unless ``--no-builtin``),
2. ``~/.claude/agents/**/*.md`` (user level),
3. ``./.claude/agents/**/*.md`` (project level),
4. every ``--agents-dir DIR`` in the order given.

A broken file is reported (:class:`LoadProblem`: path and reason) and skipped; the rest load.
The compiled index (:mod:`perfect21.planner.index`) is cached on disk under
``<home>/catalog/<content-hash>.marshal``, keyed by the content hash of every agent file plus
the lexicon, so a cold process reads one file instead of re-parsing YAML. The file holds
plain data (dicts, lists, strings, numbers) in :mod:`marshal` form: a cold ``perfect21 plan``
decodes it in about half the instructions ``json`` needs (~28M vs ~45M, a tenth of the whole
process). marshal's format belongs to the Python version, which is part of the key; a
truncated or corrupt file fails to decode and the catalog is rebuilt. It is our own cache in
the user's data directory, trusted like the rest of it, and only ever decoded into data.
"""

from __future__ import annotations

import gc
import json
import marshal
import os
import re
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from perfect21._digest import blake2b
from perfect21._errors import CatalogError, NotFoundError
from perfect21._files import write_atomic
from perfect21.planner.index import CACHE_LAYOUT, FORMAT_VERSION, CompiledIndex, compile_index
from perfect21.planner.models import STAGE_ORDER, AgentSpec, Frozen, init_fields
from perfect21.planner.workflow import task_roles

__all__ = ["Catalog", "LoadProblem", "load_catalog", "parse_agent_file"]

BUILTIN_DIR = Path(__file__).resolve().parent / "agents"
DATA_DIR = Path(__file__).resolve().parent
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_MAX_AGENT_BYTES = 256 * 1024
_SUFFIX = ".marshal"  # compiled catalog cache files


class LoadProblem(NamedTuple):
    path: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


class Catalog(Frozen):
    """Agents by name, the compiled index and the problems met while loading. Read-only.

    ``roles`` is derived from ``agents`` when the catalog is built (not a field)."""

    _fields = ("agents", "index", "version", "problems")
    __slots__ = (*_fields, "roles")

    agents: tuple[AgentSpec, ...]
    index: CompiledIndex
    version: str
    problems: tuple[LoadProblem, ...]
    roles: dict[str, tuple[str, str]]  # agent name -> its task id and brief lines

    def __init__(
        self,
        agents: tuple[AgentSpec, ...],
        index: CompiledIndex,
        version: str,
        problems: tuple[LoadProblem, ...] = (),
    ) -> None:
        init_fields(self, (agents, index, version, problems))
        object.__setattr__(self, "roles", task_roles(agents))

    def __repr__(self) -> str:
        return (f"Catalog(version={self.version!r}, agents={len(self.agents)}, "
                f"problems={len(self.problems)})")

    def get(self, name: str) -> AgentSpec | None:
        position = self.index.position.get(name)
        return None if position is None else self.agents[position]

    def require(self, name: str) -> AgentSpec:
        agent = self.get(name)
        if agent is None:
            names = ", ".join(a.name for a in self.agents)
            raise NotFoundError(f"unknown agent {name!r}; known agents: {names}")
        return agent

    @property
    def categories(self) -> tuple[str, ...]:
        return tuple(sorted({a.category for a in self.agents}))


def _split_front_matter(text: str) -> tuple[str, str]:
    if not text.startswith("---"):
        raise ValueError("missing YAML front matter (file must start with '---')")
    end = text.find("\n---", 3)
    if end < 0:
        raise ValueError("front matter is not closed with '---'")
    body_start = text.find("\n", end + 4)
    body = "" if body_start < 0 else text[body_start + 1 :]
    return text[3:end], body


def _as_list(value: Any, field: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return tuple(p.strip() for p in value.split(",") if p.strip())
    if isinstance(value, list) and all(isinstance(v, (str, int, float)) for v in value):
        return tuple(str(v).strip() for v in value if str(v).strip())
    raise ValueError(f"'{field}' must be a list of strings or a comma-separated string")


def parse_agent_file(path: Path, data: bytes, *, builtin: bool) -> AgentSpec:
    """Parse one Claude Code subagent file; raises ``ValueError`` with a readable reason."""
    import yaml  # only when (re)building the catalog

    if len(data) > _MAX_AGENT_BYTES:
        raise ValueError(f"file is larger than {_MAX_AGENT_BYTES // 1024} KiB")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValueError(f"not valid UTF-8 (byte {exc.start})") from None
    head, body = _split_front_matter(text)
    try:
        meta = yaml.safe_load(head)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ValueError(f"invalid YAML front matter{where}") from None
    if not isinstance(meta, dict):
        raise ValueError("front matter must be a YAML mapping")
    name = meta.get("name")
    if not isinstance(name, str) or not _NAME.match(name.strip()):
        raise ValueError("'name' is required: lowercase letters, digits, '-' or '_'")
    description = meta.get("description")
    if not isinstance(description, str) or not description.strip():
        raise ValueError("'description' is required and must be text")
    stage = str(meta.get("stage") or "").strip() or _infer_stage(name, description)
    if stage not in STAGE_ORDER:
        raise ValueError(f"'stage' must be one of {', '.join(STAGE_ORDER)}")
    return AgentSpec(
        name=name.strip(),
        description=" ".join(description.split()),
        category=str(meta.get("category") or ("custom" if not builtin else "general")).strip(),
        stage=stage,
        keywords=tuple(k.lower() for k in _as_list(meta.get("keywords"), "keywords")),
        keywords_zh=_as_list(meta.get("keywords_zh"), "keywords_zh"),
        tools=_as_list(meta.get("tools"), "tools"),
        prompt=body.strip(),
        source=str(path),
        builtin=builtin,
    )


_STAGE_HINTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("document", ("document", "docs", "writer", "readme", "tutorial")),
    ("verify", ("review", "test", "audit", "qa", "quality", "lint", "verify")),
    ("release", ("deploy", "release", "ci/cd", "pipeline", "rollout", "incident", "on-call")),
    ("design", ("architect", "design", "requirement", "analyst", "plan", "strategy", "product")),
)


def _infer_stage(name: str, description: str) -> str:
    """Stage of a user agent that does not declare one, from its name and description."""
    for stage, hints in _STAGE_HINTS:
        if any(h in name.lower() for h in hints):
            return stage
    first = description.lower().split(".")[0]
    for stage, hints in _STAGE_HINTS:
        if any(h in first for h in hints):
            return stage
    return "implement"


def _agent_files(directory: Path) -> list[Path]:
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.rglob("*.md") if p.is_file())


def _sources(
    *, builtin: bool, user: bool, project_dir: Path, extra_dirs: Sequence[Path]
) -> list[tuple[str, Path, bool]]:
    """(label, directory, is_builtin) in override order."""
    out: list[tuple[str, Path, bool]] = []
    if builtin:
        out.append(("builtin", BUILTIN_DIR, True))
    if user:
        out.append(("user", Path(os.path.expanduser("~")) / ".claude" / "agents", False))
        out.append(("project", project_dir / ".claude" / "agents", False))
    for number, directory in enumerate(extra_dirs):
        if not directory.is_dir():
            raise NotFoundError(f"--agents-dir {directory}: not a directory")
        out.append((f"dir{number}", directory, False))
    return out


def _data_files() -> list[Path]:
    # Inputs of the compiled index besides the agent files: a change to any of them must
    # invalidate the disk cache.
    return [DATA_DIR / "lexicon.json", DATA_DIR / "taxonomy.json", DATA_DIR / "signals.py"]


def load_catalog(
    *,
    builtin: bool = True,
    user: bool = True,
    extra_dirs: Iterable[Path] = (),
    project_dir: Path | None = None,
    cache_dir: Path | None = None,
) -> Catalog:
    """Load, override, compile (or read the compiled form from ``cache_dir``)."""
    project_dir = Path.cwd() if project_dir is None else project_dir
    sources = _sources(
        builtin=builtin, user=user, project_dir=project_dir, extra_dirs=list(extra_dirs)
    )
    files: list[tuple[Path, bytes, bool]] = []
    problems: list[LoadProblem] = []
    data_files = _read_data_files()
    data_digest = blake2b(b"\0".join(data_files.values())).digest()
    layout = f"{FORMAT_VERSION}/{CACHE_LAYOUT}/{sys.implementation.cache_tag}/{marshal.version}"
    digest = blake2b(layout.encode() + data_digest, digest_size=16)
    for label, directory, is_builtin in sources:
        for path in _agent_files(directory):
            try:
                data = path.read_bytes()
            except OSError as exc:
                problems.append(LoadProblem(str(path), f"cannot read: {exc.strerror}"))
                continue
            files.append((path, data, is_builtin))
            # the full path: the same files in two projects must not share reported sources
            digest.update(label.encode() + b"\0" + str(path).encode() + b"\0")
            digest.update(blake2b(data).digest())
    key = digest.hexdigest()
    cached = _read_cached(cache_dir, key)
    if cached is not None:
        return Catalog(cached[0], cached[1], cached[2], tuple(problems) + cached[3])
    agents: dict[str, AgentSpec] = {}
    parse_problems: list[LoadProblem] = []
    for path, data, is_builtin in files:
        try:
            spec = parse_agent_file(path, data, builtin=is_builtin)
        except ValueError as exc:
            parse_problems.append(LoadProblem(str(path), str(exc)))
            continue
        agents[spec.name] = spec  # later sources override earlier ones by name
    if not agents:
        raise CatalogError(
            "no agents to plan with: the built-in catalog is disabled (--no-builtin) and no "
            "user agents were found in .claude/agents, ~/.claude/agents or --agents-dir"
        )
    ordered = tuple(sorted(agents.values(), key=lambda a: a.name))
    index = compile_index(ordered, _parse_json(data_files[DATA_DIR / "lexicon.json"]))
    version = _catalog_version(ordered, data_digest)
    _write_cached(cache_dir, key, ordered, index, version, parse_problems)
    return Catalog(ordered, index, version, (*problems, *parse_problems))


def _catalog_version(agents: Sequence[AgentSpec], data_digest: bytes) -> str:
    """Content version of the catalog: same agents, data files and planner format → same
    version, wherever the files live."""
    digest = blake2b(FORMAT_VERSION.encode() + data_digest)
    for agent in agents:
        digest.update(json.dumps(agent.to_dict() | {"source": ""}, sort_keys=True).encode())
    return digest.hexdigest()[:12]


def _read_data_files() -> dict[Path, bytes]:
    """Contents of the index's data files, read once per load (``-`` for a missing one)."""
    out: dict[Path, bytes] = {}
    for path in _data_files():
        try:
            out[path] = path.read_bytes()
        except OSError:
            out[path] = b"-"
    return out


def _parse_json(data: bytes) -> Any:
    try:
        return json.loads(data)
    except ValueError:
        return {}


CachedCatalog = tuple[tuple[AgentSpec, ...], CompiledIndex, str, tuple[LoadProblem, ...]]


def _read_cached(cache_dir: Path | None, key: str) -> CachedCatalog | None:
    if cache_dir is None:
        return None
    path = cache_dir / f"{key[:32]}{_SUFFIX}"
    # Decoding creates tens of thousands of tuples, dicts and strings, none of them garbage:
    # the cyclic collector would run every 700 of them for nothing (~30 % of the decode).
    collecting = gc.isenabled()
    gc.disable()
    try:
        data = marshal.loads(path.read_bytes())
        agents = tuple(AgentSpec.from_dict(a) for a in data["agents"])
        problems = tuple(LoadProblem(p["path"], p["reason"]) for p in data["problems"])
        return agents, CompiledIndex.from_dict(data["index"]), data["version"], problems
    except (OSError, EOFError, ValueError, KeyError, TypeError, AttributeError):
        return None  # missing or corrupt: rebuild
    finally:
        if collecting:
            gc.enable()


def _write_cached(
    cache_dir: Path | None,
    key: str,
    agents: Sequence[AgentSpec],
    index: CompiledIndex,
    version: str,
    problems: Sequence[LoadProblem],
) -> None:
    if cache_dir is None:
        return
    payload = {
        "agents": [a.to_dict() for a in agents],
        "index": index.to_dict(),
        "version": version,
        # parse problems depend only on file contents, which the key covers
        "problems": [{"path": p.path, "reason": p.reason} for p in problems],
    }
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        write_atomic(cache_dir / f"{key[:32]}{_SUFFIX}", marshal.dumps(payload))
        _prune(cache_dir, keep=8)
    except OSError:
        pass  # a read-only home only costs a rebuild next time


def _prune(cache_dir: Path, *, keep: int) -> None:
    for legacy in cache_dir.glob("*.json"):  # the JSON form written before 2026-11-28
        legacy.unlink(missing_ok=True)
    files = sorted(cache_dir.glob(f"*{_SUFFIX}"), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in files[keep:]:
        old.unlink(missing_ok=True)
