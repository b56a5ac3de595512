"""Instructions per uncached plan, phase by phase, measured with callgrind.

    python scripts/planner_phases.py                      # the 16 slowest sample requests
    python scripts/planner_phases.py --all                # all 160 sample requests
    python scripts/planner_phases.py --phases scan,score  # only some phases

Each phase is run alone on inputs computed beforehand by the earlier phases (scan, then
score, groups, analyse, choose, build), ROUNDS times after one warm-up round, under
``valgrind --tool=callgrind --toggle-collect=functools_reduce``: only the phase's own calls
are counted. A no-op phase measures the loop's overhead, which is subtracted. ``plan`` is
the whole ``Planner.plan`` call. Counts are deterministic (PYTHONHASHSEED=0): compare two
versions of the code by their counts, not by wall-clock time, on a machine whose speed
drifts.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT.parent / "shared" / "data" / "routing_sample.jsonl"
# The 16 slowest sample requests (which set the p95), by `planner_instructions.py --slow 16`
# (re-measured after the 2026-11-28 speed pass; the earlier set was 27,64,94,2,56,132,14,74,156,
# 148,131,110,22,9,121,36).
SLOWEST = "27,94,156,64,132,148,22,117,115,2,121,14,56,40,72,131"
PHASES = ("plan", "normalize", "scan", "score", "groups", "analyse", "features", "scale",
          "choose", "build", "plan_id")


def _phases(picks: str) -> tuple[dict[str, Callable[[Any], object]], list[Any]]:
    from perfect21.planner import Planner
    from perfect21.planner.analysis import _scale_mentions, analyse, features
    from perfect21.planner.catalog import load_catalog
    from perfect21.planner.routing import choose_team, score_agents
    from perfect21.planner.text import normalize_request
    from perfect21.planner.workflow import build_plan, plan_id

    rows = [json.loads(line)["request"] for line in SAMPLE.read_text().splitlines()
            if line.strip()]
    if picks:
        rows = [rows[int(i)] for i in picks.split(",")]
    catalog = load_catalog(user=False,
                           cache_dir=Path(tempfile.gettempdir()) / "p21-ir-catalog")
    planner = Planner(catalog, cache_entries=0)
    index = catalog.index
    bounds = planner._bounds
    inputs = []
    for raw in rows:
        text = normalize_request(raw)
        scan = index.scan(text)
        scores = score_agents(index, scan)
        groups = index.tag_groups(scan)
        analysis = analyse(text, scan, groups, agent_breadth=scores.breadth())
        signals = groups[2]
        builds = "construction" in signals or "change" in signals
        choices, rejected = choose_team(catalog.agents, scores, analysis.complexity, bounds,
                                        builds=builds)
        team = [(catalog.agents[index.position[c.name]], c) for c in choices]
        inputs.append((raw, text, scan, scores, groups, analysis, builds, rejected, team))

    def build(x: Any) -> object:
        return build_plan(request=x[1], normalized=x[1], analysis=x[5], team=x[8],
                          rejected=x[7], catalog_version=catalog.version,
                          options=planner._options, roles=catalog.roles)

    phases: dict[str, Callable[[Any], object]] = {
        "noop": lambda x: None,
        "plan": lambda x: planner.plan(x[0]),
        "normalize": lambda x: normalize_request(x[0]),
        "scan": lambda x: index.scan(x[1]),
        "score": lambda x: score_agents(index, x[2]),
        "groups": lambda x: index.tag_groups(x[2]),
        "analyse": lambda x: analyse(x[1], x[2], x[4], agent_breadth=x[3].breadth()),
        "features": lambda x: features(x[1], x[2], x[4], agent_breadth=x[3].breadth()),
        "scale": lambda x: _scale_mentions(x[1]),
        "choose": lambda x: choose_team(catalog.agents, x[3], x[5].complexity, bounds,
                                        builds=x[6]),
        "build": build,
        "plan_id": lambda x: plan_id(x[1], catalog.version, planner._options),
    }
    return phases, inputs


def _child(phase: str, picks: str, rounds: int) -> None:
    from functools import reduce

    phases, inputs = _phases(picks)
    run = phases[phase]
    for x in inputs:  # warm-up
        run(x)

    def step(_: None, x: Any) -> None:
        run(x)

    reduce(step, inputs * rounds, None)  # callgrind counts only inside functools.reduce


def _count(phase: str, picks: str, rounds: int) -> int:
    done = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
         "--collect-atstart=no", "--toggle-collect=functools_reduce",
         sys.executable, __file__, "--child", phase, "--picks", picks,
         "--rounds", str(rounds)],
        env={**os.environ, "PYTHONHASHSEED": "0"}, capture_output=True, text=True,
        check=False,
    )
    match = re.search(r"Collected : (\d+)", done.stderr)
    if match is None:
        raise SystemExit(f"{phase}: {done.stderr[-2000:]}")
    return int(match.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--phases", default=",".join(PHASES),
                        help=f"comma-separated, of: {', '.join(PHASES)}")
    parser.add_argument("--all", action="store_true", help="all sample requests")
    parser.add_argument("--picks", default=None,
                        help="comma-separated request indices (default: the 16 slowest)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    picks = "" if args.all else (SLOWEST if args.picks is None else args.picks)
    if args.child is not None:
        _child(args.child, picks, args.rounds)
        return
    count = len(picks.split(",")) if picks else len(SAMPLE.read_text().splitlines())
    per = args.rounds * count
    overhead = _count("noop", picks, args.rounds)
    print(f"instructions per request ({count} requests x {args.rounds} rounds, "
          f"loop overhead {overhead / per:,.0f} subtracted)")
    for phase in args.phases.split(","):
        total = _count(phase, picks, args.rounds)
        print(f"  {phase:<10} {(total - overhead) / per:>10,.0f}")


if __name__ == "__main__":
    main()
