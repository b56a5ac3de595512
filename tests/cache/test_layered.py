"""Layered cache: read-through with promotion, write-through, single-flight, namespaces."""

from __future__ import annotations

import asyncio
import marshal
import sys
from pathlib import Path

import pytest

from perfect21._config import Config
from perfect21._errors import CacheError
from perfect21.cache import DictTier, LayeredCache, Level, MarkovPredictor, MemoryCache, open_cache
from perfect21.cache.disk import DiskTier
from perfect21.cache.layered import L1_ENTRY_OVERHEAD


def _cache(**kw: object) -> LayeredCache:
    return LayeredCache(l2=DictTier("l2"), l3=DictTier("l3"), namespace="t", **kw)  # type: ignore[arg-type]


async def test_write_through_and_read_levels() -> None:
    cache = _cache()
    await cache.set("k", {"answer": 42})
    assert await cache.l2.get("t/v1/k") is not None  # type: ignore[union-attr]
    assert await cache.l3.get("t/v1/k") is not None  # type: ignore[union-attr]
    hit = await cache.lookup("k")
    assert hit is not None and hit.value == {"answer": 42} and hit.level is Level.L1
    cache.l1.clear()
    hit = await cache.lookup("k")
    assert hit is not None and hit.level is Level.L2
    assert (await cache.lookup("k")).level is Level.L1  # type: ignore[union-attr]
    assert await cache.get("missing") is None
    snap = cache.snapshot()
    assert snap["levels"]["l1"]["hits"] == 2 and snap["levels"]["l2"]["hits"] == 1
    assert snap["misses"] == 1 and snap["requests"] == 4


async def test_l3_hit_is_promoted_to_l1_and_l2() -> None:
    l2, l3 = DictTier("l2"), DictTier("l3")
    cache = LayeredCache(l2=l2, l3=l3, namespace="t")
    await l3.set("t/v1/k", b"b" + b"raw bytes")
    hit = await cache.lookup("k")
    assert hit is not None and hit.level is Level.L3 and hit.value == b"raw bytes"
    assert await l2.get("t/v1/k") == b"braw bytes"
    assert "t/v1/k" in cache.l1


async def test_l2_hit_is_kept_on_local_disk(tmp_path: Path) -> None:
    l2 = DictTier("l2")
    l3 = DiskTier(tmp_path / "l3.sqlite")
    async with LayeredCache(l2=l2, l3=l3, namespace="t") as cache:
        await l2.set("t/v1/shared", b"j[1,2]")
        assert await cache.get("shared") == [1, 2]
        assert await l3.get("t/v1/shared") == b"j[1,2]"


async def test_single_flight_computes_once() -> None:
    """Twenty concurrent misses on one key run the computation once."""
    cache = _cache()
    calls = 0

    async def compute() -> str:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.05)
        return "result"

    results = await asyncio.gather(*(cache.get_or_compute("k", compute) for _ in range(20)))
    assert results == ["result"] * 20 and calls == 1
    assert cache.stats.singleflight_joins == 19 and cache.stats.computes == 1
    assert await cache.get_or_compute("k", compute) == "result" and calls == 1
    await cache.get_or_compute("k", compute, refresh=True)
    assert calls == 2


async def test_failed_computation_reaches_every_waiter_and_is_not_cached() -> None:
    cache = _cache()

    async def boom() -> str:
        await asyncio.sleep(0.02)
        raise RuntimeError("agent failed")

    results = await asyncio.gather(
        *(cache.get_or_compute("k", boom) for _ in range(5)), return_exceptions=True
    )
    assert all(isinstance(r, RuntimeError) for r in results)
    assert await cache.get("k") is None


async def test_value_that_cannot_be_serialised_names_the_key() -> None:
    cache = _cache()
    with pytest.raises(CacheError, match=r"'plan:42'.*set"):
        await cache.set("plan:42", {1, 2, 3})
    with pytest.raises(CacheError, match=r"'k'.*None"):
        await cache.set("k", None)
    with pytest.raises(CacheError, match="'nan'"):
        await cache.set("nan", float("nan"))
    assert await cache.get("plan:42") is None  # nothing half-written


async def test_namespace_version_isolates_entries() -> None:
    l3 = DictTier("l3")
    old = LayeredCache(l3=l3, namespace="plans", version=1)
    await old.set("k", "old format")
    new = LayeredCache(l3=l3, namespace="plans", version=2)
    assert await new.get("k") is None
    other = LayeredCache(l3=l3, namespace="tasks", version=1)
    assert await other.get("k") is None
    with pytest.raises(ValueError):
        LayeredCache(namespace="a/b")


