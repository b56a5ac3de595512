"""``perfect21 bench planner``: its baseline router, its request sources and its JSON shape.

Speed itself is never asserted here (it is what the benchmark reports); these tests pin down
that the benchmark measures real work and prints the documented keys.
"""

from __future__ import annotations

import json
from pathlib import Path

from perfect21.bench.planner import FALLBACK_ROWS, NaiveRouter, _table, load_requests, measure
from perfect21.planner.catalog import load_catalog

from .conftest import RunCli

NUMERIC_KEYS = (
    "uncached_p50_us", "uncached_p95_us", "cached_p95_us", "baseline_p95_us", "requests",
    "baseline_ratio", "plan_process_ms", "version_process_ms", "python_process_ms",
    "large_request_ms", "reference_us", "uncached_p95_per_reference",
)


def test_naive_router_uses_every_catalog_keyword() -> None:
    """The baseline has one uncompiled pattern per catalog keyword and really routes."""
    catalog = load_catalog(user=False, cache_dir=None)
    router = NaiveRouter(catalog.agents)
    expected = sum(len(a.keywords) + len(a.keywords_zh) for a in catalog.agents)
    assert len(router.rules) == expected
    assert all(isinstance(p, str) for _, p in router.rules)
    assert "security-auditor" in router.route("fix the SQL injection in the login form")
    assert "security-auditor" in router.route("修复登录接口的SQL注入漏洞")
    text = "Kubernetes pods crash-loop after the Helm upgrade"
    assert router.route(text) == router.route_compiled(text)


def test_fallback_requests_when_sample_is_absent(tmp_path: Path) -> None:
    """Without the shared sample the bench uses its shipped, labelled set and says so."""
    rows, source = load_requests(tmp_path / "missing.jsonl")
    assert len(rows) == len(FALLBACK_ROWS) and "fallback" in source
    names = {a.name for a in load_catalog(user=False, cache_dir=None).agents}
    for row in rows:
        assert row["request"] and row["complexity"] in {"simple", "medium", "complex"}
        for entry in (*row["must"], *row["must_not"]):
            assert entry in names


def test_measure_reports_the_documented_keys(tmp_path: Path) -> None:
    """A tiny run of ``measure`` returns every documented numeric key and the quality."""
    sample = tmp_path / "sample.jsonl"
    sample.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in FALLBACK_ROWS[:4]),
                      encoding="utf-8")
    messages: list[str] = []
    result = measure(rounds=2, baseline_rounds=1, process_runs=1, sample=sample,
                     progress=messages.append)
    for key in NUMERIC_KEYS:
        assert isinstance(result[key], (int, float)) and result[key] > 0, key
    assert result["requests"] == 4 and result["source"] == str(sample)
    assert result["quality"]["total"] == 4
    assert result["detail_us"]["uncached"]["calls"] == 8
    # the p95 in units of the reference loop timed between the same rounds
    ratio = result["uncached_p95_us"] / result["reference_us"]
    assert abs(result["uncached_p95_per_reference"] - ratio) <= 0.01 * ratio + 0.001
    assert set(result["meets_targets"]) == set(result["targets"])
    assert messages and "requests: 4" in messages[0]
    json.dumps(result)  # serialisable as one JSON object
    table = _table(result)  # the human form names every measurement, the reference too
    assert "planner, uncached" in table and "reference loop (machine speed)" in table
    assert f"uncached p95 / reference = {result['uncached_p95_per_reference']}" in table


def test_bench_planner_help(run_cli: RunCli) -> None:
    """``perfect21 bench planner --help`` documents --json and --full with examples."""
    proc = run_cli("bench", "planner", "--help")
    assert proc.returncode == 0, proc.stderr
    assert "--json" in proc.stdout and "--full" in proc.stdout and "Examples:" in proc.stdout
