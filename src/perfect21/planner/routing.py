"""Routing: score every agent, then choose a team whose size follows complexity.

Score = keyword rules (one-pass matches, IDF-weighted, Chinese via keywords and the bilingual
lexicon) + ``BM25_WEIGHT`` × lexical relevance of the request to the agent's name,
description and keywords. Ties break on the agent name, so the same request always gives the
same team, in every process.
"""

from __future__ import annotations

from collections.abc import Sequence

from perfect21.planner._floats import round4
from perfect21.planner.index import CompiledIndex, Scan
from perfect21.planner.models import (
    AgentChoice,
    AgentSpec,
    Complexity,
    Rejection,
    draft_class,
)

__all__ = ["Scores", "TeamBounds", "choose_team", "score_agents"]

BM25_WEIGHT = 0.45
MIN_SCORE = 2.2  # absolute evidence needed to be chosen at all
MIN_SCORE_DESCRIPTION_ONLY = 4.0  # ... when no keyword or name matched, only the description
RELATIVE_FLOOR = 0.34  # ... and this share of the best agent's score
RELATIVE_FLOOR_TO_FILL = 0.2  # relaxed floor used only to reach the team's minimum size
VERIFY_COMPLEMENT = ("test-engineer", "code-reviewer")
FALLBACK = ("fullstack-engineer", "backend-architect")
MAX_REJECTIONS = 6  # the closest runners-up, shown by --explain

TeamBounds = dict[Complexity, tuple[int, int]]


class Scores:
    """Sparse scores: only agents with any evidence appear (agent index → value). Internal
    and never mutated after scoring; a plain slotted class for the reasons given at ``Scan``."""

    __slots__ = ("bm25", "evidence", "floor", "order", "rule", "total")

    def __init__(
        self,
        total: dict[int, float],
        rule: dict[int, float],
        bm25: dict[int, float],
        evidence: dict[int, list[str]],
        order: list[int],
        floor: float,
    ) -> None:
        self.total = total
        self.rule = rule
        self.bm25 = bm25
        self.evidence = evidence
        # Agents with a score, best first. Agents are indexed in name order (the catalog
        # sorts them), so ties on the score break on the name.
        self.order = order
        self.floor = floor  # the selection floor: MIN_SCORE, or RELATIVE_FLOOR of the best

    def breadth(self) -> int:
        """How many agents clear the selection floor (a complexity signal)."""
        total, floor = self.total, self.floor
        count = 0
        for idx in self.order:
            if total[idx] < floor:
                break
            count += 1
        return count


def score_agents(index: CompiledIndex, scan: Scan) -> Scores:
    rule, evidence = index.rule_scores(scan)
    bm25 = index.bm25_scores(scan)
    # rule score + weighted relevance. The weighted relevance of every agent first, in a copy
    # of ``bm25`` (same keys: the stores only replace values, the table never grows), then the
    # few rule scores added on top: −14k instructions a slow plan against a dict comprehension
    # merged into ``rule``. Same floats: ``r + w·v`` for both, and ``w·v`` alone for relevance
    # only, which is what ``0.0 + w·v`` was (BM25 weights are positive, so ``w·v`` is never
    # −0.0). The key order differs, which nothing reads: ``order`` sorts the keys first.
    total = bm25.copy()
    weight = BM25_WEIGHT
    for idx, value in bm25.items():
        total[idx] = weight * value
    # An agent matched by keywords almost always shares words with the request (all 72 of
    # the slow 16's, 376 of 392 over the 160 sample requests): a plain lookup, in a ``try``
    # (free in 3.11 unless raised: ~2k for a miss), not a ``get`` call and a test of its
    # result: −1.1k instructions a slow plan. The same sum, ``value + relevance``.
    for idx, value in rule.items():
        try:
            total[idx] = value + total[idx]
        except KeyError:
            total[idx] = value
    # Best first, ties by index (= by name): sort the indices, then stably by score. Both
    # sorts run in C (no key function in Python, no (score, index) pairs to build). The
    # keys listed by a display and sorted in place, not by a sorted() call: −600 a plan.
    order = [*total]
    order.sort()
    order.sort(key=total.__getitem__, reverse=True)
    top = total[order[0]] if order else 0.0
    # max(MIN_SCORE, share) without the builtin call (~1.3k instructions): the same value,
    # max keeps its first argument unless the second is greater.
    floor = RELATIVE_FLOOR * top
    if not floor > MIN_SCORE:
        floor = MIN_SCORE
    return Scores(total, rule, bm25, evidence, order, floor)