async def test_get_many_across_levels() -> None:
    cache = _cache()
    await cache.set("a", 1)
    await cache.l3.set("t/v1/b", b"j2")  # type: ignore[union-attr]
    cache.l1.delete("t/v1/a")
    await cache.set("c", 3)
    assert await cache.get_many(["a", "b", "c", "d"]) == {"a": 1, "b": 2, "c": 3}
    assert "t/v1/b" in cache.l1


async def test_unreadable_lower_entry_is_a_miss() -> None:
    cache = _cache()
    await cache.l2.set("t/v1/k", b"?garbage")  # type: ignore[union-attr]
    assert await cache.get("k") is None
    assert await cache.l2.get("t/v1/k") is None  # type: ignore[union-attr]


async def test_warm_loads_the_most_used_keys(tmp_path: Path) -> None:
    """Ranking counts every read, including L1 hits (handed to L3 at close)."""
    path = tmp_path / "l3.sqlite"
    async with LayeredCache(l3=DiskTier(path), namespace="t") as cache:
        for i in range(10):
            await cache.set(f"k{i}", i)
        for i in (3, 3, 3, 7, 7):  # all L1 hits
            await cache.get(f"k{i}")
        await cache.lookup("k5")
    disk = DiskTier(path)
    assert [k for k, _ in await disk.most_used("t/v1/", 3)] == ["t/v1/k3", "t/v1/k7", "t/v1/k5"]
    await disk.aclose()
    async with LayeredCache(l3=DiskTier(path), namespace="t", warm_on_start=2) as fresh:
        assert set(fresh.l1.key_list()) == {"t/v1/k3", "t/v1/k7"}
        assert (await fresh.lookup("k3")).level is Level.L1  # type: ignore[union-attr]


async def test_clear_levels_and_invalidation_messages() -> None:
    cache = _cache()
    await cache.set("a", 1)
    await cache.set("b", 2)
    removed = await cache.clear([Level.L1])
    assert removed == {"l1": 2} and len(cache.l1) == 0
    assert await cache.get("a") == 1  # still in L2
    cache._on_invalidate("set", "t/v1/a")  # another process wrote 'a'
    assert "t/v1/a" not in cache.l1
    await cache.get("b")
    cache._on_invalidate("clear", "t/v1/")
    assert len(cache.l1) == 0
    removed = await cache.clear()
    assert removed["l2"] == 2 and removed["l3"] == 2


async def test_prefetch_loads_predicted_keys_in_the_background() -> None:
    cache = _cache(predictor=MarkovPredictor(), l1=MemoryCache(100, 1 << 20))
    for key in "abcd":
        await cache.set(key, key)
    for _ in range(3):
        cache.l1.clear()
        for key in "abcd":
            await cache.get(key, session="s")
            await cache.prefetch_idle()
    p = cache.stats.prefetch
    assert p.loaded >= 3 and p.used == p.loaded and p.precision == 1.0
    # Turned off: no predictor, nothing prefetched.
    plain = _cache()
    await plain.set("a", 1)
    await plain.get("a", session="s")
    assert plain.stats.prefetch.issued == 0


async def test_open_cache_from_config(tmp_path: Path) -> None:
    config = Config(home=tmp_path / "home", cache_l1_entries=123, cache_prefetch=False)
    async with open_cache(config, namespace="plans", version=3) as cache:
        assert cache.l2 is None and cache.predictor is None
        assert cache.l1.max_entries == 123 and cache.prefix == "plans/v3/"
        await cache.set("x", "y")
    assert (tmp_path / "home" / "cache" / "l3.sqlite").exists()


async def test_counters_reach_the_monitor_kpis() -> None:
    from perfect21.monitor import kpi

    def total(name: str, level: str) -> float:
        snap = kpi.snapshot()
        metric = next((m for m in snap.metrics if m.name == name), None)
        if metric is None:
            return 0.0
        return sum(s.value for s in metric.samples if dict(s.labels).get("level") == level)

    before = total("cache_hits_total", "l1")
    cache = _cache()
    await cache.set("a", 1)
    for _ in range(3):
        await cache.get("a")
    await cache.aclose()
    assert total("cache_hits_total", "l1") - before == 3
    cache.publish_kpis()  # nothing new: nothing added twice
    assert total("cache_hits_total", "l1") - before == 3


async def test_trim_empties_memory_only() -> None:
    cache = _cache()
    await cache.set("a", 1)
    assert cache.trim() == 1 and len(cache.l1) == 0
    assert await cache.get("a") == 1


def test_bad_redis_url_is_a_config_error(tmp_path: Path) -> None:
    from perfect21._errors import ConfigError

    config = Config(home=tmp_path / "home", redis_url="http://:hunter2@cache.example:80")
    with pytest.raises(ConfigError, match=r"expected redis://") as info:
        open_cache(config)
    assert "hunter2" not in str(info.value)


