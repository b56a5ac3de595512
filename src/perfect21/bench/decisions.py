"""``perfect21 bench decisions``: the decision store next to raw sqlite3 and the old JSON file.

Every case writes with ``synchronous=FULL`` to a fresh database in a temporary folder, and
each is printed next to a baseline measured in the same run:

* **seed**: the seed plan's case — 10,000 records, ``record_many`` in batches of 100, each
  awaited in turn (one transaction each) — next to the raw-sqlite3 ceiling: plain
  ``executemany`` of the *same rows* the store's write transactions insert (already
  serialised, ids made) in the same 100-row transactions, on the same schema and pragmas;
* **batched**: 100,000 records, ``record_many`` in batches of 1,000 awaited in turn, next to
  the ceiling in 1,000-row transactions (``ceiling_ops_per_s``);
* **concurrent**: 100 producers, each awaiting every ``record()`` (group commit);
* **sequential**: one producer awaiting every ``record()`` in turn — fsync-bound — next to the
  raw ceiling of one ``INSERT`` + ``COMMIT`` per row;
* **naive**: the old system's way — rewrite one JSON file with every record so far, per record;
* **search**: p50/p95 of ``search()`` over a mix of English, Chinese and mixed queries on the
  100,000 records of the batched case, after the index has caught up (its rate is reported).

The store's write transactions insert the records only; the search index and the list
filters' tables are derived off the write path. That work is not in the ceiling; when it
runs during an ingest case (the writer indexes in bounded steps once the oldest unindexed
record is a second old), it is inside the store's time.

The store builds its rows from :class:`Decision` objects (validated when built, before the
clock starts, as the ceiling's rows are); serialising, ids, numbering, batching and the
hand-off to the writer thread are inside the measurement. Stores and ceilings alternate,
``--repeats`` times each on fresh files, and the best run of each is reported (the machine
may be shared; every run is in ``samples``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from perfect21._config import load_config
from perfect21._sqlite import connect, migrate
from perfect21.cli._common import dir_path, doc_text, echo, int_range
from perfect21.decisions import _schema
from perfect21.decisions._ids import IdGenerator
from perfect21.decisions.models import Decision, Option, Status, utc_now
from perfect21.decisions.store import DecisionStore, SyncDecisionStore
from perfect21.decisions.writer import insert_rows

__all__ = ["command", "make_decisions", "measure"]

TARGETS = {
    "batched_ops_per_s": 100_000.0,
    "batched_vs_ceiling": 0.5,
    "concurrent_ops_per_s": 30_000.0,
    "search_p95_ms": 5.0,
}

_TOPICS = (
    ("Primary database", "主数据库", ("PostgreSQL", "MySQL", "MongoDB")),
    ("Authentication", "认证方式", ("JWT", "Session+Cookie", "OAuth2")),
    ("Session storage", "会话存储", ("Redis", "database", "JWT")),
    ("API style", "接口风格", ("REST", "GraphQL", "gRPC")),
    ("Message queue", "消息队列", ("Kafka", "RabbitMQ", "Redis Streams")),
    ("Cache strategy", "缓存策略", ("Redis", "Memcached", "in-process LRU")),
    ("Search engine", "搜索引擎", ("Elasticsearch", "Meilisearch", "Postgres FTS")),
    ("Frontend state management", "前端状态管理", ("Redux", "Zustand", "Context")),
    ("Deployment", "部署方式", ("Kubernetes", "Nomad", "VMs")),
    ("Feature flags", "功能开关", ("LaunchDarkly", "Unleash", "config file")),
    ("Repository layout", "仓库结构", ("monorepo", "polyrepo")),
    ("Logging", "日志方案", ("ELK", "Loki", "CloudWatch")),
)
_SITUATION_EN = ("scale-up", "new project", "migration", "rewrite", "cost cut", "latency budget")
_SITUATION_ZH = ("重构", "新项目", "性能优化", "降本", "高可用", "会话管理", "数据迁移")
_PROS = ("mature ecosystem", "成熟的生态系统", "lower latency", "团队已有经验", "simple to run")
_CONS = ("team must learn it", "运维成本增加", "vendor lock-in", "需要培训", "more moving parts")
_CONSEQUENCES = ("更好的数据一致性", "team must learn it", "lower latency", "运维成本增加",
                 "vendor lock-in", "需要培训")  # fmt: skip
_RATIONALE = ("Small API, less boilerplate", "Fewer moving parts", "无状态，便于水平扩展",
              "社区活跃", "best latency in our tests", "团队已有经验")  # fmt: skip
_CONTEXT = ("We must decide before the next release.", "需要在下个版本前决定。",
            "Load is growing and the current approach does not scale.")  # fmt: skip
_TAGS = ("db", "security", "api", "frontend", "ops", "性能", "architecture")
QUERIES = ("jwt", "会话", "jwt 会话", "postgres", "sql", "缓存策略", "认证", "kafka 消息",
           "数据库 迁移", "redis", "会", "graphql", "团队", "nomatch",
           "高可用 kubernetes")  # fmt: skip


def make_decisions(n: int, seed: int = 21) -> list[Decision]:
    """``n`` varied bilingual decisions shaped like the old system's records."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        title_en, title_zh, names = rng.choice(_TOPICS)
        zh = rng.random() < 0.4
        title = f"{title_zh if zh else title_en} #{i}"
        situation = rng.choice(_SITUATION_ZH if zh else _SITUATION_EN)
        chosen = rng.choice(names)
        out.append(Decision(
            title=title,
            context=f"{title_zh if zh else title_en}: {situation}. " + rng.choice(_CONTEXT),
            options=tuple(Option(name, (rng.choice(_PROS),), (rng.choice(_CONS),))
                          for name in names),
            decision=chosen,
            rationale=rng.choice(_RATIONALE),
            consequences=tuple(rng.sample(_CONSEQUENCES, 2)),
            agents=(rng.choice(("backend-architect", "database-specialist", "api-designer")),),
            tags=tuple(rng.sample(_TAGS, rng.randint(0, 2))),
            status=rng.choice((Status.ACCEPTED, Status.PROPOSED, Status.DEPRECATED)),
        ))  # fmt: skip
    return out


