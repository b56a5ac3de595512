"""The layered cache: L1 memory ▸ L2 Redis ▸ L3 disk, read-through, write-through.

* **Read-through with promotion**: a key found in L2 is copied into L1 and L3, one found in
  L3 into L1 and L2, so the next read is served higher up (and a teammate's result lands on
  this disk).
* **Write-through**: :meth:`set` encodes once, stores in L1 and writes L2 and L3 together.
* **Single-flight**: :meth:`get_or_compute` runs ``compute`` once per key however many
  coroutines miss on it at the same time; the others await that result (stampede protection).
* **Namespaces with a version**: every key is stored as ``<namespace>/v<version>/<key>``;
  bumping the version (new catalog or result format) makes old entries unreachable.
* **Warming**: :meth:`warm` loads L3's most used keys of the namespace into L1.
* **Predictive prefetch**: reads carrying a ``session`` feed a
  :class:`~perfect21.cache.predictive.MarkovPredictor`; predicted keys missing from L1 are
  fetched from L2/L3 in background tasks (at most ``max_prefetch_inflight`` at once, the rest
  dropped), never computed.
* **Invalidation**: other processes' writes reach this L1 through L2's pub/sub channel.
* **L1 keeps serialised values**: a bytes value as it is, any other value as the
  :mod:`marshal` bytes of its JSON form (exactly what an L2/L3 hit returns; ``marshal`` is
  only ever read back by the process that wrote it), rebuilt on every L1 hit, so each hit
  returns a fresh object. What L1 counts against ``cache_l1_bytes`` is then what it really
  holds — the bytes plus a measured per-entry overhead — instead of an encoded size standing
  in for Python objects ~4.3 times as large. Keeping one block per entry instead of ~130 small
  objects per plan also stops L1 churn from fragmenting the interpreter's small-object heap
  (docs/monitor.md has the soak numbers). The price: a hit on a JSON value rebuilds it
  (~12 µs for a 2.5 KB plan; a bytes hit costs what it did).
"""

from __future__ import annotations

import asyncio
import json
import logging
import marshal
import sys
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from perfect21.cache.base import CacheTier, Level, decode_value, encode_value
from perfect21.cache.memory import MemoryCache
from perfect21.cache.predictive import MarkovPredictor
from perfect21.cache.stats import CacheStats

if TYPE_CHECKING:
    from perfect21._config import Config

__all__ = ["Hit", "LayeredCache", "open_cache"]

log = logging.getLogger("perfect21.cache")

# Push counters to the monitor's KPI registry at most every this many requests (and at
# close): a registry call takes a lock and costs about as much as a whole L1 hit.
_PUBLISH_EVERY = 256
# L1 hit counts kept for at most this many keys between two hand-overs to L3.
_MAX_COUNTED_KEYS = 4096
# What one L1 entry costs besides its value and its key string, measured with tracemalloc
# (4,096 entries: 231 B each, of which 67 B the 18-character key string; the rest is the
# MemoryCache entry object and its dict and LRU slots); rounded up.
L1_ENTRY_OVERHEAD = 176


class _Marshalled(bytes):
    """A JSON value as L1 keeps it: the marshal bytes of its decoded JSON form."""

    __slots__ = ()


def _l1_item(full: str, value: Any, data: bytes, decoded: bool) -> tuple[bytes, int]:
    """What L1 keeps for ``value`` (encoded as ``data``) and the bytes it counts for it.

    ``decoded``: ``value`` came from ``decode_value(data)``; otherwise its JSON form is
    made from ``data`` so that an L1 hit returns what an L2/L3 hit would (lists, not tuples).
    """
    if data[:1] == b"j":
        form = value if decoded else json.loads(data[1:])
        item: bytes = _Marshalled(marshal.dumps(form))
    elif type(value) is bytes:
        item = value  # shared with the caller, not copied: bytes are immutable
    else:
        item = data[1:]  # bytearray/memoryview: L1 keeps its own immutable copy
    return item, sys.getsizeof(item) + sys.getsizeof(full) + L1_ENTRY_OVERHEAD


