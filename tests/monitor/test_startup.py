"""Startup: `plan` imports nothing heavy when stdout is not a TTY; the bench runs."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from importlib.util import find_spec
from pathlib import Path

HEAVY = ("fastapi", "redis", "dask", "distributed", "rich", "prometheus_client", "psutil")


def imported_modules(*args: str, cwd: Path) -> set[str]:
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "perfect21", *args],
        capture_output=True, text=True, timeout=60, cwd=cwd, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    names = re.findall(r"^import time:\s+\d+ \|\s+\d+ \|\s*(\S+)", done.stderr, re.MULTILINE)
    assert names, "no -X importtime output"
    return set(names)


def heavy(modules: set[str]) -> set[str]:
    return {m for m in modules if m.split(".")[0] in HEAVY}


def test_plan_imports_nothing_heavy(tmp_path: Path) -> None:
    """`python -X importtime -m perfect21 plan "x"` (stdout piped): none of the heavy modules."""
    modules = imported_modules("plan", "x", cwd=tmp_path)
    assert "perfect21.planner" in modules
    assert heavy(modules) == set()
    # What ADR 0005 took off this path, each measured at 5-40M instructions. The first run
    # above compiled the catalog (YAML front matter); from now on it is read from disk.
    warm = imported_modules("plan", "x", cwd=tmp_path)
    assert warm.isdisjoint({"click", "inspect", "dataclasses", "hashlib", "yaml"})


def test_version_and_help_import_nothing_heavy(tmp_path: Path) -> None:
    assert heavy(imported_modules("--version", cwd=tmp_path)) == set()
    assert heavy(imported_modules("--help", cwd=tmp_path)) == set()


def test_kpi_module_is_stdlib_only(tmp_path: Path) -> None:
    """Importing the KPI registry (which hot paths do) pulls in no third-party module."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import perfect21.monitor.kpi"],
        capture_output=True, text=True, timeout=60, cwd=tmp_path,
    )  # fmt: skip
    names = set(re.findall(r"\|\s*(\S+)\s*$", done.stderr, re.MULTILINE))
    assert "perfect21.monitor.kpi" in names
    assert not {n for n in names if n.split(".")[0] in (*HEAVY, "yaml", "click")}


def test_bench_startup_json(tmp_path: Path) -> None:
    """One round of the startup benchmark prints one JSON object with the issue's keys."""
    done = subprocess.run(
        [sys.executable, "-m", "perfect21", "bench", "startup", "--json", "--runs", "1"],
        capture_output=True, text=True, timeout=120, cwd=tmp_path, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    for key in ("python_ms", "version_ms", "plan_ms", "decisions_list_ms"):
        assert key in result
    assert result["python_ms"] > 0 and result["version_ms"] > 0
    if find_spec("perfect21.cli.decisions") is None:
        assert result["decisions_list_ms"] is None and result["notes"]


def test_bench_soak_tiny_json(tmp_path: Path) -> None:
    """A tiny soak (both runs, real planner and executor) prints the issue's keys and notes."""
    done = subprocess.run(
        [sys.executable, "-m", "perfect21", "bench", "soak", "--json", "--scale", "0.0005",
         "--memory-limit", "300MB"],
        capture_output=True, text=True, timeout=120, cwd=tmp_path, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout)
    for key in ("peak_rss_mb", "growth_last_half_mb", "limited_peak_rss_mb", "limit_mb"):
        assert isinstance(result[key], int | float)
    assert result["limit_mb"] == 300 and result["scaled_down"] is True
    assert any("scaled down" in note for note in result["notes"])
    assert result["unlimited"]["done"]["plans"] == 500
    # the scaled-down run says why its growth is not comparable, naming what was still filling
    assert any("not comparable" in note for note in result["notes"])
    filling = result["unlimited"]["still_filling_in_last_half"]
    assert any(item.startswith("executor task cache 500/1024 -> 1000/1024") for item in filling)
    used, bound = map(int, result["unlimited"]["bounded_structures"]["layered L1 bytes"].split("/"))
    assert 0 < used <= bound