def _progress(message: str) -> None:
    echo(f"[decisions] {message}", err=True)


def _rate(n: int, seconds: float) -> float:
    return n / seconds if seconds > 0 else float("inf")


class _Clock:
    """Wall time and this process's CPU time (all threads) since it was made."""

    __slots__ = ("cpu", "wall")

    def __init__(self) -> None:
        self.wall = time.perf_counter()
        self.cpu = time.process_time()

    def result(self, n: int) -> tuple[float, float]:
        """``(records per second, CPU µs per record)``."""
        wall, cpu = time.perf_counter() - self.wall, time.process_time() - self.cpu
        return _rate(n, wall), cpu / max(n, 1) * 1e6


Result = tuple[float, float]


# ------------------------------------------------------------------------ raw sqlite3 ceiling
def _raw_rows(decisions: Sequence[Decision]) -> tuple[str, list[tuple[Any, ...]]]:
    """The statement and rows the store's write transactions run, made before the clock."""
    return insert_rows(list(decisions), IdGenerator().take(len(decisions)), 1, utc_now(), None)


def _ceiling(path: Path, sql: str, rows: list[tuple[Any, ...]], batch: int) -> Result:
    conn = connect(path, synchronous="FULL")
    migrate(conn, _schema.MIGRATIONS)
    try:
        clock = _Clock()
        for k in range(0, len(rows), batch):
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(sql, rows[k : k + batch])
            conn.execute("COMMIT")
        return clock.result(len(rows))
    finally:
        conn.close()


# ------------------------------------------------------------------------------ store cases
def _open(path: Path) -> DecisionStore:
    # Throwaway databases: no index catch-up on close (the search case waits for it, timed).
    return DecisionStore.open(path, config=load_config(), index_on_close=False)


async def _store_batched(
    path: Path, decisions: Sequence[Decision], batch: int, index: dict[str, float] | None = None
) -> Result:
    """Ingest rate; with ``index``, also time the search index catching up afterwards."""
    async with _open(path) as store:
        clock = _Clock()
        for k in range(0, len(decisions), batch):
            await store.record_many(decisions[k : k + batch])
        result = clock.result(len(decisions))
        if index is not None:
            before = (await store.stats())["search_backlog"]
            start = time.perf_counter()
            await store.wait_indexed()
            index["records"] = before
            index["rate"] = _rate(before, time.perf_counter() - start)
        return result


