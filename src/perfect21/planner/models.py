"""The planner's values: frozen, slotted dataclasses with ``to_dict``/``from_dict``.

A :class:`Plan` is what every other part consumes (executor, cache, decisions, API). Its JSON
form is documented in ``docs/plan-schema.md`` and is the same on the CLI and over HTTP.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from enum import Enum
from typing import Any, TypeVar

from perfect21._errors import ValidationError

__all__ = [
    "STAGE_ORDER",
    "AgentChoice",
    "AgentSpec",
    "Analysis",
    "Complexity",
    "Gate",
    "GateCheck",
    "Plan",
    "Rejection",
    "Stage",
    "StageMode",
    "Task",
]

# The workflow's stages, in order. An agent declares which one it normally works in.
STAGE_ORDER: tuple[str, ...] = ("design", "implement", "verify", "release", "document")


class Complexity(str, Enum):
    SIMPLE = "simple"
    MEDIUM = "medium"
    COMPLEX = "complex"


class StageMode(str, Enum):
    PARALLEL = "parallel"
    SEQUENTIAL = "sequential"


@dataclass(frozen=True, slots=True)
class AgentSpec:
    """One agent of the catalog (built-in or the user's Claude Code subagent file)."""

    name: str
    description: str
    category: str = "custom"
    stage: str = "implement"
    keywords: tuple[str, ...] = ()
    keywords_zh: tuple[str, ...] = ()
    tools: tuple[str, ...] = ()
    prompt: str = ""
    source: str = ""
    builtin: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "category": self.category,
            "stage": self.stage,
            "keywords": list(self.keywords),
            "keywords_zh": list(self.keywords_zh),
            "tools": list(self.tools),
            "prompt": self.prompt,
            "source": self.source,
            "builtin": self.builtin,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AgentSpec:
        return cls(
            name=data["name"],
            description=data["description"],
            category=data.get("category", "custom"),
            stage=data.get("stage", "implement"),
            keywords=tuple(data.get("keywords", ())),
            keywords_zh=tuple(data.get("keywords_zh", ())),
            tools=tuple(data.get("tools", ())),
            prompt=data.get("prompt", ""),
            source=data.get("source", ""),
            builtin=bool(data.get("builtin", False)),
        )


@dataclass(frozen=True, slots=True)
class Analysis:
    """What the planner understood of the request, with the reasons for each conclusion."""

    complexity: Complexity
    domains: tuple[str, ...]
    stack: tuple[str, ...]
    terms: tuple[str, ...]
    estimated_loc: int
    modules: int
    language: str  # "en", "zh" or "mixed"
    reasons: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "complexity": self.complexity.value,
            "domains": list(self.domains),
            "stack": list(self.stack),
            "terms": list(self.terms),
            "estimated_loc": self.estimated_loc,
            "modules": self.modules,
            "language": self.language,
            "reasons": list(self.reasons),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Analysis:
        return cls(
            complexity=Complexity(data["complexity"]),
            domains=tuple(data.get("domains", ())),
            stack=tuple(data.get("stack", ())),
            terms=tuple(data.get("terms", ())),
            estimated_loc=int(data.get("estimated_loc", 0)),
            modules=int(data.get("modules", 1)),
            language=data.get("language", "en"),
            reasons=tuple(data.get("reasons", ())),
        )


@dataclass(frozen=True, slots=True)
class AgentChoice:
    """A chosen agent, its score and why it was chosen."""

    name: str
    score: float
    reasons: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "score": round(self.score, 4), "reasons": list(self.reasons)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AgentChoice:
        return cls(data["name"], float(data.get("score", 0.0)), tuple(data.get("reasons", ())))


@dataclass(frozen=True, slots=True)
class Rejection:
    """An agent that scored but was not chosen, and why (shown by ``--explain``)."""

    name: str
    score: float
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "score": round(self.score, 4), "reason": self.reason}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Rejection:
        return cls(data["name"], float(data.get("score", 0.0)), data.get("reason", ""))


