"""The in-process KPI registry: counters, gauges and bounded histograms (stdlib only).

Every part of Perfect21 may call it on its paths, so it is cheap to import (no
prometheus_client, no psutil) and cheap to call (one lock, a few list operations)::

    from perfect21.monitor import kpi

    kpi.observe("workflow_generation_seconds", 0.0012)
    kpi.inc("cache_hits_total", level="l1")
    kpi.set("executor_concurrency", 7)

Everything it keeps is bounded: at most ``max_metrics`` metric names, ``max_series`` label
sets per metric (extra label sets are dropped and counted in ``kpi_dropped_series_total``),
histograms have fixed buckets plus a fixed-size ring of recent observations for quantiles,
and counters keep a fixed ring of 5-second slots for rates over the last 11 minutes.

:meth:`Registry.snapshot` copies everything under the lock, so a scrape sees one consistent
instant even while other threads keep recording.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from enum import Enum
from typing import Any

__all__ = [
    "AGGREGATIONS",
    "CATALOG",
    "MetricDef",
    "MetricKind",
    "MetricSnapshot",
    "Registry",
    "Sample",
    "Snapshot",
    "default_registry",
    "inc",
    "observe",
    "set",
    "snapshot",
    "timed",
]

LabelKey = tuple[tuple[str, str], ...]

# Seconds; wide enough for a 50 µs plan and a 30-minute agent task.
DEFAULT_BUCKETS: tuple[float, ...] = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0,
)  # fmt: skip
SLOT_S = 5.0  # width of one rate slot
SLOTS = 132  # 11 minutes of slots: the last minute plus a 10-minute baseline before it
SHORT_WINDOW_S = 60.0
BASELINE_WINDOW_S = 600.0
QUANTILES = (0.5, 0.95, 0.99)

# The aggregations an alert rule may ask of a metric (see Snapshot.value).
AGGREGATIONS = ("value", "rate", "baseline_rate", "p50", "p95", "p99", "mean", "max", "count")


class MetricKind(str, Enum):
    COUNTER = "counter"
    GAUGE = "gauge"
    HISTOGRAM = "histogram"


@dataclass(frozen=True, slots=True)
class MetricDef:
    """A known metric: its kind and help text (names are without the ``perfect21_`` prefix)."""

    name: str
    kind: MetricKind
    help: str


def _defs(*items: tuple[str, MetricKind, str]) -> dict[str, MetricDef]:
    return {name: MetricDef(name, kind, text) for name, kind, text in items}


C, G, H = MetricKind.COUNTER, MetricKind.GAUGE, MetricKind.HISTOGRAM

# The seed's KPIs. Callers may record other names; they get an empty help text.
CATALOG: dict[str, MetricDef] = _defs(
    ("workflow_generation_seconds", H, "Time to generate one workflow (seconds), by the caller."),
    ("plans_generated_total", C, "Workflows generated."),
    ("decisions_recorded_total", C, "Decision records committed to the store."),
    ("executor_tasks_total", C, "Tasks finished by the executor, by status."),
    ("executor_task_seconds", H, "Wall time of one task (seconds)."),
    ("executor_concurrency", G, "Tasks running right now (real concurrency)."),
    ("executor_peak_concurrency", G, "Highest real concurrency reached in the last run."),
    ("executor_mean_concurrency", G, "Busy task time / wall time of the last run."),
    (
        "executor_parallel_efficiency",
        G,
        "Busy task time / (concurrency limit x wall time) of the last run, 0..1.",
    ),
    ("memory_rss_mb", G, "Resident set size of this process (MiB)."),
    ("memory_peak_mb", G, "Highest RSS sampled by the memory guard (MiB)."),
    ("memory_growth_mb_per_hour", G, "RSS growth rate over the guard's sample window (MiB/h)."),
    ("memory_soft_limit_mb", G, "The memory guard's soft limit (MiB): clean-up above it."),
    ("memory_hard_limit_mb", G, "The memory guard's hard limit (MiB): new work refused above it."),
    ("memory_accepting", G, "1 while the memory guard accepts new work, 0 while it sheds."),
    ("memory_cleanups_total", C, "Clean-up rounds run by the memory guard."),
    ("memory_refused_total", C, "Units of new work refused because of the hard memory limit."),
    ("operations_total", C, "Operations attempted, by part."),
    ("errors_total", C, "Operations that failed, by part."),
    ("cache_hits_total", C, "Cache hits, by level."),
    ("cache_misses_total", C, "Cache misses, by level."),
    ("prefetch_issued_total", C, "Entries prefetched by the predictive cache."),
    ("prefetch_used_total", C, "Prefetched entries that were later read."),
    ("alerts_fired_total", C, "Alerts that started firing, by alert."),
    ("kpi_dropped_series_total", C, "Label sets dropped because a metric had too many."),
)

# Ratios computed at snapshot time: name -> (numerator, (denominator counters...), help).
DERIVED: dict[str, tuple[str, tuple[str, ...], str]] = {
    "cache_hit_ratio": (
        "cache_hits_total",
        ("cache_hits_total", "cache_misses_total"),
        "Cache hits / lookups, by level.",
    ),
    "error_ratio": ("errors_total", ("operations_total",), "Failed / attempted operations."),
    "prefetch_precision": (
        "prefetch_used_total",
        ("prefetch_issued_total",),
        "Prefetched entries later read / entries prefetched.",
    ),
}


@dataclass(frozen=True, slots=True)
class Sample:
    """One label set of a metric at snapshot time."""

    labels: LabelKey
    value: float  # counter total, gauge value, histogram sum
    count: int = 0  # histogram observations
    rate: float = 0.0  # counter: per second over the last minute
    baseline_rate: float = 0.0  # counter: per second over the 10 minutes before that
    buckets: tuple[tuple[float, int], ...] = ()  # histogram: cumulative (upper bound, count)
    quantiles: tuple[tuple[float, float], ...] = ()  # histogram: from recent observations
    max: float = 0.0  # histogram: largest recent observation

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"labels": dict(self.labels), "value": self.value}
        if self.buckets:
            out["count"] = self.count
            out["quantiles"] = {f"p{round(q * 100)}": v for q, v in self.quantiles}
            out["max"] = self.max
        return out


@dataclass(frozen=True, slots=True)
class MetricSnapshot:
    name: str
    kind: MetricKind
    help: str
    samples: tuple[Sample, ...]
    derived: bool = False


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Every metric at one instant; ``taken_at`` is wall-clock time."""

    taken_at: float
    metrics: tuple[MetricSnapshot, ...]
    has_rates: bool = True  # False for a snapshot parsed from one scrape (no history)

    def get(self, name: str) -> MetricSnapshot | None:
        for metric in self.metrics:
            if metric.name == name:
                return metric
        return None

    def value(
        self, name: str, aggregation: str = "value", labels: Mapping[str, str] | None = None
    ) -> float | None:
        """One number for an alert rule; ``None`` when there is no data.

        Label sets matching ``labels`` are combined: counters and rates are summed, gauges
        and histogram statistics take the maximum (the conservative choice for alerts).
        """
        metric = self.get(name)
        if metric is None:
            return None
        wanted = frozenset((labels or {}).items())
        samples = [s for s in metric.samples if wanted <= frozenset(s.labels)]
        if not samples:
            return None
        if aggregation == "value":
            if metric.kind is MetricKind.GAUGE:
                return max(s.value for s in samples)
            return sum(s.value for s in samples)
        if aggregation in ("rate", "baseline_rate"):
            if metric.kind is not MetricKind.COUNTER or not self.has_rates:
                return None
            if aggregation == "rate":
                return sum(s.rate for s in samples)
            return sum(s.baseline_rate for s in samples)
        if metric.kind is not MetricKind.HISTOGRAM:
            return None
        observed = [s for s in samples if s.count]
        if not observed:
            return None
        if aggregation == "count":
            return float(sum(s.count for s in observed))
        if aggregation == "mean":
            return sum(s.value for s in observed) / sum(s.count for s in observed)
        if aggregation == "max":
            return max(s.max for s in observed)
        if aggregation in ("p50", "p95", "p99"):
            q = int(aggregation[1:]) / 100
            return max(dict(s.quantiles)[q] for s in observed)
        return None

    def to_dict(self) -> dict[str, Any]:
        return {
            "taken_at": self.taken_at,
            "metrics": {
                m.name: {
                    "kind": m.kind.value,
                    "samples": [s.to_dict() for s in m.samples],
                }
                for m in self.metrics
            },
        }


