"""The planner's values: small immutable objects with slots and ``to_dict``/``from_dict``.

A :class:`Plan` is what every other part consumes (executor, cache, decisions, API). Its JSON
form is documented in ``docs/plan-schema.md`` and is the same on the CLI and over HTTP.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from enum import Enum
from typing import Any, ClassVar, TypeVar

from perfect21._errors import ValidationError

__all__ = [
    "STAGE_ORDER",
    "AgentChoice",
    "AgentSpec",
    "Analysis",
    "Complexity",
    "Frozen",
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

_F = TypeVar("_F", bound="Frozen")


class Frozen:
    """Base of the planner's values: immutable objects with slots, compared, hashed, shown
    and pickled by their fields, named in order by the class's ``_fields`` (also its slots).

    Written once here rather than ``@dataclass(frozen=True, slots=True)`` on every class, for
    start-up time, measured: a dataclass compiles its generated methods when its module is
    imported, ~0.9 ms a class, and ``perfect21 plan`` imported fifteen. A ``NamedTuple`` is
    cheaper to define (~0.2 ms) but its fields read about twice as slowly as slots on the
    planner's hot path. See docs/adr/0005-startup.md.
    """

    __slots__ = ()
    _fields: ClassVar[tuple[str, ...]] = ()  # the field names, in order; also the slots

    def _values(self) -> tuple[Any, ...]:
        return tuple([getattr(self, name) for name in self._fields])

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable: cannot set {name!r}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable: cannot delete {name!r}")

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        assert isinstance(other, Frozen)
        return self._values() == other._values()

    def __hash__(self) -> int:
        return hash(self._values())

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in self._fields)
        return f"{type(self).__name__}({shown})"

    def __reduce__(self) -> tuple[type[Frozen], tuple[Any, ...]]:
        return (type(self), self._values())

    def replace(self: _F, **changes: Any) -> _F:
        """A copy with some fields changed."""
        values = dict(zip(self._fields, self._values(), strict=True))
        unknown = changes.keys() - values.keys()
        if unknown:
            raise TypeError(f"{type(self).__name__} has no field {', '.join(sorted(unknown))}")
        values.update(changes)
        return type(self)(**values)


def init_fields(obj: Frozen, values: tuple[Any, ...]) -> None:
    """Store ``values`` in ``obj``'s slots (the ``__init__`` of every :class:`Frozen`)."""
    for name, value in zip(obj._fields, values, strict=True):
        object.__setattr__(obj, name, value)


class Complexity(str, Enum):
    SIMPLE = "simple"
    MEDIUM = "medium"
    COMPLEX = "complex"


class StageMode(str, Enum):
    PARALLEL = "parallel"
    SEQUENTIAL = "sequential"


class AgentSpec(Frozen):
    """One agent of the catalog (built-in or the user's Claude Code subagent file)."""

    _fields = (
        "name",
        "description",
        "category",
        "stage",
        "keywords",
        "keywords_zh",
        "tools",
        "prompt",
        "source",
        "builtin",
    )
    __slots__ = _fields

    name: str
    description: str
    category: str
    stage: str
    keywords: tuple[str, ...]
    keywords_zh: tuple[str, ...]
    tools: tuple[str, ...]
    prompt: str
    source: str
    builtin: bool

    def __init__(
        self,
        name: str,
        description: str,
        category: str = "custom",
        stage: str = "implement",
        keywords: tuple[str, ...] = (),
        keywords_zh: tuple[str, ...] = (),
        tools: tuple[str, ...] = (),
        prompt: str = "",
        source: str = "",
        builtin: bool = False,
    ) -> None:
        init_fields(
            self,
            (
                name,
                description,
                category,
                stage,
                keywords,
                keywords_zh,
                tools,
                prompt,
                source,
                builtin,
            ),
        )

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


class Analysis(Frozen):
    """What the planner understood of the request, with the reasons for each conclusion."""

    _fields = (
        "complexity",
        "domains",
        "stack",
        "terms",
        "estimated_loc",
        "modules",
        "language",
        "reasons",
    )
    __slots__ = _fields

    complexity: Complexity
    domains: tuple[str, ...]
    stack: tuple[str, ...]
    terms: tuple[str, ...]
    estimated_loc: int
    modules: int
    language: str  # "en", "zh" or "mixed"
    reasons: tuple[str, ...]

    def __init__(
        self,
        complexity: Complexity,
        domains: tuple[str, ...],
        stack: tuple[str, ...],
        terms: tuple[str, ...],
        estimated_loc: int,
        modules: int,
        language: str,
        reasons: tuple[str, ...],
    ) -> None:
        values = (complexity, domains, stack, terms, estimated_loc, modules, language, reasons)
        init_fields(self, values)

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


class AgentChoice(Frozen):
    """A chosen agent, its score and why it was chosen."""

    _fields = ("name", "score", "reasons")
    __slots__ = _fields

    name: str
    score: float
    reasons: tuple[str, ...]

    def __init__(self, name: str, score: float, reasons: tuple[str, ...]) -> None:
        init_fields(self, (name, score, reasons))

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "score": round(self.score, 4), "reasons": list(self.reasons)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AgentChoice:
        return cls(data["name"], float(data.get("score", 0.0)), tuple(data.get("reasons", ())))


