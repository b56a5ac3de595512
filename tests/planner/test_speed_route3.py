"""The third routing speed pass: the fill-up walk goes on where the first walk stopped, and
the team is still the one the plain code chose, for every kind of team bounds (also a
minimum above the maximum, and a maximum of 0, which the planner's own bounds never have);
``round4``/``round2`` with plain comparisons are still ``round`` bit for bit."""

from __future__ import annotations

import math
import random
import struct

from hypothesis import given, settings
from hypothesis import strategies as st

from perfect21.planner._floats import round2, round4
from perfect21.planner.models import STAGE_ORDER, AgentSpec, Complexity
from perfect21.planner.routing import TeamBounds, score_agents

from .test_speed_routing import _NAMES, _check, _Index, _reference_scores


@st.composite
def _any_bounds(draw: st.DrawFn) -> tuple[list[AgentSpec], _Index, Complexity, TeamBounds,
                                          bool]:
    names = sorted(draw(st.lists(st.sampled_from(_NAMES), min_size=1, max_size=len(_NAMES),
                                 unique=True)))
    agents = [AgentSpec(name, "d", stage=draw(st.sampled_from(STAGE_ORDER))) for name in names]
    ids = st.integers(min_value=0, max_value=len(agents) - 1)
    # values around the floors (2.2 absolute, 0.34 and 0.2 of the best), ties included
    rule = draw(st.dictionaries(ids, st.sampled_from([-1.5, 0.0, 0.5, 1.1, 2.2, 3.3, 4.0, 9.0]),
                                max_size=len(agents)))
    evidence = {i: draw(st.lists(st.sampled_from(["k1", "k2", "登录"]), min_size=1,
                                 max_size=10)) for i in rule}
    bm25 = draw(st.dictionaries(ids, st.sampled_from([0.3, 1.0, 2.2, 4.4, 8.0, 20.0])
                                | st.floats(1e-3, 40.0), max_size=len(agents)))
    # low and high drawn apart: low may exceed high, either may be 0
    bounds: TeamBounds = {c: (draw(st.integers(0, 6)), draw(st.integers(0, 6)))
                          for c in Complexity}
    return (agents, _Index(rule, evidence, bm25), draw(st.sampled_from(list(Complexity))),
            bounds, draw(st.booleans()))


@settings(max_examples=1500, deadline=None)
@given(_any_bounds())
def test_any_team_bounds_route_as_before(
    case: tuple[list[AgentSpec], _Index, Complexity, TeamBounds, bool],
) -> None:
    agents, index, complexity, bounds, builds = case
    scores = score_agents(index, None)  # type: ignore[arg-type]
    reference = _reference_scores(dict(index.rule), index.evidence, dict(index.bm25))
    _check(agents, scores, reference, complexity, bounds, builds)


def _bits(x: float) -> bytes:
    return struct.pack("<d", x)


def _same_as_round(x: float) -> None:
    for fast, places in ((round4, 4), (round2, 2)):
        got, want = fast(x), round(x, places)
        assert _bits(got) == _bits(want) or (math.isnan(got) and math.isnan(want)), \
            (x, places, got, want)


@settings(max_examples=3000, deadline=None)
@given(st.floats(allow_nan=True, allow_infinity=True))
def test_fast_rounding_is_round_for_any_float(x: float) -> None:
    _same_as_round(x)


def test_fast_rounding_at_ties_and_cut_offs() -> None:
    rng = random.Random(3)
    for _ in range(20000):
        for scale in (1e4, 1e2):
            # decimal ties (n + 0.5 units of the last place) and the fast path's cut-offs
            base = rng.randrange(0, 10**9)
            for frac in (0.5, 0.4999, 0.5001, 0.49989999, 0.50010001, 0.0, 0.99999):
                x = (base + frac) / scale
                for y in (x, -x, math.nextafter(x, 0.0), math.nextafter(x, math.inf)):
                    _same_as_round(y)
    for x in (0.0, -0.0, 5e-324, 1e7, math.nextafter(1e7, 0.0), 1e7 + 1.0, 1e300,
              math.inf, -math.inf, math.nan):
        _same_as_round(x)
