"""The sped-up scoring and team choice give exactly what the straightforward code gave.

``_reference_scores`` and ``_reference_choose`` restate, plainly, the routing code as it was
before the speed pass (kept here as the specification); the module's versions must
return the same values, float for float, on the sample requests and on random score tables
built to hit every branch (ties, negative rule scores, fallbacks, the verify complement).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from perfect21.planner import Planner
from perfect21.planner.models import STAGE_ORDER, AgentChoice, AgentSpec, Complexity, Rejection
from perfect21.planner.routing import (
    BM25_WEIGHT,
    FALLBACK,
    MAX_REJECTIONS,
    MIN_SCORE,
    MIN_SCORE_DESCRIPTION_ONLY,
    RELATIVE_FLOOR,
    RELATIVE_FLOOR_TO_FILL,
    VERIFY_COMPLEMENT,
    Scores,
    TeamBounds,
    choose_team,
    score_agents,
)
from perfect21.planner.text import normalize_request

Team = tuple[tuple[AgentChoice, ...], tuple[Rejection, ...]]


def _reference_scores(rule: dict[int, float], evidence: dict[int, list[str]],
                      bm25: dict[int, float]) -> Scores:
    get = rule.get
    total = rule | {idx: get(idx, 0.0) + BM25_WEIGHT * value for idx, value in bm25.items()}
    order = sorted(total, key=lambda i: (-total[i], i))
    top = total[order[0]] if order else 0.0
    return Scores(total, rule, bm25, evidence, order, max(MIN_SCORE, RELATIVE_FLOOR * top))


def _reference_breadth(scores: Scores) -> int:
    return sum(1 for i in scores.order if scores.total[i] >= scores.floor)


def _reference_reasons(scores: Scores, idx: int, extra: str | None) -> tuple[str, ...]:
    reasons: list[str] = []
    matched = scores.evidence.get(idx)
    if matched:
        reasons.append("matched: " + ", ".join(matched[:8]))
    relevance = scores.bm25.get(idx, 0.0)
    if relevance > 0:
        reasons.append(f"description relevance {relevance:.2f}")
    if extra is not None:
        reasons.append(extra)
    return tuple(reasons)


def _reference_choose(agents: Sequence[AgentSpec], scores: Scores, complexity: Complexity,
                      bounds: TeamBounds, builds: bool) -> Team:
    low, high = bounds[complexity]
    total, rule, order, floor = scores.total, scores.rule, scores.order, scores.floor
    top = total[order[0]] if order else 0.0
    fill_floor = max(MIN_SCORE, RELATIVE_FLOOR_TO_FILL * top)
    chosen: list[int] = []
    for i in order:
        if total[i] < floor or len(chosen) == high:
            break
        if rule.get(i, 0.0) > 0 or total[i] >= MIN_SCORE_DESCRIPTION_ONLY:
            chosen.append(i)
    for i in order:
        if len(chosen) >= low or total[i] < fill_floor:
            break
        if i not in chosen and rule.get(i, 0.0) > 0:
            chosen.append(i)
    extra: dict[int, str] = {}
    names = [a.name for a in agents]
    if not chosen:
        fallback = next((names.index(n) for n in FALLBACK if n in names), None)
        if fallback is None:
            fallback = order[0] if order else 0
        if agents:
            chosen.append(fallback)
            extra[fallback] = "no agent matched the request strongly; generalist fallback"
    stages = [agents[i].stage for i in chosen]
    if builds and chosen and len(chosen) < high and "implement" not in stages:
        builders = [i for i in order if agents[i].stage == "implement" and i not in chosen
                    and rule.get(i, 0.0) > 0]
        if not builders:
            builders = [names.index(n) for n in FALLBACK
                        if n in names and agents[names.index(n)].stage == "implement"]
        if builders:
            pick = builders[0]
            chosen.append(pick)
            stages.append(agents[pick].stage)
            extra[pick] = ("the request asks to build something and no implementation agent "
                           "matched: adds one")
    if (complexity is not Complexity.SIMPLE and len(chosen) < high and "implement" in stages
            and "verify" not in stages):
        verify = [i for i in order if agents[i].stage == "verify" and i not in chosen]
        if not verify:
            verify = [i for i, a in enumerate(agents) if a.name in VERIFY_COMPLEMENT]
            verify.sort(key=lambda i: VERIFY_COMPLEMENT.index(agents[i].name))
        preferred = [i for n in VERIFY_COMPLEMENT for i in verify if agents[i].name == n]
        candidates = preferred or verify
        if candidates:
            pick = candidates[0]
            chosen.append(pick)
            extra[pick] = f"{complexity.value} change without a verify-stage agent: adds one"
    choices = tuple(AgentChoice(agents[i].name, round(total.get(i, 0.0), 4),
                                _reference_reasons(scores, i, extra.get(i))) for i in chosen)
    rejected: list[Rejection] = []
    for i in order:
        if len(rejected) >= MAX_REJECTIONS:
            break
        value = total[i]
        if i in chosen or value <= 0:
            continue
        if value >= floor:
            why = (f"team size limit {high} for {complexity.value} work"
                   if rule.get(i, 0.0) > 0
                   else f"only description overlap (needs {MIN_SCORE_DESCRIPTION_ONLY:g})")
        else:
            why = f"below the selection floor {floor:.2f}"
        rejected.append(Rejection(agents[i].name, round(value, 4), why))
    return choices, tuple(rejected)


class _Index:
    """Stands in for CompiledIndex: hands score_agents fixed rule and BM25 scores."""

    def __init__(self, rule: dict[int, float], evidence: dict[int, list[str]],
                 bm25: dict[int, float]) -> None:
        self.rule, self.evidence, self.bm25 = rule, evidence, bm25

    def rule_scores(self, scan: object) -> tuple[dict[int, float], dict[int, list[str]]]:
        return dict(self.rule), {k: list(v) for k, v in self.evidence.items()}

    def bm25_scores(self, scan: object) -> dict[int, float]:
        return dict(self.bm25)


def _raw(team: Team) -> list[tuple[str, str, object]]:
    """Every field, scores by repr (so 0.0 and -0.0 or one ulp apart differ)."""
    choices, rejected = team
    return ([(c.name, repr(c.score), c.reasons) for c in choices]
            + [(r.name, repr(r.score), r.reason) for r in rejected])


def _check(agents: Sequence[AgentSpec], scores: Scores, reference: Scores,
           complexity: Complexity, bounds: TeamBounds, builds: bool) -> None:
    assert scores.order == reference.order
    assert {i: repr(v) for i, v in scores.total.items()} == \
        {i: repr(v) for i, v in reference.total.items()}
    assert repr(scores.floor) == repr(reference.floor)
    assert scores.breadth() == _reference_breadth(reference)
    got = choose_team(agents, scores, complexity, bounds, builds=builds)
    assert _raw(got) == _raw(_reference_choose(agents, reference, complexity, bounds, builds))


def _routes_as_before(agents: Sequence[AgentSpec], index: _Index, complexity: Complexity,
                      bounds: TeamBounds, builds: bool) -> None:
    """``_check`` of the scores of a stand-in index against the reference's."""
    scores = score_agents(index, None)  # type: ignore[arg-type]
    reference = _reference_scores(dict(index.rule), index.evidence, dict(index.bm25))
    _check(agents, scores, reference, complexity, bounds, builds)