async def _store_concurrent(
    path: Path, decisions: Sequence[Decision], producers: int
) -> Result:
    async with _open(path) as store:
        share = len(decisions) // producers

        async def producer(items: Sequence[Decision]) -> None:
            for d in items:
                await store.record(d)

        clock = _Clock()
        await asyncio.gather(
            *(producer(decisions[p * share : (p + 1) * share]) for p in range(producers))
        )
        return clock.result(share * producers)


async def _store_sequential(path: Path, decisions: Sequence[Decision]) -> Result:
    async with _open(path) as store:
        clock = _Clock()
        for d in decisions:
            await store.record(d)
        return clock.result(len(decisions))


def _naive(path: Path, decisions: Sequence[Decision], budget_s: float) -> tuple[float, int]:
    """The old recorder: append to a list and rewrite the whole JSON file, per record."""
    records: list[dict[str, Any]] = []
    start = time.perf_counter()
    done = 0
    for i, d in enumerate(decisions):
        records.append({**d.to_dict(), "decision_id": f"decision_{int(time.time())}"})
        data = {"metadata": {"total_decisions": i + 1, "format_version": "1.0"},
                "decisions": records}  # fmt: skip
        with path.open("w", encoding="utf-8") as fh:
            json.dump(data, fh, ensure_ascii=False, indent=2)
        done = i + 1
        if time.perf_counter() - start > budget_s:
            break
    return _rate(done, time.perf_counter() - start), done


def _search(path: Path, rounds: int) -> dict[str, Any]:
    with SyncDecisionStore.open(path) as store:
        for query in QUERIES:  # warm the page cache, as a long-running server would be
            store.search(query)
        times: list[float] = []
        hits: dict[str, int] = {}
        for _ in range(rounds):
            for query in QUERIES:
                t0 = time.perf_counter()
                found = store.search(query)
                times.append((time.perf_counter() - t0) * 1000)
                hits[query] = len(found)
    times.sort()
    return {
        "search_p50_ms": round(statistics.median(times), 3),
        "search_p95_ms": round(times[int(len(times) * 0.95) - 1], 3),
        "search_max_ms": round(times[-1], 3),
        "search_queries": len(times),
        "search_hits": hits,
    }


