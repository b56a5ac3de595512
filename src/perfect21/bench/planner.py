"""``perfect21 bench planner``: planning latency next to a naive regex router, in one run.

Measured in one process on the 160 labelled requests of ``../shared/data/routing_sample.jsonl``
(or, when that file is absent, on a small labelled set shipped here; the output says which):

* **uncached**: a :class:`~perfect21.planner.Planner` with ``cache_entries=0`` (every call
  scans, scores, analyses and builds the workflow), warmed up once, then every request timed
  alone with ``perf_counter_ns``, round-robin, several rounds. p50/p95 (µs) are taken over
  the requests, of each request's median over the rounds, so one call preempted by another
  process on a busy machine does not pass for the planner's cost; the p95 over every single
  call is reported too (``detail_us``);
* **reference**: before each uncached round, a fixed loop of plain Python (dict lookups, tuple
  unpacking, float sums, a sort: the planner's kind of work, none of its code) is timed. Its
  median (``reference_us``) says how fast the machine ran Python during the uncached rounds,
  and ``uncached_p95_per_reference`` is the p95 in units of it: on a VM whose speed drifts
  between minutes, that ratio tells a change of the code from a change of the machine (the
  target is still judged on the p95 itself);
* **cached**: the same requests again on a caching planner that has seen them once;
* **baseline**: the old system's approach over the same catalog keywords: one
  ``re.search(pattern_string, text)`` per keyword, tried one by one, each hit adding a point
  to its agent (routing only: no analysis, no workflow). Uncompiled patterns go through
  :mod:`re`'s 512-entry pattern cache; there are about 2,000 keywords, so most calls
  recompile. The same loop over *precompiled* patterns is measured too, so the ratio is not
  read as cache thrash alone. Every call is also timed in thread CPU time: a 50 ms baseline
  call spans many scheduler slices and is slowed by other processes, a 200 µs planner call
  mostly is not, so on a busy machine the wall-clock ratio overstates the gap and the
  ``*_ratio_cpu`` keys are the fair comparison;
* **whole process**: medians of ``perfect21 plan "..."``, ``perfect21 --version`` and
  ``python -c pass`` as subprocesses, interleaved, in a temporary PERFECT21_HOME warmed once
  (so the compiled catalog is read from disk);
* **large request**: planning time of a 1 MB request (uncached planner);
* **quality**: :func:`perfect21.planner.evaluate.evaluate` on the same labelled rows.

Progress goes to stderr; ``--json`` prints one JSON object on stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from perfect21.bench import BenchError
from perfect21.cli._common import doc_text, echo, file_path
from perfect21.planner.models import AgentSpec

__all__ = ["NaiveRouter", "command", "load_requests", "measure"]

REPO = Path(__file__).resolve().parents[3]
SAMPLE = REPO.parent / "shared" / "data" / "routing_sample.jsonl"
PROCESS_REQUEST = "实现用户登录功能，使用JWT认证"
TARGETS = {
    "uncached_p95_us": 150.0,
    "cached_p95_us": 5.0,
    "plan_process_ms": 100.0,
    "version_process_ms": 60.0,
    "large_request_ms": 50.0,
}

# Used only when ../shared is absent: a few labelled requests so the numbers still exist.
FALLBACK_ROWS: tuple[dict[str, Any], ...] = (
    {"id": "f01", "request": "The 'Forgot password?' link on the Android login screen overlaps "
     "the password field on small phones. Fix the layout.", "complexity": "simple",
     "must": ["mobile-developer"], "must_not": ["data-engineer", "blockchain-developer"]},
    {"id": "f02", "request": "Screen reader users can't get through our signup form: errors are "
     "only shown in red, the date picker traps focus and the submit button is a div. Make the "
     "form WCAG 2.1 AA compliant.", "complexity": "medium",
     "must": ["accessibility-auditor"], "must_not": ["data-engineer", "embedded-engineer"]},
    {"id": "f03", "request": "The nightly Airflow DAG that loads clickstream events into "
     "BigQuery produces duplicate rows after we enabled retries. Make the load idempotent.",
     "complexity": "medium", "must": ["data-engineer"], "must_not": ["ux-designer"]},
    {"id": "f04", "request": "Rust build fails after upgrading tokio: error[E0599]: no method "
     "named `compat` found for struct `TcpStream`.", "complexity": "simple",
     "must": ["rust-pro"], "must_not": ["ux-designer", "data-scientist"]},
    {"id": "f05", "request": "实现用户登录功能，使用JWT认证", "complexity": "medium",
     "must": [], "must_not": ["game-developer", "embedded-engineer"]},
    {"id": "f06", "request": "订单表已经 8000 万行了，按用户查历史订单要好几秒。看看是加索引还是"
     "要分库分表，给个方案并落地。", "complexity": "medium",
     "must": ["database-specialist"], "must_not": ["ux-designer", "mobile-developer"]},
    {"id": "f07", "request": "生产环境昨晚 2 点开始支付回调大量失败，持续了 40 分钟后自己恢复了。"
     "需要查清原因、写复盘报告，并补上相应的告警。", "complexity": "medium",
     "must": ["incident-responder"], "must_not": ["ux-designer", "game-developer"]},
    {"id": "f08", "request": "对用户中心的接口做一次安全检查，重点看越权访问、SQL 注入，以及敏感"
     "信息有没有在日志里明文打印。", "complexity": "medium",
     "must": ["security-auditor"], "must_not": ["game-developer", "ux-designer"]},
    {"id": "f09", "request": "Firmware for our battery-powered soil sensors (STM32, LoRaWAN) "
     "needs signed over-the-air updates with A/B partitions and rollback, and a server side "
     "that stages rollouts per field.", "complexity": "complex",
     "must": ["embedded-engineer"], "must_not": ["ux-designer", "vue-specialist"]},
    {"id": "f10", "request": "TypeScript 编译报错 Type 'string | undefined' is not assignable "
     "to type 'string'，在 src/utils/format.ts 第 42 行，帮忙修一下。", "complexity": "simple",
     "must": ["typescript-pro"], "must_not": ["kubernetes-expert", "data-scientist"]},
)


def _progress(message: str) -> None:
    echo(message, err=True)


def load_requests(path: Path | None = None) -> tuple[list[dict[str, Any]], str]:
    """The labelled rows to benchmark on, and where they came from."""
    from perfect21.planner.evaluate import read_rows

    path = SAMPLE if path is None else path
    if path.is_file():
        return read_rows(path), str(path)
    return [dict(r) for r in FALLBACK_ROWS], f"built-in fallback set ({path} not found)"


class NaiveRouter:
    """The old system's routing style over our catalog: a list of uncompiled regex strings
    tried one by one with ``re.search``; each hit adds one point to its agent."""

    __slots__ = ("_compiled", "rules")

    def __init__(self, agents: Sequence[AgentSpec]) -> None:
        rules: list[tuple[str, str]] = []
        for agent in agents:
            for keyword in agent.keywords:
                rules.append((agent.name, r"\b" + re.escape(keyword.lower()) + r"\b"))
            for keyword in agent.keywords_zh:
                rules.append((agent.name, re.escape(keyword)))
        self.rules = rules
        self._compiled = [(name, re.compile(p)) for name, p in rules]

    def route(self, text: str, top: int = 6) -> list[str]:
        lowered = text.lower()
        scores: dict[str, int] = {}
        for name, pattern in self.rules:
            if re.search(pattern, lowered):
                scores[name] = scores.get(name, 0) + 1
        return [n for n, _ in sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))[:top]]

    def route_compiled(self, text: str, top: int = 6) -> list[str]:
        lowered = text.lower()
        scores: dict[str, int] = {}
        for name, pattern in self._compiled:
            if pattern.search(lowered):
                scores[name] = scores.get(name, 0) + 1
        return [n for n, _ in sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))[:top]]


def _percentile(samples: Sequence[float], q: float) -> float:
    ordered = sorted(samples)
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _stats_us(per_request_ns: Sequence[Sequence[int]]) -> dict[str, float]:
    """Percentiles over requests of each request's median time (robust to a preempted call
    on a busy machine), plus the p95 and max over every single timed call."""
    medians = [statistics.median(s) / 1000 for s in per_request_ns if s]
    every = [x / 1000 for s in per_request_ns for x in s]
    return {
        "p50": round(_percentile(medians, 0.50), 2),
        "p95": round(_percentile(medians, 0.95), 2),
        "mean": round(statistics.fmean(medians), 2) if medians else 0.0,
        "all_calls_p95": round(_percentile(every, 0.95), 2),
        "all_calls_max": round(max(every), 2) if every else 0.0,
        "calls": len(every),
    }


Timings = tuple[list[list[int]], list[list[int]]]  # (wall ns, CPU ns) per request per round

# The reference loop's data: 600 string keys -> (agent index, weight), as in a routing table.
_REFERENCE_KEYS = tuple(f"term{i}" for i in range(600))
_REFERENCE_TABLE = {key: (i % 49, i * 0.37) for i, key in enumerate(_REFERENCE_KEYS)}


def _reference_ns() -> int:
    """Wall time of a fixed piece of plain Python (see the module docstring): per-agent sums
    over a keyed table, four times, each ranked by a sort. ~0.3 ms on this project's VM."""
    table = _REFERENCE_TABLE
    start = time.perf_counter_ns()
    for _ in range(4):
        sums: dict[int, float] = {}
        for key in _REFERENCE_KEYS:
            idx, weight = table[key]
            if idx in sums:
                sums[idx] += weight
            else:
                sums[idx] = weight
        sorted(sums, key=sums.__getitem__, reverse=True)
    return time.perf_counter_ns() - start