# an enum member as a module global: read as a class attribute it goes through EnumType's
# __getattr__, ~900 instructions (see workflow.py)
_SIMPLE = Complexity.SIMPLE
_OVERLAP_REASON = f"only description overlap (needs {MIN_SCORE_DESCRIPTION_ONLY:g})"
# Reason texts that depend only on the complexity, built at import (``Complexity.value`` is an
# enum property, some 400 instructions a read).
_VERIFY_REASON = {c: f"{c.value} change without a verify-stage agent: adds one"
                  for c in Complexity}
_WORK = {c: f" for {c.value} work" for c in Complexity}
_BUILD_REASON = "the request asks to build something and no implementation agent matched: adds one"
_FALLBACK_REASON = "no agent matched the request strongly; generalist fallback"
# Templates for ``%``: "%.2f" % x formats a float exactly as f"{x:.2f}" (both end in
# PyOS_double_to_string(x, 'f', 2)) without format() and a format-spec parse: −190
# instructions a text (named, as ruff's UP031 would rewrite a literal into the dearer form).
_RELEVANCE = "description relevance %.2f"
_BELOW_FLOOR = "below the selection floor %.2f"
# The choices and rejections are built as the fast constructors do, inlined (as build_plan
# does for tasks and stages): a draft object, every field stored, then made an AgentChoice
# or Rejection (models.draft_class). ~470 instructions a value fewer than a constructor
# function doing the same, 10-13 values a plan.
_ChoiceDraft = draft_class(AgentChoice)
_RejectionDraft = draft_class(Rejection)


class _Layout:
    """What choose_team needs to know of a catalog's agents, by index: computed once per
    agents tuple (a catalog's, see ``_new_layout``), not per plan."""

    __slots__ = ("agents", "build_fallback", "complement", "fallback", "implementers",
                 "names", "stages", "verifiers", "verify_fallback")

    def __init__(self, agents: Sequence[AgentSpec]) -> None:
        self.agents = agents
        names = [a.name for a in agents]
        self.names = names
        self.stages = [a.stage for a in agents]
        # the indices of the implement-stage and verify-stage agents
        self.implementers = frozenset(i for i, a in enumerate(agents) if a.stage == "implement")
        self.verifiers = frozenset(i for i, a in enumerate(agents) if a.stage == "verify")
        # the generalist of a team that nothing matched: the first of FALLBACK (-1: none)
        self.fallback = next((names.index(n) for n in FALLBACK if n in names), -1)
        # The generalist an implementation-less team gets: the first of FALLBACK in the
        # catalog that works in the implement stage (-1: none).
        self.build_fallback = next(
            (names.index(n) for n in FALLBACK
             if n in names and agents[names.index(n)].stage == "implement"), -1)
        # VERIFY_COMPLEMENT's verify-stage agents, most preferred first; None when names
        # repeat (never in a catalog, whose agents are keyed by name), so that the first of
        # the same name in score order cannot be told from its index alone.
        self.complement: tuple[int, ...] | None = None
        if len(set(names)) == len(names):
            self.complement = tuple(names.index(n) for n in VERIFY_COMPLEMENT
                                    if n in names
                                    and agents[names.index(n)].stage == "verify")
        # no scored verify agent at all: the first of VERIFY_COMPLEMENT in the catalog
        self.verify_fallback = next(
            (names.index(n) for n in VERIFY_COMPLEMENT if n in names), -1)


_last_layout: _Layout | None = None


