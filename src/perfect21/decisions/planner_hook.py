"""``perfect21 plan --record``: a plan's decision (which workflow, which agents, why) as an ADR."""

from __future__ import annotations

from typing import TYPE_CHECKING

from perfect21.decisions.models import LIMITS, Decision, Links, Option, Status

if TYPE_CHECKING:
    from perfect21._config import Config
    from perfect21.planner.models import Plan

__all__ = ["decision_from_plan", "record_plan"]

TITLE_CHARS = 80


def _short(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def decision_from_plan(plan: Plan) -> Decision:
    """A proposed decision: context = the analysis, options = the agents, decision = stages."""
    item = LIMITS["item"]
    analysis = plan.analysis
    facts = [f"complexity {analysis.complexity.value}"]
    if analysis.domains:
        facts.append(f"domains: {', '.join(analysis.domains)}")
    if analysis.stack:
        facts.append(f"stack: {', '.join(analysis.stack)}")
    facts.append(f"~{analysis.estimated_loc} lines in {analysis.modules} module(s)")
    context_lines = [
        f"Request: {_short(plan.request, LIMITS['text'] // 2)}",
        "",
        f"Analysis: {'; '.join(facts)}.",
        *(f"- {_short(reason, item)}" for reason in analysis.reasons),
    ]
    max_options = LIMITS["items"]
    options = [
        Option(a.name, pros=tuple(_short(r, item) for r in a.reasons[:max_options]))
        for a in plan.agents[:max_options]
    ]
    for rejection in plan.rejected[: max_options - len(options)]:
        options.append(Option(rejection.name, cons=(_short(rejection.reason, item),)))
    stages = [
        f"{s.name} ({s.mode.value}: {', '.join(s.agents) or 'no agents'})" for s in plan.stages
    ]
    ranked = ", ".join(f"{a.name} ({a.score:.2f})" for a in plan.agents)
    consequences = [f"Estimated {plan.estimated_hours:g} h over {len(plan.stages)} stage(s)."]
    consequences += [
        f"Quality gate '{s.gate.name}' after the {s.name} stage." for s in plan.stages if s.gate
    ]
    return Decision(
        title=f"Workflow for: {_short(plan.request, TITLE_CHARS)}",
        status=Status.PROPOSED,
        context="\n".join(context_lines)[: LIMITS["text"]],
        options=tuple(options),
        decision=_short(" → ".join(stages), LIMITS["text"]) or "No stages.",
        rationale=_short(
            f"the agents with the best scores were chosen: {ranked}." if ranked else "",
            LIMITS["text"],
        ),
        consequences=tuple(consequences[: LIMITS["items"]]),
        agents=tuple(a.name for a in plan.agents[: LIMITS["items"]]),
        deciders=("perfect21 planner",),
        tags=("workflow", f"complexity-{analysis.complexity.value}"),
        links=Links(workflow_id=plan.id),
    )


def record_plan(config: Config, plan: Plan) -> str:
    """Store the plan's decision; returns its number (``ADR-0012``) once it is durable."""
    from perfect21.decisions.store import SyncDecisionStore

    with SyncDecisionStore.open(config=config) as store:
        return store.record(decision_from_plan(plan)).ref
