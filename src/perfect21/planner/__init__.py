"""The planner: request text in, frozen :class:`Plan` out. Pure apart from loading the catalog.

>>> from perfect21.planner import Planner
>>> planner = Planner.from_config(load_config())          # doctest: +SKIP
>>> plan = planner.plan("实现用户登录功能，使用JWT认证")   # doctest: +SKIP
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from pathlib import Path
from threading import Lock

from perfect21._config import Config
from perfect21._errors import InputError
from perfect21.planner.analysis import analyse
from perfect21.planner.catalog import Catalog, LoadProblem, load_catalog
from perfect21.planner.models import (
    STAGE_ORDER,
    AgentChoice,
    AgentSpec,
    Analysis,
    Complexity,
    Gate,
    GateCheck,
    Plan,
    Rejection,
    Stage,
    StageMode,
    Task,
)
from perfect21.planner.routing import TeamBounds, choose_team, score_agents
from perfect21.planner.text import MAX_TEXT_CHARS, normalize_request
from perfect21.planner.workflow import build_plan

__all__ = [
    "STAGE_ORDER",
    "AgentChoice",
    "AgentSpec",
    "Analysis",
    "Catalog",
    "Complexity",
    "Gate",
    "GateCheck",
    "LoadProblem",
    "Plan",
    "Planner",
    "Rejection",
    "Stage",
    "StageMode",
    "Task",
    "parse_team_size",
]

DEFAULT_BOUNDS: TeamBounds = {
    Complexity.SIMPLE: (1, 3),
    Complexity.MEDIUM: (3, 6),
    Complexity.COMPLEX: (5, 8),
}


def parse_team_size(text: str) -> TeamBounds:
    """``4-6-8`` → fixed sizes per complexity; ``1:3,3:6,5:8`` → explicit bounds."""
    parts = [p.strip() for p in text.replace(",", "-").split("-") if p.strip()]
    try:
        if len(parts) == 3 and all(":" not in p for p in parts):
            sizes = [int(p) for p in parts]
            pairs = [(s, s) for s in sizes]
        elif len(parts) == 3:
            pairs = [(int(a), int(b)) for a, b in (p.split(":") for p in parts)]
        else:
            raise ValueError
    except ValueError:
        raise InputError(
            f"--team-size {text!r}: expected SIMPLE-MEDIUM-COMPLEX like 4-6-8, "
            "or MIN:MAX per level like 1:3-3:6-5:8"
        ) from None
    for low, high in pairs:
        if not 1 <= low <= high <= 32:
            raise InputError(f"--team-size {text!r}: sizes must satisfy 1 <= MIN <= MAX <= 32")
    return dict(zip((Complexity.SIMPLE, Complexity.MEDIUM, Complexity.COMPLEX), pairs,
                    strict=True))


class Planner:
    """Plans requests against one compiled catalog; keeps a bounded LRU of recent plans."""

    __slots__ = ("_bounds", "_cache", "_cache_entries", "_lock", "_options", "catalog")

    def __init__(
        self,
        catalog: Catalog,
        *,
        bounds: TeamBounds | None = None,
        cache_entries: int = 4096,
    ) -> None:
        self.catalog = catalog
        self._bounds = dict(DEFAULT_BOUNDS if bounds is None else bounds)
        self._options = ";".join(
            f"{c.value}={lo}:{hi}" for c, (lo, hi) in sorted(self._bounds.items(),
                                                             key=lambda kv: kv[0].value)
        )
        self._cache: OrderedDict[str, Plan] = OrderedDict()
        self._cache_entries = max(0, cache_entries)
        self._lock = Lock()

    @classmethod
    def from_config(
        cls,
        config: Config,
        *,
        agents_dirs: Iterable[Path] = (),
        builtin: bool | None = None,
        bounds: TeamBounds | None = None,
        project_dir: Path | None = None,
    ) -> Planner:
        catalog = load_catalog(
            builtin=config.builtin_agents if builtin is None else builtin,
            user=config.user_agents,
            extra_dirs=(*config.agents_dirs, *agents_dirs),
            project_dir=project_dir,
            cache_dir=config.home / "catalog",
        )
        if bounds is None:
            bounds = {
                Complexity.SIMPLE: config.team_size_simple,
                Complexity.MEDIUM: config.team_size_medium,
                Complexity.COMPLEX: config.team_size_complex,
            }
        return cls(catalog, bounds=bounds, cache_entries=config.plan_cache_entries)

    def plan(self, request: str) -> Plan:
        """Plan ``request``; the same text always yields the same (cached) plan."""
        if not isinstance(request, str):
            raise InputError(f"request must be text, got {type(request).__name__}")
        cached = self._cache.get(request)  # fast path: already-normalised text seen before
        if cached is not None:
            return cached
        # Most requests are normalised already: checking is cheaper than split and join
        # (~7k instructions fewer on a 250-character request, by callgrind).
        normalized = request if is_normalized(request) else normalize_request(request)
        if not normalized:
            raise InputError("request is empty: describe the task to plan")
        if normalized is not request:  # (the request itself was just looked up)
            cached = self._cache.get(normalized)
            if cached is not None:
                if self._cache_entries:
                    with self._lock:
                        if normalized in self._cache:
                            self._cache.move_to_end(normalized)
                return cached
        plan = self._plan_uncached(normalized)
        if self._cache_entries:
            with self._lock:
                self._cache[normalized] = plan
                if len(self._cache) > self._cache_entries:
                    self._cache.popitem(last=False)
        return plan

    def _plan_uncached(self, normalized: str) -> Plan:
        catalog = self.catalog
        index = catalog.index
        text = normalized[:MAX_TEXT_CHARS]
        scan = index.scan(text)
        scores = score_agents(index, scan)
        groups = index.tag_groups(scan)
        analysis = analyse(text, scan, groups, agent_breadth=scores.breadth())
        if len(normalized) > MAX_TEXT_CHARS:
            analysis = _with_reason(
                analysis, f"analysed the first {MAX_TEXT_CHARS:,} of {len(normalized):,} chars"
            )
        # does any signal say the request asks to build or change something?
        signals = groups[2]
        builds = "construction" in signals or "change" in signals
        choices, rejected = choose_team(
            catalog.agents, scores, analysis.complexity, self._bounds, builds=builds
        )
        agents, position = catalog.agents, index.position
        team = []
        for choice in choices:  # a loop: cheaper than a comprehension for a few agents
            team.append((agents[position[choice.name]], choice))
        return build_plan(
            request=normalized,
            normalized=normalized,
            analysis=analysis,
            team=team,
            rejected=rejected,
            catalog_version=catalog.version,
            options=self._options,
            roles=catalog.roles,
        )

    def clear_cache(self) -> int:
        """Drop cached plans and token memos (a memory-guard clean-up callback); returns how
        many plans were dropped."""
        with self._lock:
            count = len(self._cache)
            self._cache.clear()
            self.catalog.index.token_cache.clear()
        return count

    @property
    def cache_size(self) -> int:
        return len(self._cache)


def is_normalized(text: str) -> bool:
    """Whether ``normalize_request(text) == text``, without splitting: no whitespace but
    single inner spaces. Exact for ASCII text (``isascii()`` is a flag read), where nine
    ``in`` tests (memchr; chained: a loop over a tuple of them costs ~1k more) find the
    other whitespace. In other text, ``str.isprintable()``
    is False for every character ``str.split()`` splits on except the space (Unicode
    separators and control characters; checked for all code points in
    tests/planner/test_speed_build.py). It is also False for some characters that are not
    whitespace (format characters such as U+200B, unassigned code points): such text is not
    called normalised, and takes the slower, exact path.

    By callgrind, on a 250-character request: ~3k instructions ASCII, ~5k otherwise,
    against ~12k for split and join; the cache lookup of the new string is saved as well.
    """
    if text.isascii():  # the whitespace str.split() splits on in ASCII, but the space
        if ("\n" in text or "\t" in text or "\r" in text or "\x0b" in text or "\x0c" in text
                or "\x1c" in text or "\x1d" in text or "\x1e" in text or "\x1f" in text):
            return False
    elif not text.isprintable():
        return False
    return "  " not in text and text[:1] != " " and text[-1:] != " "


def _with_reason(analysis: Analysis, reason: str) -> Analysis:
    return analysis.replace(reasons=(*analysis.reasons, reason))