@dataclass(frozen=True, slots=True)
class GateCheck:
    """One check of a quality gate: a named criterion, optionally a shell-free command."""

    name: str
    command: str = ""
    threshold: float | None = None  # e.g. minimum coverage percentage parsed from output

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "command": self.command, "threshold": self.threshold}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | str) -> GateCheck:
        if isinstance(data, str):
            return cls(name=data)
        threshold = data.get("threshold")
        return cls(
            name=data["name"],
            command=data.get("command", ""),
            threshold=None if threshold is None else float(threshold),
        )


@dataclass(frozen=True, slots=True)
class Gate:
    name: str
    checks: tuple[GateCheck, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "checks": [c.to_dict() for c in self.checks]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Gate:
        return cls(data["name"], tuple(GateCheck.from_dict(c) for c in data.get("checks", ())))


@dataclass(frozen=True, slots=True)
class Task:
    """One agent's piece of work inside a stage."""

    id: str
    agent: str
    stage: str
    brief: str
    depends_on: tuple[str, ...] = ()
    estimated_hours: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "agent": self.agent,
            "stage": self.stage,
            "brief": self.brief,
            "depends_on": list(self.depends_on),
            "estimated_hours": self.estimated_hours,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], stage: str = "") -> Task:
        return cls(
            id=data["id"],
            agent=data["agent"],
            stage=data.get("stage", stage),
            brief=data.get("brief", ""),
            depends_on=tuple(data.get("depends_on", ())),
            estimated_hours=float(data.get("estimated_hours", 0.0)),
        )


@dataclass(frozen=True, slots=True)
class Stage:
    name: str
    goal: str
    mode: StageMode
    agents: tuple[str, ...]
    tasks: tuple[Task, ...]
    sync_point: bool = True
    gate: Gate | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "goal": self.goal,
            "mode": self.mode.value,
            "agents": list(self.agents),
            "sync_point": self.sync_point,
            "gate": None if self.gate is None else self.gate.to_dict(),
            "tasks": [t.to_dict() for t in self.tasks],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Stage:
        name = data["name"]
        gate = data.get("gate")
        return cls(
            name=name,
            goal=data.get("goal", ""),
            mode=StageMode(data.get("mode", "parallel")),
            agents=tuple(data.get("agents", ())),
            tasks=tuple(Task.from_dict(t, name) for t in data.get("tasks", ())),
            sync_point=bool(data.get("sync_point", True)),
            gate=None if gate is None else Gate.from_dict(gate),
        )


