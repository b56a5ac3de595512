"""``perfect21 bench decisions``: it measures real work and prints the documented keys.

Speed is never asserted (that is what the benchmark reports)."""

from __future__ import annotations

import json

from perfect21.bench.decisions import make_decisions, measure

from .conftest import RunCli

KEYS = ("batched_ops_per_s", "ceiling_ops_per_s", "concurrent_ops_per_s",
        "sequential_ops_per_s", "naive_ops_per_s", "search_p95_ms", "batched_vs_ceiling",
        "seed_ops_per_s", "seed_ceiling_ops_per_s", "sequential_ceiling_ops_per_s")  # fmt: skip


def test_workload_is_varied_and_bilingual() -> None:
    ds = make_decisions(500)
    assert len({d.title for d in ds}) == 500
    assert any(any("\u4e00" <= c <= "\u9fff" for c in d.title) for d in ds)
    assert any(d.title.isascii() for d in ds)
    assert make_decisions(50) == make_decisions(50)  # deterministic


def test_measure_reports_every_key() -> None:
    report = measure(records=2000, seed_records=1000, concurrent_records=1000, producers=10,
                     sequential_records=50, naive_records=20, repeats=1, search_rounds=1,
                     naive_budget_s=1.0)  # fmt: skip
    # The index catch-up is measured on what is still unindexed when ingest ends: all 2,000
    # records on an idle machine, fewer (even none) when a slow ingest let the writer index
    # during it (it does once the oldest unindexed record is a second old).
    may_be_zero = {"index_records", "index_records_per_s"}
    for key in KEYS:
        assert isinstance(report[key], int | float), key
        assert report[key] >= 0 if key in may_be_zero else report[key] > 0, key
    assert 0 <= report["index_records"] <= 2000
    assert report["search_hits"]["jwt 会话"] > 0 and report["search_hits"]["nomatch"] == 0


def test_cli_json(run_cli: RunCli) -> None:
    out = run_cli("bench", "decisions", "--json", "--quick", timeout=120)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    for key in KEYS:
        assert isinstance(report[key], int | float), key
