"""``perfect21 bench AREA``: each area is a module ``perfect21.bench.<area>`` with ``command``."""

from __future__ import annotations

import click

from perfect21.cli._app import LazyGroup

AREAS: dict[str, tuple[str, str]] = {
    "planner": ("perfect21.bench.planner:command", "Planner latency vs a naive regex baseline."),
    "decisions": ("perfect21.bench.decisions:command", "Decision store ingest and search."),
    "executor": ("perfect21.bench.executor:command", "Work-stealing executor vs fixed chunks."),
    "cache": ("perfect21.bench.cache:command", "L1 policy vs LRU vs Belady; prefetch."),
    "startup": ("perfect21.bench.startup:command", "Whole-process start times vs python."),
    "soak": ("perfect21.bench.soak:command", "Memory under a long mixed workload."),
    "api": ("perfect21.bench.api:command", "HTTP API latency and throughput."),
}


@click.group(cls=LazyGroup, lazy=AREAS)
def bench() -> None:
    """Benchmarks; each prints medians/p95 next to a baseline measured in the same run.

    \b
    Examples:
      perfect21 bench planner
      perfect21 bench decisions --json > decisions.json
      perfect21 bench executor --full

    Every area finishes in under a minute by default; --full runs the long version.
    """
