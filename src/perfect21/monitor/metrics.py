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

from perfect21.monitor.kpi import MetricKind, Registry, Snapshot, default_registry

__all__ = ["PREFIX", "SnapshotCollector", "render", "render_bytes", "render_snapshot"]

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
