"""``perfect21 bench cache``: L1 policy vs LRU vs Belady, L1 get speed, predictive prefetch.

Everything is measured in this run, on deterministic traces (``random.Random`` with a fixed
seed, no numpy):

* **Hit ratio** on a Zipf(1.0) trace over 100k keys at capacities 1k and 10k for our L1
  (:class:`~perfect21.cache.memory.MemoryCache`, W-TinyLFU, the real class), plain LRU,
  S3-FIFO (the other candidate of ADR 0002), the static oracle A0 (the true top-C keys, the
  best any *online* policy can expect on an independent trace) and Belady's MIN (offline
  optimum with bypass: knows the future).
* **L1 get** in a tight loop of hits, next to a plain ``dict.get`` and an ``OrderedDict``
  LRU (``move_to_end`` under a lock) measured in the same run.
* **Prefetch** on session traces made of recurring key sequences with noise, served from a
  real L3 (SQLite) into a small L1, with and without the predictor.
* **Agent results end to end** (when the executor is installed): a two-task workflow whose
  command runner sleeps, run twice in one workspace; the second run is served from the cache.
"""

from __future__ import annotations

import argparse
import asyncio
import heapq
import importlib.util
import itertools
import json
import random
import statistics
import sys
import tempfile
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Hashable, Sequence
from pathlib import Path
from typing import Any

from perfect21.cli._common import doc_text, echo, int_range

__all__ = [
    "a0_hit_ratio",
    "belady_hit_ratio",
    "command",
    "l1_hit_ratio",
    "lru_hit_ratio",
    "online_bound_hit_ratio",
    "s3fifo_hit_ratio",
    "session_trace",
    "zipf_trace",
]

SEED = 20261127
FULL_REQUESTS = 1_000_000
DEFAULT_REQUESTS = 1_000_000
KEYS = 100_000


def _progress(message: str) -> None:
    echo(message, err=True)


# -- traces ----------------------------------------------------------------------------------
def zipf_trace(n_keys: int, n_requests: int, *, s: float = 1.0, seed: int = SEED) -> list[int]:
    """``n_requests`` key ids drawn from Zipf(``s``) over ``n_keys`` (ranks shuffled)."""
    rng = random.Random(seed)
    weights = itertools.accumulate(1.0 / (rank**s) for rank in range(1, n_keys + 1))
    cum = list(weights)
    ids = list(range(n_keys))
    rng.shuffle(ids)
    ranks = rng.choices(range(n_keys), cum_weights=cum, k=n_requests)
    return [ids[r] for r in ranks]


def session_trace(
    n_requests: int,
    *,
    sequences: int = 120,
    pool: int = 1500,
    noise_keys: int = 20_000,
    noise: float = 0.1,
    sessions: int = 8,
    seed: int = SEED,
) -> list[tuple[str, str]]:
    """``(session, key)`` requests: sessions replay recurring sequences with ``noise``.

    Sequences (6–14 keys each) are drawn from a shared pool, so they overlap; a session picks
    a sequence (popular ones more often), reads it in order, and with probability ``noise``
    reads a random key from a large noise set instead of the next one.
    """
    rng = random.Random(seed)
    seqs = [
        [f"k{rng.randrange(pool)}" for _ in range(rng.randint(6, 14))] for _ in range(sequences)
    ]
    seq_weights = list(itertools.accumulate(1.0 / (i + 1) ** 0.6 for i in range(sequences)))
    cursors: list[tuple[list[str], int]] = [([], 0) for _ in range(sessions)]
    out: list[tuple[str, str]] = []
    while len(out) < n_requests:
        s = rng.randrange(sessions)
        seq, pos = cursors[s]
        if pos >= len(seq):
            seq = rng.choices(seqs, cum_weights=seq_weights, k=1)[0]
            pos = 0
        if rng.random() < noise:
            out.append((f"s{s}", f"n{rng.randrange(noise_keys)}"))
        else:
            out.append((f"s{s}", seq[pos]))
            pos += 1
        cursors[s] = (seq, pos)
    return out