class _Counter:
    __slots__ = ("created", "slot_ids", "slot_values", "total")

    def __init__(self, now: float) -> None:
        self.total = 0.0
        self.created = now
        self.slot_ids = [-1] * SLOTS
        self.slot_values = [0.0] * SLOTS

    def add(self, value: float, now: float) -> None:
        self.total += value
        sid = int(now // SLOT_S)
        idx = sid % SLOTS
        if self.slot_ids[idx] != sid:
            self.slot_ids[idx] = sid
            self.slot_values[idx] = 0.0
        self.slot_values[idx] += value

    def _window(self, now: float, newest: int, oldest: int) -> float:
        """Per-second rate over the slots ``oldest..newest`` (clipped to this series' life)."""
        total = 0.0
        for sid, val in zip(self.slot_ids, self.slot_values, strict=True):
            if oldest <= sid <= newest:
                total += val
        start = max(oldest * SLOT_S, self.created)
        end = min(now, (newest + 1) * SLOT_S)
        span = end - start
        return total / span if span > 0 else 0.0

    def rates(self, now: float) -> tuple[float, float]:
        cur = int(now // SLOT_S)
        short_slots = int(SHORT_WINDOW_S // SLOT_S)
        first_short = cur - short_slots + 1
        rate = self._window(now, cur, first_short)
        base_slots = int(BASELINE_WINDOW_S // SLOT_S)
        if self.created >= first_short * SLOT_S:
            baseline = 0.0  # no history before the short window
        else:
            baseline = self._window(now, first_short - 1, first_short - base_slots)
        return rate, baseline


class _Histogram:
    __slots__ = ("bounds", "count", "counts", "pos", "ring", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.sum = 0.0
        self.count = 0
        self.ring: list[float] = []  # the most recent observations, for quantiles
        self.pos = 0

    def observe(self, value: float, reservoir: int) -> None:
        i = 0
        for bound in self.bounds:
            if value <= bound:
                break
            i += 1
        self.counts[i] += 1
        self.sum += value
        self.count += 1
        if len(self.ring) < reservoir:
            self.ring.append(value)
        else:
            self.ring[self.pos] = value
            self.pos = (self.pos + 1) % reservoir

    def sample(self, labels: LabelKey) -> Sample:
        cumulative: list[tuple[float, int]] = []
        running = 0
        for bound, n in zip((*self.bounds, float("inf")), self.counts, strict=True):
            running += n
            cumulative.append((bound, running))
        recent = sorted(self.ring)
        if recent:
            quantiles = tuple((q, _quantile(recent, q)) for q in QUANTILES)
            top = recent[-1]
        else:
            quantiles, top = (), 0.0
        return Sample(
            labels, self.sum, self.count, buckets=tuple(cumulative), quantiles=quantiles, max=top
        )


def _quantile(ordered: list[float], q: float) -> float:
    """Nearest-rank quantile of a sorted, non-empty list."""
    rank = max(1, min(len(ordered), int(q * len(ordered) + 0.999999)))
    return ordered[rank - 1]


class Registry:
    """A thread-safe, bounded registry of KPIs."""

    def __init__(
        self,
        *,
        max_metrics: int = 256,
        max_series: int = 64,
        reservoir: int = 1024,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._lock = threading.Lock()
        self._max_metrics = max_metrics
        self._max_series = max_series
        self._reservoir = reservoir
        self._clock = clock
        self._wall = wall_clock
        self._kinds: dict[str, MetricKind] = {}
        self._series: dict[str, dict[LabelKey, Any]] = {}
        self._collectors: list[Callable[[Registry], None]] = []
        self._synced: dict[tuple[str, LabelKey], float] = {}  # last totals seen by sync_total

    # -- recording ---------------------------------------------------------------------------
    def inc(self, name: str, value: float = 1.0, /, **labels: str) -> None:
        """Add ``value`` (>= 0) to counter ``name``."""
        if value < 0:
            raise ValueError(f"counter {name!r} cannot decrease")
        key = _key(labels) if labels else ()
        now = self._clock()
        with self._lock:
            series = self._find(name, MetricKind.COUNTER, key)
            if series is None:
                series = self._new(name, MetricKind.COUNTER, key, _Counter(now))
                if series is None:
                    return
            series.add(value, now)

    def sync_total(self, name: str, total: float, /, **labels: str) -> None:
        """Follow a cumulative total kept elsewhere (cache stats, another process's counter).

        The first value seen is taken as history (it counts in the total, not in the rate);
        after that each increase is counted when it is seen. A lower total means the source
        restarted: the new total is counted as what happened since.
        """
        key = _key(labels) if labels else ()
        now = self._clock()
        with self._lock:
            series = self._find(name, MetricKind.COUNTER, key)
            last = self._synced.get((name, key))
            if series is None:
                series = self._new(name, MetricKind.COUNTER, key, _Counter(now))
                if series is None:
                    return
            if len(self._synced) < self._max_metrics * self._max_series:
                self._synced[(name, key)] = total
            if last is None:
                series.total += total
            elif total >= last:
                if total > last:
                    series.add(total - last, now)
            elif total > 0:
                series.add(total, now)

    def add_collector(self, collector: Callable[[Registry], None]) -> Callable[[], None]:
        """Call ``collector(registry)`` before every snapshot (to pull stats kept elsewhere).

        Returns a function that removes it. At most 32 collectors; a failing one is skipped.
        """
        with self._lock:
            if len(self._collectors) >= 32:
                raise ValueError("at most 32 KPI collectors")
            self._collectors.append(collector)

        def remove() -> None:
            with self._lock:
                if collector in self._collectors:
                    self._collectors.remove(collector)

        return remove

    def set(self, name: str, value: float, /, **labels: str) -> None:
        """Set gauge ``name`` to ``value``."""
        key = _key(labels) if labels else ()
        with self._lock:
            table = self._series.get(name)
            if table is None or key not in table:
                table = self._table(name, MetricKind.GAUGE)
                if table is None or not self._room(table):
                    return
            elif self._kinds[name] is not MetricKind.GAUGE:
                raise ValueError(f"metric {name!r} is a {self._kinds[name].value}, not a gauge")
            table[key] = float(value)

    def observe(self, name: str, value: float, /, **labels: str) -> None:
        """Record one observation of histogram ``name`` (e.g. a latency in seconds)."""
        key = _key(labels) if labels else ()
        with self._lock:
            series = self._find(name, MetricKind.HISTOGRAM, key)
            if series is None:
                series = self._new(name, MetricKind.HISTOGRAM, key, _Histogram(DEFAULT_BUCKETS))
                if series is None:
                    return
            series.observe(float(value), self._reservoir)

    @contextmanager
    def timed(self, name: str, /, **labels: str) -> Iterator[None]:
        """Observe the wall time of the ``with`` block in histogram ``name``."""
        start = time.perf_counter()
        try:
            yield
        finally:
            self.observe(name, time.perf_counter() - start, **labels)

    def reset(self) -> None:
        with self._lock:
            self._kinds.clear()
            self._series.clear()
            self._collectors.clear()
            self._synced.clear()

    # -- reading -----------------------------------------------------------------------------
    def snapshot(self) -> Snapshot:
        """Copy every metric under the lock; derived ratios are computed from the copy."""
        for collector in list(self._collectors):
            try:
                collector(self)
            except Exception:  # a broken collector must not break scraping
                import logging

                logging.getLogger("perfect21.monitor").exception("KPI collector failed")
        now = self._clock()
        with self._lock:
            metrics: list[MetricSnapshot] = []
            for name in sorted(self._series):
                kind = self._kinds[name]
                samples = tuple(
                    _sample(kind, labels, series, now)
                    for labels, series in sorted(self._series[name].items())
                )
                help_text = CATALOG[name].help if name in CATALOG else ""
                metrics.append(MetricSnapshot(name, kind, help_text, samples))
            taken_at = self._wall()
        by_name = {m.name: m for m in metrics}
        for name, (numerator, denominators, help_text) in DERIVED.items():
            derived = _ratio(by_name, numerator, denominators)
            if derived:
                metrics.append(MetricSnapshot(name, MetricKind.GAUGE, help_text, derived, True))
        return Snapshot(taken_at, tuple(metrics))

    # -- internals (call with the lock held) ------------------------------------------------
    def _table(self, name: str, kind: MetricKind) -> dict[LabelKey, Any] | None:
        table = self._series.get(name)
        if table is not None:
            if self._kinds[name] is not kind:
                raise ValueError(f"metric {name!r} is a {self._kinds[name].value}, not a {kind}")
            return table
        known = CATALOG.get(name)
        if known is not None and known.kind is not kind:
            raise ValueError(f"metric {name!r} is a {known.kind.value}, not a {kind.value}")
        if len(self._series) >= self._max_metrics:
            self._dropped()
            return None
        self._kinds[name] = kind
        table = self._series[name] = {}
        return table

    def _find(self, name: str, kind: MetricKind, key: LabelKey) -> Any:
        table = self._series.get(name)
        if table is None:
            return None
        if self._kinds[name] is not kind:
            raise ValueError(f"metric {name!r} is a {self._kinds[name].value}, not a {kind.value}")
        return table.get(key)

    def _new(self, name: str, kind: MetricKind, key: LabelKey, series: Any) -> Any:
        table = self._table(name, kind)
        if table is None or not self._room(table):
            return None
        table[key] = series
        return series

    def _room(self, table: dict[LabelKey, Any]) -> bool:
        if len(table) < self._max_series:
            return True
        self._dropped()
        return False

    def _dropped(self) -> None:
        table = self._series.get("kpi_dropped_series_total")
        if table is None:
            self._kinds["kpi_dropped_series_total"] = MetricKind.COUNTER
            table = self._series["kpi_dropped_series_total"] = {}
        counter = table.get(())
        if counter is None:
            counter = table[()] = _Counter(self._clock())
        counter.add(1.0, self._clock())


def _key(labels: Mapping[str, str]) -> LabelKey:
    if not labels:
        return ()
    return tuple(sorted((k, str(v)) for k, v in labels.items()))


def _sample(kind: MetricKind, labels: LabelKey, series: Any, now: float) -> Sample:
    if kind is MetricKind.COUNTER:
        rate, baseline = series.rates(now)
        return Sample(labels, series.total, rate=rate, baseline_rate=baseline)
    if kind is MetricKind.GAUGE:
        return Sample(labels, series)
    result: Sample = series.sample(labels)
    return result


def _ratio(
    by_name: Mapping[str, MetricSnapshot], numerator: str, denominators: tuple[str, ...]
) -> tuple[Sample, ...]:
    top = by_name.get(numerator)
    if top is None:
        return ()
    totals: dict[LabelKey, float] = {}
    for name in denominators:
        metric = by_name.get(name)
        for s in metric.samples if metric else ():
            totals[s.labels] = totals.get(s.labels, 0.0) + s.value
    nums = {s.labels: s.value for s in top.samples}
    return tuple(
        Sample(labels, nums.get(labels, 0.0) / total)
        for labels, total in sorted(totals.items())
        if total > 0
    )


_DEFAULT = Registry()


def default_registry() -> Registry:
    """The process-wide registry that ``inc``/``set``/``observe`` write to."""
    return _DEFAULT


def inc(name: str, value: float = 1.0, /, **labels: str) -> None:
    _DEFAULT.inc(name, value, **labels)


def set(name: str, value: float, /, **labels: str) -> None:
    _DEFAULT.set(name, value, **labels)


def observe(name: str, value: float, /, **labels: str) -> None:
    _DEFAULT.observe(name, value, **labels)


def timed(name: str, /, **labels: str) -> AbstractContextManager[None]:
    return _DEFAULT.timed(name, **labels)


def snapshot() -> Snapshot:
    return _DEFAULT.snapshot()