# ---------------------------------------------------------------------------------- measure
def measure(
    *,
    records: int = 100_000,
    seed_records: int = 10_000,
    concurrent_records: int = 20_000,
    producers: int = 100,
    sequential_records: int = 1_000,
    naive_records: int = 2_000,
    naive_budget_s: float = 3.0,
    repeats: int = 3,
    search_rounds: int = 20,
    directory: Path | None = None,
) -> dict[str, Any]:
    """Run every case; returns the report (see the module docstring)."""
    config = load_config()
    root = Path(tempfile.mkdtemp(prefix="p21-bench-decisions-", dir=directory))
    samples: dict[str, list[float]] = {}
    cpu: dict[str, list[float]] = {}

    def keep(name: str, result: Result) -> None:
        samples.setdefault(name, []).append(round(result[0]))
        cpu.setdefault(name, []).append(round(result[1], 2))

    def fresh(name: str) -> Path:
        folder = root / name
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        return folder / "decisions.db"

    load_before = os.getloadavg()[0]
    try:
        _progress(f"building {records:,} decisions …")
        decisions = make_decisions(max(records, seed_records, concurrent_records))
        sql, rows = _raw_rows(decisions)
        search_db = root / "search" / "decisions.db"
        index: dict[str, float] = {}
        for rep in range(repeats):
            _progress(f"round {rep + 1}/{repeats}: seed case (batches of 100), batched (1,000)")
            keep("seed_ceiling", _ceiling(fresh("c100"), sql, rows[:seed_records], 100))
            keep("seed", asyncio.run(_store_batched(fresh("s100"), decisions[:seed_records], 100)))
            keep("ceiling", _ceiling(fresh("c1000"), sql, rows[:records], 1000))
            last = rep == repeats - 1  # its database is the search corpus
            path = fresh("search") if last else fresh("s1000")
            keep("batched", asyncio.run(
                _store_batched(path, decisions[:records], 1000, index if last else None)))
            _progress(f"round {rep + 1}/{repeats}: {producers} concurrent producers")
            keep("concurrent", asyncio.run(
                _store_concurrent(fresh("conc"), decisions[:concurrent_records], producers)))
        _progress(f"sequential: {sequential_records:,} records, one awaited at a time")
        seq_rows = rows[:sequential_records]
        keep("sequential_ceiling", _ceiling(fresh("c1"), sql, seq_rows, 1))
        keep("sequential", asyncio.run(
            _store_sequential(fresh("seq"), decisions[:sequential_records])))
        _progress(f"naive: rewrite a JSON file per record (up to {naive_records:,} records)")
        naive_folder = fresh("naive").parent
        naive_rate, naive_done = _naive(
            naive_folder / "decisions.json", decisions[:naive_records], naive_budget_s
        )
        _progress(f"search: index {records:,} records, then {search_rounds} rounds of "
                  f"{len(QUERIES)} queries")  # fmt: skip
        search = _search(search_db, search_rounds)
    finally:
        shutil.rmtree(root, ignore_errors=True)

    best = {name: max(values) for name, values in samples.items()}
    cpu_best = {name: min(values) for name, values in cpu.items()}
    report: dict[str, Any] = {
        "batched_ops_per_s": best["batched"],
        "ceiling_ops_per_s": best["ceiling"],
        "concurrent_ops_per_s": best["concurrent"],
        "sequential_ops_per_s": best["sequential"],
        "sequential_ceiling_ops_per_s": best["sequential_ceiling"],
        "seed_ops_per_s": best["seed"],
        "seed_ceiling_ops_per_s": best["seed_ceiling"],
        "naive_ops_per_s": round(naive_rate, 1),
        "naive_records": naive_done,
        **search,
        "index_records": int(index["records"]),
        "index_records_per_s": round(index["rate"]),
    }
    report["batched_vs_ceiling"] = round(best["batched"] / best["ceiling"], 3)
    report["seed_vs_ceiling"] = round(best["seed"] / best["seed_ceiling"], 3)
    report["concurrent_vs_ceiling"] = round(best["concurrent"] / best["ceiling"], 3)
    report["sequential_vs_ceiling"] = round(best["sequential"] / best["sequential_ceiling"], 3)
    report["batched_vs_naive"] = round(best["batched"] / max(naive_rate, 1e-9), 1)
    # CPU time per record (all threads of this process): steadier than wall time when the
    # machine is shared. The ceiling's rows were serialised before its clock started.
    for name, value in cpu_best.items():
        report[f"{name}_cpu_us"] = value
    for case, ceiling in (("seed", "seed_ceiling"), ("batched", "ceiling"),
                          ("sequential", "sequential_ceiling")):  # fmt: skip
        report[f"{case}_vs_ceiling_cpu"] = round(cpu_best[ceiling] / cpu_best[case], 3)
    report["targets"] = TARGETS
    report["targets_met"] = {
        "batched_ops_per_s": report["batched_ops_per_s"] >= TARGETS["batched_ops_per_s"],
        "batched_vs_ceiling": report["batched_vs_ceiling"] >= TARGETS["batched_vs_ceiling"],
        "concurrent_ops_per_s": report["concurrent_ops_per_s"]
        >= TARGETS["concurrent_ops_per_s"],
        "search_p95_ms": report["search_p95_ms"] <= TARGETS["search_p95_ms"],
    }
    report["samples"] = samples
    report["cpu_samples_us"] = cpu
    report["settings"] = {
        "records": records, "seed_records": seed_records, "seed_batch": 100, "batch": 1000,
        "concurrent_records": concurrent_records, "producers": producers,
        "sequential_records": sequential_records, "repeats": repeats,
        "decisions_batch_size": config.decisions_batch_size,
        "decisions_linger_ms": config.decisions_linger_ms, "synchronous": "FULL",
    }  # fmt: skip
    report["machine"] = {
        "cpus": os.cpu_count(),
        "load_average_1m": {"before": round(load_before, 2), "after": round(os.getloadavg()[0], 2)},
    }
    return report


