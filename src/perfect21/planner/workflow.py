"""Workflow: turn the analysis and the chosen team into ordered stages with tasks and gates."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from perfect21._digest import blake2b
from perfect21.planner._floats import round2
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
    draft_class,
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
# build_plan builds its tasks, stages and the plan as the fast constructors do, inlined: a
# draft object, every field stored, then made a Task, Stage or Plan (models.draft_class).
# Some ten values a plan, ~4.4k instructions fewer than a constructor function doing the same
# for tasks and stages (and ~0.5k for the plan).
_TaskDraft = draft_class(Task)
_StageDraft = draft_class(Stage)
_PlanDraft = draft_class(Plan)
# An enum member read as a class attribute (``StageMode.PARALLEL``) goes through EnumType's
# ``__getattr__`` hook in Python 3.11: ~900 instructions a read, ~18 for a module global.
_PARALLEL = StageMode.PARALLEL
_SEQUENTIAL = StageMode.SEQUENTIAL
_HOURS = {Complexity.SIMPLE: 1.0, Complexity.MEDIUM: 4.0, Complexity.COMPLEX: 12.0}
_STAGE_EFFORT = {"design": 0.6, "implement": 1.0, "verify": 0.6, "release": 0.4, "document": 0.3}
# Hours of one task, by complexity and stage.
_TASK_HOURS = {
    complexity: {stage: round(hours * effort, 2) for stage, effort in _STAGE_EFFORT.items()}
    for complexity, hours in _HOURS.items()
}
# complexity -> stage -> (its goal, its gate, the hours of one of its tasks): one lookup.
_STAGE_PARTS: Mapping[Complexity, Mapping[str, tuple[str, Gate | None, float]]] = {
    complexity: {stage: (goal, _GATES.get(stage), hours[stage])
                 for stage, goal in STAGE_GOALS.items()}
    for complexity, hours in _TASK_HOURS.items()
}


# BLAKE2b of ``request \0 catalog_version \0 options``, 8 bytes. ``_ID_HASH.copy()`` is the
# empty hash already set up for 8 bytes (no keyword parsing per call), and the part after the
# request is encoded once per planner, not per plan, and the request is encoded strictly (the
# error handler argument costs ~300): ~8.7k instructions a plan id instead of ~11.5k (the
# hash itself, three 128-byte blocks, is ~5k of it). Hashing the parts one after
# the other gives the same digest as hashing them joined, and UTF-8 encodes each character on
# its own, so the bytes hashed are exactly those of the joined string.
_ID_HASH = blake2b(digest_size=8)
_id_tail: tuple[str, str, bytes] = ("", "", b"\0\0")  # (version, options, their bytes)


def plan_id(normalized_request: str, catalog_version: str, options: str = "") -> str:
    """``plan-`` and 16 hex digits: the id of the plan of a request, catalog and options."""
    global _id_tail
    version, opts, tail = _id_tail
    if catalog_version is not version or options is not opts:  # a new planner's
        tail = _encode(f"\0{catalog_version}\0{options}")
        _id_tail = (catalog_version, options, tail)  # one atomic store, safe across threads
    try:
        data = normalized_request.encode()
    except UnicodeEncodeError:  # a lone surrogate: the same bytes as encoding the joined text
        data = normalized_request.encode("utf-8", "replace")
    digest = _ID_HASH.copy()
    digest.update(data)
    digest.update(tail)
    return "plan-" + digest.hexdigest()


def _encode(text: str) -> bytes:
    try:
        return text.encode()
    except UnicodeEncodeError:
        return text.encode("utf-8", "replace")


_STAGE_LINES = {stage: f"Stage: {stage} — {goal}." for stage, goal in STAGE_GOALS.items()}


def task_roles(agents: Iterable[AgentSpec]) -> dict[str, tuple[str, str]]:
    """Agent name -> (the id of its task, the role and stage lines of its brief): what a
    plan's task of that agent says about the agent, built once per catalog, not per plan."""
    roles: dict[str, tuple[str, str]] = {}
    for spec in agents:
        stage_line = _STAGE_LINES.get(spec.stage, f"Stage: {spec.stage}.")
        roles[spec.name] = (f"{spec.stage}.{spec.name}",
                            f"Your role: {spec.name} — {spec.description}\n{stage_line}")
    return roles


