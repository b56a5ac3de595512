"""The second routing speed pass: choose_team's per-catalog layout gives the team the plain
code gave, also for agents with repeated names (which a catalog never has: the walk kept for
them) and for a list of agents changed between calls (its layout is not kept)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from perfect21.planner.models import STAGE_ORDER, AgentSpec, Complexity
from perfect21.planner.routing import FALLBACK, VERIFY_COMPLEMENT, TeamBounds, score_agents

from .test_speed_routing import (
    _NAMES,
    _check,
    _Index,
    _reference_scores,
    _routes_as_before,
    _team_bounds,
)


@st.composite
def _repeated(draw: st.DrawFn) -> tuple[list[AgentSpec], _Index, Complexity, TeamBounds, bool]:
    # names may repeat, and the verify complement and fallbacks are often present
    pool = st.sampled_from((*_NAMES, *VERIFY_COMPLEMENT, *VERIFY_COMPLEMENT, *FALLBACK))
    names = sorted(draw(st.lists(pool, min_size=1, max_size=12)))
    agents = [AgentSpec(name, "d", stage=draw(st.sampled_from(STAGE_ORDER))) for name in names]
    ids = st.integers(min_value=0, max_value=len(agents) - 1)
    rule = draw(st.dictionaries(ids, st.sampled_from([-1.5, 0.0, 0.5, 2.2, 4.0, 6.6]),
                                max_size=len(agents)))
    evidence = {i: draw(st.lists(st.sampled_from(["k1", "登录"]), min_size=1, max_size=3))
                for i in rule}
    bm25 = draw(st.dictionaries(ids, st.sampled_from([0.3, 1.0, 2.2, 4.4, 8.0]),
                                max_size=len(agents)))
    return (agents, _Index(rule, evidence, bm25), draw(st.sampled_from(list(Complexity))),
            draw(_team_bounds()), draw(st.booleans()))


@settings(max_examples=600, deadline=None)
@given(_repeated())
def test_repeated_names_route_as_before(
    case: tuple[list[AgentSpec], _Index, Complexity, TeamBounds, bool],
) -> None:
    agents, index, complexity, bounds, builds = case
    _routes_as_before(agents, index, complexity, bounds, builds)
    _routes_as_before(tuple(agents), index, complexity, bounds, builds)  # layout kept


def test_a_changed_list_gets_a_fresh_layout() -> None:
    agents = [AgentSpec("a-one", "d", stage="implement"),
              AgentSpec("test-engineer", "d", stage="verify")]
    index = _Index({0: 6.6, 1: 0.5}, {0: ["k1"], 1: ["k2"]}, {})
    bounds: TeamBounds = {c: (1, 3) for c in Complexity}
    for stage in ("verify", "design", "verify"):
        agents[1] = AgentSpec("test-engineer", "d", stage=stage)
        _routes_as_before(agents, index, Complexity.MEDIUM, bounds, True)


_score = (st.floats(min_value=1e-9, max_value=1e9)
          | st.integers(min_value=0, max_value=10**9).map(lambda n: (n + 0.5) / 1e4)  # ties
          | st.integers(min_value=0, max_value=10**9).map(lambda n: n / 1e4)
          | st.sampled_from([0.0, -0.0, 5e-5, 1.5e-4, 2.5e-4, 9999999.99995, 1e7, 1e7 + 0.5]))


@settings(max_examples=800, deadline=None)
@given(st.lists(_score, min_size=1, max_size=12), st.integers(min_value=1, max_value=6))
def test_inlined_score_rounding_is_round4(values: list[float], high: int) -> None:
    """The chosen and rejected agents' scores, rounded by round4, equal ``round(score, 4)`` bit
    for bit (``_check`` compares their reprs with the reference's ``round``)."""
    agents = [AgentSpec(f"agent-{k:02d}", "d") for k in range(len(values))]
    rule = dict(enumerate(values))
    index = _Index(rule, {i: ["k1"] for i in rule}, {})
    scores = score_agents(index, None)  # type: ignore[arg-type]
    reference = _reference_scores(dict(rule), index.evidence, {})
    bounds: TeamBounds = {c: (1, high) for c in Complexity}
    _check(agents, scores, reference, Complexity.SIMPLE, bounds, False)
