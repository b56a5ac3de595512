"""The KPI registry in Prometheus text exposition format (prometheus_client lives only here).

A custom collector renders one :meth:`Registry.snapshot` per scrape, so every scrape is a
consistent instant even while other threads record. Metric names get the ``perfect21_``
prefix; counters keep their ``_total`` sample name.

    text = render()                             # str, for `perfect21 metrics`
    body, content_type = render_bytes()         # for the API's /metrics
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from perfect21.monitor.kpi import (
    QUANTILES,
    MetricKind,
    MetricSnapshot,
    Registry,
    Sample,
    Snapshot,
    default_registry,
)

__all__ = [
    "PREFIX",
    "SnapshotCollector",
    "render",
    "render_bytes",
    "render_snapshot",
    "scrape",
    "snapshot_from_text",
]

PREFIX = "perfect21_"


class SnapshotCollector:
    """A prometheus_client collector over our registry (or a fixed snapshot)."""

    def __init__(self, registry: Registry | None = None, snapshot: Snapshot | None = None):
        self._registry = default_registry() if registry is None else registry
        self._snapshot = snapshot

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import (
            CounterMetricFamily,
            GaugeMetricFamily,
            HistogramMetricFamily,
        )

        snap = self._snapshot if self._snapshot is not None else self._registry.snapshot()
        for metric in snap.metrics:
            label_names = sorted({k for s in metric.samples for k, _ in s.labels})
            name = PREFIX + metric.name
            family: Any
            if metric.kind is MetricKind.COUNTER:
                family = CounterMetricFamily(name, metric.help, labels=label_names)
            elif metric.kind is MetricKind.GAUGE:
                family = GaugeMetricFamily(name, metric.help, labels=label_names)
            else:
                family = HistogramMetricFamily(name, metric.help, labels=label_names)
            for sample in metric.samples:
                given = dict(sample.labels)
                values = [given.get(k, "") for k in label_names]
                if metric.kind is MetricKind.HISTOGRAM:
                    buckets = [(_le(bound), float(n)) for bound, n in sample.buckets]
                    family.add_metric(values, buckets, sample.value)
                else:
                    family.add_metric(values, sample.value)
            yield family


def _le(bound: float) -> str:
    return "+Inf" if bound == float("inf") else repr(float(bound))


def render_bytes(
    registry: Registry | None = None, snapshot: Snapshot | None = None
) -> tuple[bytes, str]:
    """``(body, content type)`` of one scrape."""
    from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

    target = CollectorRegistry(auto_describe=False)
    target.register(SnapshotCollector(registry, snapshot))
    return generate_latest(target), str(CONTENT_TYPE_LATEST)


def render(registry: Registry | None = None) -> str:
    """The Prometheus text exposition of ``registry`` (the process-wide one by default)."""
    return render_bytes(registry)[0].decode("utf-8")


def render_snapshot(snapshot: Snapshot) -> str:
    """The Prometheus text exposition of an already-taken snapshot."""
    return render_bytes(snapshot=snapshot)[0].decode("utf-8")


def snapshot_from_text(text: str, *, taken_at: float = 0.0) -> Snapshot:
    """A :class:`Snapshot` from Perfect21's Prometheus text (e.g. another process's /metrics).

    One scrape has no history: ``rate``/``baseline_rate`` give no data, and histogram
    quantiles are interpolated from the buckets (as Prometheus' ``histogram_quantile``).
    Metrics without the ``perfect21_`` prefix are ignored.
    """
    from prometheus_client.parser import text_string_to_metric_families

    metrics: list[MetricSnapshot] = []
    for family in text_string_to_metric_families(text):
        if not family.name.startswith(PREFIX):
            continue
        name = family.name[len(PREFIX) :]
        if family.type == "histogram":
            metrics.append(_histogram(name, family))
            continue
        kind = MetricKind.COUNTER if family.type == "counter" else MetricKind.GAUGE
        samples: dict[str, list[Sample]] = {}
        for s in family.samples:
            if kind is MetricKind.COUNTER and not s.name.endswith("_total"):
                continue  # the `_created` sample
            labels = tuple(sorted(s.labels.items()))
            samples.setdefault(s.name[len(PREFIX) :], []).append(Sample(labels, float(s.value)))
        for sample_name, items in samples.items():
            metrics.append(MetricSnapshot(sample_name, kind, family.documentation, tuple(items)))
    return Snapshot(taken_at, tuple(metrics), has_rates=False)


def _histogram(name: str, family: Any) -> MetricSnapshot:
    series: dict[tuple[tuple[str, str], ...], dict[str, Any]] = {}
    for s in family.samples:
        labels = tuple(sorted((k, v) for k, v in s.labels.items() if k != "le"))
        entry = series.setdefault(labels, {"buckets": [], "sum": 0.0, "count": 0})
        if s.name.endswith("_bucket"):
            entry["buckets"].append((float(s.labels["le"]), int(s.value)))
        elif s.name.endswith("_sum"):
            entry["sum"] = float(s.value)
        elif s.name.endswith("_count"):
            entry["count"] = int(s.value)
    samples = []
    for labels, entry in sorted(series.items()):
        buckets = tuple(sorted(entry["buckets"]))
        count = entry["count"]
        quantiles = tuple((q, _bucket_quantile(q, buckets)) for q in QUANTILES) if count else ()
        finite = [bound for bound, n in buckets if n and bound != float("inf")]
        top = _first_full(buckets) if count else 0.0
        samples.append(
            Sample(labels, entry["sum"], count, buckets=buckets, quantiles=quantiles,
                   max=top if top != float("inf") else (finite[-1] if finite else 0.0))
        )  # fmt: skip
    return MetricSnapshot(name, MetricKind.HISTOGRAM, family.documentation, tuple(samples))


def _first_full(buckets: tuple[tuple[float, int], ...]) -> float:
    """The smallest bucket bound that holds every observation (an upper bound of the max)."""
    total = buckets[-1][1] if buckets else 0
    for bound, n in buckets:
        if n >= total:
            return bound
    return float("inf")


def _bucket_quantile(q: float, buckets: tuple[tuple[float, int], ...]) -> float:
    """Linear interpolation inside the bucket holding rank ``q * count`` (Prometheus' way)."""
    total = buckets[-1][1]
    rank = q * total
    lower_bound, lower_count = 0.0, 0
    for bound, n in buckets:
        if n >= rank:
            if bound == float("inf"):
                return lower_bound
            width = n - lower_count
            if width <= 0:
                return bound
            return lower_bound + (bound - lower_bound) * (rank - lower_count) / width
        lower_bound, lower_count = bound, n
    return lower_bound


def scrape(url: str, *, timeout_s: float = 5.0) -> Snapshot:
    """GET ``url`` (a Perfect21 /metrics endpoint) and parse it; errors name the URL."""
    import time
    import urllib.error
    import urllib.request

    from perfect21._errors import InputError

    if not url.startswith(("http://", "https://")):
        raise InputError(f"--url {url!r}: expected an http:// or https:// URL")
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            text = response.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        raise InputError(f"{url}: HTTP {exc.code}") from None
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        raise InputError(f"{url}: cannot scrape: {getattr(exc, 'reason', exc)}") from None
    try:
        return snapshot_from_text(text, taken_at=time.time())
    except ValueError as exc:
        raise InputError(f"{url}: not Prometheus text: {exc}") from None
