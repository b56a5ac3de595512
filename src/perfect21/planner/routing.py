"""Routing: score every agent, then choose a team whose size follows complexity.

Score = keyword rules (one-pass matches, IDF-weighted, Chinese via keywords and the bilingual
lexicon) + ``BM25_WEIGHT`` × lexical relevance of the request to the agent's name,
description and keywords. Ties break on the agent name, so the same request always gives the
same team, in every process.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from perfect21.planner.index import CompiledIndex, Scan
from perfect21.planner.models import AgentChoice, AgentSpec, Complexity, Rejection

__all__ = ["Scores", "TeamBounds", "choose_team", "score_agents"]

BM25_WEIGHT = 0.45
MIN_SCORE = 2.2  # absolute evidence needed to be chosen at all
MIN_SCORE_DESCRIPTION_ONLY = 4.0  # ... when no keyword or name matched, only the description
RELATIVE_FLOOR = 0.34  # ... and this share of the best agent's score
RELATIVE_FLOOR_TO_FILL = 0.2  # relaxed floor used only to reach the team's minimum size
VERIFY_COMPLEMENT = ("test-engineer", "code-reviewer")
FALLBACK = ("fullstack-engineer", "backend-architect")

TeamBounds = dict[Complexity, tuple[int, int]]


@dataclass(frozen=True, slots=True)
class Scores:
    total: tuple[float, ...]
    rule: tuple[float, ...]
    bm25: tuple[float, ...]
    evidence: tuple[tuple[str, ...], ...]

    def breadth(self) -> int:
        """How many agents clear the selection floor (a complexity signal)."""
        top = max(self.total, default=0.0)
        floor = max(MIN_SCORE, RELATIVE_FLOOR * top)
        return sum(1 for s in self.total if s >= floor)


def score_agents(index: CompiledIndex, scan: Scan) -> Scores:
    rule, evidence = index.rule_scores(scan)
    bm25 = index.bm25_scores(scan)
    total = tuple(round(r + BM25_WEIGHT * b, 4) for r, b in zip(rule, bm25, strict=True))
    return Scores(total, tuple(rule), tuple(bm25), tuple(tuple(e) for e in evidence))


def _reasons(scores: Scores, idx: int) -> tuple[str, ...]:
    reasons: list[str] = []
    if scores.evidence[idx]:
        reasons.append("matched: " + ", ".join(scores.evidence[idx][:8]))
    if scores.bm25[idx] > 0:
        reasons.append(f"description relevance {scores.bm25[idx]:.2f}")
    return tuple(reasons)


def choose_team(
    agents: Sequence[AgentSpec],
    scores: Scores,
    complexity: Complexity,
    bounds: TeamBounds,
) -> tuple[tuple[AgentChoice, ...], tuple[Rejection, ...]]:
    """The chosen agents (best first) and the notable rejections, with reasons."""
    low, high = bounds[complexity]
    order = sorted(range(len(agents)), key=lambda i: (-scores.total[i], agents[i].name))
    top = scores.total[order[0]] if order else 0.0
    floor = max(MIN_SCORE, RELATIVE_FLOOR * top)
    fill_floor = max(MIN_SCORE, RELATIVE_FLOOR_TO_FILL * top)
    chosen: list[int] = [
        i for i in order
        if scores.total[i] >= floor
        and (scores.rule[i] > 0 or scores.total[i] >= MIN_SCORE_DESCRIPTION_ONLY)
    ][:high]
    for i in order:
        if len(chosen) >= low:
            break
        # Filling up to the minimum team size needs keyword evidence, not just word overlap
        # with a description: the team is never padded with agents the request did not ask for.
        if i not in chosen and scores.total[i] >= fill_floor and scores.rule[i] > 0:
            chosen.append(i)
    extra: dict[int, str] = {}
    if not chosen:
        fallback = next((agents.index(a) for n in FALLBACK for a in agents if a.name == n), None)
        if fallback is None and order:
            fallback = order[0]
        if fallback is not None:
            chosen.append(fallback)
            extra[fallback] = "no agent matched the request strongly; generalist fallback"
    if (
        complexity is not Complexity.SIMPLE
        and len(chosen) < high
        and any(agents[i].stage == "implement" for i in chosen)
        and not any(agents[i].stage == "verify" for i in chosen)
    ):
        verify = [i for i in order if agents[i].stage == "verify" and i not in chosen]
        preferred = [i for n in VERIFY_COMPLEMENT for i in verify if agents[i].name == n]
        candidates = preferred or verify
        if candidates:
            pick = candidates[0]
            chosen.append(pick)
            extra[pick] = f"{complexity.value} change without a verify-stage agent: adds one"
    choices = tuple(
        AgentChoice(
            agents[i].name,
            scores.total[i],
            _reasons(scores, i) + ((extra[i],) if i in extra else ()),
        )
        for i in chosen
    )
    rejected: list[Rejection] = []
    for i in order:
        if i in chosen or scores.total[i] <= 0:
            continue
        if len(rejected) >= 8:
            break
        if scores.total[i] >= floor:
            why = f"team size limit {high} for {complexity.value} work"
        else:
            why = f"score {scores.total[i]:.2f} below floor {floor:.2f}"
        rejected.append(Rejection(agents[i].name, scores.total[i], why))
    return choices, tuple(rejected)
