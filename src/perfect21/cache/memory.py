"""L1: an in-process cache bounded by entries and bytes, with TTL and W-TinyLFU admission.

Why W-TinyLFU (see ``docs/adr/0002-l1-cache-policy.md``): on skewed (Zipf) workloads plain
LRU lets one-hit wonders push out popular keys. W-TinyLFU keeps a small LRU *window* for new
keys and a segmented-LRU *main* area (probation + protected); a key leaving the window enters
the main area only if a count-min sketch says it is used more often than the main area's
victim. The sketch is halved every ``64 x capacity`` accesses so popularity ages.

The hot path (``get`` on a hit) is deliberately tiny: one dict lookup, an expiry check and an
append of the key to a *read buffer*. The policy bookkeeping for reads (sketch increments,
LRU reordering, probation → protected promotion) is replayed from that buffer under a
``threading.Lock`` on the next write, exactly like Caffeine's read buffers. The buffer is
bounded and lossy: when it is full, further reads are not recorded (the value is still
served); that only makes the policy slightly less informed during long read-only phases.

Thread-safe (one lock, never held across an ``await``) and therefore asyncio-safe: every
method is synchronous and short.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable
from typing import Any

__all__ = ["CountMinSketch", "MemoryCache", "MemoryStats"]

_WINDOW, _PROBATION, _PROTECTED = 0, 1, 2
_HALVE = bytes(b >> 1 for b in range(256))
_S0, _S1, _S2, _S3 = 0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9, 0xD6E8FEB86659FD93
_M64 = (1 << 64) - 1
_READ_BUFFER_MAX = 4096


class CountMinSketch:
    """Approximate access frequency (counters saturate at 15, depth 4), halved periodically."""

    __slots__ = ("_additions", "_mask", "_rows", "_sample", "_width")

    def __init__(self, capacity: int) -> None:
        # 8 counters per entry in each row (4 in Caffeine): fewer collisions let the filter
        # rank Zipf's long tail better (+0.2 points at 10k entries, +0.8 at 1k in our
        # benchmark) for 32 bytes of sketch per entry.
        width = 16
        while width < 8 * max(1, capacity):
            width <<= 1
        self._width = width
        self._mask = width - 1
        self._rows = bytearray(4 * width)
        # Halve every 64 x capacity additions: long enough to tell Zipf's tail apart (10 x,
        # Caffeine's default, lost ~0.8 points at 10k entries in our benchmark), short enough
        # to forget yesterday's hot keys (a saturated counter decays to 0 in 256 x capacity).
        self._sample = 64 * max(1, capacity)
        self._additions = 0

    def increment(self, key: Hashable) -> None:
        # Unrolled over the four rows: this runs once per access and dominates miss cost.
        rows, mask, width = self._rows, self._mask, self._width
        h = hash(key) & _M64
        h ^= h >> 29
        i = (((h * _S0) & _M64) >> 40) & mask
        if rows[i] < 15:
            rows[i] += 1
        i = width + ((((h * _S1) & _M64) >> 40) & mask)
        if rows[i] < 15:
            rows[i] += 1
        i = 2 * width + ((((h * _S2) & _M64) >> 40) & mask)
        if rows[i] < 15:
            rows[i] += 1
        i = 3 * width + ((((h * _S3) & _M64) >> 40) & mask)
        if rows[i] < 15:
            rows[i] += 1
        self._additions += 1
        if self._additions >= self._sample:
            self._rows = bytearray(self._rows.translate(_HALVE))
            self._additions //= 2

    def estimate(self, key: Hashable) -> int:
        rows, mask, width = self._rows, self._mask, self._width
        h = hash(key) & _M64
        h ^= h >> 29
        return min(
            rows[(((h * _S0) & _M64) >> 40) & mask],
            rows[width + ((((h * _S1) & _M64) >> 40) & mask)],
            rows[2 * width + ((((h * _S2) & _M64) >> 40) & mask)],
            rows[3 * width + ((((h * _S3) & _M64) >> 40) & mask)],
        )


class _Entry:
    __slots__ = ("expires", "seg", "size", "value")

    def __init__(self, value: Any, size: int, expires: float, seg: int) -> None:
        self.value = value
        self.size = size
        self.expires = expires  # 0.0 = never
        self.seg = seg


class MemoryStats:
    """Counters of one :class:`MemoryCache` (plain ints; read them, do not write)."""

    __slots__ = ("evictions", "expirations", "hits", "misses", "rejections", "sets")

    def __init__(self) -> None:
        self.hits = 0
        self.misses = 0
        self.sets = 0
        self.evictions = 0
        self.expirations = 0
        self.rejections = 0

    def as_dict(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in self.__slots__}


class MemoryCache:
    """Bounded in-memory cache: ``max_entries`` and ``max_bytes``, optional TTL, W-TinyLFU.

    Values are kept as given (not copied): treat what ``get`` returns as read-only. ``size``
    passed to :meth:`set` is what counts against ``max_bytes`` (by default ``len(value)`` for
    bytes/str, else 64). ``on_evict(key, value)`` is called, outside the lock, for entries
    pushed out by the policy or by the byte bound (not for ``delete``/``clear``/expiry).
    """

    __slots__ = (
        "_buffer",
        "_bytes",
        "_data",
        "_lock",
        "_probation",
        "_protected",
        "_protected_max",
        "_sketch",
        "_window",
        "_window_max",
        "default_ttl_s",
        "max_bytes",
        "max_entries",
        "on_evict",
        "stats",
    )

    def __init__(
        self,
        max_entries: int = 10_000,
        max_bytes: int = 64 * 1024 * 1024,
        *,
        default_ttl_s: float = 0.0,
        on_evict: Callable[[Hashable, Any], None] | None = None,
    ) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be >= 1")
        if max_bytes < 1:
            raise ValueError("max_bytes must be >= 1")
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.default_ttl_s = default_ttl_s
        self.on_evict = on_evict
        self._data: dict[Hashable, _Entry] = {}
        self._window: OrderedDict[Hashable, None] = OrderedDict()
        self._probation: OrderedDict[Hashable, None] = OrderedDict()
        self._protected: OrderedDict[Hashable, None] = OrderedDict()
        self._window_max = max(1, max_entries // 200)  # 0.5 %: see CountMinSketch
        main = max(1, max_entries - self._window_max)
        self._protected_max = max(1, int(main * 0.8))
        self._sketch = CountMinSketch(max_entries)
        self._buffer: list[Hashable] = []
        self._bytes = 0
        self._lock = threading.Lock()
        self.stats = MemoryStats()

    # -- hot path ---------------------------------------------------------------------------
    def get(self, key: Hashable) -> Any:
        """The value for ``key`` or ``None``; lock-free on the hit path."""
        entry = self._data.get(key)
        buffer = self._buffer
        if len(buffer) < _READ_BUFFER_MAX:
            buffer.append(key)
        if entry is None:
            self.stats.misses += 1
            return None
        if entry.expires and entry.expires < time.monotonic():
            self._expire(key, entry)
            self.stats.misses += 1
            return None
        self.stats.hits += 1
        return entry.value

    def __contains__(self, key: Hashable) -> bool:
        entry = self._data.get(key)
        return entry is not None and not (entry.expires and entry.expires < time.monotonic())

    def __len__(self) -> int:
        return len(self._data)

    @property
    def bytes_used(self) -> int:
        return self._bytes

    # -- writes -----------------------------------------------------------------------------
    def set(
        self,
        key: Hashable,
        value: Any,
        *,
        size: int | None = None,
        ttl_s: float | None = None,
        admit: bool = False,
    ) -> bool:
        """Store ``value``; False when it was not kept (larger than ``max_bytes``, or refused).

        ``admit=True`` skips the window and the frequency filter: the entry goes straight to
        the most recently used end of the main area. Prefetch uses it — a predicted key has
        no access history yet and would otherwise be refused before its first read.
        """
        if size is None:
            size = len(value) if isinstance(value, bytes | bytearray | str) else 64
        ttl = self.default_ttl_s if ttl_s is None else ttl_s
        expires = time.monotonic() + ttl if ttl > 0 else 0.0
        evicted: list[tuple[Hashable, Any]] = []
        with self._lock:
            self._drain()
            self.stats.sets += 1
            if size > self.max_bytes:
                self.stats.rejections += 1
                old = self._data.get(key)
                if old is not None:
                    self._unlink(key, old)
                return False
            old = self._data.get(key)
            if old is not None:
                self._bytes += size - old.size
                self._data[key] = _Entry(value, size, expires, old.seg)
                self._touch(key, old.seg)
            else:
                if admit:
                    self._data[key] = _Entry(value, size, expires, _PROBATION)
                    self._probation[key] = None
                else:
                    self._data[key] = _Entry(value, size, expires, _WINDOW)
                    self._window[key] = None
                self._bytes += size
                self._evict_window(evicted)
            self._evict_bytes(evicted, keep=key)
        self._notify(evicted)
        return key in self._data

    def delete(self, key: Hashable) -> bool:
        with self._lock:
            entry = self._data.get(key)
            if entry is None:
                return False
            self._unlink(key, entry)
            return True

    def clear(self) -> None:
        with self._lock:
            self._data.clear()
            self._window.clear()
            self._probation.clear()
            self._protected.clear()
            self._buffer = []
            self._bytes = 0

    def key_list(self) -> list[Hashable]:
        return list(self._data)

    def drain(self) -> None:
        """Apply buffered reads to the policy now (tests and idle moments)."""
        with self._lock:
            self._drain()

    # -- policy (called with the lock held) -------------------------------------------------
    def _drain(self) -> None:
        if not self._buffer:
            return
        buffer, self._buffer = self._buffer, []
        sketch, data = self._sketch, self._data
        for key in buffer:
            sketch.increment(key)
            entry = data.get(key)
            if entry is not None:
                self._touch(key, entry.seg)

    def _touch(self, key: Hashable, seg: int) -> None:
        if seg == _WINDOW:
            self._window.move_to_end(key)
        elif seg == _PROTECTED:
            self._protected.move_to_end(key)
        else:
            del self._probation[key]
            self._protected[key] = None
            self._data[key].seg = _PROTECTED
            if len(self._protected) > self._protected_max:
                demoted, _ = self._protected.popitem(last=False)
                self._probation[demoted] = None
                self._data[demoted].seg = _PROBATION

    def _evict_window(self, evicted: list[tuple[Hashable, Any]]) -> None:
        while len(self._window) > self._window_max:
            candidate, _ = self._window.popitem(last=False)
            self._data[candidate].seg = _PROBATION
            self._probation[candidate] = None
            if len(self._data) <= self.max_entries:
                continue
            # Main area is full: the candidate must beat the probation victim to stay.
            victim = next(iter(self._probation))
            if victim == candidate or self._sketch.estimate(candidate) <= self._sketch.estimate(
                victim
            ):
                self._evict(candidate, evicted)
            else:
                self._evict(victim, evicted)
        while len(self._data) > self.max_entries:
            self._evict(self._lru_main_or_window(), evicted)

    def _lru_main_or_window(self) -> Hashable:
        for segment in (self._probation, self._protected, self._window):
            if segment:
                return next(iter(segment))
        raise LookupError("cache is empty")  # pragma: no cover - guarded by callers

    def _evict_bytes(self, evicted: list[tuple[Hashable, Any]], *, keep: Hashable) -> None:
        while self._bytes > self.max_bytes and self._data:
            victim = self._lru_main_or_window()
            if victim == keep and len(self._data) > 1:
                # Never evict the entry just written while others remain.
                for segment in (self._probation, self._protected, self._window):
                    for key in segment:
                        if key != keep:
                            victim = key
                            break
                    if victim != keep:
                        break
            self._evict(victim, evicted)

    def _evict(self, key: Hashable, evicted: list[tuple[Hashable, Any]]) -> None:
        entry = self._data[key]
        self._unlink(key, entry)
        self.stats.evictions += 1
        evicted.append((key, entry.value))

    def _unlink(self, key: Hashable, entry: _Entry) -> None:
        del self._data[key]
        segment = (self._window, self._probation, self._protected)[entry.seg]
        segment.pop(key, None)
        self._bytes -= entry.size

    def _expire(self, key: Hashable, entry: _Entry) -> None:
        with self._lock:
            if self._data.get(key) is entry:
                self._unlink(key, entry)
                self.stats.expirations += 1

    def _notify(self, evicted: Iterable[tuple[Hashable, Any]]) -> None:
        if self.on_evict is not None:
            for key, value in evicted:
                self.on_evict(key, value)
