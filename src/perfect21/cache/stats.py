"""Counters for the layered cache: per level hits, misses, latency, bytes, evictions, prefetch.

Plain attribute increments (no locks): the counters are statistics, and a lost increment
under a thread race is acceptable, a lock on every cache read is not. Latency is kept as a
bounded ring of recent samples per level so percentiles cost nothing until asked for.
"""

from __future__ import annotations

from typing import Any

__all__ = ["CacheStats", "LevelStats", "PrefetchStats"]

_SAMPLES = 1024


def _percentile(samples: list[float], q: float) -> float:
    if not samples:
        return 0.0
    ordered = sorted(samples)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


class LevelStats:
    """What one level (l1, l2 or l3) did in this process."""

    __slots__ = (
        "_cursor",
        "_latency",
        "bytes_read",
        "bytes_written",
        "deletes",
        "errors",
        "evictions",
        "hits",
        "misses",
        "name",
        "sets",
    )

    def __init__(self, name: str) -> None:
        self.name = name
        self.hits = 0
        self.misses = 0
        self.sets = 0
        self.deletes = 0
        self.errors = 0
        self.evictions = 0
        self.bytes_read = 0
        self.bytes_written = 0
        self._latency: list[float] = []
        self._cursor = 0

    def observe(self, seconds: float) -> None:
        """Record the latency of one lookup at this level (bounded ring of samples)."""
        if len(self._latency) < _SAMPLES:
            self._latency.append(seconds)
        else:
            self._latency[self._cursor] = seconds
            self._cursor = (self._cursor + 1) % _SAMPLES

    def hit(self, nbytes: int, seconds: float) -> None:
        self.hits += 1
        self.bytes_read += nbytes
        self.observe(seconds)

    def miss(self, seconds: float) -> None:
        self.misses += 1
        self.observe(seconds)

    def wrote(self, nbytes: int) -> None:
        self.sets += 1
        self.bytes_written += nbytes

    @property
    def hit_ratio(self) -> float:
        total = self.hits + self.misses
        return self.hits / total if total else 0.0

    def snapshot(self) -> dict[str, Any]:
        return {
            "hits": self.hits,
            "misses": self.misses,
            "hit_ratio": round(self.hit_ratio, 6),
            "sets": self.sets,
            "deletes": self.deletes,
            "errors": self.errors,
            "evictions": self.evictions,
            "bytes_read": self.bytes_read,
            "bytes_written": self.bytes_written,
            "latency_p50_ms": round(_percentile(self._latency, 0.5) * 1000, 4),
            "latency_p95_ms": round(_percentile(self._latency, 0.95) * 1000, 4),
        }


class PrefetchStats:
    """Prefetch accounting: precision = prefetched keys used before eviction / prefetched."""

    __slots__ = ("dropped", "issued", "loaded", "not_found", "used", "wasted")

    def __init__(self) -> None:
        self.issued = 0  # predictions scheduled for a background fetch
        self.loaded = 0  # fetched from L2/L3 and put into L1
        self.not_found = 0  # predicted but in no lower level
        self.dropped = 0  # not scheduled: queue full (bounded cost)
        self.used = 0  # loaded and then read from L1
        self.wasted = 0  # loaded and evicted (or overwritten) before any read

    @property
    def precision(self) -> float:
        return self.used / self.loaded if self.loaded else 0.0

    def snapshot(self) -> dict[str, Any]:
        return {
            "issued": self.issued,
            "loaded": self.loaded,
            "not_found": self.not_found,
            "dropped": self.dropped,
            "used": self.used,
            "wasted": self.wasted,
            "precision": round(self.precision, 6),
        }


class CacheStats:
    """All counters of one :class:`~perfect21.cache.layered.LayeredCache`."""

    __slots__ = ("computes", "l1", "l2", "l3", "prefetch", "requests", "singleflight_joins")

    def __init__(self) -> None:
        self.l1 = LevelStats("l1")
        self.l2 = LevelStats("l2")
        self.l3 = LevelStats("l3")
        self.prefetch = PrefetchStats()
        self.requests = 0
        self.computes = 0
        self.singleflight_joins = 0

    def level(self, name: str) -> LevelStats:
        stats: LevelStats = getattr(self, name)
        return stats

    def snapshot(self) -> dict[str, Any]:
        """A JSON-ready dict; the metrics exporter reads this."""
        served = self.l1.hits + self.l2.hits + self.l3.hits
        return {
            "requests": self.requests,
            "hits": served,
            "misses": self.requests - served,
            "hit_ratio": round(served / self.requests, 6) if self.requests else 0.0,
            "computes": self.computes,
            "singleflight_joins": self.singleflight_joins,
            "levels": {s.name: s.snapshot() for s in (self.l1, self.l2, self.l3)},
            "prefetch": self.prefetch.snapshot(),
        }
