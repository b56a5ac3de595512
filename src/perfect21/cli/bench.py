"""``perfect21 bench AREA``: each area is a module ``perfect21.bench.<area>`` with ``configure``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from perfect21.cli._app import add_lazy_commands

if TYPE_CHECKING:
    import argparse

__all__ = ["AREAS", "configure"]

AREAS: dict[str, tuple[str, str]] = {
    "planner": ("perfect21.bench.planner:configure", "Planner latency vs a naive regex baseline."),
    "decisions": ("perfect21.bench.decisions:configure", "Decision store ingest and search."),
    "executor": ("perfect21.bench.executor:configure", "Work-stealing executor vs fixed chunks."),
    "cache": ("perfect21.bench.cache:configure", "L1 policy vs LRU vs Belady; prefetch."),
    "startup": ("perfect21.bench.startup:configure", "Whole-process start times vs python."),
    "soak": ("perfect21.bench.soak:configure", "Memory under a long mixed workload."),
    "api": ("perfect21.bench.api:configure", "HTTP API latency and throughput."),
}

DESCRIPTION = """\
Benchmarks; each prints medians/p95 next to a baseline measured in the same run.

Examples:
  perfect21 bench planner
  perfect21 bench decisions --json > decisions.json
  perfect21 bench executor --full

Every area finishes in under a minute by default; --full runs the long version.
"""


def configure(parser: argparse.ArgumentParser) -> None:
    parser.description = DESCRIPTION
    add_lazy_commands(parser, AREAS)