def _time_each(
    call: Callable[[str], object], texts: Sequence[str], rounds: int,
    before_round: Callable[[], object] | None = None,
) -> Timings:
    """Time every request alone, ``rounds`` times (round-robin over the requests), in wall
    time and in this thread's CPU time (which other processes on the machine do not inflate).
    ``before_round`` is called before each round, outside the timed calls.
    """
    wall_clock, cpu_clock = time.perf_counter_ns, time.thread_time_ns
    wall: list[list[int]] = [[] for _ in texts]
    cpu: list[list[int]] = [[] for _ in texts]
    for _ in range(rounds):
        if before_round is not None:
            before_round()
        for i, text in enumerate(texts):
            start, start_cpu = wall_clock(), cpu_clock()
            call(text)
            cpu[i].append(cpu_clock() - start_cpu)
            wall[i].append(wall_clock() - start)
    return wall, cpu


def _time_with_reference(
    call: Callable[[str], object], texts: Sequence[str], rounds: int
) -> tuple[Timings, float]:
    """``_time_each`` with the reference loop timed before each round: (the timings, the
    reference's median in µs)."""
    reference_ns: list[int] = []
    _reference_ns()  # warm-up
    timings = _time_each(call, texts, rounds,
                         before_round=lambda: reference_ns.append(_reference_ns()))
    return timings, statistics.median(reference_ns) / 1000