# -- policies --------------------------------------------------------------------------------
def lru_hit_ratio(trace: Sequence[Hashable], capacity: int) -> float:
    od: OrderedDict[Hashable, None] = OrderedDict()
    hits = 0
    for key in trace:
        if key in od:
            od.move_to_end(key)
            hits += 1
        else:
            od[key] = None
            if len(od) > capacity:
                od.popitem(last=False)
    return hits / len(trace) if trace else 0.0


def belady_hit_ratio(trace: Sequence[Hashable], capacity: int) -> float:
    """Belady's MIN with bypass: evict (or do not admit) the key used farthest in the future.

    Next-use indices are computed backwards in one pass; the cache is a max-heap on next use
    with lazy deletion (stale heap entries are skipped), so the whole run is O(n log C).
    """
    n = len(trace)
    next_use = [0] * n
    last: dict[Hashable, int] = {}
    for i in range(n - 1, -1, -1):
        key = trace[i]
        next_use[i] = last.get(key, n + i)  # never again: beyond every real index, distinct
        last[key] = i
    cached: dict[Hashable, int] = {}
    heap: list[tuple[int, int, Hashable]] = []
    hits = 0
    for i, key in enumerate(trace):
        if key in cached:
            hits += 1
        cached[key] = next_use[i]
        heapq.heappush(heap, (-next_use[i], i, key))
        if len(cached) > capacity:
            while True:
                neg, _, victim = heapq.heappop(heap)
                if cached.get(victim) == -neg:
                    del cached[victim]
                    break
    return hits / n if n else 0.0


def a0_hit_ratio(trace: Sequence[Hashable], capacity: int) -> float:
    """Static oracle: the ``capacity`` most frequent keys of the trace, loaded on first use.

    It knows every key's popularity in advance, which an online policy has to learn (see
    :func:`online_bound_hit_ratio` for the bound that accounts for learning); Belady is
    higher still because it sees the future.
    """
    counts: dict[Hashable, int] = {}
    for key in trace:
        counts[key] = counts.get(key, 0) + 1
    best = set(heapq.nlargest(capacity, counts, key=counts.__getitem__))
    hits = sum(counts[k] - 1 for k in best)
    return hits / len(trace) if trace else 0.0


def online_bound_hit_ratio(trace: Sequence[Hashable], capacity: int, n_keys: int) -> float:
    """Upper bound on the expected hit ratio of *any* online policy on an i.i.d. trace.

    The Zipf trace draws every request independently from a popularity vector whose ranks
    are shuffled over the ``n_keys`` keys, so before request ``t`` all a policy can know of
    a key is how often it was requested so far. A key's posterior mean popularity then
    depends only on its count and grows with it (swapping the popularities of two keys
    changes the likelihood by (p_a / p_b) ** (c_x - c_y)). So the expected hit on request
    ``t`` is at most the sum of the posterior means of the ``capacity`` keys with the
    highest counts — what a policy that could load *any* keys for free (even unseen ones)
    would hold. This function scores that policy on the trace: request ``t`` counts as a hit
    if its key is among the top ``capacity`` counts before ``t`` (with a fractional share
    when it ties at the boundary). Its expectation bounds every online policy's expected
    hit ratio (a real cache may only add the key just requested); the realised value on a
    1M-request trace has a standard error of about 0.0004. Belady is higher because it
    knows the future.
    """
    counts: dict[Hashable, int] = {}
    hist: dict[int, int] = {0: n_keys}  # how many keys have each count (unseen keys: 0)
    threshold = 0  # the capacity-th largest count
    above = 0  # keys with a count > threshold; invariant: above < capacity <= above + hist[t]
    hits = 0.0
    for key in trace:
        c = counts.get(key, 0)
        if c > threshold:
            hits += 1.0
        elif c == threshold:
            hits += (capacity - above) / hist[threshold]
        counts[key] = c + 1
        hist[c] -= 1
        hist[c + 1] = hist.get(c + 1, 0) + 1
        if c == threshold:
            above += 1
        while above >= capacity:  # counts only grow, so the threshold only moves up
            threshold += 1
            above -= hist.get(threshold, 0)
    return hits / len(trace) if trace else 0.0


