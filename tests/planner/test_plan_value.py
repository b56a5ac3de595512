"""The plan as a value: frozen, round-trips through JSON, well-formed stages and team sizes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from perfect21._errors import InputError, ValidationError
from perfect21.planner import Complexity, Plan, Planner, parse_team_size
from perfect21.planner.evaluate import read_rows
from perfect21.planner.models import STAGE_ORDER

from .conftest import RunCli, built_as_draft

REQUESTS = (
    "实现用户登录功能，使用JWT认证",
    "Fix a typo in the README",
    "Users in Japan say the checkout page takes forever to load",
    "Design and build a multi-region, multi-tenant payments platform with PCI compliance, "
    "a React admin console, Kafka event streaming, Kubernetes deployment and full e2e tests",
    "把订单服务从 MySQL 迁移到 PostgreSQL，要求零停机，并补充监控告警",
)


@pytest.fixture(scope="module")
def sample_plans(builtin_planner: Planner, request: pytest.FixtureRequest) -> list[Plan]:
    """Plans of the fixed requests plus, when ../shared exists, the 160 sample requests."""
    texts = list(REQUESTS)
    sample = Path(str(request.config.rootpath)).parent / "shared" / "data"
    if (sample / "routing_sample.jsonl").is_file():
        texts += [r["request"] for r in read_rows(sample / "routing_sample.jsonl")]
    return [builtin_planner.plan(t) for t in texts]


def test_plan_values_are_immutable_hashable_and_picklable() -> None:
    """Every value of a plan: assigning to a field raises, equal values hash equal, pickle and
    ``replace`` give equal / changed copies, a missing field is an error, and the planner's
    values built as drafts are equal to the class's own."""
    import pickle

    from perfect21.planner import models

    gate = models.Gate("g", (models.GateCheck("c"),))
    task = models.Task("implement.x", "x", "implement", "brief", ("design.y",), 1.5)
    analysis = models.Analysis(Complexity.MEDIUM, ("auth",), (), ("jwt",), 400, 3, "en", ("r",))
    stage = models.Stage("implement", "goal", models.StageMode.SEQUENTIAL, ("x",), (task,),
                         True, gate)
    choice = models.AgentChoice("x", 1.25, ("matched: jwt",))
    rejection = models.Rejection("y", 0.5, "below the selection floor 2.20")
    plan = models.Plan("plan-1", "req", "v1", analysis, (choice,), (stage,), 1.5, (rejection,))
    for value in (gate, task, analysis, stage, choice, rejection, plan):
        cls = type(value)
        values = [getattr(value, name) for name in cls._fields]
        for built in (cls(*values), built_as_draft(cls, *values)):
            assert type(built) is cls
            assert built == value and hash(built) == hash(value) and repr(built) == repr(value)
            assert built != values and built != tuple(values)
            assert pickle.loads(pickle.dumps(built)) == value
            first = cls._fields[0]
            with pytest.raises(AttributeError):
                setattr(built, first, None)
            with pytest.raises(AttributeError):
                delattr(built, first)
            assert built.replace(**{first: "other"}) != value
            assert getattr(built.replace(**{first: "other"}), first) == "other"
            with pytest.raises(TypeError):
                built.replace(no_such_field=1)
        with pytest.raises(TypeError):
            cls(*values[:1])


def test_plan_is_frozen(builtin_planner: Planner) -> None:
    """Assigning to a plan, its stages or tasks raises; collections are tuples."""
    plan = builtin_planner.plan(REQUESTS[0])
    with pytest.raises(AttributeError):
        plan.id = "other"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        plan.stages[0].tasks[0].brief = "x"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        plan.analysis.complexity = Complexity.COMPLEX  # type: ignore[misc]
    assert isinstance(plan.stages, tuple) and isinstance(plan.agents, tuple)
    assert isinstance(plan.analysis.reasons, tuple)


def test_round_trip_through_json(sample_plans: list[Plan]) -> None:
    """``Plan.from_dict(plan.to_dict()) == plan``, also through a JSON string."""
    for plan in sample_plans:
        assert Plan.from_dict(plan.to_dict()) == plan
        assert Plan.from_dict(json.loads(json.dumps(plan.to_dict()))) == plan


def test_from_dict_rejects_bad_input(builtin_planner: Planner) -> None:
    """Broken plan JSON is a ValidationError naming the problem, never a KeyError."""
    data = builtin_planner.plan(REQUESTS[3]).to_dict()
    with pytest.raises(ValidationError, match="'stages'"):
        Plan.from_dict({k: v for k, v in data.items() if k != "stages"})
    with pytest.raises(ValidationError, match="JSON object"):
        Plan.from_dict([data])
    dup = json.loads(json.dumps(data))
    dup["stages"][0]["tasks"].append(dup["stages"][0]["tasks"][0])
    with pytest.raises(ValidationError, match="duplicate task id"):
        Plan.from_dict(dup)
    dangling = json.loads(json.dumps(data))
    dangling["stages"][-1]["tasks"][0]["depends_on"] = ["nowhere.x"]
    with pytest.raises(ValidationError, match="unknown task"):
        Plan.from_dict(dangling)


