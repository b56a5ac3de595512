"""Routing: score every agent, then choose a team whose size follows complexity.

Score = keyword rules (one-pass matches, IDF-weighted, Chinese via keywords and the bilingual
lexicon) + ``BM25_WEIGHT`` × lexical relevance of the request to the agent's name,
description and keywords. Ties break on the agent name, so the same request always gives the
same team, in every process.
"""

from __future__ import annotations

from collections.abc import Sequence

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
    # rule score + weighted relevance; agents with relevance only come after the rule ones
    get = rule.get
    total = rule | {idx: get(idx, 0.0) + BM25_WEIGHT * value for idx, value in bm25.items()}
    # Best first, ties by index (= by name): sort the indices, then stably by score. Both
    # sorts run in C (no key function in Python, no (score, index) pairs to build).
    order = sorted(total)
    order.sort(key=total.__getitem__, reverse=True)
    top = total[order[0]] if order else 0.0
    return Scores(total, rule, bm25, evidence, order, max(MIN_SCORE, RELATIVE_FLOOR * top))


def _reasons(scores: Scores, idx: int, extra: str | None) -> tuple[str, ...]:
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


_OVERLAP_REASON = f"only description overlap (needs {MIN_SCORE_DESCRIPTION_ONLY:g})"


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
    rule = scores.rule
    order = scores.order
    floor = scores.floor
    top = total[order[0]] if order else 0.0
    fill_floor = max(MIN_SCORE, RELATIVE_FLOOR_TO_FILL * top)
    chosen: list[int] = []
    for i in order:  # best first: the first agent under the floor ends the team
        if total[i] < floor or len(chosen) == high:
            break
        if rule.get(i, 0.0) > 0 or total[i] >= MIN_SCORE_DESCRIPTION_ONLY:
            chosen.append(i)
    for i in order:  # best first: past the relaxed floor, no later agent qualifies either
        if len(chosen) >= low or total[i] < fill_floor:
            break
        # Filling up to the minimum team size needs keyword evidence, not just word overlap
        # with a description: the team is never padded with agents the request did not ask for.
        if i not in chosen and rule.get(i, 0.0) > 0:
            chosen.append(i)
    extra: dict[int, str] = {}
    if not chosen:
        names = [a.name for a in agents]
        fallback = next((names.index(n) for n in FALLBACK if n in names), None)
        if fallback is None:
            fallback = order[0] if order else 0
        if agents:
            chosen.append(fallback)
            extra[fallback] = "no agent matched the request strongly; generalist fallback"
    stages: list[str] = []  # kept in step with ``chosen``
    for i in chosen:
        stages.append(agents[i].stage)
    if builds and chosen and len(chosen) < high and "implement" not in stages:
        builders = [i for i in order if agents[i].stage == "implement" and i not in chosen
                    and rule.get(i, 0.0) > 0]
        if not builders:
            names = [a.name for a in agents]
            builders = [names.index(n) for n in FALLBACK
                        if n in names and agents[names.index(n)].stage == "implement"]
        if builders:
            pick = builders[0]
            chosen.append(pick)
            stages.append(agents[pick].stage)
            extra[pick] = "the request asks to build something and no implementation agent " \
                "matched: adds one"
    if (
        complexity is not Complexity.SIMPLE
        and len(chosen) < high
        and "implement" in stages
        and "verify" not in stages
    ):
        verify: list[int] = []
        for i in order:
            if agents[i].stage == "verify" and i not in chosen:
                verify.append(i)
        if not verify:
            verify = [i for i, a in enumerate(agents) if a.name in VERIFY_COMPLEMENT]
            verify.sort(key=lambda i: VERIFY_COMPLEMENT.index(agents[i].name))
        preferred: list[int] = []
        for n in VERIFY_COMPLEMENT:
            for i in verify:
                if agents[i].name == n:
                    preferred.append(i)
        candidates = preferred or verify
        if candidates:
            pick = candidates[0]
            chosen.append(pick)
            extra[pick] = f"{complexity.value} change without a verify-stage agent: adds one"
    # Plain loops (here and above): in Python 3.11 a comprehension builds a function object,
    # which costs more than the few agents of a team.
    choices: list[AgentChoice] = []
    for i in chosen:
        choices.append(new_choice(agents[i].name, round(total.get(i, 0.0), 4),
                                  _reasons(scores, i, extra.get(i))))
    rejected: list[Rejection] = []
    # Reason texts are built once per plan, not per rejected agent (the score is its own field).
    limit_reason = f"team size limit {high} for {complexity.value} work"
    floor_reason = f"below the selection floor {floor:.2f}"
    for i in order:
        if len(rejected) >= MAX_REJECTIONS:  # the closest runners-up only
            break
        value = total[i]
        if i in chosen or value <= 0:
            continue
        if value >= floor:
            why = limit_reason if rule.get(i, 0.0) > 0 else _OVERLAP_REASON
        else:
            why = floor_reason
        rejected.append(new_rejection(agents[i].name, round(value, 4), why))
    return tuple(choices), tuple(rejected)
