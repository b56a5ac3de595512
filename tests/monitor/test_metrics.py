"""Prometheus exposition: valid text, and consistent output when scraped during updates."""

from __future__ import annotations

import threading

from prometheus_client.parser import text_string_to_metric_families

from perfect21.monitor.kpi import Registry
from perfect21.monitor.metrics import render, render_bytes


def families(text: str) -> dict[str, object]:
    return {f.name: f for f in text_string_to_metric_families(text)}


def test_render_is_valid_exposition() -> None:
    reg = Registry()
    reg.observe("workflow_generation_seconds", 0.002)
    reg.inc("decisions_recorded_total", 5)
    reg.inc("cache_hits_total", level="l1")
    reg.inc("cache_misses_total", level="l1")
    reg.set("memory_rss_mb", 42.0)
    body, content_type = render_bytes(reg)
    assert content_type.startswith("text/plain")
    text = body.decode()
    parsed = families(text)
    assert "perfect21_workflow_generation_seconds" in parsed
    assert 'perfect21_cache_hit_ratio{level="l1"} 0.5' in text
    assert "perfect21_decisions_recorded_total 5.0" in text
    assert "perfect21_memory_rss_mb 42.0" in text
    assert "# TYPE perfect21_workflow_generation_seconds histogram" in text


def test_empty_registry_renders_nothing() -> None:
    assert render(Registry()) == ""


def test_concurrent_scrapes_during_updates_are_consistent() -> None:
    """Writers update KPIs while scrapers render: every scrape parses, histogram counts match
    their +Inf bucket, and counters never go backwards between one scraper's scrapes."""
    reg = Registry()
    stop = threading.Event()
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        i = 0
        while not stop.is_set():
            i += 1
            reg.observe("workflow_generation_seconds", (i % 200) / 1000)
            reg.inc("plans_generated_total")
            reg.inc("cache_hits_total" if i % 3 else "cache_misses_total", level=f"l{n % 3 + 1}")
            reg.set("executor_concurrency", i % 16)

    def scraper() -> None:
        last = -1.0
        try:
            for _ in range(40):
                text = render(reg)
                samples = {
                    (s.name, tuple(sorted(s.labels.items()))): s.value
                    for f in text_string_to_metric_families(text)
                    for s in f.samples
                }
                name = "perfect21_workflow_generation_seconds"
                count = samples.get((name + "_count", ()), 0.0)
                assert samples.get((name + "_bucket", (("le", "+Inf"),)), 0.0) == count
                plans = samples.get(("perfect21_plans_generated_total", ()), 0.0)
                assert plans >= last
                last = plans
                for (metric, _), value in samples.items():
                    if metric == "perfect21_cache_hit_ratio":
                        assert 0.0 <= value <= 1.0
        except BaseException as exc:  # collected and re-raised in the main thread
            errors.append(exc)

    writers = [threading.Thread(target=writer, args=(n,)) for n in range(3)]
    scrapers = [threading.Thread(target=scraper) for _ in range(4)]
    for t in writers + scrapers:
        t.start()
    for t in scrapers:
        t.join()
    stop.set()
    for t in writers:
        t.join()
    assert not errors, errors[0]
    assert reg.snapshot().value("plans_generated_total", "value")


def test_snapshot_from_text_round_trip() -> None:
    """Another process's /metrics parses back into values the alert rules can use."""
    import pytest

    from perfect21.monitor.metrics import snapshot_from_text

    reg = Registry()
    for ms in range(1, 101):
        reg.observe("workflow_generation_seconds", ms / 1000)
    reg.inc("decisions_recorded_total", 7)
    reg.set("memory_rss_mb", 99.5)
    reg.inc("cache_hits_total", 3, level="l1")
    reg.inc("cache_misses_total", 1, level="l1")
    snap = snapshot_from_text(render(reg) + "# TYPE other gauge\nother 1\n")
    assert snap.value("decisions_recorded_total") == 7
    assert snap.value("memory_rss_mb") == 99.5
    assert snap.value("cache_hit_ratio", labels={"level": "l1"}) == 0.75
    assert snap.value("workflow_generation_seconds", "count") == 100
    assert snap.value("workflow_generation_seconds", "mean") == pytest.approx(0.0505)
    # 95th of 1..100 ms lies in the (50, 100] ms bucket: interpolated, as Prometheus does
    assert snap.value("workflow_generation_seconds", "p95") == pytest.approx(0.095, abs=0.003)
    assert snap.value("decisions_recorded_total", "rate") is None  # one scrape, no history
    assert snap.get("other") is None
