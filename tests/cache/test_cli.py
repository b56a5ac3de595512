"""``perfect21 cache stats|warm|clear`` and ``perfect21 bench cache``."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest

from perfect21._config import load_config
from perfect21.cache.task_cache import open_task_cache
from perfect21.executor.cache_hook import CachedTaskResult


def _invoke(*args: str) -> tuple[int, str]:
    """Run ``perfect21 ARGS`` as a real process (PERFECT21_* from this test's environment)."""
    proc = subprocess.run(
        [sys.executable, "-m", "perfect21", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    return proc.returncode, proc.stdout


async def _fill(n: int) -> None:
    cache = open_task_cache(load_config())
    for i in range(n):
        await cache.put(f"key{i}", CachedTaskResult(stdout=f"out{i}"))
    for i in range(n):
        assert await cache.get(f"key{i}") is not None
    await cache.aclose()


def test_stats_on_an_empty_home() -> None:
    code, out = _invoke("cache", "stats")
    assert code == 0
    assert "L3 disk:" in out and "0 entries" in out and "L2 redis: off" in out


def test_stats_json_after_a_run(isolated_home: Path) -> None:
    asyncio.run(_fill(3))
    code, out = _invoke("cache", "stats", "--format", "json")
    assert code == 0
    report = json.loads(out)
    assert report["requests"] == 3 and report["hits"]["l1"] == 3
    assert report["levels"]["l3"]["entries"] == 3
    assert report["levels"]["l3"]["path"] == str(isolated_home / "cache" / "l3.sqlite")


def test_warm_and_clear() -> None:
    asyncio.run(_fill(4))
    code, out = _invoke("cache", "warm", "--format", "json")
    assert code == 0 and json.loads(out)["loaded"] == 4
    code, out = _invoke("cache", "clear", "--level", "l3")
    assert code == 0 and "l3: removed 4 entries" in out
    code, out = _invoke("cache", "stats", "--format", "json")
    assert json.loads(out)["levels"]["l3"]["entries"] == 0


def test_bad_level_is_a_usage_error() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "perfect21", "cache", "clear", "--level", "l9"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2 and "l9" in proc.stderr


@pytest.mark.integration
def test_stats_and_clear_with_redis(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PERFECT21_REDIS_URL", redis_url)
    asyncio.run(_fill(2))
    code, out = _invoke("cache", "stats", "--format", "json")
    l2 = json.loads(out)["levels"]["l2"]
    assert l2["reachable"] is True and l2["keys"] == 2
    code, out = _invoke("cache", "clear", "--level", "l2")
    assert code == 0 and "l2: removed 2 entries" in out


@pytest.mark.slow
def test_bench_cache_json_has_the_keys() -> None:
    """A small run (smaller trace, no end-to-end part) still prints every required key."""
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "perfect21",
            "bench",
            "cache",
            "--json",
            "--requests",
            "20000",
            "--no-e2e",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    for key in (
        "l1_hit_ratio_1k",
        "lru_hit_ratio_1k",
        "belady_hit_ratio_1k",
        "l1_hit_ratio_10k",
        "lru_hit_ratio_10k",
        "belady_hit_ratio_10k",
        "l1_get_ops_per_s",
        "prefetch_precision",
        "prefetch_hit_gain",
    ):
        assert isinstance(report[key], int | float), key
    assert report["trace_reduced"] is True and report["trace_requests"] == 20000
    assert "generating Zipf trace" in proc.stderr


def test_stats_with_an_unusable_home(isolated_home: Path) -> None:
    """A home where the cache cannot live: stats still answers, and says so."""
    isolated_home.mkdir(parents=True)
    (isolated_home / "cache").write_text("a file, not a folder")
    code, out = _invoke("cache", "stats")
    assert code == 0 and "unavailable" in out
    code, out = _invoke("cache", "clear")
    assert code == 0