def test_sample_requests_route_as_before(builtin_planner: Planner, shared_dir: Path) -> None:
    catalog = builtin_planner.catalog
    index = catalog.index
    lines = (shared_dir / "data" / "routing_sample.jsonl").read_text().splitlines()
    requests = [json.loads(line)["request"] for line in lines if line.strip()]
    bounds_list: list[TeamBounds] = [
        builtin_planner._bounds,
        {Complexity.SIMPLE: (1, 1), Complexity.MEDIUM: (1, 2), Complexity.COMPLEX: (2, 3)},
        {Complexity.SIMPLE: (3, 8), Complexity.MEDIUM: (5, 9), Complexity.COMPLEX: (8, 12)},
    ]
    for raw in requests:
        scan = index.scan(normalize_request(raw))
        scores = score_agents(index, scan)
        rule, evidence = index.rule_scores(scan)
        reference = _reference_scores(rule, evidence, index.bm25_scores(scan))
        for complexity in Complexity:
            for bounds in bounds_list:
                for builds in (False, True):
                    _check(catalog.agents, scores, reference, complexity, bounds, builds)


_NAMES = ("a-one", "a-two", "a-three", "a-four", "a-five", "a-six", *FALLBACK,
          *VERIFY_COMPLEMENT)


@st.composite
def _cases(draw: st.DrawFn) -> tuple[list[AgentSpec], _Index, Complexity, TeamBounds, bool]:
    names = draw(st.lists(st.sampled_from(_NAMES), min_size=1, max_size=len(_NAMES),
                          unique=True))
    names.sort()  # the catalog sorts its agents by name
    agents = [AgentSpec(name, "d", stage=draw(st.sampled_from(STAGE_ORDER))) for name in names]
    ids = st.integers(min_value=0, max_value=len(agents) - 1)
    # few distinct values, so that ties (and ties after adding the two parts) are common
    rule_value = st.sampled_from([-1.5, 0.0, 0.5, 1.1, 2.2, 3.3, 4.0, 6.6, 9.0])
    bm25_value = st.sampled_from([0.3, 1.0, 2.2, 4.4, 8.0, 20.0, 1 / 3]) | st.floats(1e-3, 40.0)
    rule = draw(st.dictionaries(ids, rule_value, max_size=len(agents)))
    evidence = {i: draw(st.lists(st.sampled_from(["k1", "k2", "k3", "登录"]), min_size=1,
                                 max_size=11)) for i in rule}
    bm25 = draw(st.dictionaries(ids, bm25_value, max_size=len(agents)))
    return (agents, _Index(rule, evidence, bm25), draw(st.sampled_from(list(Complexity))),
            draw(_team_bounds()), draw(st.booleans()))


@st.composite
def _team_bounds(draw: st.DrawFn) -> TeamBounds:
    """(low, high) per complexity, drawn apart: a minimum above the maximum and a maximum of
    0 are covered too, which the planner's own bounds never have."""
    return {c: (draw(st.integers(0, 6)), draw(st.integers(0, 6))) for c in Complexity}


@settings(max_examples=1500, deadline=None)
@given(_cases())
def test_random_score_tables_route_as_before(
    case: tuple[list[AgentSpec], _Index, Complexity, TeamBounds, bool],
) -> None:
    _routes_as_before(*case)
