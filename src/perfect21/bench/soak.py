"""``perfect21 bench soak``: memory under a long mixed workload, with and without a limit.

The workload runs in fresh child processes (so RSS is the workload's, not the parent's),
each with its own temporary PERFECT21_HOME: one with the default limits, one with
``--memory-limit`` (default 80 MB: soft = 90 %, hard = 100 %). Both run at the same time; the
memory guard's clean-up callbacks are registered in both (planner plan cache and token cache,
the layered cache's L1, ``gc.collect()``) but only fire above a soft limit.

The work is interleaved in 20 rounds — each round plans 1/20 of the requests (varied,
skewed so caches matter; by default through the layered cache, as "caches on" means), records
1/20 of the decisions and runs its share of the workflows (100 tasks each, in-process python
runner, executor task cache on) — so that "the last half" is the same mix as the first.
Measured: peak RSS from the kernel's high-water mark (``ru_maxrss``), RSS after
``gc.collect()`` at the half-way point and at the end, and the guard's clean-ups.

``--full``: 1,000,000 plans + 100,000 decisions + 10 workflow runs. The default is scaled down
(3 % of the plans and decisions) to finish in under a minute, and says so.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from importlib import import_module
from importlib.util import find_spec
from pathlib import Path
from typing import Any

from perfect21.bench import BenchError
from perfect21.cli._common import doc_text, echo, float_range, memory_limit

__all__ = ["command", "run_workload"]

FULL = {"plans": 1_000_000, "decisions": 100_000, "runs": 10, "tasks": 100}
DEFAULT_SCALE = 0.03
ROUNDS = 20
DISTINCT_REQUESTS = 50_000
TARGET_PEAK_MB = 120.0
TARGET_GROWTH_MB = 1.0
STALL_S = 60.0  # new work refused this long: the run stops and says so

_VERBS = ("implement", "add", "fix", "refactor", "optimise", "document", "test", "migrate")
_THINGS = ("user login", "payment checkout", "search page", "REST API", "data pipeline",
           "admin dashboard", "rate limiter", "mobile app", "CI pipeline", "export")  # fmt: skip
_TECH = ("with JWT", "using Redis", "in React", "with PostgreSQL", "on Kubernetes", "in Go",
         "with FastAPI", "in Rust", "with Kafka", "using GraphQL")  # fmt: skip
_ZH = ("实现用户登录功能，使用JWT认证", "优化数据库查询性能", "添加支付功能和订单管理",
       "编写端到端测试", "部署到Kubernetes集群", "设计REST API接口")  # fmt: skip


def request_for(i: int) -> str:
    """The i-th distinct request (deterministic; English, Chinese and mixed)."""
    if i % 5 == 4:
        return f"{_ZH[i % len(_ZH)]} #{i}"
    verb = _VERBS[i % len(_VERBS)]
    thing = _THINGS[(i // len(_VERBS)) % len(_THINGS)]
    tech = _TECH[(i // 80) % len(_TECH)]
    return f"{verb} the {thing} {tech} (ticket {i})"


def rss_now_mb() -> float:
    from perfect21.monitor.memory import rss_mb

    return rss_mb()


def maxrss_mb() -> float:
    """The kernel's high-water mark of this process's RSS (KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# -- the workload (child process) ------------------------------------------------------------
class Workload:
    def __init__(self, spec: dict[str, Any]) -> None:
        from perfect21._config import load_config

        self.spec = spec
        self.config = load_config()
        self.notes: list[str] = []
        self.done = {"plans": 0, "decisions": 0, "runs": 0, "tasks": 0}
        self.rng = random.Random(21)
        self.planner: Any = None
        self.decisions: Any = None
        self.task_cache: Any = None
        self.guard: Any = None
        self.plan_cache: Any = None

    def setup(self) -> None:
        from perfect21.monitor.kpi import default_registry
        from perfect21.monitor.memory import MemoryGuard, limits_for

        limit = self.spec.get("limit_mb")
        soft, hard = (
            limits_for(limit)
            if limit
            else (self.config.memory_soft_limit_mb, self.config.memory_hard_limit_mb)
        )
        self.guard = MemoryGuard(
            soft_limit_mb=soft, hard_limit_mb=hard, interval_s=0.05,
            registry=default_registry(), cleanup_cooldown_s=0.5,
        )  # fmt: skip
        if find_spec("perfect21.planner") is not None:
            from perfect21.planner import Planner

            self.planner = Planner.from_config(self.config)
            self.guard.register_cleanup(self.planner.clear_cache)
            stem = getattr(import_module("perfect21.planner.text"), "stem", None)
            clear_stems = getattr(stem, "cache_clear", None)
            if clear_stems is not None:  # the planner's stem memo (bounded, 16,384)
                self.guard.register_cleanup(clear_stems)
        else:
            self.notes.append("planner missing: no plans")
        self._setup_decisions()
        if find_spec("perfect21.executor") is not None:
            from perfect21.executor import InMemoryTaskCache

            self.task_cache = InMemoryTaskCache()
            clear = getattr(self.task_cache, "clear", None)
            if clear is not None:
                self.guard.register_cleanup(clear)
        else:
            self.notes.append("executor missing: no workflow runs")
        self.guard.start()

    def _setup_decisions(self) -> None:
        """The decision store (real SQLite file under the temporary home), if built."""
        if find_spec("perfect21.decisions.store") is None:
            self.notes.append("decisions store missing in this build: no decisions recorded")
            return
        from perfect21.decisions import SyncDecisionStore

        self.decisions = SyncDecisionStore.open(config=self.config)

    async def open_plan_cache(self) -> None:
        """``--layered-plans``: plans also go through the layered cache, as a server might."""
        from perfect21.cache import open_cache

        # The cache publishes its own hit/miss/prefetch KPIs (LayeredCache.publish_kpis).
        self.plan_cache = open_cache(self.config, namespace="soak-plans")
        await self.plan_cache.__aenter__()
        loop = asyncio.get_running_loop()
        cache = self.plan_cache
        clear_l1 = getattr(cache, "trim", cache.l1.clear)
        # The guard's thread must not touch the cache while the loop uses it: hand over.
        self.guard.register_cleanup(lambda: loop.call_soon_threadsafe(clear_l1))

    async def plans(self, n: int) -> None:
        if self.planner is None:
            return
        from perfect21._errors import CapacityError
        from perfect21.monitor import kpi

        plan = self.planner.plan
        cache = self.plan_cache
        for k in range(n):
            if k % 100 == 0:  # new work is admitted like the API does: 503, then retry
                try:
                    self.guard.check_capacity()
                except CapacityError:
                    await self.guard.wait_for_capacity(timeout=STALL_S)
            i = int(DISTINCT_REQUESTS ** self.rng.random()) - 1  # skewed: caches matter
            request = request_for(i)
            start = time.perf_counter()
            if cache is None:
                plan(request)
            else:

                async def compute(request: str = request) -> Any:
                    return plan(request).to_dict()

                await cache.get_or_compute(f"r{i}", compute)
            kpi.observe("workflow_generation_seconds", time.perf_counter() - start)
        kpi.inc("plans_generated_total", n)
        self.done["plans"] += n

    def record_decisions(self, n: int) -> None:
        if self.decisions is None or n <= 0:
            return
        from perfect21.decisions import Decision
        from perfect21.monitor.hooks import record_decisions

        first = self.done["decisions"]
        for start in range(first, first + n, 1000):
            batch = [
                Decision(
                    title=f"Decision {i}: {request_for(i)[:60]}",
                    context=f"soak record {i}",
                    decision=_VERBS[i % len(_VERBS)],
                    tags=("soak", _TECH[i % len(_TECH)].split()[-1].lower()),
                )
                for i in range(start, min(first + n, start + 1000))
            ]
            self.decisions.record_many(batch)
            record_decisions(len(batch))
        self.done["decisions"] += n

    def structures(self) -> dict[str, str]:
        """How full the bounded structures the workload touches are ("used/bound")."""
        out: dict[str, str] = {}
        if self.planner is not None:
            out["planner plan cache"] = (
                f"{self.planner.cache_size}/{self.config.plan_cache_entries}"
            )
            stem = getattr(import_module("perfect21.planner.text"), "stem", None)
            info = getattr(stem, "cache_info", None)
            if info is not None:
                current = info()
                out["planner token cache"] = f"{current.currsize}/{current.maxsize}"
        if self.plan_cache is not None:
            l1 = self.plan_cache.l1
            out["layered L1 entries"] = f"{len(l1)}/{l1.max_entries}"
            out["layered L1 bytes"] = f"{l1.bytes_used}/{l1.max_bytes}"
        if self.task_cache is not None:
            out["executor task cache"] = (
                f"{len(self.task_cache)}/{getattr(self.task_cache, '_max', '?')}"
            )
        return out

    def filling(self, at_mid: dict[str, str]) -> list[str]:
        """Bounded structures that grew after the half-way point (``at_mid``) and are not full.

        Such a structure is still filling up to its bound: its growth is expected and is not
        a leak, but it makes "growth over the last half" say little about steady state.
        """
        out = []
        for name, now in self.structures().items():
            before = at_mid.get(name, "")
            used, _, bound = now.partition("/")
            used_mid = before.partition("/")[0]
            if used.isdigit() and bound.isdigit() and used_mid.isdigit() and (
                int(used_mid) + int(bound) // 100 < int(used) < int(bound)
            ):  # grew by over 1 % of the bound: not just the churn of a full structure
                out.append(f"{name} {before} -> {now}")
        return out

    def close(self) -> None:
        if self.decisions is not None:
            self.decisions.close()
            self.decisions = None

    async def workflow(self, tasks: int, workdir: Path) -> None:
        if self.task_cache is None:
            return
        from perfect21.executor import ExecutorSettings, LocalExecutor, PythonRunner, RunStore
        from perfect21.planner.models import Plan, Task

        run_no = self.done["runs"]

        async def agent(ctx: Any) -> dict[str, Any]:
            await asyncio.sleep(0)
            return {"result": f"{ctx.task_id} done", "tokens_in": len(ctx.brief)}

        per_stage = tasks // 4
        plan = Plan.from_tasks(
            [[Task(id=f"r{run_no}-s{s}-t{t}", agent="python-pro", stage=f"stage{s}",
                   brief=f"run {run_no} task {t} of stage {s}") for t in range(per_stage)]
             for s in range(4)],
            id=f"soak-{run_no}", request="soak",
        )  # fmt: skip
        with RunStore(self.config.home) as store:
            executor = LocalExecutor(
                PythonRunner(agent, label="soak-agent"),
                settings=ExecutorSettings(workers=8, retries=0, track_files=False),
                store=store, cache=self.task_cache, admission=self.guard, workdir=workdir,
            )  # fmt: skip
            result = await executor.run(plan)
        if not result.ok:
            raise RuntimeError(f"soak workflow run failed: {result.summary()}")
        from perfect21.monitor.hooks import record_run

        record_run(result, workers=8)
        self.done["runs"] += 1
        self.done["tasks"] += per_stage * 4


def run_workload(spec: dict[str, Any]) -> dict[str, Any]:
    """Run the interleaved workload in this process; returns the measurements."""
    return asyncio.run(_run_workload(spec))


async def _run_workload(spec: dict[str, Any]) -> dict[str, Any]:
    from perfect21._errors import CapacityError

    wl = Workload(spec)
    start_rss = rss_now_mb()
    wl.setup()
    if spec.get("layered") and wl.planner is not None:
        await wl.open_plan_cache()
    timeline: list[float] = []
    mid_rss = end_rss = 0.0
    structures_mid: dict[str, str] = {}
    runs_at = {int(ROUNDS * (k + 0.5) / spec["runs"]) for k in range(spec["runs"])}
    began = time.perf_counter()
    stalled = ""
    with tempfile.TemporaryDirectory(prefix="p21-soak-work-") as work:
        for round_no in range(ROUNDS):
            try:
                await wl.plans(_share(spec["plans"], round_no))
                wl.record_decisions(_share(spec["decisions"], round_no))
                if round_no in runs_at:
                    await asyncio.wait_for(wl.workflow(spec["tasks"], Path(work)), 2 * STALL_S)
            except (CapacityError, TimeoutError):
                stalled = (
                    f"stopped in round {round_no + 1}: new work was refused for over "
                    f"{STALL_S:g} s (RSS {rss_now_mb():.1f} MiB stayed over the hard limit "
                    "although clean-ups ran)"
                )
                wl.notes.append(f"{spec.get('label', 'soak')} run {stalled}")
                break
            gc.collect()
            rss = rss_now_mb()
            timeline.append(round(rss, 2))
            if round_no == ROUNDS // 2 - 1:
                mid_rss = rss
                structures_mid = wl.structures()
            print(f"{spec.get('label', 'soak')}: round {round_no + 1}/{ROUNDS}: "
                  f"rss {rss:.1f} MiB, done {wl.done}", file=sys.stderr, flush=True)  # fmt: skip
        end_rss = rss_now_mb()
    wl.close()
    publish = getattr(wl.plan_cache, "publish_kpis", None)
    if publish is not None:
        publish()  # the cache hands its counters over every 256 requests; flush the rest
    kpis = _kpi_summary()
    structures = wl.structures()
    filling = wl.filling(structures_mid) if structures_mid else []
    cache_stats = None
    if wl.plan_cache is not None:
        snap = wl.plan_cache.snapshot()
        cache_stats = {"hit_ratio": snap.get("hit_ratio"), "l1": snap["levels"]["l1"]}
        await wl.plan_cache.aclose()
    wl.guard.stop()
    stats = wl.guard.stats()
    return {
        "start_rss_mb": round(start_rss, 2),
        "peak_rss_mb": round(maxrss_mb(), 2),
        "guard_peak_rss_mb": round(stats.peak_mb, 2),
        "mid_rss_mb": round(mid_rss, 2),
        "end_rss_mb": round(end_rss, 2),
        "growth_last_half_mb": round(end_rss - mid_rss, 2),
        "timeline_rss_mb": timeline,
        "cleanups": stats.cleanups,
        "refused": stats.refused,
        "soft_limit_mb": stats.soft_limit_mb,
        "hard_limit_mb": stats.hard_limit_mb,
        "memory_events": [e.to_dict() for e in wl.guard.events][-10:],
        "layered_plan_cache": cache_stats,
        "bounded_structures_mid": structures_mid,
        "bounded_structures": structures,
        "still_filling_in_last_half": filling,
        "kpis": kpis,
        "done": wl.done,
        "seconds": round(time.perf_counter() - began, 1),
        "stalled": stalled,
        "notes": wl.notes,
    }


def _kpi_summary() -> dict[str, Any]:
    """The workload's KPIs as the registry saw them, and the default alert rules on them."""
    from perfect21.monitor.alerts import AlertState, evaluate, load_rules
    from perfect21.monitor.kpi import default_registry

    snap = default_registry().snapshot()
    wanted = {
        "plan_p50_ms": ("workflow_generation_seconds", "p50", None, 1000),
        "plan_p95_ms": ("workflow_generation_seconds", "p95", None, 1000),
        "l1_hit_ratio": ("cache_hit_ratio", "value", {"level": "l1"}, 1),
        "l3_hit_ratio": ("cache_hit_ratio", "value", {"level": "l3"}, 1),
        "executor_parallel_efficiency": ("executor_parallel_efficiency", "value", None, 1),
        "executor_mean_concurrency": ("executor_mean_concurrency", "value", None, 1),
        "decisions_per_s_last_minute": ("decisions_recorded_total", "rate", None, 1),
        "memory_cleanups": ("memory_cleanups_total", "value", None, 1),
    }
    out: dict[str, Any] = {}
    for key, (metric, agg, labels, factor) in wanted.items():
        value = snap.value(metric, agg, labels)
        out[key] = None if value is None else round(value * factor, 4)
    evaluation = evaluate(load_rules(), snap, AlertState(), 0.0, ignore_for=True)
    out["alerts_firing"] = [r.rule.name for r in evaluation.firing]
    return out


def _share(total: int, round_no: int) -> int:
    return total * (round_no + 1) // ROUNDS - total * round_no // ROUNDS


def worker_main(spec_json: str) -> None:
    """Entry point of the child process: run the workload, print one JSON line."""
    print(json.dumps(run_workload(json.loads(spec_json))))


# -- the command (parent process) ------------------------------------------------------------
def _start_child(spec: dict[str, Any], tmp: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PERFECT21_HOME": str(Path(tmp) / "home")}
    env.pop("PERFECT21_CONFIG", None)
    code = "import sys; from perfect21.bench.soak import worker_main; worker_main(sys.argv[1])"
    return subprocess.Popen(
        [sys.executable, "-c", code, json.dumps(spec)],
        env=env, cwd=tmp, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
    )  # fmt: skip


def _children(specs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Run one child process per spec, at the same time (RSS is per process)."""
    with tempfile.TemporaryDirectory(prefix="p21-soak-") as tmp:
        procs = []
        for n, spec in enumerate(specs):
            folder = Path(tmp) / str(n)
            folder.mkdir()
            procs.append(_start_child(spec, str(folder)))
        outputs = [proc.communicate()[0] for proc in procs]
    results: list[dict[str, Any]] = []
    for spec, proc, out in zip(specs, procs, outputs, strict=True):
        if proc.returncode != 0:
            raise BenchError(
                f"soak worker ({spec['label']}) failed with exit status {proc.returncode}"
            )
        results.append(json.loads(out.decode().strip().splitlines()[-1]))
    return results



def configure(parser: argparse.ArgumentParser) -> None:
    parser.description = doc_text(command.__doc__)
    add = parser.add_argument
    add("--full", action="store_true", help="1,000,000 plans + 100,000 decisions + 10 runs.")
    add("--scale", type=float_range(0.0001, 1.0), default=None, metavar="FRACTION",
        help=f"Fraction of the full plans/decisions (default {DEFAULT_SCALE}). "
             "[0.0001<=x<=1.0]")
    add("--memory-limit", dest="limit_mb", type=memory_limit, default="80MB", metavar="SIZE",
        help="Limit of the second, limited run (soft = 90 %%, hard = 100 %%). [default: 80MB]")
    add("--layered-plans", action=argparse.BooleanOptionalAction, default=True,
        help="Plans also go through the layered cache (L1 memory, L3 disk). "
             "[default: --layered-plans]")
    add("--json", dest="as_json", action="store_true", help="Print one JSON object on stdout.")
    parser.set_defaults(_handler=command)


def command(
    full: bool, scale: float | None, limit_mb: float, layered_plans: bool, as_json: bool
) -> None:
    """Peak RSS and growth over a long mixed workload; then the same under a memory limit.

    Targets: peak RSS <= 120 MB, growth over the last half <= 1 MB, and the limited run
    stays under its limit by cleaning up.

    Examples:
      perfect21 bench soak                    # scaled down (3 %), under a minute
      perfect21 bench soak --full --json      # 1,000,000 plans
      perfect21 bench soak --memory-limit 100MB
      perfect21 bench soak --no-layered-plans # only the planner's own plan cache
    """
    factor = 1.0 if full else (scale or DEFAULT_SCALE)
    spec: dict[str, Any] = {
        "plans": int(FULL["plans"] * factor),
        "decisions": int(FULL["decisions"] * factor),
        "runs": FULL["runs"],
        "tasks": FULL["tasks"],
        "layered": layered_plans,
    }
    echo(f"soak: {spec} (scale {factor:g}); unlimited and limited ({limit_mb:g} MiB) "
               "runs in two processes at once", err=True)  # fmt: skip
    free, limited = _children(
        [{**spec, "label": "unlimited"}, {**spec, "limit_mb": limit_mb, "label": "limited"}]
    )
    notes = sorted(set(free["notes"]) | set(limited["notes"]))
    if factor < 1.0:
        notes.insert(0, f"scaled down to {factor:g} of the full soak; --full runs all of it")
        filling = free["still_filling_in_last_half"]
        notes.insert(1, (
            "growth over the last half is not comparable with the full soak's: at this scale "
            "the long-lived structures are still filling up to their bounds"
            + (f" ({'; '.join(filling)})" if filling else "")
            + ", and so are the SQLite page caches (up to 2,000 KiB per connection) while the "
            "decision store and L3 files are small; that growth stops at the bounds"
        ))  # fmt: skip
    if limited["cleanups"] == 0:
        notes.append(
            f"the limited run never reached its soft limit ({limited['soft_limit_mb']:g} MiB), "
            "so it did not need to clean up; a lower --memory-limit shows the guard at work"
        )
    result = {
        "peak_rss_mb": free["peak_rss_mb"],
        "growth_last_half_mb": free["growth_last_half_mb"],
        "limited_peak_rss_mb": limited["peak_rss_mb"],
        "limit_mb": limit_mb,
        "limited_cleanups": limited["cleanups"],
        "limited_refused": limited["refused"],
        "limited_stalled": limited["stalled"],
        "limit_reached": limited["cleanups"] > 0,
        "scale": factor,
        "scaled_down": factor < 1.0,
        "workload": spec,
        "targets": {"peak_rss_mb": TARGET_PEAK_MB, "growth_last_half_mb": TARGET_GROWTH_MB},
        "meets_targets": {
            "peak_rss_mb": free["peak_rss_mb"] <= TARGET_PEAK_MB,
            "growth_last_half_mb": free["growth_last_half_mb"] <= TARGET_GROWTH_MB,
            "limited_under_limit": limited["peak_rss_mb"] <= limit_mb,
            "limited_completed": not limited["stalled"],
        },
        "unlimited": free,
        "limited": limited,
        "notes": notes,
    }
    if as_json:
        echo(json.dumps(result))
        return
    ok = result["meets_targets"]
    echo(f"soak {'(SCALED DOWN x' + format(factor, 'g') + ')' if factor < 1 else '(full)'}:"
               f" {free['done']} in {free['seconds']} s")  # fmt: skip
    echo(f"  peak RSS          {free['peak_rss_mb']:8.1f} MiB  target <= {TARGET_PEAK_MB:g}:"
               f" {'ok' if ok['peak_rss_mb'] else 'MISSED'}")  # fmt: skip
    verdict = "ok" if ok["growth_last_half_mb"] else "MISSED"
    echo(f"  growth last half  {free['growth_last_half_mb']:8.2f} MiB  target <= "
               f"{TARGET_GROWTH_MB:g}: {verdict}")  # fmt: skip
    echo(f"  limited peak RSS  {limited['peak_rss_mb']:8.1f} MiB  limit {limit_mb:g}: "
               f"{'under' if ok['limited_under_limit'] else 'OVER'}; "
               f"{limited['cleanups']} clean-ups, {limited['refused']} refusals"
               f"{'' if ok['limited_completed'] else ', STALLED (see notes)'}")  # fmt: skip
    k = free["kpis"]
    echo(f"  KPIs (unlimited): plan p50 {k['plan_p50_ms']} ms, p95 {k['plan_p95_ms']} ms;"
               f" L1 hit ratio {k['l1_hit_ratio']}; parallel efficiency "
               f"{k['executor_parallel_efficiency']}; alerts firing: "
               f"{', '.join(k['alerts_firing']) or 'none'}")  # fmt: skip
    filled = ", ".join(f"{k} {v}" for k, v in free["bounded_structures"].items())
    echo(f"  bounded structures at the end (unlimited): {filled}")
    for note in notes:
        echo(f"  note: {note}")