@dataclass(frozen=True, slots=True)
class Plan:
    """A phased multi-agent workflow for one request. Frozen: share it freely."""

    id: str
    request: str
    catalog_version: str
    analysis: Analysis
    agents: tuple[AgentChoice, ...]
    stages: tuple[Stage, ...]
    estimated_hours: float
    rejected: tuple[Rejection, ...] = field(default=())

    @property
    def tasks(self) -> tuple[Task, ...]:
        return tuple(t for s in self.stages for t in s.tasks)

    @classmethod
    def from_tasks(
        cls,
        stages: Sequence[Sequence[Task]],
        *,
        id: str = "plan-manual",
        request: str = "",
        modes: Sequence[StageMode] | None = None,
    ) -> Plan:
        """A hand-built plan (library use, tests, benchmarks): one stage per group of tasks,
        named after its tasks' ``stage``, goal ``goal N``; the analysis is a placeholder."""
        built = []
        for number, tasks in enumerate(stages, 1):
            built.append(
                Stage(
                    name=tasks[0].stage if tasks else f"stage{number}",
                    goal=f"goal {number}",
                    mode=modes[number - 1] if modes else StageMode.PARALLEL,
                    agents=tuple(dict.fromkeys(t.agent for t in tasks)),
                    tasks=tuple(tasks),
                )
            )
        analysis = Analysis(Complexity.SIMPLE, (), (), (), 0, 1, "en", ())
        return cls(id, request, "manual", analysis, (), tuple(built), 0.0)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "request": self.request,
            "catalog_version": self.catalog_version,
            "analysis": self.analysis.to_dict(),
            "agents": [a.to_dict() for a in self.agents],
            "stages": [s.to_dict() for s in self.stages],
            "estimated_hours": self.estimated_hours,
            "rejected": [r.to_dict() for r in self.rejected],
        }

    @classmethod
    def from_dict(cls, data: Any) -> Plan:
        """Rebuild a plan from its JSON form; raises :class:`ValidationError` naming the key."""
        if not isinstance(data, Mapping):
            raise ValidationError("plan: expected a JSON object")
        try:
            plan = cls(
                id=str(data["id"]),
                request=str(data["request"]),
                catalog_version=str(data.get("catalog_version", "")),
                analysis=Analysis.from_dict(data["analysis"]),
                agents=tuple(AgentChoice.from_dict(a) for a in data.get("agents", ())),
                stages=tuple(Stage.from_dict(s) for s in data["stages"]),
                estimated_hours=float(data.get("estimated_hours", 0.0)),
                rejected=tuple(Rejection.from_dict(r) for r in data.get("rejected", ())),
            )
        except KeyError as exc:
            raise ValidationError(f"plan: missing key {exc.args[0]!r}") from None
        except (TypeError, ValueError, AttributeError) as exc:
            raise ValidationError(f"plan: invalid value ({exc})") from None
        _check_tasks(plan)
        return plan


def _check_tasks(plan: Plan) -> None:
    seen: set[str] = set()
    for stage in plan.stages:
        for task in stage.tasks:
            if task.id in seen:
                raise ValidationError(f"plan: duplicate task id {task.id!r}")
            seen.add(task.id)
    for task in plan.tasks:
        for dep in task.depends_on:
            if dep not in seen:
                raise ValidationError(f"plan: task {task.id!r} depends on unknown task {dep!r}")


_T = TypeVar("_T")


def fast_constructor(cls: type[_T]) -> Callable[..., _T]:
    """``cls(*values)`` for a frozen, slotted dataclass, about three times faster: for the
    planner, which builds some twenty of these values for every plan.

    A frozen dataclass's ``__init__`` has to store each field with ``object.__setattr__`` (its
    own ``__setattr__`` refuses), at some 150 ns a field. The constructor made here creates
    an object of a private "draft" class with the same slots, fills them with ordinary
    attribute stores, then makes it a ``cls`` by assigning ``__class__``, which Python allows
    between classes of the same layout. The result is an ordinary, immutable ``cls`` value,
    equal to ``cls(*values)``. Every field is required, positionally, in declaration order.
    The code is generated once per class, like the dataclass methods themselves.
    """
    names = [f.name for f in fields(cls)]  # type: ignore[arg-type]
    draft = type(f"{cls.__name__}Draft", (), {"__slots__": cls.__dict__["__slots__"]})
    stores = "".join(f"\n    obj.{name} = {name}" for name in names)
    source = (
        f"def new_{cls.__name__.lower()}({', '.join(names)}):\n"
        f"    obj = draft(){stores}\n    obj.__class__ = cls\n    return obj\n"
    )
    namespace: dict[str, Any] = {"draft": draft, "cls": cls}
    exec(source, namespace)  # generated from the class's own field names, as dataclasses do
    built: Callable[..., _T] = namespace[f"new_{cls.__name__.lower()}"]
    return built


# The planner's constructors (internal: other code uses the classes themselves).
new_analysis = fast_constructor(Analysis)
new_choice = fast_constructor(AgentChoice)
new_rejection = fast_constructor(Rejection)
new_task = fast_constructor(Task)
new_stage = fast_constructor(Stage)
new_plan = fast_constructor(Plan)