def build_plan(
    *,
    request: str,
    normalized: str,
    analysis: Analysis,
    team: Sequence[tuple[AgentSpec, AgentChoice]],
    rejected: Sequence[Rejection],
    catalog_version: str,
    options: str = "",
    roles: Mapping[str, tuple[str, str]],
) -> Plan:
    """The plan of ``analysis`` and ``team``; ``roles`` is ``task_roles`` of the catalog
    (``Catalog.roles``)."""
    # Plain loops throughout: in Python 3.11 every comprehension builds a function object,
    # which costs more than the few items here (a team has one to eight agents).
    by_stage: dict[str, list[str]] = {}  # stage -> the names of its agents, in team order
    choices: list[AgentChoice] = []
    for spec, choice in team:
        choices.append(choice)
        # (setdefault: one call, ~0.35k instructions fewer per slow plan than get and a test)
        by_stage.setdefault(spec.stage, []).append(spec.name)
    used: list[str] = []
    for stage in STAGE_ORDER:
        if stage in by_stage:
            used.append(stage)
    parts = _STAGE_PARTS[analysis.complexity]
    head = f"Request: {request}\n"  # the first line of every task's brief
    stages: list[Stage] = []
    hours: list[float] = []
    # every task of a stage depends on every task of the stage before it
    depends_on: tuple[str, ...] = ()
    before = ""  # the agents of the stage before, named in the briefs' last line
    last = used[-1] if used else ""
    for name in used:
        agents = by_stage[name]
        goal, gate, each = parts[name]
        if len(agents) == 1:
            # Most stages have one agent: no peers and no lists (~1.5k instructions a stage).
            # One f-string builds each brief: one string allocated and copied, not three.
            agent = agents[0]
            task_id, role = roles[agent]
            if before:
                brief = f"{head}{role}\nBuilds on the results of: {before}."
            else:
                brief = f"{head}{role}"
            task = _TaskDraft()
            task.id = task_id
            task.agent = agent
            task.stage = name
            task.brief = brief
            task.depends_on = depends_on
            task.estimated_hours = each
            task.__class__ = Task
            hours.append(each)
            stage = _StageDraft()
            stage.name = name
            stage.goal = goal
            stage.mode = _SEQUENTIAL
            stage.agents = (agent,)
            stage.tasks = (task,)
            stage.sync_point = name != last
            stage.gate = gate
            stage.__class__ = Stage
            stages.append(stage)
            depends_on = (task_id,)
            before = agent
            continue
        after = f"\nBuilds on the results of: {before}." if before else ""
        # An agent's peers are the others of the stage: with distinct names (a catalog's
        # are), a copy without its position (~1.2k instructions fewer an agent of a
        # five-agent stage than comparing every pair in Python), else by comparing.
        distinct = len({*agents}) == len(agents)
        tasks: list[Task] = []
        ids: list[str] = []
        position = 0
        for agent in agents:
            if distinct:
                peers = agents.copy()
                del peers[position]
                position += 1
            else:
                peers = []
                for other in agents:
                    if other != agent:
                        peers.append(other)
            task_id, role = roles[agent]
            if peers:
                brief = f"{head}{role}\nWorking in parallel with: {', '.join(peers)}.{after}"
            else:  # the same agent twice: no peers
                brief = f"{head}{role}{after}"
            ids.append(task_id)
            task = _TaskDraft()
            task.id = task_id
            task.agent = agent
            task.stage = name
            task.brief = brief
            task.depends_on = depends_on
            task.estimated_hours = each
            task.__class__ = Task
            tasks.append(task)
            hours.append(each)
        names = tuple(agents)
        stage = _StageDraft()
        stage.name = name
        stage.goal = goal
        stage.mode = _PARALLEL
        stage.agents = names
        stage.tasks = tuple(tasks)
        stage.sync_point = name != last
        stage.gate = gate
        stage.__class__ = Stage
        stages.append(stage)
        depends_on = tuple(ids)
        before = ", ".join(names)
    plan = _PlanDraft()
    plan.id = plan_id(normalized, catalog_version, options)
    plan.request = request
    plan.catalog_version = catalog_version
    plan.analysis = analysis
    plan.agents = tuple(choices)
    plan.stages = tuple(stages)
    plan.estimated_hours = round2(sum(hours))
    plan.rejected = tuple(rejected)
    plan.__class__ = Plan
    built: Plan = plan  # (a draft is typed Any)
    return built