def s3fifo_hit_ratio(trace: Sequence[Hashable], capacity: int) -> float:
    """S3-FIFO (Yang et al., SOSP 2023): small FIFO 10 %, main FIFO, ghost FIFO, 2-bit freq."""
    small_cap = max(1, capacity // 10)
    main_cap = capacity - small_cap
    small: deque[Hashable] = deque()
    main: deque[Hashable] = deque()
    ghost: OrderedDict[Hashable, None] = OrderedDict()
    freq: dict[Hashable, int] = {}
    where: dict[Hashable, int] = {}  # 0 small, 1 main
    hits = 0

    def evict_main() -> None:
        while main:
            key = main.popleft()
            if freq[key] > 0:
                freq[key] -= 1
                main.append(key)
            else:
                del freq[key], where[key]
                return

    def evict_small() -> None:
        while small:
            key = small.popleft()
            if freq[key] > 1:
                if len(main) >= main_cap:
                    evict_main()
                main.append(key)
                where[key] = 1
                freq[key] = 0
            else:
                del freq[key], where[key]
                ghost[key] = None
                if len(ghost) > main_cap:
                    ghost.popitem(last=False)
                return

    for key in trace:
        if key in where:
            hits += 1
            if freq[key] < 3:
                freq[key] += 1
            continue
        if len(small) + len(main) >= capacity:
            if len(small) >= small_cap or not main:
                evict_small()
            else:
                evict_main()
        freq[key] = 0
        if key in ghost:
            del ghost[key]
            if len(main) >= main_cap:
                evict_main()
            main.append(key)
            where[key] = 1
        else:
            small.append(key)
            where[key] = 0
    return hits / len(trace) if trace else 0.0


def l1_hit_ratio(trace: Sequence[Hashable], capacity: int) -> float:
    """Our L1 (the real :class:`MemoryCache`): get, and set on a miss."""
    from perfect21.cache.memory import MemoryCache

    cache = MemoryCache(capacity, 1 << 62)
    get, put = cache.get, cache.set
    for key in trace:
        if get(key) is None:
            put(key, 1, size=1)
    return cache.stats.hits / len(trace) if trace else 0.0


# -- throughput ------------------------------------------------------------------------------
def _ops_per_s(fn: Callable[[str], object], keys: list[str], rounds: int) -> tuple[float, float]:
    """Median over 5 repetitions of (ops per CPU second of this thread, ops per wall second).

    The CPU-time figure is the one compared with the target: on a shared 2-core machine the
    wall-clock figure mostly measures the other processes (dict.get itself varied 4x).
    """
    cpu, wall = [], []
    for _ in range(5):
        cpu_started, wall_started = time.thread_time(), time.perf_counter()
        for _ in range(rounds):
            for key in keys:
                fn(key)
        n = rounds * len(keys)
        cpu.append(n / max(time.thread_time() - cpu_started, 1e-9))
        wall.append(n / (time.perf_counter() - wall_started))
    return statistics.median(cpu), statistics.median(wall)


def measure_get(quick: bool) -> dict[str, float]:
    from perfect21.cache.memory import MemoryCache

    keys = [f"task/v1/{i:08x}" for i in range(10_000)]
    rounds = 20 if quick else 60
    cache = MemoryCache(20_000, 1 << 30, default_ttl_s=3600.0)
    for key in keys:
        cache.set(key, b"v" * 64)
    plain = dict.fromkeys(keys, b"v" * 64)
    lru: OrderedDict[str, bytes] = OrderedDict(plain)
    lock = threading.Lock()

    def lru_get(key: str) -> bytes | None:
        with lock:
            value = lru.get(key)
            if value is not None:
                lru.move_to_end(key)
            return value

    report: dict[str, float] = {}
    for name, fn in (("l1", cache.get), ("dict", plain.get), ("locked_lru", lru_get)):
        cpu, wall = _ops_per_s(fn, keys, rounds)
        report[f"{name}_get_ops_per_s"] = cpu
        report[f"{name}_get_ops_per_wall_s"] = wall
    return report


async def _layered_get_ops(n: int) -> float:
    """``await LayeredCache.get`` on L1 hits, ops per CPU second of this thread."""
    from perfect21.cache.layered import LayeredCache

    cache = LayeredCache(namespace="bench")
    keys = [f"k{i}" for i in range(1000)]
    for key in keys:
        await cache.set(key, b"v" * 64)
    started = time.thread_time()
    for i in range(n):
        await cache.get(keys[i % 1000])
    return n / max(time.thread_time() - started, 1e-9)


# -- prefetch --------------------------------------------------------------------------------
async def _prefetch_run(
    trace: list[tuple[str, str]], home: Path, *, prefetch: bool, l1_entries: int
) -> dict[str, Any]:
    from perfect21.cache.disk import DiskTier
    from perfect21.cache.layered import LayeredCache
    from perfect21.cache.memory import MemoryCache
    from perfect21.cache.predictive import MarkovPredictor

    cache = LayeredCache(
        l1=MemoryCache(l1_entries, 1 << 30),
        l3=DiskTier(home / "l3.sqlite", 1 << 30),
        namespace="bench",
        predictor=MarkovPredictor() if prefetch else None,
    )
    async with cache:
        started = time.perf_counter()
        for session, key in trace:
            if await cache.get(key, session=session) is None:
                await cache.set(key, b"result:" + key.encode() * 20)
            # Think time: an agent task takes seconds, long enough for a prefetch to land.
            await cache.prefetch_idle()
        elapsed = time.perf_counter() - started
        stats = cache.stats
        return {
            "l1_hit_ratio": stats.l1.hit_ratio,
            "precision": stats.prefetch.precision,
            "loaded": stats.prefetch.loaded,
            "used": stats.prefetch.used,
            "seconds": elapsed,
        }


async def _prefetch_bench(n_requests: int) -> dict[str, Any]:
    from perfect21.cache.disk import DiskTier

    trace = session_trace(n_requests)
    with tempfile.TemporaryDirectory(prefix="p21-bench-cache-") as tmp:
        # Fill L3 first with everything the trace will ask for: the question is only how
        # much of it is already in L1 when asked.
        seed = DiskTier(Path(tmp) / "off" / "l3.sqlite")
        items = {f"bench/v1/{k}": b"j" + json.dumps("x" * 200).encode() for _, k in trace}
        await seed.set_many(items)
        await seed.aclose()
        on_dir = Path(tmp) / "on"
        on_dir.mkdir()
        (on_dir / "l3.sqlite").write_bytes((Path(tmp) / "off" / "l3.sqlite").read_bytes())
        off = await _prefetch_run(trace, Path(tmp) / "off", prefetch=False, l1_entries=256)
        on = await _prefetch_run(trace, on_dir, prefetch=True, l1_entries=256)
    return {
        "prefetch_precision": on["precision"],
        "prefetch_hit_gain": on["l1_hit_ratio"] - off["l1_hit_ratio"],
        "prefetch_l1_hit_ratio_on": on["l1_hit_ratio"],
        "prefetch_l1_hit_ratio_off": off["l1_hit_ratio"],
        "prefetch_loaded": on["loaded"],
        "prefetch_used": on["used"],
        "prefetch_requests": len(trace),
    }


# -- agent results end to end ----------------------------------------------------------------
_AGENT = """
import os, sys, time
workdir, counter = os.environ["PERFECT21_WORKDIR"], sys.argv[2]
time.sleep(float(sys.argv[3]))
task = os.environ["PERFECT21_TASK_ID"]
with open(os.path.join(workdir, task + ".py"), "w", encoding="utf-8") as fh:
    fh.write("# written by " + os.environ["PERFECT21_AGENT"] + "\\n" + "x = 1\\n" * 200)
with open(counter, "a", encoding="utf-8") as fh:
    fh.write(task + "\\n")
print(task, "ok")
"""


def _bench_plan(stages: Sequence[Sequence[str]]) -> Any:
    from perfect21.planner.models import Plan, Task

    return Plan.from_tasks(
        [[Task(id=t, agent=f"agent-{t}", stage=f"stage{n}", brief=f"implement {t}") for t in ids]
         for n, ids in enumerate(stages, 1)],
        id="bench-cache",
        request="bench",
    )


async def _e2e_run(tmp: Path, name: str, home: Path, redis_url: str, agent_s: float) -> Any:
    from perfect21._config import Config
    from perfect21.cache.task_cache import open_task_cache
    from perfect21.executor import CommandRunner, ExecutorSettings, LocalExecutor

    work = tmp / name
    work.mkdir()
    counter = tmp / "runner-calls.log"
    template = f"{sys.executable} {tmp / 'agent.py'} {{prompt_file}} {counter} {agent_s}"
    config = Config(home=home, redis_url=redis_url, cache_prefetch=False)
    cache = open_task_cache(config)
    executor = LocalExecutor(
        CommandRunner(template),
        cache=cache,
        workdir=work,
        settings=ExecutorSettings(workers=4, retries=0),
    )
    plan = _bench_plan([["api", "model"], ["tests", "docs"]])
    started = time.perf_counter()
    result = await executor.run(plan)
    elapsed = time.perf_counter() - started
    await cache.aclose()
    calls = counter.read_text().split() if counter.exists() else []
    files = {p.name: p.read_bytes() for p in work.glob("*.py")}
    levels = sorted({str(t.cache.get("level", "")) for t in result.tasks if t.cache.get("hit")})
    return result.ok, elapsed, calls, files, levels


async def _e2e_bench(redis_url: str, agent_s: float = 2.0) -> dict[str, Any]:
    """A 4-task workflow (2 stages) whose stand-in agent sleeps ``agent_s`` and writes a file.

    A real agent task takes 10–300 s; 2 s keeps the bench short while the first run is still
    dominated by agent time, as it is in real use.

    Run 1 in an empty workspace; run 2 in another empty workspace (same state, so same keys)
    with the same home: every task must come from the cache. Then, when Redis is available,
    run 3 with a *new* home (empty L1/L3) and the same Redis: every task must come from L2.
    """
    server = None
    report: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="p21-bench-e2e-") as name:
        tmp = Path(name)
        (tmp / "agent.py").write_text(_AGENT, encoding="utf-8")
        if not redis_url:
            server = _start_redis(tmp / "redis")
            redis_url = server[1] if server else ""
        try:
            ok1, t1, calls1, files1, _ = await _e2e_run(
                tmp, "w1", tmp / "home1", redis_url, agent_s
            )
            ok2, t2, calls2, files2, levels2 = await _e2e_run(
                tmp, "w2", tmp / "home1", redis_url, agent_s
            )
            report.update(
                e2e_first_s=t1,
                e2e_second_s=t2,
                e2e_ratio=t2 / t1 if t1 else 0.0,
                e2e_second_runner_calls=len(calls2) - len(calls1),
                e2e_files_restored=sum(1 for k, v in files1.items() if files2.get(k) == v),
                e2e_files_expected=len(files1),
                e2e_ok=ok1 and ok2,
                e2e_second_levels=",".join(levels2),
                e2e_agent_seconds=agent_s,
            )
            if redis_url:
                ok3, t3, calls3, files3, levels3 = await _e2e_run(
                    tmp, "w3", tmp / "home2", redis_url, agent_s
                )
                report.update(
                    e2e_l2_home_s=t3,
                    e2e_l2_home_runner_calls=len(calls3) - len(calls2),
                    e2e_l2_home_levels=",".join(levels3),
                    e2e_l2_files_restored=sum(1 for k, v in files1.items() if files3.get(k) == v),
                    e2e_ok=report["e2e_ok"] and ok3,
                )
            else:
                report["e2e_l2"] = "skipped: no redis-server and no --redis-url"
        finally:
            if server is not None:
                server[0].kill()
                server[0].wait(timeout=10)
    return report


