"""``perfect21 plan --record``: the plan's decision becomes a proposed ADR linked to the plan."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from perfect21._config import load_config
from perfect21.decisions import Status, SyncDecisionStore
from perfect21.decisions.planner_hook import decision_from_plan, record_plan
from perfect21.planner import Planner
from perfect21.planner.catalog import load_catalog
from perfect21.planner.models import Plan

from .conftest import RunCli


@pytest.fixture(scope="module")
def plan() -> Plan:
    planner = Planner(load_catalog(user=False, cache_dir=None))
    return planner.plan("Build a REST API with JWT login, a PostgreSQL schema and a React UI")


def test_decision_from_plan(plan: Plan) -> None:
    d = decision_from_plan(plan)
    assert d.status is Status.PROPOSED
    assert d.title.startswith("Workflow for: Build a REST API")
    assert plan.request in d.context and plan.analysis.complexity.value in d.context
    assert [o.name for o in d.options][: len(plan.agents)] == [a.name for a in plan.agents]
    assert all(o.pros for o in d.options[: len(plan.agents)])
    for stage in plan.stages:
        assert stage.name in d.decision
    assert d.links.workflow_id == plan.id
    assert d.agents == tuple(a.name for a in plan.agents)


def test_long_request_gives_a_short_title(plan: Plan) -> None:
    long = Planner(load_catalog(user=False, cache_dir=None)).plan("refactor " * 5000)
    d = decision_from_plan(long)
    assert len(d.title) <= 100 and d.title.endswith("…")


def test_record_plan_stores_it(plan: Plan, isolated_home: Path) -> None:
    ref = record_plan(load_config(), plan)
    assert ref == "ADR-0001"
    with SyncDecisionStore.open(isolated_home / "decisions.db") as store:
        assert store.get(ref).links.workflow_id == plan.id


def test_plan_record_cli(run_cli: RunCli) -> None:
    out = run_cli("plan", "实现用户登录功能，使用JWT认证", "--record", "--format", "json")
    assert out.returncode == 0, out.stderr
    plan_id = json.loads(out.stdout)["id"]
    assert "recorded decision ADR-0001" in out.stderr
    out = run_cli("decisions", "show", "1", "--format", "json")
    shown = json.loads(out.stdout)
    assert shown["links"]["workflow_id"] == plan_id and shown["status"] == "proposed"
