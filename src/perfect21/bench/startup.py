"""``perfect21 bench startup``: whole-process start times next to ``python -c pass``.

Each round runs every case once, in turn (so slow drift of the machine hits all cases
alike), in a fresh temporary PERFECT21_HOME with stdout piped (not a TTY). One warm-up round
is discarded: it compiles the catalog cache, which later runs read from disk.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from importlib.util import find_spec
from pathlib import Path
from typing import Any

from perfect21.bench import BenchError
from perfect21.cli._common import doc_text, echo, int_range

__all__ = ["command", "measure"]

PLAN_REQUEST = "实现用户登录功能，使用JWT认证"
TARGETS_MS = {"plan_ms": 100.0, "version_ms": 60.0}


def launcher() -> tuple[list[str], str]:
    """The console script beside ``sys.executable`` if installed, else ``python -m``."""
    script = Path(sys.executable).with_name("perfect21")
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)], str(script)
    return [sys.executable, "-m", "perfect21"], f"{sys.executable} -m perfect21"


def cases() -> tuple[dict[str, list[str] | None], list[str]]:
    base, _ = launcher()
    notes: list[str] = []
    table: dict[str, list[str] | None] = {
        "python_ms": [sys.executable, "-c", "pass"],
        "version_ms": [*base, "--version"],
        "plan_ms": [*base, "plan", PLAN_REQUEST],
        "decisions_list_ms": [*base, "decisions", "list"],
    }
    if find_spec("perfect21.cli.plan") is None:
        table["plan_ms"] = None
        notes.append("plan: the `plan` command is not built yet; reported as null")
    if find_spec("perfect21.cli.decisions") is None:
        table["decisions_list_ms"] = None
        notes.append("decisions list: the `decisions` command is not built yet; reported as null")
    return table, notes


def _time(argv: list[str], env: dict[str, str], cwd: str) -> float:
    start = time.perf_counter()
    done = subprocess.run(
        argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL, capture_output=True, check=False
    )
    elapsed = (time.perf_counter() - start) * 1000
    if done.returncode != 0:
        err = done.stderr.decode("utf-8", "replace").strip()[-300:]
        raise BenchError(f"{' '.join(argv[-2:])} failed ({done.returncode}): {err}")
    return elapsed


def measure(runs: int, progress: bool = True) -> dict[str, Any]:
    table, notes = cases()
    times: dict[str, list[float]] = {name: [] for name, argv in table.items() if argv}
    with tempfile.TemporaryDirectory(prefix="p21-startup-") as tmp:
        env = {**os.environ, "PERFECT21_HOME": str(Path(tmp) / "home")}
        env.pop("PERFECT21_CONFIG", None)
        # Measure a normal installation: Python caches bytecode. (Some sandboxes set
        # PYTHONDONTWRITEBYTECODE, which would make every run recompile every module.)
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        for round_no in range(runs + 1):  # round 0 is the warm-up
            for name, argv in table.items():
                if argv is None:
                    continue
                elapsed = _time(argv, env, tmp)
                if round_no:
                    times[name].append(elapsed)
            if progress:
                echo(f"round {round_no}/{runs}", err=True)
    result: dict[str, Any] = {}
    for name in table:
        samples = times.get(name)
        result[name] = round(statistics.median(samples), 1) if samples else None
    result["p95"] = {name: round(_p95(s), 1) for name, s in times.items()}
    result["over_python_ms"] = {
        name: round(result[name] - result["python_ms"], 1)
        for name in times
        if name != "python_ms" and result[name] is not None
    }
    result["targets_ms"] = TARGETS_MS
    result["meets_targets"] = {
        name: result[name] is not None and result[name] <= limit
        for name, limit in TARGETS_MS.items()
    }
    result["runs"] = runs
    result["launcher"] = launcher()[1]
    result["notes"] = notes
    return result


def _p95(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]



def configure(parser: argparse.ArgumentParser) -> None:
    parser.description = doc_text(command.__doc__)
    add = parser.add_argument
    add("-n", "--runs", type=int_range(1, 1000), default=None, metavar="N",
        help="Rounds (default 15; 60 with --full). [1<=x<=1000]")
    add("--full", action="store_true", help="More rounds for tighter medians.")
    add("--json", dest="as_json", action="store_true", help="Print one JSON object on stdout.")
    parser.set_defaults(_handler=command)


def command(runs: int | None, full: bool, as_json: bool) -> None:
    """Median whole-process time of --version, plan and decisions list vs `python -c pass`.

    Targets: plan <= 100 ms, --version <= 60 ms (medians, whole process, this machine).

    Examples:
      perfect21 bench startup
      perfect21 bench startup --json --runs 30
    """
    result = measure(runs or (60 if full else 15))
    if as_json:
        echo(json.dumps(result))
        return
    echo(f"startup, median of {result['runs']} runs ({result['launcher']}):")
    for name in ("python_ms", "version_ms", "plan_ms", "decisions_list_ms"):
        value = result[name]
        if value is None:
            echo(f"  {name:18} n/a")
            continue
        extra = ""
        if name != "python_ms":
            extra = (
                f"  (+{result['over_python_ms'][name]:.1f} over python, p95 {result['p95'][name]})"
            )
        target = TARGETS_MS.get(name)
        verdict = ""
        if target is not None:
            verdict = f"  target <= {target:.0f}: {'ok' if value <= target else 'MISSED'}"
        echo(f"  {name:18} {value:7.1f} ms{extra}{verdict}")
    for note in result["notes"]:
        echo(f"  note: {note}")
