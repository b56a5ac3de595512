"""The third speed pass over analyse and build: the fast forms give what the plain code gives.

``analysis._terms`` (the score's terms, prebuilt per feature value) against the feature
vector of ``analysis.features`` weighed as ``_contributions`` does it; the end-to-end
comparisons with the earlier code are in test_speed_analysis.py and test_speed_build.py.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from perfect21.planner import Planner, analysis
from perfect21.planner.catalog import load_catalog
from perfect21.planner.index import CompiledIndex, TagGroups
from perfect21.planner.models import (
    STAGE_ORDER,
    AgentChoice,
    AgentSpec,
    Analysis,
    Complexity,
    Plan,
    Rejection,
    Stage,
    StageMode,
    Task,
)
from perfect21.planner.workflow import _GATES, STAGE_GOALS, build_plan, plan_id

from .test_speed_analysis import _mixed_requests, _requests


@pytest.fixture(scope="module")
def index() -> CompiledIndex:
    return load_catalog(user=False, cache_dir=None).index


def _check_terms(index: CompiledIndex, text: str, breadth: int,
                 groups: TagGroups | None = None) -> None:
    scan = index.scan(text)
    if groups is None:
        groups = index.tag_groups(scan)
    vector, scale = analysis.features(text, scan, groups, agent_breadth=breadth)
    terms, term_scale = analysis._terms(text, scan, groups[2], breadth)
    assert term_scale == scale
    # the same (-|w·x|, name, w·x) in the same (vector) order, bit for bit
    expected = analysis._contributions(vector)
    assert [t[:3] for t in terms] == expected, text
    for t in terms:
        assert repr(t[0]) == repr(-abs(t[2]))
        name, weight, prefix, kind = t[1], t[2], t[3], t[4]
        if name == "log_words":
            assert (prefix, kind) == ("", 0)
            continue
        assert kind == (analysis._KEYED if name in analysis._SIGNAL_SET else
                        analysis._SCALED if name == "scale" else 0)
        assert prefix == f"{weight:+.2f} from {name}" + (": " if kind else "")
    # the score, as complexity_score sums it
    assert sum([t[2] for t in terms], 0.0) == analysis.complexity_score(vector)


def test_terms_as_the_vector_on_every_request(index: CompiledIndex) -> None:
    for n, text in enumerate(_requests()):
        _check_terms(index, text, n % 12)


def test_terms_as_the_vector_on_mixed_requests(index: CompiledIndex) -> None:
    rng = random.Random(31)
    for text in _mixed_requests(rng, 800):
        _check_terms(index, text, rng.randint(-3, 14))


def test_terms_of_odd_groups(index: CompiledIndex) -> None:
    """Empty key lists, unknown signals, repeated words and a negative breadth."""
    text = "Build a login page: form, validation, and tests?"
    groups: TagGroups = ({"auth": []}, {}, {
        "construction": [], "unknown": ["x"], "scope": ["a", "a→b", "c→d", "e", "f"],
        "fix": ["修复", "修复→fix"], "small": ["a", "b"], "migration": ["x"],
    })
    for breadth in (-5, -1, 0, 1, 7, 8, 9, 100):
        _check_terms(index, text, breadth, groups)


# -- build_plan -------------------------------------------------------------------------------


def _ref_build_plan(
    *, request: str, normalized: str, analysis: Analysis,
    team: Sequence[tuple[AgentSpec, AgentChoice]], rejected: Sequence[Rejection],
    catalog_version: str, options: str = "", roles: Mapping[str, tuple[str, str]],
) -> Plan:
    """build_plan as plain code (stages in STAGE_ORDER, every task of a stage depending on
    every task of the stage before; the earlier code, without the inlined constructors)."""
    by_stage: dict[str, list[AgentSpec]] = {}
    for spec, _choice in team:
        by_stage.setdefault(spec.stage, []).append(spec)
    used = [s for s in STAGE_ORDER if s in by_stage]
    hours = {"simple": 1.0, "medium": 4.0, "complex": 12.0}[analysis.complexity.value]
    effort = {"design": 0.6, "implement": 1.0, "verify": 0.6, "release": 0.4, "document": 0.3}
    stages: list[Stage] = []
    before: list[str] = []
    for name in used:
        names = tuple(spec.name for spec in by_stage[name])
        each = round(hours * effort[name], 2)
        tasks = []
        for agent in names:
            task_id, role = roles[agent]
            peers = [other for other in names if other != agent]
            brief = f"Request: {request}\n{role}"
            if peers:
                brief += f"\nWorking in parallel with: {', '.join(peers)}."
            if before:
                brief += f"\nBuilds on the results of: {', '.join(before)}."
            tasks.append(Task(task_id, agent, name, brief,
                              tuple(roles[b][0] for b in before), each))
        mode = StageMode.SEQUENTIAL if len(names) == 1 else StageMode.PARALLEL
        stages.append(Stage(name, STAGE_GOALS[name], mode, names, tuple(tasks),
                            name != used[-1], _GATES.get(name)))
        before = list(names)
    total = round(sum(t.estimated_hours for s in stages for t in s.tasks), 2)
    return Plan(plan_id(normalized, catalog_version, options), request, catalog_version,
                analysis, tuple(c for _s, c in team), tuple(stages), total, tuple(rejected))


def _check_plan(planner: Planner, team: list[tuple[AgentSpec, AgentChoice]], text: str,
                analysis_: Analysis, rejected: Sequence[Rejection] = ()) -> None:
    catalog = planner.catalog
    kwargs: dict[str, Any] = dict(
        request=text, normalized=text, analysis=analysis_, team=team, rejected=rejected,
        catalog_version=catalog.version, options="o", roles=catalog.roles)
    plan = build_plan(**kwargs)
    ref = _ref_build_plan(**kwargs)
    assert plan == ref
    assert plan.to_dict() == ref.to_dict()
    assert type(plan) is Plan
    for stage in plan.stages:
        assert type(stage) is Stage
        assert all(type(task) is Task for task in stage.tasks)


def test_build_plan_as_plain_code_on_every_request(builtin_planner: Planner) -> None:
    agents = {a.name: a for a in builtin_planner.catalog.agents}
    for text in _requests()[:400]:
        plan = builtin_planner.plan(text)
        team = [(agents[c.name], c) for c in plan.agents]
        _check_plan(builtin_planner, team, plan.request, plan.analysis, plan.rejected)


def test_build_plan_as_plain_code_on_odd_teams(builtin_planner: Planner) -> None:
    """Random teams: any agents in any order, repeated agents (no peers for the same name),
    agents of a stage outside STAGE_ORDER (left out of the stages), an empty team."""
    catalog = builtin_planner.catalog
    agents = list(catalog.agents)
    custom = agents[0].replace(stage="custom")
    roles = catalog.roles
    assert agents[0].name in roles
    rng = random.Random(33)
    for n in range(600):
        size = rng.randint(0, 9)
        specs = [rng.choice(agents) for _ in range(size)]
        if n % 7 == 0:
            specs.append(custom)
        if n % 5 == 0 and specs:
            specs.append(specs[0])
        team = [(s, AgentChoice(s.name, rng.random(), ("r",))) for s in specs]
        complexity = rng.choice(list(Complexity))
        analysis_ = Analysis(complexity, (), (), (), 1, 1, "en", ())
        text = rng.choice(["a", "实现用户登录功能", "x" * 300])
        _check_plan(builtin_planner, team, text, analysis_)