def _start_redis(workdir: Path) -> tuple[Any, str] | None:
    import shutil
    import socket
    import subprocess

    binary = shutil.which("redis-server")
    if binary is None:
        return None
    workdir.mkdir()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(workdir),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return proc, f"redis://127.0.0.1:{port}/0"
        except OSError:
            time.sleep(0.02)
    proc.kill()
    proc.wait(timeout=10)
    return None


# -- command ---------------------------------------------------------------------------------
def _round(value: Any) -> Any:
    return round(value, 4) if isinstance(value, float) else value



def configure(parser: argparse.ArgumentParser) -> None:
    parser.description = doc_text(command.__doc__)
    add = parser.add_argument
    add("--json", dest="as_json", action="store_true", help="Print one JSON object on stdout.")
    add("--full", action="store_true",
        help="Longer timing loops and prefetch trace (the policy trace is 1M either way).")
    add("--requests", dest="n_requests", type=int_range(1_000, 10_000_000), default=None,
        metavar="N", help="Zipf trace length (default 1,000,000). [1000<=x<=10000000]")
    add("--redis-url", default="", metavar="URL",
        help="Redis for the shared-home part (default: a private redis-server if installed).")
    add("--e2e", action=argparse.BooleanOptionalAction, default=True,
        help="Agent-result end-to-end part. [default: --e2e]")
    parser.set_defaults(_handler=command)


