"""Adapters from other parts' results to KPIs, and pulled (collector) metrics."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import pytest

from perfect21.monitor.hooks import cache_collector, record_decisions, record_plan, record_run
from perfect21.monitor.kpi import Registry


class Status(str, Enum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"


@dataclass
class Record:
    status: Status
    duration_s: float | None
    concurrent_with: tuple[str, ...] = ()


@dataclass
class Result:
    tasks: tuple[Record, ...]
    makespan_s: float
    busy_s: float


def test_record_run() -> None:
    """Tasks by status, mean/peak concurrency and efficiency = busy / (workers x makespan)."""
    reg = Registry()
    result = Result(
        tasks=(
            Record(Status.SUCCEEDED, 1.0, ("b", "c")),
            Record(Status.SUCCEEDED, 1.0, ("a",)),
            Record(Status.FAILED, 1.0),
        ),
        makespan_s=1.5,
        busy_s=3.0,
    )
    record_run(result, workers=4, registry=reg)
    snap = reg.snapshot()
    assert snap.value("executor_tasks_total", labels={"status": "succeeded"}) == 2
    assert snap.value("executor_mean_concurrency") == pytest.approx(2.0)
    assert snap.value("executor_parallel_efficiency") == pytest.approx(0.5)
    assert snap.value("executor_peak_concurrency") == 3
    assert snap.value("error_ratio", labels={"part": "executor"}) == pytest.approx(1 / 3)
    assert snap.value("executor_task_seconds", "count") == 3


def test_record_plan_and_decisions() -> None:
    reg = Registry()
    record_plan(0.002, registry=reg)
    record_decisions(5, registry=reg)
    record_decisions(0, registry=reg)
    snap = reg.snapshot()
    assert snap.value("plans_generated_total") == 1
    assert snap.value("decisions_recorded_total") == 5


@dataclass
class FakeCache:
    stats: dict[str, Any] = field(default_factory=dict)

    def snapshot(self) -> dict[str, Any]:
        return self.stats


def test_cache_collector_pulls_totals_at_snapshot() -> None:
    """Per-level hits/misses and prefetch precision come from the cache's own stats, and
    pulling the same totals twice does not double count."""
    cache = FakeCache(
        {
            "levels": {
                "l1": {"hits": 30, "misses": 10, "enabled": True},
                "l2": {"hits": 0, "misses": 0, "enabled": False},
                "l3": {"hits": 5, "misses": 5, "enabled": True},
            },
            "prefetch": {"loaded": 8, "used": 2},
        }
    )
    reg = Registry()
    remove = reg.add_collector(cache_collector(cache))
    reg.snapshot()
    snap = reg.snapshot()
    assert snap.value("cache_hits_total", labels={"level": "l1"}) == 30
    assert snap.value("cache_hit_ratio", labels={"level": "l1"}) == pytest.approx(0.75)
    assert snap.value("cache_hit_ratio", labels={"level": "l3"}) == pytest.approx(0.5)
    assert snap.value("cache_hits_total", labels={"level": "l2"}) is None
    assert snap.value("prefetch_precision") == pytest.approx(0.25)
    cache.stats["levels"]["l1"]["hits"] = 40
    assert reg.snapshot().value("cache_hits_total", labels={"level": "l1"}) == 40
    remove()
    cache.stats["levels"]["l1"]["hits"] = 99
    assert reg.snapshot().value("cache_hits_total", labels={"level": "l1"}) == 40


def test_failing_collector_does_not_break_snapshot() -> None:
    reg = Registry()

    def broken(_: Registry) -> None:
        raise RuntimeError("stats unavailable")

    reg.add_collector(broken)
    reg.inc("plans_generated_total")
    assert reg.snapshot().value("plans_generated_total") == 1
