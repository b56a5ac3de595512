"""L1 memory cache: bounds, TTL, W-TinyLFU admission, thread safety."""

from __future__ import annotations

import random
import threading
import time

import pytest

from perfect21.bench.cache import lru_hit_ratio, zipf_trace
from perfect21.cache.memory import CountMinSketch, MemoryCache


def test_get_set_delete_clear() -> None:
    cache = MemoryCache(10, 1000)
    assert cache.get("a") is None
    assert cache.set("a", b"xyz")
    assert cache.get("a") == b"xyz" and "a" in cache and len(cache) == 1
    assert cache.bytes_used == 3
    assert cache.set("a", b"longer")
    assert cache.get("a") == b"longer" and cache.bytes_used == 6 and len(cache) == 1
    assert cache.delete("a") and not cache.delete("a")
    cache.set("b", "text")
    cache.clear()
    assert len(cache) == 0 and cache.bytes_used == 0 and cache.get("b") is None
    assert cache.stats.hits == 2 and cache.stats.misses == 2


def test_bounded_by_entries() -> None:
    """However many keys are written, at most max_entries stay, and evictions are counted."""
    evicted: list[object] = []
    cache = MemoryCache(50, 1 << 20, on_evict=lambda k, v: evicted.append(k))
    for i in range(1000):
        cache.set(i, i, size=1)
        cache.get(i % 7)
        assert len(cache) <= 50
    assert len(cache) == 50
    assert cache.stats.evictions == len(evicted) == 950


def test_bounded_by_bytes() -> None:
    """The byte bound holds, and a value larger than the bound is refused, not stored."""
    cache = MemoryCache(1000, 100)
    for i in range(50):
        assert cache.set(f"k{i}", b"x" * 30)
        assert cache.bytes_used <= 100
    assert len(cache) == 3
    assert not cache.set("huge", b"x" * 101)
    assert "huge" not in cache and cache.stats.rejections == 1
    # The entry just written is never the one evicted for bytes.
    assert cache.set("last", b"y" * 90) and cache.get("last") == b"y" * 90


def test_ttl_expires(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [1000.0]
    monkeypatch.setattr(time, "monotonic", lambda: now[0])
    cache = MemoryCache(10, 1000, default_ttl_s=5.0)
    cache.set("a", b"1")
    cache.set("b", b"2", ttl_s=60.0)
    cache.set("c", b"3", ttl_s=0)  # no expiry
    now[0] += 10
    assert cache.get("a") is None and "a" not in cache
    assert cache.get("b") == b"2" and cache.get("c") == b"3"
    assert cache.stats.expirations == 1 and len(cache) == 2


def test_frequent_keys_survive_a_scan() -> None:
    """W-TinyLFU: a burst of one-time keys does not flush the hot set (LRU would)."""
    cache = MemoryCache(100, 1 << 20)
    hot = [f"hot{i}" for i in range(50)]
    for _ in range(20):
        for key in hot:
            if cache.get(key) is None:
                cache.set(key, 1, size=1)
    for i in range(5000):
        if cache.get(f"scan{i}") is None:
            cache.set(f"scan{i}", 1, size=1)
    survivors = sum(1 for key in hot if key in cache)
    assert survivors >= 45


def test_beats_lru_on_a_zipf_trace() -> None:
    """On a skewed trace the L1 policy keeps more of what is asked again than LRU."""
    trace = zipf_trace(5_000, 60_000, seed=7)
    cache = MemoryCache(200, 1 << 30)
    for key in trace:
        if cache.get(key) is None:
            cache.set(key, 1, size=1)
    assert cache.stats.hits / len(trace) > lru_hit_ratio(trace, 200) + 0.03


def test_admit_goes_straight_to_main() -> None:
    """A prefetched (admitted) key is not refused by the frequency filter."""
    cache = MemoryCache(20, 1 << 20)
    for _ in range(5):
        for i in range(20):
            if cache.get(i) is None:
                cache.set(i, 1, size=1)
    assert cache.set("new", 1, size=1, admit=True)
    for i in range(20, 25):  # a few more cold writes
        cache.set(i, 1, size=1)
    assert "new" in cache


def test_sketch_counts_and_halves() -> None:
    sketch = CountMinSketch(16)
    for _ in range(10):
        sketch.increment("a")
    sketch.increment("b")
    assert sketch.estimate("a") >= 10 and sketch.estimate("b") >= 1
    assert sketch.estimate("never") <= 1
    for i in range(64 * 16):  # reach the sample size: every counter is halved
        sketch.increment(("filler", i))
    assert sketch.estimate("a") <= 7


def test_thread_safety_invariants() -> None:
    """Concurrent readers and writers never break the entry and byte bounds."""
    cache = MemoryCache(200, 5000)
    errors: list[BaseException] = []

    def worker(seed: int) -> None:
        rng = random.Random(seed)
        try:
            for _ in range(5000):
                key = rng.randrange(1000)
                if cache.get(key) is None:
                    cache.set(key, b"v" * rng.randrange(1, 60))
                if rng.random() < 0.05:
                    cache.delete(rng.randrange(1000))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(s,)) for s in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    cache.drain()
    assert len(cache) <= 200 and 0 <= cache.bytes_used <= 5000
    total = sum(len(cache.get(k) or b"") for k in cache.key_list())
    assert total == cache.bytes_used


def test_invalid_bounds() -> None:
    with pytest.raises(ValueError):
        MemoryCache(0, 10)
    with pytest.raises(ValueError):
        MemoryCache(10, 0)