class Rejection(Frozen):
    """An agent that scored but was not chosen, and why (shown by ``--explain``)."""

    _fields = ("name", "score", "reason")
    __slots__ = _fields

    name: str
    score: float
    reason: str

    def __init__(self, name: str, score: float, reason: str) -> None:
        init_fields(self, (name, score, reason))

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "score": round(self.score, 4), "reason": self.reason}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Rejection:
        return cls(data["name"], float(data.get("score", 0.0)), data.get("reason", ""))


class GateCheck(Frozen):
    """One check of a quality gate: a named criterion, optionally a shell-free command."""

    _fields = ("name", "command", "threshold")
    __slots__ = _fields

    name: str
    command: str
    threshold: float | None  # e.g. minimum coverage percentage parsed from output

    def __init__(self, name: str, command: str = "", threshold: float | None = None) -> None:
        init_fields(self, (name, command, threshold))

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


class Gate(Frozen):
    _fields = ("name", "checks")
    __slots__ = _fields

    name: str
    checks: tuple[GateCheck, ...]

    def __init__(self, name: str, checks: tuple[GateCheck, ...]) -> None:
        init_fields(self, (name, checks))

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "checks": [c.to_dict() for c in self.checks]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Gate:
        return cls(data["name"], tuple(GateCheck.from_dict(c) for c in data.get("checks", ())))


class Task(Frozen):
    """One agent's piece of work inside a stage."""

    _fields = ("id", "agent", "stage", "brief", "depends_on", "estimated_hours")
    __slots__ = _fields

    id: str
    agent: str
    stage: str
    brief: str
    depends_on: tuple[str, ...]
    estimated_hours: float

    def __init__(
        self,
        id: str,
        agent: str,
        stage: str,
        brief: str,
        depends_on: tuple[str, ...] = (),
        estimated_hours: float = 0.0,
    ) -> None:
        init_fields(self, (id, agent, stage, brief, depends_on, estimated_hours))

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


class Stage(Frozen):
    _fields = ("name", "goal", "mode", "agents", "tasks", "sync_point", "gate")
    __slots__ = _fields

    name: str
    goal: str
    mode: StageMode
    agents: tuple[str, ...]
    tasks: tuple[Task, ...]
    sync_point: bool
    gate: Gate | None

    def __init__(
        self,
        name: str,
        goal: str,
        mode: StageMode,
        agents: tuple[str, ...],
        tasks: tuple[Task, ...],
        sync_point: bool = True,
        gate: Gate | None = None,
    ) -> None:
        init_fields(self, (name, goal, mode, agents, tasks, sync_point, gate))

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


class Plan(Frozen):
    """A phased multi-agent workflow for one request. Frozen: share it freely."""

    _fields = (
        "id",
        "request",
        "catalog_version",
        "analysis",
        "agents",
        "stages",
        "estimated_hours",
        "rejected",
    )
    __slots__ = _fields

    id: str
    request: str
    catalog_version: str
    analysis: Analysis
    agents: tuple[AgentChoice, ...]
    stages: tuple[Stage, ...]
    estimated_hours: float
    rejected: tuple[Rejection, ...]

    def __init__(
        self,
        id: str,
        request: str,
        catalog_version: str,
        analysis: Analysis,
        agents: tuple[AgentChoice, ...],
        stages: tuple[Stage, ...],
        estimated_hours: float,
        rejected: tuple[Rejection, ...] = (),
    ) -> None:
        init_fields(
            self,
            (id, request, catalog_version, analysis, agents, stages, estimated_hours, rejected),
        )

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


def draft_class(cls: type[Frozen]) -> type[Any]:
    """A private "draft" subclass of the frozen value class ``cls``, for the planner's hot
    path, which builds some twenty of these values for every plan.

    A frozen value's ``__init__`` has to store each field with ``object.__setattr__`` (its
    own ``__setattr__`` refuses), at some 150 ns a field. Code that builds one on the hot
    path instead creates a draft, fills its slots with ordinary attribute stores (every
    field), then makes it a ``cls`` by assigning ``__class__``, which Python allows between
    classes of the same layout::

        task = _TaskDraft(); task.id = ...; ...; task.__class__ = Task

    The result is an ordinary, immutable ``cls`` value, equal to ``cls(*values)`` (tests
    compare them), at about a third of the cost of calling ``cls``.
    """
    # Giving the draft back object's __setattr__ and __delattr__ (one C slot serves both)
    # makes its attribute stores plain slot stores again, and object's __init__ lets
    # ``draft()`` take no arguments. A subclass adding no slots, rather than a sibling class
    # with the same slots: the ``__class__`` assignment then finds the common layout by
    # walking up from the draft, without comparing the two classes' slot names, ~200 fewer
    # instructions a value (measured with callgrind, ~2.4k -> ~2.2k a Task incl. its dealloc).
    methods = {"__setattr__": object.__setattr__, "__delattr__": object.__delattr__,
               "__init__": object.__init__}
    return type(f"{cls.__name__}Draft", (cls,), {"__slots__": (), **methods})
