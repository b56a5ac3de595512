"""How the machine's speed moves the planner's p95: samples of both, taken alternately.

    python scripts/planner_drift.py                    # 60 samples, 10 s apart (~11 minutes)
    python scripts/planner_drift.py --samples 5 --pause 0

Each sample runs 20 rounds; a round is the reference loop of ``perfect21 bench planner``
(fixed plain Python, none of the planner's code), then one uncached plan of every sample
request, each timed alone. It prints the reference's median, the planner's p50/p95 taken as
the bench takes them (each request's median over the rounds) and their ratio; then a summary.
If the ratio holds while both move, the p95 moved with the machine, not with the code
(ADR 0007).
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from datetime import UTC, datetime

from perfect21.bench.planner import _stats_us, _time_with_reference, load_requests
from perfect21.planner import Planner
from perfect21.planner.catalog import load_catalog

ROUNDS = 20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=60)
    parser.add_argument("--pause", type=float, default=10.0, help="seconds between samples")
    args = parser.parse_args()
    rows, source = load_requests()
    texts = [str(r["request"]) for r in rows]
    planner = Planner(load_catalog(user=False, cache_dir=None), cache_entries=0)
    for text in texts:  # warm-up, as the bench does
        planner.plan(text)
    print(f"{len(texts)} requests from {source}, {ROUNDS} rounds a sample")
    samples: list[tuple[float, float]] = []  # (reference µs, p95 µs)
    for n in range(args.samples):
        if n:
            time.sleep(args.pause)
        (wall, _cpu), ref = _time_with_reference(planner.plan, texts, ROUNDS)
        stats = _stats_us(wall)
        samples.append((ref, stats["p95"]))
        print(f"{datetime.now(UTC):%H:%M:%S}  reference {ref:6.1f} µs  p50 {stats['p50']:6.1f}"
              f"  p95 {stats['p95']:6.1f} µs  p95/reference {stats['p95'] / ref:.3f}",
              flush=True)
    refs = [r for r, _ in samples]
    p95s = [p for _, p in samples]
    ratios = [p / r for r, p in samples]
    print(f"reference {min(refs):.0f}-{max(refs):.0f} µs, p95 {min(p95s):.0f}-{max(p95s):.0f} µs,"
          f" p95/reference {min(ratios):.3f}-{max(ratios):.3f} (median "
          f"{statistics.median(ratios):.3f}); p95 <= 150 µs in {sum(p <= 150 for p in p95s)}"
          f" of {len(samples)}")
    if len(samples) > 2:
        logs = statistics.correlation([math.log(r) for r in refs],
                                      [math.log(p) for p in p95s])
        print(f"correlation of log(reference) and log(p95): {logs:.2f}")


if __name__ == "__main__":
    main()
