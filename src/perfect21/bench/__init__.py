"""Benchmarks behind ``perfect21 bench AREA``: one module per area, each with ``configure``."""

from __future__ import annotations

from perfect21._errors import Perfect21Error

__all__ = ["BenchError"]


class BenchError(Perfect21Error):
    """A benchmark could not produce a result (exit status 1)."""