def _load_average() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:  # not available on this platform
        return None


def _launcher() -> list[str]:
    """The console script beside ``sys.executable`` if installed, else ``python -m``."""
    script = Path(sys.executable).with_name("perfect21")
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)]
    return [sys.executable, "-m", "perfect21"]


def _processes(runs: int) -> dict[str, Any]:
    base = _launcher()
    cases = {
        "python_process_ms": [sys.executable, "-c", "pass"],
        "version_process_ms": [*base, "--version"],
        "plan_process_ms": [*base, "plan", PROCESS_REQUEST],
    }
    times: dict[str, list[float]] = {name: [] for name in cases}
    with tempfile.TemporaryDirectory(prefix="p21-bench-planner-") as tmp:
        env = {**os.environ, "PERFECT21_HOME": str(Path(tmp) / "home")}
        env.pop("PERFECT21_CONFIG", None)
        # Measure a normal installation: Python caches bytecode. (Some sandboxes set
        # PYTHONDONTWRITEBYTECODE, which would make every run recompile every module.)
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        for round_no in range(runs + 1):  # round 0 warms the catalog cache; not counted
            for name, argv in cases.items():
                start = time.perf_counter()
                done = subprocess.run(argv, env=env, cwd=tmp, stdin=subprocess.DEVNULL,
                                      capture_output=True, check=False)
                elapsed = (time.perf_counter() - start) * 1000
                if done.returncode != 0:
                    err = done.stderr.decode("utf-8", "replace").strip()[-300:]
                    raise BenchError(f"{' '.join(argv)} failed: {err}")
                if round_no:
                    times[name].append(elapsed)
    out: dict[str, Any] = {name: round(statistics.median(v), 1) for name, v in times.items()}
    out["process_p95_ms"] = {name: round(_percentile(v, 0.95), 1) for name, v in times.items()}
    out["process_runs"] = runs
    out["launcher"] = " ".join(base)
    return out


