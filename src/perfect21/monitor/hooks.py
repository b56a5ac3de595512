"""Adapters from other parts' results to KPIs, so their hot paths need no monitor code.

::

    registry.add_collector(cache_collector(cache))   # hit/miss per level, prefetch, pulled
    record_run(result, workers=settings.workers)     # after an executor run
    record_plan(seconds)                             # after Planner.plan, in the caller

Everything here is duck-typed (``getattr`` / ``dict.get``) so that this module imports
nothing from the parts it reads.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from perfect21.monitor.kpi import Registry, default_registry

__all__ = ["cache_collector", "record_decisions", "record_plan", "record_run"]


def record_plan(seconds: float, registry: Registry | None = None) -> None:
    """One generated workflow and how long it took (measured by the caller)."""
    reg = default_registry() if registry is None else registry
    reg.observe("workflow_generation_seconds", seconds)
    reg.inc("plans_generated_total")


def record_decisions(count: int, registry: Registry | None = None) -> None:
    """``count`` decision records committed (their rate is the throughput KPI)."""
    if count > 0:
        (default_registry() if registry is None else registry).inc(
            "decisions_recorded_total", count
        )


def record_run(result: Any, *, workers: int, registry: Registry | None = None) -> None:
    """KPIs of one finished executor run (a ``RunResult``): tasks by status, task times,
    real concurrency (mean and peak) and parallel efficiency."""
    reg = default_registry() if registry is None else registry
    tasks = tuple(getattr(result, "tasks", ()))
    peak = 0
    for record in tasks:
        status = getattr(getattr(record, "status", None), "value", "unknown")
        reg.inc("executor_tasks_total", status=str(status))
        duration = getattr(record, "duration_s", None)
        if isinstance(duration, int | float):
            reg.observe("executor_task_seconds", float(duration))
        peak = max(peak, len(getattr(record, "concurrent_with", ())) + 1)
        reg.inc("operations_total", part="executor")
        if str(status) == "failed":
            reg.inc("errors_total", part="executor")
    makespan = float(getattr(result, "makespan_s", 0.0) or 0.0)
    busy = float(getattr(result, "busy_s", 0.0) or 0.0)
    if makespan > 0:
        reg.set("executor_mean_concurrency", busy / makespan)
        reg.set("executor_parallel_efficiency", min(1.0, busy / (makespan * max(1, workers))))
    if tasks:
        reg.set("executor_peak_concurrency", float(min(peak, workers) if workers else peak))


def cache_collector(cache: Any, registry_level_prefix: str = "") -> Callable[[Registry], None]:
    """A collector pulling a layered cache's ``snapshot()`` into hit/miss/prefetch counters."""

    def collect(reg: Registry) -> None:
        snap: Mapping[str, Any] = cache.snapshot()
        for level, stats in (snap.get("levels") or {}).items():
            if not isinstance(stats, Mapping) or stats.get("enabled") is False:
                continue
            name = f"{registry_level_prefix}{level}"
            reg.sync_total("cache_hits_total", float(stats.get("hits", 0)), level=name)
            reg.sync_total("cache_misses_total", float(stats.get("misses", 0)), level=name)
        prefetch = snap.get("prefetch") or {}
        if isinstance(prefetch, Mapping):
            issued = prefetch.get("loaded", prefetch.get("issued", 0))
            reg.sync_total("prefetch_issued_total", float(issued or 0))
            reg.sync_total("prefetch_used_total", float(prefetch.get("used", 0) or 0))

    return collect
