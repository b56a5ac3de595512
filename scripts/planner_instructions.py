"""Deterministic planner cost: instructions per uncached plan, measured with callgrind.

    python scripts/planner_instructions.py            # all 160 sample requests
    python scripts/planner_instructions.py --slow 16  # the 16 slowest (they decide the p95)

Runs this file under ``valgrind --tool=callgrind``, planning the requests ROUNDS times
with ``Planner(catalog, cache_entries=0)`` after one warm-up round (as ``perfect21 bench
planner`` does), counting instructions only during those rounds, and prints
Ir / (ROUNDS × requests) — what (Ir(N=ROUNDS) − Ir(N=0)) of two whole runs measures, without
the ~0.5M start-up noise between two runs. The slowest requests are found by timing
each request many times in-process (median of its times, CPU clock).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT.parent / "shared" / "data" / "routing_sample.jsonl"


def _requests() -> list[str]:
    return [json.loads(line)["request"] for line in SAMPLE.read_text().splitlines()
            if line.strip()]


def _planner() -> object:
    from perfect21.planner import Planner
    from perfect21.planner.catalog import load_catalog

    # the compiled catalog is cached on disk like in real use (keyed by content and layout)
    cache = Path(tempfile.gettempdir()) / "p21-ir-catalog"
    return Planner(load_catalog(user=False, cache_dir=cache), cache_entries=0)


def slowest(count: int, repeats: int = 60) -> list[int]:
    """Indices of the ``count`` requests with the highest median CPU time per plan."""
    planner = _planner()
    texts = _requests()
    for text in texts:
        planner.plan(text)  # type: ignore[attr-defined]
    times: list[list[int]] = [[] for _ in texts]
    clock = time.thread_time_ns
    for _ in range(repeats):
        for i, text in enumerate(texts):
            start = clock()
            planner.plan(text)  # type: ignore[attr-defined]
            times[i].append(clock() - start)
    medians = [sorted(t)[len(t) // 2] for t in times]
    return sorted(range(len(texts)), key=lambda i: -medians[i])[:count]


def _child(rounds: int, picks: list[int]) -> None:
    from functools import reduce

    planner = _planner()
    texts = _requests()
    if picks:
        texts = [texts[i] for i in picks]
    plan = planner.plan  # type: ignore[attr-defined]
    for text in texts:  # warm-up
        plan(text)

    def step(_: None, text: str) -> None:
        plan(text)

    # callgrind counts only inside functools.reduce (--toggle-collect): the timed rounds
    reduce(step, texts * rounds, None)


def _instructions(rounds: int, picks: list[int]) -> int:
    """Instructions of ``rounds`` rounds of plans, counted only while they run: the same as
    Ir(N=rounds) - Ir(N=0) of two whole runs, without their start-up noise (~0.5M)."""
    with tempfile.TemporaryDirectory(prefix="p21-ir-") as tmp:
        out = Path(tmp) / "cg.out"
        env = {**os.environ, "PYTHONHASHSEED": "0"}
        done = subprocess.run(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
             "--collect-atstart=no", "--toggle-collect=functools_reduce",
             sys.executable, __file__, "--child", str(rounds),
             "--picks", ",".join(map(str, picks))],
            env=env, capture_output=True, text=True, check=True,
        )
        match = re.search(r"Collected : (\d+)", done.stderr)
        if match is None:
            raise SystemExit(done.stderr[-2000:])
        return int(match.group(1))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--slow", type=int, default=0, help="only the N slowest requests")
    parser.add_argument("--picks", default="", help="comma-separated request indices")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    picks = [int(p) for p in args.picks.split(",") if p]
    if args.child is not None:
        _child(args.child, picks)
        return
    if args.slow:
        picks = slowest(args.slow)
        print("slowest:", ",".join(map(str, picks)))
    count = len(picks) or len(_requests())
    total = _instructions(args.rounds, picks)
    print(f"instructions/plan: {total / (args.rounds * count):,.0f} "
          f"({count} requests x {args.rounds} rounds; Ir {total:,})")

if __name__ == "__main__":
    main()
