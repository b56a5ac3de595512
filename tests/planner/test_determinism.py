"""The same request gives the same plan bytes in every process, whatever the hash seed."""

from __future__ import annotations

import hashlib
from pathlib import Path

from .conftest import RunCli

SEEDS = ("0", "1", "4242")
MIXED = "给 checkout 服务加上 Redis 缓存和限流，并补充 e2e 测试，部署到 Kubernetes"


def test_same_plan_json_under_different_hash_seeds(run_cli: RunCli) -> None:
    """Three processes with different PYTHONHASHSEED print byte-identical JSON."""
    outputs = []
    for seed in SEEDS:
        proc = run_cli("plan", MIXED, "--format", "json", env={"PYTHONHASHSEED": seed})
        assert proc.returncode == 0, proc.stderr
        outputs.append(proc.stdout)
    assert outputs[0] == outputs[1] == outputs[2]


def test_sample_batch_identical_under_different_hash_seeds(
    run_cli: RunCli, shared_dir: Path, tmp_path: Path
) -> None:
    """All 160 sample requests, planned in three processes with different hash seeds and a
    cold catalog each time, give byte-identical JSON Lines."""
    sample = shared_dir / "data" / "routing_sample.jsonl"
    digests = set()
    for seed in SEEDS:
        home = tmp_path / f"home-{seed}"  # each process compiles its own catalog
        proc = run_cli("plan", "--batch", str(sample),
                       env={"PYTHONHASHSEED": seed, "PERFECT21_HOME": str(home)})
        assert proc.returncode == 0, proc.stderr
        assert len(proc.stdout.splitlines()) == 160
        digests.add(hashlib.sha256(proc.stdout.encode()).hexdigest())
    assert len(digests) == 1


def test_cached_catalog_plans_like_a_fresh_one(shared_dir: Path, tmp_path: Path) -> None:
    """A catalog read back from the disk cache gives exactly the plans of a freshly compiled
    one (a cold process and a warm process agree)."""
    from perfect21.planner import Planner
    from perfect21.planner.catalog import load_catalog
    from perfect21.planner.evaluate import read_rows

    cache = tmp_path / "catalog"
    fresh = load_catalog(user=False, cache_dir=cache)
    assert len(list(cache.glob("*.marshal"))) == 1
    cached = load_catalog(user=False, cache_dir=cache)
    assert cached.version == fresh.version and cached.agents == fresh.agents
    rows = read_rows(shared_dir / "data" / "routing_sample.jsonl")
    one, two = Planner(fresh, cache_entries=0), Planner(cached, cache_entries=0)
    for row in rows:
        assert one.plan(row["request"]) == two.plan(row["request"]), row["id"]