def _new_layout(agents: Sequence[AgentSpec]) -> _Layout:
    """The layout of ``agents``, kept if they are a tuple (choose_team reuses the last one
    kept while it is called with the same tuple: a planner plans with one catalog, whose
    agents are a tuple of frozen values, so its layout cannot go stale). A list may change
    between calls: its layout is computed afresh."""
    global _last_layout
    layout = _Layout(agents)
    if type(agents) is tuple:
        _last_layout = layout  # one store, safe across threads
    return layout


def choose_team(
    agents: Sequence[AgentSpec],
    scores: Scores,
    complexity: Complexity,
    bounds: TeamBounds,
    *,
    builds: bool = False,
) -> tuple[tuple[AgentChoice, ...], tuple[Rejection, ...]]:
    """The chosen agents (best first) and the notable rejections, with reasons.

    ``builds``: the request asks to build or implement something, so a team without any
    implementation agent gets the best-matching one (or a generalist).
    """
    low, high = bounds[complexity]
    layout = _last_layout  # tested here, not in a function: no call (~400 instructions)
    if layout is None or layout.agents is not agents:
        layout = _new_layout(agents)
    names, stages_of = layout.names, layout.stages
    total = scores.total
    rule_get = scores.rule.get
    order = scores.order
    floor = scores.floor
    top = total[order[0]] if order else 0.0
    # max(MIN_SCORE, share) without the builtin call (~1.3k instructions): the same value,
    # max keeps its first argument unless the second is greater.
    fill_floor = RELATIVE_FLOOR_TO_FILL * top
    if not fill_floor > MIN_SCORE:
        fill_floor = MIN_SCORE
    chosen: list[int] = []
    # Best first: the first agent under the floor ends the team, and so does a full team
    # (checked after each addition, not on every step; ``> 0.0``: a float comparison is
    # cheaper than with the int 0, same result). ~4k instructions fewer a slow plan.
    walk = iter(order)
    below = -1  # the agent under the floor that ended the walk (-1: none)
    if high != 0:  # the former test at the top of every step stopped at once
        for i in walk:
            value = total[i]
            if value < floor:
                below = i
                break
            if value >= MIN_SCORE_DESCRIPTION_ONLY or rule_get(i, 0.0) > 0.0:
                chosen.append(i)
                if len(chosen) == high:
                    break
    # Filling up to the minimum team size needs keyword evidence, not just word overlap
    # with a description: the team is never padded with agents the request did not ask for.
    # Best first: past the relaxed floor, no later agent qualifies either. The fill goes on
    # where the walk above stopped (``below`` first): every agent the walk passed is in the
    # team or has no keyword evidence, and so would be passed again (−2.3k instructions a
    # slow plan: no second walk over the team, no list search for chosen agents).
    if len(chosen) < low and (below < 0 or total[below] >= fill_floor):
        if below >= 0 and rule_get(below, 0.0) > 0.0:
            chosen.append(below)
        for i in walk:
            if len(chosen) >= low or total[i] < fill_floor:
                break
            if rule_get(i, 0.0) > 0.0:
                chosen.append(i)
    extra: dict[int, str] = {}
    if not chosen and agents:
        fallback = layout.fallback
        if fallback < 0:
            fallback = order[0] if order else 0
        chosen.append(fallback)
        extra[fallback] = _FALLBACK_REASON
    # ``taken`` mirrors ``chosen`` for the membership tests of the walks over every scored
    # agent below (a set lookup instead of comparing with each chosen index: −8k a plan).
    taken = set(chosen)
    # Whether the team has an implement-stage or a verify-stage agent: one set operation
    # each, in C, instead of a list of the team's stages built in a loop (~2.5k instructions).
    implements = not layout.implementers.isdisjoint(taken)
    if builds and chosen and len(chosen) < high and not implements:
        pick = -1
        for i in order:  # the best-scoring implementation agent with keyword evidence
            if stages_of[i] == "implement" and i not in taken and rule_get(i, 0.0) > 0.0:
                pick = i
                break
        if pick < 0:
            pick = layout.build_fallback
        if pick >= 0:
            chosen.append(pick)
            taken.add(pick)
            implements = True  # (both ways of picking take an implement-stage agent)
            extra[pick] = _BUILD_REASON
    if (
        complexity is not _SIMPLE
        and len(chosen) < high
        and implements
        and layout.verifiers.isdisjoint(taken)
    ):
        # The first of VERIFY_COMPLEMENT among the scored verify-stage agents not yet chosen,
        # else the best of those, else the first of VERIFY_COMPLEMENT in the catalog. The
        # preferred ones looked up by index, not found by a walk over every scored agent
        # (which stopped only at the most preferred: ~9k instructions a slow plan).
        pick = -1
        complement = layout.complement
        if complement is None:  # repeated names
            pick = _preferred_verify(order, taken, names, stages_of)
        else:
            for i in complement:
                if i in total and i not in taken:
                    pick = i
                    break
        if pick < 0:
            for i in order:
                if stages_of[i] == "verify" and i not in taken:
                    pick = i
                    break
        if pick < 0:
            pick = layout.verify_fallback
        if pick >= 0:
            chosen.append(pick)
            taken.add(pick)
            extra[pick] = _VERIFY_REASON[complexity]
    # Plain loops (here and above): in Python 3.11 a comprehension builds a function object,
    # which costs more than the few agents of a team. The reasons are built inline, as tuples.
    evidence_get = scores.evidence.get
    bm25_get = scores.bm25.get
    choices: list[AgentChoice] = []
    for i in chosen:
        matched = evidence_get(i)
        relevance = bm25_get(i, 0.0)
        if matched:
            listed = "matched: " + ", ".join(matched if len(matched) <= 8 else matched[:8])
            if relevance > 0.0:
                reasons: tuple[str, ...] = (listed, _RELEVANCE % relevance)
            else:
                reasons = (listed,)
        elif relevance > 0.0:
            reasons = (_RELEVANCE % relevance,)
        else:
            reasons = ()
        if extra and i in extra:
            reasons += (extra[i],)
        choice = _ChoiceDraft()
        choice.name = names[i]
        choice.score = round4(total.get(i, 0.0))
        choice.reasons = reasons
        choice.__class__ = AgentChoice
        choices.append(choice)
    rejected: list[Rejection] = []
    # Reason texts are built once per plan, not per rejected agent (the score is its own
    # field), and only when a rejection needs them.
    limit_reason = floor_reason = ""
    # A count-down rather than a len() call a rejection, and (here and in the reasons above)
    # comparisons with 0.0 rather than the int 0, same results: −2.3k instructions a slow plan.
    left = MAX_REJECTIONS
    for i in order:
        if i in taken:  # (tested first: the team's scores are not looked up, −0.5k a plan)
            continue
        value = total[i]
        if value <= 0.0:
            continue
        if value >= floor:
            if rule_get(i, 0.0) > 0.0:
                if not limit_reason:
                    limit_reason = f"team size limit {high}" + _WORK[complexity]
                why = limit_reason
            else:
                why = _OVERLAP_REASON
        else:
            if not floor_reason:
                floor_reason = _BELOW_FLOOR % floor
            why = floor_reason
        rejection = _RejectionDraft()
        rejection.name = names[i]
        rejection.score = round4(value)
        rejection.reason = why
        rejection.__class__ = Rejection
        rejected.append(rejection)
        left -= 1
        if left <= 0:  # the closest runners-up only
            break
    return tuple(choices), tuple(rejected)


def _preferred_verify(order: list[int], taken: set[int], names: list[str],
                      stages: list[str]) -> int:
    """The scored verify-stage agent not taken whose name comes first in VERIFY_COMPLEMENT,
    the best-scoring of that name (-1: none): the walk for agents with repeated names."""
    pick = -1
    rank = len(VERIFY_COMPLEMENT)
    for i in order:
        name = names[i]
        if stages[i] == "verify" and i not in taken and name in VERIFY_COMPLEMENT:
            preference = VERIFY_COMPLEMENT.index(name)
            if preference < rank:
                pick, rank = i, preference
    return pick