async def test_cancelled_leader_does_not_cancel_the_waiters() -> None:
    """If the coroutine computing a key is cancelled, a waiter computes it instead."""
    cache = _cache()
    started = asyncio.Event()

    async def slow() -> str:
        started.set()
        await asyncio.sleep(10)
        return "never"

    async def fast() -> str:
        return "fresh"

    leader = asyncio.create_task(cache.get_or_compute("k", slow))
    await started.wait()
    waiter = asyncio.create_task(cache.get_or_compute("k", fast))
    await asyncio.sleep(0.01)
    leader.cancel()
    assert await waiter == "fresh"
    with pytest.raises(asyncio.CancelledError):
        await leader
    assert await cache.get("k") == "fresh"


async def test_snapshot_has_every_level_field() -> None:
    """The dict the metrics exporter reads: per level hits, misses, latency, bytes, evictions."""
    cache = LayeredCache(l1=MemoryCache(2, 1 << 20), l3=DictTier("l3"), namespace="t")
    for i in range(5):
        await cache.set(f"k{i}", i)
    for i in range(5):
        await cache.get(f"k{i}")
    snap = cache.snapshot()
    for level in ("l1", "l2", "l3"):
        for field in (
            "hits",
            "misses",
            "latency_p50_ms",
            "latency_p95_ms",
            "bytes_read",
            "bytes_written",
            "evictions",
            "enabled",
        ):
            assert field in snap["levels"][level], (level, field)
    assert snap["levels"]["l1"]["evictions"] >= 3 and snap["levels"]["l1"]["entries"] == 2
    assert snap["levels"]["l2"]["enabled"] is False
    assert snap["levels"]["l3"]["hits"] >= 3 and snap["levels"]["l3"]["latency_p95_ms"] > 0
    assert set(snap["prefetch"]) >= {"loaded", "used", "precision"}


def _python_bytes(value: object) -> int:
    """Bytes of every distinct object in a JSON-shaped value (a getsizeof walk)."""
    seen: set[int] = set()

    def walk(obj: object) -> int:
        if id(obj) in seen:
            return 0
        seen.add(id(obj))
        size = sys.getsizeof(obj)
        if isinstance(obj, dict):
            size += sum(walk(k) + walk(v) for k, v in obj.items())
        elif isinstance(obj, list):
            size += sum(walk(v) for v in obj)
        return size

    return walk(value)


async def test_l1_keeps_encoded_values_and_counts_what_it_holds() -> None:
    """The L1 byte bound is what L1 really keeps: encoded JSON, not Python objects."""
    value = {"tasks": [{"id": f"t{i}", "brief": f"do step {i} of the plan"} for i in range(50)]}
    cache = LayeredCache(l3=DictTier("l3"), namespace="t")
    await cache.set("plan", value)
    kept = cache.l1.get("t/v1/plan")
    assert isinstance(kept, bytes) and marshal.loads(kept) == value
    counted = len(marshal.dumps(value)) + L1_ENTRY_OVERHEAD
    assert counted <= cache.l1.bytes_used < counted + 200
    # the decoded objects would be several times larger than what is counted
    assert _python_bytes(value) > 3 * cache.l1.bytes_used
    first, second = await cache.get("plan"), await cache.get("plan")
    assert first == second == value and first is not second  # a fresh object per hit
    hit = await cache.lookup("plan")
    assert hit is not None and hit.level is Level.L1 and hit.value == value
    assert await cache.get_many(["plan"]) == {"plan": value}
    await cache.set("tuple", {"pair": (1, 2)})  # L1 returns the JSON form, as L2/L3 do
    assert await cache.get("tuple") == {"pair": [1, 2]}


async def test_l1_byte_bound_holds_for_json_values() -> None:
    value = {"text": "x" * 1000, "items": list(range(100))}
    per_entry = len(marshal.dumps(value)) + L1_ENTRY_OVERHEAD + 100
    l1 = MemoryCache(1000, 20 * per_entry)
    cache = LayeredCache(l1=l1, l3=DictTier("l3"), namespace="t")
    for i in range(100):
        await cache.set(f"k{i}", {**value, "n": i})
    assert 10 <= len(l1) <= 20 and l1.bytes_used <= l1.max_bytes
    assert (await cache.lookup("k99")).value["n"] == 99  # type: ignore[union-attr]
    hit = await cache.lookup("k0")  # pushed out of L1, still below
    assert hit is not None and hit.level is Level.L3 and hit.value["n"] == 0


async def test_l1_bytes_values_are_kept_as_they_are() -> None:
    cache = LayeredCache(namespace="t")
    blob = b"result" * 100
    await cache.set("b", blob)
    assert cache.l1.get("t/v1/b") is blob and await cache.get("b") is blob
    await cache.set("ba", bytearray(b"abc"))
    assert await cache.get("ba") == b"abc" and type(await cache.get("ba")) is bytes