def measure(
    *, rounds: int, baseline_rounds: int, process_runs: int, sample: Path | None = None,
    progress: Callable[[str], None] = _progress,
) -> dict[str, Any]:
    """Run every measurement and return the result object (see the module docstring)."""
    from perfect21.planner import Planner
    from perfect21.planner.catalog import load_catalog
    from perfect21.planner.evaluate import evaluate

    began = time.perf_counter()
    load_before = _load_average()

    def step(message: str) -> None:
        progress(f"[{time.perf_counter() - began:5.1f} s] {message}")

    rows, source = load_requests(sample)
    texts = [str(r["request"]) for r in rows]
    step(f"requests: {len(texts)} from {source}")

    start = time.perf_counter()
    catalog = load_catalog(user=False, cache_dir=None)
    compile_ms = (time.perf_counter() - start) * 1000
    with tempfile.TemporaryDirectory(prefix="p21-bench-catalog-") as tmp:
        load_catalog(user=False, cache_dir=Path(tmp))
        start = time.perf_counter()
        load_catalog(user=False, cache_dir=Path(tmp))
        cached_load_ms = (time.perf_counter() - start) * 1000

    uncached = Planner(catalog, cache_entries=0)
    for text in texts:  # warm-up: first calls pay for lazy imports and allocator growth
        uncached.plan(text)
    step(f"uncached: {rounds} round(s) x {len(texts)} requests, the reference loop before each")
    uncached_ns, reference_us = _time_with_reference(uncached.plan, texts, rounds)

    cached = Planner(catalog)
    for text in texts:
        cached.plan(text)
    step(f"cached: {rounds} round(s)")
    cached_ns = _time_each(cached.plan, texts, rounds)

    naive = NaiveRouter(catalog.agents)
    re.purge()
    step(f"baseline: {len(naive.rules)} patterns, {baseline_rounds} round(s)")
    baseline_ns = _time_each(naive.route, texts, baseline_rounds)
    naive.route_compiled(texts[0])
    compiled_rounds = max(baseline_rounds, 3)
    baseline_compiled_ns = _time_each(naive.route_compiled, texts, compiled_rounds)

    step("1 MB request")
    big_base = "Migrate the billing service from MySQL to PostgreSQL without downtime; "
    large_ms: list[float] = []
    for n in range(3):
        big = (f"[{n}] " + big_base * 16_000)[: 1024 * 1024]
        start = time.perf_counter()
        uncached.plan(big)
        large_ms.append((time.perf_counter() - start) * 1000)

    quality = evaluate(Planner(catalog), rows).to_dict()
    step("quality evaluated")

    step(f"whole process: {process_runs} run(s) each")
    processes = _processes(process_runs)

    u, c = _stats_us(uncached_ns[0]), _stats_us(cached_ns[0])
    b, bc = _stats_us(baseline_ns[0]), _stats_us(baseline_compiled_ns[0])
    u_cpu, b_cpu = _stats_us(uncached_ns[1]), _stats_us(baseline_ns[1])
    bc_cpu = _stats_us(baseline_compiled_ns[1])
    result: dict[str, Any] = {
        "requests": len(texts),
        "source": source,
        "catalog_agents": len(catalog.agents),
        "catalog_version": catalog.version,
        "uncached_p50_us": u["p50"],
        "uncached_p95_us": u["p95"],
        "uncached_mean_us": u["mean"],
        # how fast the machine ran plain Python during the uncached rounds, and the p95 in
        # units of it (see the module docstring)
        "reference_us": round(reference_us, 1),
        "uncached_p95_per_reference": round(u["p95"] / reference_us, 3),
        "cached_p50_us": c["p50"],
        "cached_p95_us": c["p95"],
        "baseline_p50_us": b["p50"],
        "baseline_p95_us": b["p95"],
        "baseline_ratio": round(b["p95"] / u["p95"], 1) if u["p95"] else None,
        "baseline_rules": len(naive.rules),
        "baseline_compiled_p50_us": bc["p50"],
        "baseline_compiled_p95_us": bc["p95"],
        "baseline_compiled_ratio": round(bc["p95"] / u["p95"], 1) if u["p95"] else None,
        # The same comparison in CPU time: robust when other processes share the machine.
        "uncached_cpu_p95_us": u_cpu["p95"],
        "baseline_cpu_p95_us": b_cpu["p95"],
        "baseline_ratio_cpu": round(b_cpu["p95"] / u_cpu["p95"], 1) if u_cpu["p95"] else None,
        "baseline_compiled_ratio_cpu": (
            round(bc_cpu["p95"] / u_cpu["p95"], 1) if u_cpu["p95"] else None
        ),
        "large_request_ms": round(statistics.median(large_ms), 2),
        "catalog_compile_ms": round(compile_ms, 1),
        "catalog_cached_load_ms": round(cached_load_ms, 1),
        **processes,
        "quality": quality,
        "detail_us": {"uncached": u, "cached": c, "baseline": b, "baseline_compiled": bc,
                      "uncached_cpu": u_cpu, "baseline_cpu": b_cpu,
                      "baseline_compiled_cpu": bc_cpu},
        "rounds": rounds,
        "baseline_rounds": baseline_rounds,
        "baseline_compiled_rounds": compiled_rounds,
        # Other processes on the machine inflate every number above; say how busy it was.
        "load_average_1m": {"before": load_before, "after": _load_average()},
        "cpus": os.cpu_count(),
        "targets": TARGETS,
    }
    result["meets_targets"] = {k: result[k] <= v for k, v in TARGETS.items()}
    return result


