"""The KPI registry: counters, gauges, bounded histograms, rates, ratios, thread safety."""

from __future__ import annotations

import threading

import pytest

from perfect21.monitor.kpi import MetricKind, Registry


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_counter_gauge_histogram_snapshot() -> None:
    """Values recorded are the values read back, with the catalog's kind and help text."""
    reg = Registry()
    reg.inc("plans_generated_total")
    reg.inc("plans_generated_total", 2)
    reg.set("executor_concurrency", 7)
    for ms in range(1, 101):
        reg.observe("workflow_generation_seconds", ms / 1000)
    snap = reg.snapshot()
    assert snap.value("plans_generated_total") == 3
    assert snap.value("executor_concurrency") == 7
    assert snap.value("workflow_generation_seconds", "count") == 100
    assert snap.value("workflow_generation_seconds", "p50") == pytest.approx(0.050)
    assert snap.value("workflow_generation_seconds", "p95") == pytest.approx(0.095)
    assert snap.value("workflow_generation_seconds", "max") == pytest.approx(0.100)
    assert snap.value("workflow_generation_seconds", "mean") == pytest.approx(0.0505)
    hist = snap.get("workflow_generation_seconds")
    assert hist is not None and hist.kind is MetricKind.HISTOGRAM and hist.help
    buckets = dict(hist.samples[0].buckets)
    assert buckets[0.01] == 10 and buckets[0.1] == 100 and buckets[float("inf")] == 100


def test_missing_metric_is_no_data() -> None:
    """Absent metrics and unsuitable aggregations give None, not zero."""
    reg = Registry()
    reg.set("memory_rss_mb", 10)
    snap = reg.snapshot()
    assert snap.value("workflow_generation_seconds", "p95") is None
    assert snap.value("memory_rss_mb", "p95") is None
    assert snap.value("memory_rss_mb", "value", {"level": "l1"}) is None


def test_histogram_reservoir_is_bounded_and_recent() -> None:
    """Quantiles come from the most recent observations; memory does not grow with count."""
    reg = Registry(reservoir=100)
    for _ in range(10_000):
        reg.observe("workflow_generation_seconds", 1.0)
    for _ in range(100):
        reg.observe("workflow_generation_seconds", 0.001)
    snap = reg.snapshot()
    assert snap.value("workflow_generation_seconds", "p99") == pytest.approx(0.001)
    assert snap.value("workflow_generation_seconds", "count") == 10_100


def test_label_sets_are_bounded() -> None:
    """Past max_series label sets, new ones are dropped and counted, never stored."""
    reg = Registry(max_series=4, max_metrics=8)
    for i in range(10):
        reg.inc("errors_total", part=f"p{i}")
    snap = reg.snapshot()
    errors = snap.get("errors_total")
    assert errors is not None and len(errors.samples) == 4
    assert snap.value("kpi_dropped_series_total") == 6
    for i in range(20):
        reg.set(f"custom_gauge_{i}", 1)
    assert len(reg.snapshot().metrics) <= 8 + 1  # + the dropped-series counter


def test_rates_over_windows() -> None:
    """rate = per second over the last minute; baseline_rate = over the 10 minutes before."""
    clock = FakeClock(0.0)
    reg = Registry(clock=clock)
    # 10 minutes at 100/s, then one minute at 20/s
    for second in range(600):
        clock.now = float(second)
        reg.inc("decisions_recorded_total", 100)
    for second in range(600, 660):
        clock.now = float(second)
        reg.inc("decisions_recorded_total", 20)
    clock.now = 660.0
    snap = reg.snapshot()
    assert snap.value("decisions_recorded_total", "rate") == pytest.approx(20, rel=0.1)
    assert snap.value("decisions_recorded_total", "baseline_rate") == pytest.approx(100, rel=0.1)


def test_young_counter_has_no_baseline() -> None:
    """A counter younger than the short window has no baseline (so no false drop alert)."""
    clock = FakeClock(100.0)
    reg = Registry(clock=clock)
    reg.inc("decisions_recorded_total", 50)
    clock.now = 110.0
    snap = reg.snapshot()
    assert snap.value("decisions_recorded_total", "rate") == pytest.approx(5.0)
    assert snap.value("decisions_recorded_total", "baseline_rate") == 0.0


def test_derived_ratios() -> None:
    """Cache hit ratio per level, error ratio and prefetch precision are computed at snapshot."""
    reg = Registry()
    reg.inc("cache_hits_total", 3, level="l1")
    reg.inc("cache_misses_total", 1, level="l1")
    reg.inc("cache_misses_total", 2, level="l3")
    reg.inc("operations_total", 10, part="api")
    reg.inc("errors_total", 1, part="api")
    reg.inc("prefetch_issued_total", 4)
    reg.inc("prefetch_used_total", 1)
    snap = reg.snapshot()
    assert snap.value("cache_hit_ratio", labels={"level": "l1"}) == pytest.approx(0.75)
    assert snap.value("cache_hit_ratio", labels={"level": "l3"}) == 0.0
    assert snap.value("error_ratio") == pytest.approx(0.1)
    assert snap.value("prefetch_precision") == pytest.approx(0.25)


def test_kind_mismatch_and_negative_increment_are_errors() -> None:
    """A catalogued counter cannot be set as a gauge; counters cannot go down."""
    reg = Registry()
    with pytest.raises(ValueError, match="counter"):
        reg.set("plans_generated_total", 1)
    with pytest.raises(ValueError, match="decrease"):
        reg.inc("plans_generated_total", -1)
    reg.set("my_gauge", 1)
    with pytest.raises(ValueError, match="gauge"):
        reg.inc("my_gauge")


def test_concurrent_updates_lose_nothing() -> None:
    """Eight threads incrementing and observing: totals are exact."""
    reg = Registry()

    def work() -> None:
        for i in range(5000):
            reg.inc("operations_total", part="t")
            reg.observe("executor_task_seconds", i / 1e6)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    snap = reg.snapshot()
    assert snap.value("operations_total") == 40_000
    assert snap.value("executor_task_seconds", "count") == 40_000


def test_timed_context_manager_and_module_api() -> None:
    """``timed`` observes the block's duration; the module functions use one registry."""
    from perfect21.monitor import kpi

    reg = kpi.default_registry()
    reg.reset()
    with kpi.timed("workflow_generation_seconds"):
        pass
    kpi.inc("plans_generated_total")
    kpi.set("executor_concurrency", 2)
    snap = kpi.snapshot()
    assert snap.value("workflow_generation_seconds", "count") == 1
    assert snap.value("plans_generated_total") == 1
    assert snap.to_dict()["metrics"]["executor_concurrency"]["samples"][0]["value"] == 2
    reg.reset()


def test_sync_total_follows_an_external_counter() -> None:
    """First value = history (no rate); increases count when seen; a restart is handled."""
    clock = FakeClock(1000.0)
    reg = Registry(clock=clock)
    reg.sync_total("decisions_recorded_total", 5000)
    clock.now = 1010.0
    snap = reg.snapshot()
    assert snap.value("decisions_recorded_total") == 5000
    assert snap.value("decisions_recorded_total", "rate") == 0.0
    reg.sync_total("decisions_recorded_total", 5100)
    reg.sync_total("decisions_recorded_total", 5100)
    clock.now = 1020.0
    snap = reg.snapshot()
    assert snap.value("decisions_recorded_total") == 5100
    assert snap.value("decisions_recorded_total", "rate") == pytest.approx(100 / 20)
    reg.sync_total("decisions_recorded_total", 30)  # the source restarted
    assert reg.snapshot().value("decisions_recorded_total") == 5130
