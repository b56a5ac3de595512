"""Workflow: turn the analysis and the chosen team into ordered stages with tasks and gates."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence

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

__all__ = ["STAGE_GOALS", "build_plan", "plan_id"]

STAGE_GOALS: Mapping[str, str] = {
    "design": "analyse the request and agree on requirements, interfaces and the approach",
    "implement": "make the change: code, configuration, data and prompts, with unit tests",
    "verify": "prove it works: tests, review, audits and measurements against the criteria",
    "release": "ship it safely: pipelines, rollout, monitoring and a rollback path",
    "document": "record what changed and how to use it: docs, guides and release notes",
}
_GATES: Mapping[str, Gate] = {
    "design": Gate("design-review", (GateCheck("requirements and interfaces agreed"),)),
    "implement": Gate("build", (GateCheck("build and lint pass"), GateCheck("unit tests pass"))),
    "verify": Gate(
        "quality",
        (
            GateCheck("all tests pass"),
            GateCheck("coverage", threshold=80.0),
            GateCheck("no high-severity findings"),
        ),
    ),
    "release": Gate("release-readiness", (GateCheck("health checks green"),
                                          GateCheck("rollback path tested"))),
}
_HOURS = {Complexity.SIMPLE: 1.0, Complexity.MEDIUM: 4.0, Complexity.COMPLEX: 12.0}
_STAGE_EFFORT = {"design": 0.6, "implement": 1.0, "verify": 0.6, "release": 0.4, "document": 0.3}


def plan_id(normalized_request: str, catalog_version: str, options: str = "") -> str:
    digest = hashlib.sha256(
        "\0".join((normalized_request, catalog_version, options)).encode("utf-8", "replace")
    )
    return "plan-" + digest.hexdigest()[:16]


_STAGE_LINES = {stage: f"Stage: {stage} — {goal}." for stage, goal in STAGE_GOALS.items()}


def _brief(request: str, agent: AgentSpec, stage: str, peers: Sequence[str],
           before: str) -> str:
    brief = f"Request: {request}\nYour role: {agent.name} — {agent.description}\n" \
        f"{_STAGE_LINES[stage]}"
    if peers:
        brief += f"\nWorking in parallel with: {', '.join(peers)}."
    if before:
        brief += f"\nBuilds on the results of: {before}."
    return brief


def build_plan(
    *,
    request: str,
    normalized: str,
    analysis: Analysis,
    team: Sequence[tuple[AgentSpec, AgentChoice]],
    rejected: Sequence[Rejection],
    catalog_version: str,
    options: str = "",
) -> Plan:
    by_stage: dict[str, list[AgentSpec]] = {}
    for spec, _choice in team:
        by_stage.setdefault(spec.stage, []).append(spec)
    used = [s for s in STAGE_ORDER if s in by_stage]
    hours = _HOURS[analysis.complexity]
    stages: list[Stage] = []
    previous: list[Task] = []
    for position, name in enumerate(used):
        specs = by_stage[name]
        names = [a.name for a in specs]
        before = ", ".join(t.agent for t in previous)
        tasks = tuple(
            Task(
                id=f"{name}.{spec.name}",
                agent=spec.name,
                stage=name,
                brief=_brief(request, spec, name, [n for n in names if n != spec.name], before),
                depends_on=tuple(t.id for t in previous),
                estimated_hours=round(hours * _STAGE_EFFORT[name], 2),
            )
            for spec in specs
        )
        last = position == len(used) - 1
        stages.append(
            Stage(
                name=name,
                goal=STAGE_GOALS[name],
                mode=StageMode.PARALLEL if len(specs) > 1 else StageMode.SEQUENTIAL,
                agents=tuple(names),
                tasks=tasks,
                sync_point=not last,
                gate=_GATES.get(name),
            )
        )
        previous = list(tasks)
    total = round(sum(t.estimated_hours for s in stages for t in s.tasks), 2)
    return Plan(
        id=plan_id(normalized, catalog_version, options),
        request=request,
        catalog_version=catalog_version,
        analysis=analysis,
        agents=tuple(choice for _spec, choice in team),
        stages=tuple(stages),
        estimated_hours=total,
        rejected=tuple(rejected),
    )