def _text(r: dict[str, Any]) -> str:
    def n(key: str) -> str:
        return f"{r[key]:>12,.0f}/s"

    met = r["targets_met"].items()
    lines = [
        "decision store (synchronous=FULL)        store      raw sqlite3 ceiling    ratio"
        "   (CPU µs/record: store / ceiling)",
        f"  seed: 10k in batches of 100   {n('seed_ops_per_s')}  {n('seed_ceiling_ops_per_s')}"
        f"    {r['seed_vs_ceiling']:.0%}       {r['seed_cpu_us']} / {r['seed_ceiling_cpu_us']}",
        f"  batched: batches of 1,000     {n('batched_ops_per_s')}  {n('ceiling_ops_per_s')}"
        f"    {r['batched_vs_ceiling']:.0%}       {r['batched_cpu_us']} / {r['ceiling_cpu_us']}",
        f"  {r['settings']['producers']} concurrent producers      "
        f"{n('concurrent_ops_per_s')}  {n('ceiling_ops_per_s')}    "
        f"{r['concurrent_vs_ceiling']:.0%}",
        f"  sequential (1 awaited)        {n('sequential_ops_per_s')}  "
        f"{n('sequential_ceiling_ops_per_s')}    {r['sequential_vs_ceiling']:.0%}",
        f"  naive JSON rewrite per record {n('naive_ops_per_s')}  "
        f"(batched is {r['batched_vs_naive']:,.0f}x faster; {r['naive_records']} records)",
        f"search on {r['settings']['records']:,} records: p50 {r['search_p50_ms']} ms, "
        f"p95 {r['search_p95_ms']} ms over {r['search_queries']} queries; "
        f"index caught up with the {r['index_records']:,} records left after ingest at "
        f"{r['index_records_per_s']:,}/s",
        "targets: " + ", ".join(f"{k} {'ok' if v else 'MISSED'}" for k, v in met),
        f"machine: {r['machine']['cpus']} CPUs, load average "
        f"{r['machine']['load_average_1m']['before']} before, "
        f"{r['machine']['load_average_1m']['after']} after (best of "
        f"{r['settings']['repeats']} runs each)",
    ]
    return "\n".join(lines)



def configure(parser: argparse.ArgumentParser) -> None:
    parser.description = doc_text(command.__doc__)
    add = parser.add_argument
    add("--json", dest="as_json", action="store_true", help="Print one JSON object on stdout.")
    add("--records", type=int_range(1_000, 10_000_000), default=100_000, metavar="N",
        help="Records in the batched case and the search corpus. "
             "[default: 100000; 1000<=x<=10000000]")
    add("--repeats", type=int_range(1, 20), default=3, metavar="N",
        help="Runs of each ingest case (store and ceiling alternate); best is reported. "
             "[default: 3; 1<=x<=20]")
    add("--dir", dest="directory", type=dir_path, default=None, metavar="DIRECTORY",
        help="Where to put the temporary databases (default: the system temp folder).")
    add("--quick", action="store_true",
        help="A smoke run on a few thousand records: checks it works, numbers are rough.")
    parser.set_defaults(_handler=command)


def command(
    as_json: bool, records: int, repeats: int, directory: Path | None, quick: bool
) -> None:
    """Decision store ingest (batched, concurrent, sequential) and search, with baselines.

    Each case is printed next to the raw-sqlite3 ceiling (plain executemany of the same rows,
    same schema and pragmas, synchronous=FULL) and the naive baseline (rewrite a JSON file per
    record, as the old system did), all measured in this run. About 30 s by default.

    Examples:
      perfect21 bench decisions
      perfect21 bench decisions --json > decisions.json
      perfect21 bench decisions --quick      # smoke run, a few seconds
    """
    if directory is not None:
        directory.mkdir(parents=True, exist_ok=True)
    sizes: dict[str, Any] = {"records": records, "repeats": repeats}
    if quick:
        sizes = {"records": 2000, "seed_records": 1000, "concurrent_records": 2000,
                 "sequential_records": 100, "naive_records": 100, "repeats": 1,
                 "search_rounds": 2}  # fmt: skip
    report = measure(directory=directory, **sizes)
    report["quick"] = quick
    if as_json:
        echo(json.dumps(report, ensure_ascii=False))
    else:
        echo(_text(report))