def _table(r: dict[str, Any]) -> str:
    def row(label: str, value: str, note: str = "") -> str:
        return f"  {label:<34} {value:>12}  {note}".rstrip()

    def target(key: str) -> str:
        return f"target <= {TARGETS[key]:g}: {'ok' if r['meets_targets'][key] else 'MISSED'}"

    q = r["quality"]
    lines = [
        f"planner benchmark — {r['requests']} requests from {r['source']}",
        f"catalog: {r['catalog_agents']} agents, version {r['catalog_version']}, compiled in "
        f"{r['catalog_compile_ms']} ms, read from disk cache in {r['catalog_cached_load_ms']} ms",
        "",
        "  in-process latency, per request              p50 µs / p95 µs",
        row("planner, uncached", f"{r['uncached_p50_us']:.1f} / {r['uncached_p95_us']:.1f}",
            target("uncached_p95_us")),
        row("reference loop (machine speed)", f"{r['reference_us']:.0f} µs",
            f"uncached p95 / reference = {r['uncached_p95_per_reference']}"),
        row("planner, cached", f"{r['cached_p50_us']:.2f} / {r['cached_p95_us']:.2f}",
            target("cached_p95_us")),
        row(f"baseline: {r['baseline_rules']} uncompiled re.search",
            f"{r['baseline_p50_us']:.0f} / {r['baseline_p95_us']:.0f}",
            f"p95 ratio baseline/uncached = {r['baseline_ratio']}x "
            f"(CPU time: {r['baseline_ratio_cpu']}x)"),
        row("baseline, same loop precompiled",
            f"{r['baseline_compiled_p50_us']:.0f} / {r['baseline_compiled_p95_us']:.0f}",
            f"ratio {r['baseline_compiled_ratio']}x (CPU time: "
            f"{r['baseline_compiled_ratio_cpu']}x)"),
        row("1 MB request (median of 3)", f"{r['large_request_ms']:.2f} ms",
            target("large_request_ms")),
        "",
        f"  whole process, median of {r['process_runs']} ({r['launcher']})",
        row("python -c pass", f"{r['python_process_ms']:.1f} ms"),
        row("perfect21 --version", f"{r['version_process_ms']:.1f} ms",
            target("version_process_ms")),
        row("perfect21 plan \"...\"", f"{r['plan_process_ms']:.1f} ms",
            target("plan_process_ms")),
        "",
        f"  quality on the same rows: must_ok {q['must_ok']}, must_not_hit {q['must_not_hit']}, "
        f"complexity_exact {q['complexity_exact']}, simple_team_mean {q['simple_team_mean']}",
        "  (baseline = routing only; the planner also analyses and builds the workflow)",
        f"  machine: {r['cpus']} CPUs, 1-min load average {r['load_average_1m']['before']} "
        f"before, {r['load_average_1m']['after']} after",
    ]
    return "\n".join(lines)



def configure(parser: argparse.ArgumentParser) -> None:
    parser.description = doc_text(command.__doc__)
    add = parser.add_argument
    add("--json", dest="as_json", action="store_true", help="Print one JSON object on stdout.")
    add("--full", action="store_true", help="More rounds and process runs (slower).")
    add("--sample", type=file_path, default=None, metavar="FILE",
        help="Labelled JSON Lines file (default ../shared/data/routing_sample.jsonl).")
    parser.set_defaults(_handler=command)


def command(as_json: bool, full: bool, sample: Path | None) -> None:
    """Planner latency (uncached, cached) vs a naive regex router, process times, quality.

    Default run takes ~20-40 s; --full repeats more for tighter percentiles.

    Examples:
      perfect21 bench planner
      perfect21 bench planner --json > planner.json
      perfect21 bench planner --full
    """
    result = measure(
        rounds=60 if full else 20,
        baseline_rounds=3 if full else 1,
        process_runs=40 if full else 12,
        sample=sample,
    )
    if as_json:
        echo(json.dumps(result, ensure_ascii=False))
    else:
        echo(_table(result))