def command(as_json: bool, full: bool, n_requests: int | None, redis_url: str, e2e: bool) -> None:
    """L1 hit ratio vs LRU and Belady, L1 get speed, prefetch precision and gain.

    Examples:
      perfect21 bench cache
      perfect21 bench cache --json > cache.json
      perfect21 bench cache --requests 200000      # quicker, smaller trace
    """
    n = FULL_REQUESTS if full else (n_requests or DEFAULT_REQUESTS)
    # The default keeps the full 1M-request policy trace (the targets are defined on it) and
    # shortens the timing loops and the prefetch trace so the whole run stays under a minute
    # on a busy 2-core machine; --full lengthens them.
    quick = not full
    report: dict[str, Any] = {
        "trace": f"zipf(1.0) over {KEYS} keys, {n} requests, seed {SEED}",
        "trace_requests": n,
        "trace_reduced": n < FULL_REQUESTS,
    }
    total_started = time.perf_counter()
    _progress(f"generating Zipf trace ({n} requests)…")
    trace = zipf_trace(KEYS, n)
    for cap, label in ((1_000, "1k"), (10_000, "10k")):
        for name, fn in (
            ("l1", l1_hit_ratio),
            ("lru", lru_hit_ratio),
            ("s3fifo", s3fifo_hit_ratio),
            ("a0", a0_hit_ratio),
            ("online_bound", lambda t, c: online_bound_hit_ratio(t, c, KEYS)),
            ("belady", belady_hit_ratio),
        ):
            started = time.perf_counter()
            report[f"{name}_hit_ratio_{label}"] = fn(trace, cap)
            _progress(
                f"  {name:12s} cap {label:>3s}: {report[f'{name}_hit_ratio_{label}']:.4f}"
                f" ({time.perf_counter() - started:.1f} s)"
            )
    del trace
    _progress("measuring L1 get on hits…")
    report.update(measure_get(quick))
    report["layered_get_ops_per_s"] = asyncio.run(_layered_get_ops(100_000))
    _progress("prefetch on a session trace…")
    report.update(asyncio.run(_prefetch_bench(8_000 if quick else 20_000)))
    if not e2e:
        report["e2e"] = "skipped: --no-e2e"
    elif importlib.util.find_spec("perfect21.executor") is None:
        report["e2e"] = "skipped: perfect21.executor is not installed"
    else:
        _progress("agent results end to end…")
        report.update(asyncio.run(_e2e_bench(redis_url)))
    report["l1_minus_lru_1k_points"] = 100 * (
        report["l1_hit_ratio_1k"] - report["lru_hit_ratio_1k"]
    )
    report["belady_minus_l1_10k_points"] = 100 * (
        report["belady_hit_ratio_10k"] - report["l1_hit_ratio_10k"]
    )
    report["belady_minus_online_bound_10k_points"] = 100 * (
        report["belady_hit_ratio_10k"] - report["online_bound_hit_ratio_10k"]
    )
    report["online_bound_minus_l1_10k_points"] = 100 * (
        report["online_bound_hit_ratio_10k"] - report["l1_hit_ratio_10k"]
    )
    # Whether *any* online policy could meet the 10k target on this trace (see
    # online_bound_hit_ratio): when False, the target asks for knowledge of the future.
    report["belady_target_reachable_online_10k"] = (
        report["belady_minus_online_bound_10k_points"] <= 5
    )
    report["targets"] = {
        "l1_beats_lru_by_5_points_at_1k": report["l1_minus_lru_1k_points"] >= 5,
        "l1_within_5_points_of_belady_at_10k": report["belady_minus_l1_10k_points"] <= 5,
        "l1_get_at_least_1m_per_s": report["l1_get_ops_per_s"] >= 1e6,
        "prefetch_precision_at_least_0_8": report["prefetch_precision"] >= 0.8,
    }
    if "e2e_ratio" in report:
        report["targets"]["rerun_under_5_percent_of_first"] = (
            report["e2e_ratio"] < 0.05 and report["e2e_second_runner_calls"] == 0
        )
    report["seconds"] = time.perf_counter() - total_started
    report = {k: _round(v) for k, v in report.items()}
    if as_json:
        echo(json.dumps(report, ensure_ascii=False))
        return
    _print_table(report)


