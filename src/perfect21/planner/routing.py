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
    new_choice,
    new_rejection,
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
    get = total.get
    for idx, value in rule.items():
        relevance = get(idx)
        total[idx] = value if relevance is None else value + relevance
    # Best first, ties by index (= by name): sort the indices, then stably by score. Both
    # sorts run in C (no key function in Python, no (score, index) pairs to build).
    order = sorted(total)
    order.sort(key=total.__getitem__, reverse=True)
    top = total[order[0]] if order else 0.0
    return Scores(total, rule, bm25, evidence, order, max(MIN_SCORE, RELATIVE_FLOOR * top))


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
    total = scores.total
    rule_get = scores.rule.get
    order = scores.order
    floor = scores.floor
    top = total[order[0]] if order else 0.0
    fill_floor = max(MIN_SCORE, RELATIVE_FLOOR_TO_FILL * top)
    chosen: list[int] = []
    for i in order:  # best first: the first agent under the floor ends the team
        if total[i] < floor or len(chosen) == high:
            break
        if rule_get(i, 0.0) > 0 or total[i] >= MIN_SCORE_DESCRIPTION_ONLY:
            chosen.append(i)
    for i in order:  # best first: past the relaxed floor, no later agent qualifies either
        if len(chosen) >= low or total[i] < fill_floor:
            break
        # Filling up to the minimum team size needs keyword evidence, not just word overlap
        # with a description: the team is never padded with agents the request did not ask for.
        if i not in chosen and rule_get(i, 0.0) > 0:
            chosen.append(i)
    extra: dict[int, str] = {}
    if not chosen:
        names = [a.name for a in agents]
        fallback = next((names.index(n) for n in FALLBACK if n in names), None)
        if fallback is None:
            fallback = order[0] if order else 0
        if agents:
            chosen.append(fallback)
            extra[fallback] = _FALLBACK_REASON
    # ``taken`` mirrors ``chosen`` for the membership tests of the walks over every scored
    # agent below (a set lookup instead of comparing with each chosen index: −8k a plan).
    taken = set(chosen)
    stages: list[str] = []  # kept in step with ``chosen``
    for i in chosen:
        stages.append(agents[i].stage)
    if builds and chosen and len(chosen) < high and "implement" not in stages:
        pick = -1
        for i in order:  # the best-scoring implementation agent with keyword evidence
            if agents[i].stage == "implement" and i not in taken and rule_get(i, 0.0) > 0:
                pick = i
                break
        if pick < 0:
            names = [a.name for a in agents]
            for n in FALLBACK:
                if n in names and agents[names.index(n)].stage == "implement":
                    pick = names.index(n)
                    break
        if pick >= 0:
            chosen.append(pick)
            taken.add(pick)
            stages.append(agents[pick].stage)
            extra[pick] = _BUILD_REASON
    if (
        complexity is not _SIMPLE
        and len(chosen) < high
        and "implement" in stages
        and "verify" not in stages
    ):
        # The first of VERIFY_COMPLEMENT among the scored verify-stage agents not yet chosen,
        # else the best of those: one walk, which stops at the most preferred name.
        pick = best = -1
        rank = len(VERIFY_COMPLEMENT)
        for i in order:
            agent = agents[i]
            if agent.stage == "verify" and i not in taken:
                if best < 0:
                    best = i
                if agent.name in VERIFY_COMPLEMENT:
                    preference = VERIFY_COMPLEMENT.index(agent.name)
                    if preference < rank:
                        pick, rank = i, preference
                        if preference == 0:
                            break
        if pick < 0:
            pick = best
        if pick < 0:
            # no scored verify agent at all: the first of VERIFY_COMPLEMENT in the catalog
            for n in VERIFY_COMPLEMENT:
                for i, a in enumerate(agents):
                    if a.name == n:
                        pick = i
                        break
                if pick >= 0:
                    break
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
            if relevance > 0:
                reasons: tuple[str, ...] = (listed, _RELEVANCE % relevance)
            else:
                reasons = (listed,)
        elif relevance > 0:
            reasons = (_RELEVANCE % relevance,)
        else:
            reasons = ()
        if extra and i in extra:
            reasons += (extra[i],)
        choices.append(new_choice(agents[i].name, round4(total.get(i, 0.0)), reasons))
    rejected: list[Rejection] = []
    # Reason texts are built once per plan, not per rejected agent (the score is its own
    # field), and only when a rejection needs them.
    limit_reason = floor_reason = ""
    for i in order:
        value = total[i]
        if i in taken or value <= 0:
            continue
        if value >= floor:
            if rule_get(i, 0.0) > 0:
                if not limit_reason:
                    limit_reason = f"team size limit {high}" + _WORK[complexity]
                why = limit_reason
            else:
                why = _OVERLAP_REASON
        else:
            if not floor_reason:
                floor_reason = _BELOW_FLOOR % floor
            why = floor_reason
        rejected.append(new_rejection(agents[i].name, round4(value), why))
        if len(rejected) >= MAX_REJECTIONS:  # the closest runners-up only
            break
    return tuple(choices), tuple(rejected)