def _from_l1(item: Any) -> Any:
    """The value for what L1 keeps (see :func:`_l1_item`)."""
    return marshal.loads(item) if type(item) is _Marshalled else item


@dataclass(frozen=True, slots=True)
class Hit:
    """A value and the level that served it."""

    value: Any
    level: Level


class LayeredCache:
    """See the module docstring. Use as ``async with LayeredCache(...) as cache:``."""

    def __init__(
        self,
        *,
        l1: MemoryCache | None = None,
        l2: CacheTier | None = None,
        l3: CacheTier | None = None,
        namespace: str = "default",
        version: int = 1,
        ttl_s: float = 0.0,
        predictor: MarkovPredictor | None = None,
        max_prefetch_inflight: int = 8,
        warm_on_start: int = 0,
    ) -> None:
        if "/" in namespace or not namespace:
            raise ValueError("namespace must be a non-empty name without '/'")
        self.namespace = namespace
        self.version = version
        self.prefix = f"{namespace}/v{version}/"
        self.ttl_s = ttl_s
        self.l1 = l1 if l1 is not None else MemoryCache(10_000, 64 * 1024 * 1024)
        self.l1.on_evict = self._on_l1_evict
        self.l2 = l2
        self.l3 = l3
        self.predictor = predictor
        self.max_prefetch_inflight = max_prefetch_inflight
        self.warm_on_start = warm_on_start
        self.stats = CacheStats()
        self._flights: dict[str, asyncio.Future[Any]] = {}
        self._prefetching: dict[str, asyncio.Task[None]] = {}
        self._prefetched: OrderedDict[Hashable, None] = OrderedDict()
        self._started = False
        self._closed = False
        self._published: dict[tuple[str, str], int] = {}
        # L1 hits per key, handed to L3 in batches so `warm` ranks keys by every read.
        self._l1_hit_counts: dict[str, int] = {}
        self._published_at = 0

    # -- lifecycle --------------------------------------------------------------------------
    async def __aenter__(self) -> LayeredCache:
        self._start()
        if self.warm_on_start > 0:
            await self.warm(self.warm_on_start)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def _start(self) -> None:
        if self._started:
            return
        self._started = True
        listen = getattr(self.l2, "listen", None)
        if listen is not None:
            listen(self._on_invalidate)

    async def aclose(self) -> None:
        """Stop background work, persist cumulative counters in L3, close the tiers."""
        if self._closed:
            return
        self._closed = True
        self.publish_kpis()
        await self._hand_over_hit_counts()
        for task in list(self._prefetching.values()):
            task.cancel()
        await asyncio.gather(*self._prefetching.values(), return_exceptions=True)
        add_counters = getattr(self.l3, "add_counters", None)
        if add_counters is not None and self.l3 is not None:
            s = self.stats
            disk = self.l3.stats()
            l2 = self.l2.stats() if self.l2 is not None else {}
            await add_counters(
                {
                    "requests": s.requests,
                    "l1_hits": s.l1.hits,
                    "l2_hits": s.l2.hits,
                    "l3_hits": s.l3.hits,
                    "computes": s.computes,
                    "l1_evictions": s.l1.evictions,
                    "l2_outages": int(l2.get("outages", 0)),
                    "l3_evictions": int(disk.get("evictions", 0)),
                    "l3_corrupt_entries": int(disk.get("corrupt_entries", 0)),
                    "l3_rebuilds": int(disk.get("rebuilds", 0)),
                    "prefetch_loaded": s.prefetch.loaded,
                    "prefetch_used": s.prefetch.used,
                }
            )
        for tier in (self.l2, self.l3):
            if tier is not None:
                await tier.aclose()

    # -- keys -------------------------------------------------------------------------------
    def full_key(self, key: str) -> str:
        return self.prefix + key

    # -- reads ------------------------------------------------------------------------------
    async def get(self, key: str, *, session: str | None = None) -> Any:
        """The value for ``key`` from the highest level that has it, or ``None``."""
        # Same as lookup() without building a Hit: this is the ~1 µs L1 hit path.
        if not self._started:
            self._start()
        full = self.prefix + key
        stats = self.stats
        sample = (stats.requests & 63) == 0  # L1 latency: 1 request in 64
        started = time.perf_counter() if sample else 0.0
        value = self.l1.get(full)
        if type(value) is _Marshalled:  # _from_l1, inlined on the hit path
            value = marshal.loads(value)
        if sample:
            stats.l1.observe(time.perf_counter() - started)
        if value is not None:
            stats.requests += 1
            stats.l1.hits += 1
            counts = self._l1_hit_counts
            n = counts.get(full)
            if n is not None:
                counts[full] = n + 1
            elif len(counts) < _MAX_COUNTED_KEYS:
                counts[full] = 1
            if full in self._prefetched:
                self._prefetch_used(full)
        else:
            hit = await self._below_l1(full)
            value = None if hit is None else hit.value
        if session is not None and self.predictor is not None:
            self._predict(session, key)
        return value

    async def lookup(self, key: str, *, session: str | None = None) -> Hit | None:
        """The value and the level that served it, or ``None`` when no level has it."""
        if not self._started:
            self._start()
        full = self.prefix + key
        stats = self.stats
        # L1 latency is sampled (1 request in 64) to keep the hit path at ~1 µs.
        sample = (stats.requests & 63) == 0
        started = time.perf_counter() if sample else 0.0
        value = self.l1.get(full)
        if type(value) is _Marshalled:  # _from_l1, inlined on the hit path
            value = marshal.loads(value)
        hit: Hit | None
        if value is not None:
            stats.requests += 1
            stats.l1.hits += 1
            if sample:
                stats.l1.observe(time.perf_counter() - started)
            counts = self._l1_hit_counts
            n = counts.get(full)
            if n is not None:
                counts[full] = n + 1
            elif len(counts) < _MAX_COUNTED_KEYS:
                counts[full] = 1
            if full in self._prefetched:
                self._prefetch_used(full)
            hit = Hit(value, Level.L1)
        else:
            if sample:
                stats.l1.observe(time.perf_counter() - started)
            hit = await self._below_l1(full)
        if session is not None and self.predictor is not None:
            self._predict(session, key)
        return hit

    def _prefetch_used(self, full: str) -> None:
        del self._prefetched[full]
        self.stats.prefetch.used += 1

    async def _below_l1(self, full: str) -> Hit | None:
        self.stats.requests += 1
        self.stats.l1.misses += 1
        if self.stats.requests - self._published_at >= _PUBLISH_EVERY:
            self.publish_kpis()
            await self._hand_over_hit_counts()
        return await self._lookup_lower(full)

    async def _hand_over_hit_counts(self) -> None:
        add_hits = getattr(self.l3, "add_hits", None)
        if add_hits is not None and self._l1_hit_counts:
            counts, self._l1_hit_counts = self._l1_hit_counts, {}
            await add_hits(counts)

    async def _lookup_lower(self, full: str) -> Hit | None:
        for level, tier in ((Level.L2, self.l2), (Level.L3, self.l3)):
            if tier is None:
                continue
            stats = self.stats.level(level.value)
            started = time.perf_counter()
            data = await tier.get(full)
            elapsed = time.perf_counter() - started
            if data is None:
                stats.miss(elapsed)
                continue
            value = await self._decode(full, data, tier)
            if value is None:
                stats.miss(elapsed)
                continue
            stats.hit(len(data), elapsed)
            await self._promote(full, value, data, found_in=level)
            return Hit(value, level)
        return None

    async def get_many(self, keys: Sequence[str]) -> dict[str, Any]:
        """Values of the ``keys`` found at any level (one MGET / one query per level)."""
        self._start()
        found: dict[str, Any] = {}
        missing: list[str] = []
        for key in keys:
            self.stats.requests += 1
            value = self.l1.get(self.prefix + key)
            if value is None:
                self.stats.l1.misses += 1
                missing.append(self.prefix + key)
            else:
                self.stats.l1.hits += 1
                found[key] = _from_l1(value)
        for level, tier in ((Level.L2, self.l2), (Level.L3, self.l3)):
            if tier is None or not missing:
                continue
            stats = self.stats.level(level.value)
            datas = await tier.get_many(missing)
            for full, data in datas.items():
                value = await self._decode(full, data, tier)
                if value is None:
                    continue
                stats.hit(len(data), 0.0)
                found[full[len(self.prefix) :]] = value
                await self._promote(full, value, data, found_in=level)
            stats.misses += len(missing) - len(datas)
            missing = [k for k in missing if k not in datas]
        return found

    async def _decode(self, full: str, data: bytes, tier: CacheTier) -> Any:
        try:
            return decode_value(data)
        except ValueError as exc:
            log.warning("cache %s: entry %r is unreadable (%s); dropped", tier.name, full, exc)
            await tier.delete(full)
            return None

    def _keep(
        self, full: str, value: Any, data: bytes, *, decoded: bool, ttl_s: float,
        admit: bool = False,
    ) -> None:
        """Put ``value`` (encoded as ``data``) into L1 in the form L1 keeps (:func:`_l1_item`)."""
        item, size = _l1_item(full, value, data, decoded)
        self.l1.set(full, item, size=size, ttl_s=ttl_s, admit=admit)

    async def _promote(self, full: str, value: Any, data: bytes, *, found_in: Level) -> None:
        self._keep(full, value, data, decoded=True, ttl_s=self.ttl_s)
        writes = []
        if found_in is Level.L3 and self.l2 is not None:
            writes.append(self.l2.set(full, data, ttl_s=self.ttl_s))
        if found_in is Level.L2 and self.l3 is not None:
            writes.append(self.l3.set(full, data, ttl_s=self.ttl_s))
        if writes:
            await asyncio.gather(*writes)

    # -- writes -----------------------------------------------------------------------------
    async def set(self, key: str, value: Any, *, ttl_s: float | None = None) -> None:
        """Store ``value`` at every level; CacheError (naming ``key``) if it cannot be encoded."""
        self._start()
        data = encode_value(key, value)
        full = self.prefix + key
        ttl = self.ttl_s if ttl_s is None else ttl_s
        self._forget_prefetched(full)
        self._keep(full, value, data, decoded=False, ttl_s=ttl)
        self.stats.l1.wrote(len(data))
        writes = []
        for level, tier in ((Level.L2, self.l2), (Level.L3, self.l3)):
            if tier is not None:
                self.stats.level(level.value).wrote(len(data))
                writes.append(tier.set(full, data, ttl_s=ttl))
        await asyncio.gather(*writes)

    async def delete(self, key: str) -> None:
        full = self.prefix + key
        self._forget_prefetched(full)
        self.l1.delete(full)
        for tier in (self.l2, self.l3):
            if tier is not None:
                await tier.delete(full)

    async def clear(
        self, levels: Sequence[Level] | None = None, *, all_namespaces: bool = True
    ) -> dict[str, int]:
        """Empty the given levels (all by default); other processes drop their L1 too."""
        chosen = set(levels or (Level.L1, Level.L2, Level.L3))
        prefix = "" if all_namespaces else self.prefix
        removed: dict[str, int] = {}
        if Level.L1 in chosen:
            removed["l1"] = len(self.l1)
            self.l1.clear()
            self._prefetched.clear()
            publish = getattr(self.l2, "publish_clear", None)
            if publish is not None and Level.L2 not in chosen:
                await publish(prefix)
        if Level.L2 in chosen and self.l2 is not None:
            removed["l2"] = await self.l2.clear(prefix)
        if Level.L3 in chosen and self.l3 is not None:
            removed["l3"] = await self.l3.clear(prefix)
        return removed

    async def get_or_compute(
        self,
        key: str,
        compute: Callable[[], Awaitable[Any]],
        *,
        ttl_s: float | None = None,
        session: str | None = None,
        refresh: bool = False,
    ) -> Any:
        """The cached value, or ``await compute()`` stored at every level.

        Concurrent callers missing on the same key share one ``compute`` (single-flight);
        an exception from ``compute`` reaches all of them and nothing is cached.
        """
        if not refresh:
            hit = await self.lookup(key, session=session)
            if hit is not None:
                return hit.value
        full = self.prefix + key
        flight = self._flights.get(full)
        if flight is not None:
            self.stats.singleflight_joins += 1
            try:
                return await asyncio.shield(flight)
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if flight.cancelled() and task is not None and not task.cancelling():
                    # The leader was cancelled, not us: compute it ourselves.
                    return await self.get_or_compute(
                        key, compute, ttl_s=ttl_s, session=session, refresh=refresh
                    )
                raise
        flight = asyncio.get_running_loop().create_future()
        self._flights[full] = flight
        try:
            value = await compute()
            self.stats.computes += 1
            await self.set(key, value, ttl_s=ttl_s)
        except BaseException as exc:
            if isinstance(exc, asyncio.CancelledError):
                flight.cancel()
            else:
                flight.set_exception(exc)
                flight.exception()  # retrieved: no "never retrieved" noise when nobody waits
            raise
        else:
            flight.set_result(value)
            return value
        finally:
            self._flights.pop(full, None)

    # -- warming ----------------------------------------------------------------------------
    async def warm(self, limit: int | None = None, *, to_l2: bool = False) -> int:
        """Load the namespace's most used L3 keys into L1 (and L2 if ``to_l2``); return count."""
        most_used = getattr(self.l3, "most_used", None)
        if most_used is None or self.l3 is None:
            return 0
        limit = max(1, self.l1.max_entries // 2) if limit is None else limit
        keys = [k for k, _ in await most_used(self.prefix, limit)]
        datas = await self.l3.get_many(keys)
        loaded = 0
        for full, data in datas.items():
            value = await self._decode(full, data, self.l3)
            if value is None:
                continue
            self._keep(full, value, data, decoded=True, ttl_s=self.ttl_s)
            loaded += 1
        if to_l2 and self.l2 is not None and datas:
            await self.l2.set_many(datas, ttl_s=self.ttl_s)
        return loaded

    # -- prefetch ---------------------------------------------------------------------------
    def _predict(self, session: str, key: str) -> None:
        assert self.predictor is not None
        for predicted in self.predictor.observe(session, key):
            full = self.prefix + predicted
            if full in self.l1 or full in self._prefetching or full in self._flights:
                continue
            if len(self._prefetching) >= self.max_prefetch_inflight:
                self.stats.prefetch.dropped += 1
                continue
            self.stats.prefetch.issued += 1
            task = asyncio.get_running_loop().create_task(self._prefetch(full))
            self._prefetching[full] = task

    async def _prefetch(self, full: str) -> None:
        try:
            for tier in (self.l2, self.l3):
                if tier is None:
                    continue
                data = await tier.get(full)
                if data is None:
                    continue
                if full in self.l1:  # a read got there first
                    return
                try:
                    value = decode_value(data)
                except ValueError:
                    return
                self._keep(full, value, data, decoded=True, ttl_s=self.ttl_s, admit=True)
                if full in self.l1:
                    self.stats.prefetch.loaded += 1
                    self._prefetched[full] = None
                    while len(self._prefetched) > self.l1.max_entries:
                        self._prefetched.popitem(last=False)
                        self.stats.prefetch.wasted += 1
                return
            self.stats.prefetch.not_found += 1
        finally:
            self._prefetching.pop(full, None)

    async def prefetch_idle(self) -> None:
        """Wait until the background prefetches started so far have finished."""
        while self._prefetching:
            await asyncio.gather(*list(self._prefetching.values()), return_exceptions=True)

    def _forget_prefetched(self, full: Hashable) -> None:
        if full in self._prefetched:
            del self._prefetched[full]
            self.stats.prefetch.wasted += 1

    # -- callbacks --------------------------------------------------------------------------
    def _on_l1_evict(self, key: Hashable, value: Any) -> None:
        self.stats.l1.evictions += 1
        self._forget_prefetched(key)

    def _on_invalidate(self, op: str, key: str) -> None:
        if op in ("set", "del"):
            self._forget_prefetched(key)
            self.l1.delete(key)
        elif op == "clear":
            for k in self.l1.key_list():
                if isinstance(k, str) and k.startswith(key):
                    self.l1.delete(k)
        elif op == "resync":
            self.l1.clear()
            self._prefetched.clear()

    def trim(self) -> int:
        """Empty L1 (the memory guard's clean-up hook); L2/L3 still hold every value."""
        dropped = len(self.l1)
        self.l1.clear()
        self._prefetched.clear()
        return dropped

    def publish_kpis(self) -> None:
        """Add what happened since the last call to the monitor's KPI counters."""
        try:
            from perfect21.monitor import kpi
        except ImportError:  # pragma: no cover - the monitor is part of the package
            return
        s = self.stats
        current = {("prefetch_issued_total", ""): s.prefetch.loaded}
        current[("prefetch_used_total", "")] = s.prefetch.used
        for level in (s.l1, s.l2, s.l3):
            current[("cache_hits_total", level.name)] = level.hits
            current[("cache_misses_total", level.name)] = level.misses
        for (name, level_name), value in current.items():
            delta = value - self._published.get((name, level_name), 0)
            if delta > 0:
                if level_name:
                    kpi.inc(name, delta, level=level_name)
                else:
                    kpi.inc(name, delta)
        self._published = current
        self._published_at = s.requests

    def snapshot(self) -> dict[str, Any]:
        """Counters of every level plus tier details (the metrics helper reads this)."""
        snap = self.stats.snapshot()
        snap["namespace"] = self.prefix
        snap["levels"]["l1"].update(
            entries=len(self.l1),
            bytes=self.l1.bytes_used,
            max_entries=self.l1.max_entries,
            max_bytes=self.l1.max_bytes,
        )
        for name, tier in (("l2", self.l2), ("l3", self.l3)):
            snap["levels"][name]["enabled"] = tier is not None
            if tier is not None:
                snap["levels"][name].update(tier.stats())
        snap["levels"]["l1"]["enabled"] = True
        return snap


def open_cache(
    config: Config,
    *,
    namespace: str = "default",
    version: int = 1,
    use_l2: bool = True,
    max_backoff_s: float = 10.0,
    warm_on_start: int = 0,
) -> LayeredCache:
    """The cache that ``config`` describes: L1 always, L2 if ``redis_url``, L3 under home.

    The returned cache is not started; use ``async with open_cache(config) as cache:``,
    which also loads the ``warm_on_start`` most used L3 entries into L1 (for long-lived
    processes such as ``perfect21 serve``; a one-shot run gains nothing from it).
    """
    from perfect21.cache.disk import DiskTier

    l2: CacheTier | None = None
    if use_l2 and config.redis_url:
        from perfect21.cache.redis import RedisTier

        l2 = RedisTier(config.redis_url, max_backoff_s=max_backoff_s)
    l3 = DiskTier(config.home / "cache" / "l3.sqlite", config.cache_l3_bytes)
    predictor = MarkovPredictor() if config.cache_prefetch else None
    return LayeredCache(
        l1=MemoryCache(
            config.cache_l1_entries, config.cache_l1_bytes, default_ttl_s=config.cache_ttl_s
        ),
        l2=l2,
        l3=l3,
        namespace=namespace,
        version=version,
        ttl_s=config.cache_ttl_s,
        predictor=predictor,
        warm_on_start=warm_on_start,
    )