def _print_table(r: dict[str, Any]) -> None:
    out = sys.stdout.write
    reduced = " (REDUCED trace: targets are defined on 1M requests)" if r["trace_reduced"] else ""
    out(f"trace: {r['trace']}{reduced}\n\n")
    out(
        f"{'hit ratio':<10}{'L1 (W-TinyLFU)':>16}{'LRU':>8}{'S3-FIFO':>9}{'A0':>8}"
        f"{'online bound':>14}{'Belady':>8}\n"
    )
    for label in ("1k", "10k"):
        out(
            f"{'cap ' + label:<10}{r[f'l1_hit_ratio_{label}']:>16.4f}"
            f"{r[f'lru_hit_ratio_{label}']:>8.4f}{r[f's3fifo_hit_ratio_{label}']:>9.4f}"
            f"{r[f'a0_hit_ratio_{label}']:>8.4f}{r[f'online_bound_hit_ratio_{label}']:>14.4f}"
            f"{r[f'belady_hit_ratio_{label}']:>8.4f}\n"
        )
    out(
        f"\nL1 vs LRU at 1k: {r['l1_minus_lru_1k_points']:+.1f} points (target >= +5); "
        f"Belady - L1 at 10k: {r['belady_minus_l1_10k_points']:.1f} points (target <= 5); "
        f"Belady - online bound at 10k: {r['belady_minus_online_bound_10k_points']:.1f} points"
        f" (no online policy can expect to do better); online bound - L1 at 10k: "
        f"{r['online_bound_minus_l1_10k_points']:.2f} points\n"
    )
    out(
        f"get on hits, per CPU second: L1 {r['l1_get_ops_per_s'] / 1e6:.2f} M/s, dict.get "
        f"{r['dict_get_ops_per_s'] / 1e6:.2f} M/s, locked LRU "
        f"{r['locked_lru_get_ops_per_s'] / 1e6:.2f} M/s; LayeredCache.get (async) "
        f"{r['layered_get_ops_per_s'] / 1e6:.2f} M/s (L1 per wall second: "
        f"{r['l1_get_ops_per_wall_s'] / 1e6:.2f} M/s)\n"
    )
    out(
        f"prefetch: precision {r['prefetch_precision']:.3f}, L1 hit ratio "
        f"{r['prefetch_l1_hit_ratio_off']:.3f} -> {r['prefetch_l1_hit_ratio_on']:.3f} "
        f"(gain {r['prefetch_hit_gain']:+.3f}) over {r['prefetch_requests']} requests\n"
    )
    if "e2e" in r:
        out(f"end to end: {r['e2e']}\n")
    else:
        out(
            f"end to end (stand-in agent sleeps {r['e2e_agent_seconds']} s): first run "
            f"{r['e2e_first_s']:.2f} s, re-run {r['e2e_second_s']:.3f} s "
            f"({100 * r['e2e_ratio']:.1f} % of the first, from {r['e2e_second_levels']}), "
            f"runner calls on re-run {r['e2e_second_runner_calls']}, files restored "
            f"{r['e2e_files_restored']}/{r['e2e_files_expected']}\n"
        )
        if "e2e_l2_home_s" in r:
            out(
                f"second home, empty local cache, same Redis: {r['e2e_l2_home_s']:.3f} s, "
                f"runner calls {r['e2e_l2_home_runner_calls']}, served from "
                f"{r['e2e_l2_home_levels']}, files restored {r['e2e_l2_files_restored']}\n"
            )
        else:
            out(f"second home via Redis: {r.get('e2e_l2', 'skipped')}\n")
    missed = [name for name, ok in r["targets"].items() if not ok]
    out(f"\ntargets met: {sum(r['targets'].values())}/{len(r['targets'])}")
    out(f" (missed: {', '.join(missed)})\n" if missed else "\n")
    out(f"total {r['seconds']:.1f} s\n")