def test_task_ids_unique_and_depend_on_previous_stage(sample_plans: list[Plan]) -> None:
    """Task ids are unique; the first stage depends on nothing and every later task depends
    on exactly the tasks of the stage before it; only the last stage has no sync point."""
    for plan in sample_plans:
        ids = [t.id for t in plan.tasks]
        assert len(ids) == len(set(ids)), plan.request
        assert [s.name for s in plan.stages] == [n for n in STAGE_ORDER
                                                 if n in {s.name for s in plan.stages}]
        previous: tuple[str, ...] = ()
        for stage in plan.stages:
            assert stage.agents == tuple(t.agent for t in stage.tasks)
            assert stage.mode.value == ("parallel" if len(stage.tasks) > 1 else "sequential")
            for task in stage.tasks:
                assert task.depends_on == previous
                assert task.stage == stage.name
            previous = tuple(t.id for t in stage.tasks)
        assert [s.sync_point for s in plan.stages] == [True] * (len(plan.stages) - 1) + [False]
        assert plan.estimated_hours == pytest.approx(sum(t.estimated_hours for t in plan.tasks))


def test_team_size_within_bounds(sample_plans: list[Plan]) -> None:
    """Team size never exceeds the complexity's maximum (simple 3, medium 6, complex 8); a
    team below the minimum is never padded, and then no agent was turned away for size."""
    bounds = {Complexity.SIMPLE: (1, 3), Complexity.MEDIUM: (3, 6), Complexity.COMPLEX: (5, 8)}
    for plan in sample_plans:
        low, high = bounds[plan.analysis.complexity]
        size = len(plan.agents)
        assert 1 <= size <= high, plan.request
        assert len({a.name for a in plan.agents}) == size
        if size < low:
            assert not any(r.reason.startswith("team size limit") for r in plan.rejected)


def test_plan_id_is_stable_and_normalised(builtin_planner: Planner) -> None:
    """The id depends on the whitespace-normalised request and the catalog version."""
    one = builtin_planner.plan("add   a\tCSV export\n")
    two = builtin_planner.plan("add a CSV export")
    assert one.id == two.id and one.id.startswith("plan-")
    assert one.catalog_version == builtin_planner.catalog.version
    assert builtin_planner.plan("add a JSON export").id != one.id


def test_plan_cache_is_bounded(builtin_planner: Planner) -> None:
    """The planner caches plans in a bounded LRU; ``cache_entries=0`` disables it."""
    small = Planner(builtin_planner.catalog, cache_entries=2)
    first = small.plan(REQUESTS[0])
    assert small.plan(REQUESTS[0]) is first
    for text in REQUESTS[1:]:
        small.plan(text)
    assert small.cache_size == 2
    assert small.plan(REQUESTS[0]) == first  # recomputed, equal value
    uncached = Planner(builtin_planner.catalog, cache_entries=0)
    assert uncached.plan(REQUESTS[1]) == uncached.plan(REQUESTS[1])
    assert uncached.cache_size == 0
    assert small.clear_cache() == 2 and small.cache_size == 0


def test_parse_team_size() -> None:
    """``4-6-8`` gives the old fixed sizes; ``MIN:MAX`` triples give explicit bounds."""
    assert parse_team_size("4-6-8") == {
        Complexity.SIMPLE: (4, 4), Complexity.MEDIUM: (6, 6), Complexity.COMPLEX: (8, 8)}
    assert parse_team_size("1:2-2:4-3:9") == {
        Complexity.SIMPLE: (1, 2), Complexity.MEDIUM: (2, 4), Complexity.COMPLEX: (3, 9)}
    for bad in ("4-6", "a-b-c", "0-1-2", "5:3-3:6-5:8", "4-6-8-10", "", "40-50-60"):
        with pytest.raises(InputError, match="--team-size"):
            parse_team_size(bad)


def test_fixed_team_size_changes_the_team(builtin_planner: Planner) -> None:
    """With 4-6-8 teams stay within the fixed sizes and the options change the plan id."""
    fixed = Planner(builtin_planner.catalog, bounds=parse_team_size("4-6-8"))
    limits = {Complexity.SIMPLE: 4, Complexity.MEDIUM: 6, Complexity.COMPLEX: 8}
    for text in REQUESTS:
        plan = fixed.plan(text)
        assert 1 <= len(plan.agents) <= limits[plan.analysis.complexity]
        assert plan.id != builtin_planner.plan(text).id
    narrow = Planner(builtin_planner.catalog, bounds=parse_team_size("1-1-1"))
    assert all(len(narrow.plan(t).agents) == 1 for t in REQUESTS)


def test_cli_team_size(run_cli: RunCli) -> None:
    """``--team-size 4-6-8`` is accepted; an invalid value exits 2 with a usage hint."""
    proc = run_cli("plan", REQUESTS[3], "--team-size", "4-6-8", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    assert 1 <= len(json.loads(proc.stdout)["agents"]) <= 8
    bad = run_cli("plan", REQUESTS[3], "--team-size", "big")
    assert bad.returncode == 2
    assert "4-6-8" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1


def test_planner_rejects_non_text() -> None:
    """Planning something that is not text (or is empty) is an InputError."""
    from perfect21.planner.catalog import load_catalog

    planner = Planner(load_catalog(user=False, cache_dir=None))
    with pytest.raises(InputError):
        planner.plan(b"bytes")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="empty"):
        planner.plan(" \u3000\n")


def test_planner_rejects_unhashable_request(builtin_planner: Planner) -> None:
    """A list (e.g. a JSON body's "request": [...]) is an InputError, not a TypeError."""
    with pytest.raises(InputError):
        builtin_planner.plan(["add", "a", "button"])  # type: ignore[arg-type]
