"""The running monitor: memory guard + KPI registry + alert rules + action dispatcher.

::

    monitor = Monitor.from_config(config)        # default rules, alert log under <home>/monitor
    monitor.guard.register_cleanup(cache.trim)
    with monitor:                                # sampling + evaluation threads
        ...
    monitor.status()                             # one JSON-able snapshot for `perfect21 monitor`

Every ``interval_s`` it evaluates the rules against a fresh KPI snapshot and runs the actions
of alerts that start firing. A failing action (webhook down, command missing) is logged in the
alert log and the loop carries on.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from perfect21.monitor.alerts import (
    ActionDispatcher,
    AlertLog,
    AlertRules,
    AlertState,
    Evaluation,
    Severity,
    evaluate,
    load_rules,
)
from perfect21.monitor.kpi import Registry, Snapshot, default_registry
from perfect21.monitor.memory import MemoryEvent, MemoryEventKind, MemoryGuard

if TYPE_CHECKING:
    from perfect21._config import Config

__all__ = ["Monitor", "RemoteMonitor", "rules_path_for"]

log = logging.getLogger("perfect21.monitor")


def rules_path_for(config: Config, explicit: Path | None = None) -> Path | None:
    """``--rules`` if given, else ``<home>/alerts.yaml`` if present, else the packaged defaults."""
    if explicit is not None:
        return explicit
    user = config.path("alerts.yaml")
    return user if user.is_file() else None


class Monitor:
    """Guard, registry, rules and dispatcher wired together, with one evaluation thread."""

    def __init__(
        self,
        *,
        guard: MemoryGuard,
        rules: AlertRules,
        registry: Registry | None = None,
        dispatcher: ActionDispatcher | None = None,
        interval_s: float = 1.0,
    ) -> None:
        self.registry = default_registry() if registry is None else registry
        self.guard = guard
        self.rules = rules
        self.dispatcher = ActionDispatcher() if dispatcher is None else dispatcher
        if self.dispatcher.cleanup is None:
            self.dispatcher.cleanup = guard.cleanup_now
        if self.dispatcher.diagnostics is None:
            self.dispatcher.diagnostics = self.diagnostics
        if guard.on_event is None:
            guard.on_event = self.on_memory_event
        self.interval_s = interval_s
        self.state = AlertState()
        self.last: Evaluation | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.errors = 0

    @classmethod
    def from_config(
        cls, config: Config, *, rules_file: Path | None = None, **kwargs: Any
    ) -> Monitor:
        registry = kwargs.pop("registry", None) or default_registry()
        alert_log = AlertLog(config.path("monitor") / "alerts.jsonl")
        dispatcher = kwargs.pop("dispatcher", None) or ActionDispatcher(alert_log=alert_log)
        guard = MemoryGuard.from_config(config, registry=registry)
        return cls(
            guard=guard,
            rules=load_rules(rules_path_for(config, rules_file)),
            registry=registry,
            dispatcher=dispatcher,
            interval_s=kwargs.pop("interval_s", config.memory_sample_interval_s),
        )

    def on_memory_event(self, event: MemoryEvent) -> None:
        """Memory guard events go to the same alert log as rule alerts."""
        severity = (
            Severity.CRITICAL if event.kind is MemoryEventKind.HARD_LIMIT else Severity.WARNING
        )
        if event.kind is MemoryEventKind.RECOVERED:
            severity = Severity.INFO
        self.dispatcher.record(
            f"Memory_{event.kind.value}", severity, event.message, rss_mb=event.rss_mb
        )

    def tick(self, now: float | None = None, *, ignore_for: bool = False) -> Evaluation:
        """Sample memory, evaluate every rule once, run the actions of newly firing alerts."""
        self.guard.sample()
        snapshot = self.registry.snapshot()
        with self._lock:
            evaluation = evaluate(
                self.rules,
                snapshot,
                self.state,
                time.monotonic() if now is None else now,
                ignore_for=ignore_for,
            )
            self.state = evaluation.state
            self.last = evaluation
        for result in evaluation.started:
            self.registry.inc("alerts_fired_total", alert=result.rule.name)
            self.dispatcher.dispatch(result)
        return evaluation

    def diagnostics(self) -> dict[str, Any]:
        """What the ``investigate`` action attaches: memory statistics and every KPI."""
        return {
            "memory": self.guard.stats().to_dict(),
            "kpis": self.registry.snapshot().to_dict()["metrics"],
        }

    def status(self) -> dict[str, Any]:
        """One JSON-able picture: memory, KPIs, rule states, recent alert log entries."""
        evaluation = self.last
        return {
            "at": time.time(),
            "memory": self.guard.stats().to_dict(),
            "memory_events": [e.to_dict() for e in self.guard.events],
            "kpis": self.registry.snapshot().to_dict()["metrics"],
            "rules": [r.to_dict() for r in evaluation.results] if evaluation else [],
            "firing": [r.rule.name for r in evaluation.firing] if evaluation else [],
            "recent_alerts": list(self.dispatcher.alert_log.recent)[-20:],
        }

    # -- background --------------------------------------------------------------------------
    def start(self) -> Monitor:
        if self._thread is not None and self._thread.is_alive():
            return self
        self._stop.clear()
        self.guard.start()
        self._thread = threading.Thread(target=self._loop, name="perfect21-monitor", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=max(2.0, 2 * self.interval_s))
            self._thread = None
        self.guard.stop()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.tick()
            except Exception:  # the monitor keeps running whatever one round does
                self.errors += 1
                log.exception("monitor evaluation failed")

    def __enter__(self) -> Monitor:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class _Merged:
    """Values for rules watching another process: rates from the local follower registry
    (counters synced scrape after scrape), everything else from the latest scrape."""

    def __init__(self, scraped: Snapshot, local: Snapshot) -> None:
        self.scraped = scraped
        self.local = local

    def value(
        self, name: str, aggregation: str = "value", labels: Mapping[str, str] | None = None
    ) -> float | None:
        source = self.local if aggregation in ("rate", "baseline_rate") else self.scraped
        return source.value(name, aggregation, labels)


class RemoteMonitor:
    """Watches another Perfect21 process through its /metrics (``perfect21 monitor --url``).

    Each :meth:`tick` scrapes once; counters are followed in a local registry so that rates
    exist from the second scrape on. Actions run here: log, webhook, command and investigate
    make sense; clean-up, scale-up and rollback cannot reach the other process and are
    reported as failed outcomes.
    """

    def __init__(self, url: str, *, rules: AlertRules, alert_log: AlertLog | None = None):
        from perfect21.monitor.alerts import ActionKind

        self.url = url
        self.rules = rules
        self.follower = Registry()
        self.state = AlertState()
        self.last: Evaluation | None = None
        self.scraped: Snapshot | None = None

        def unreachable(result: object) -> None:
            raise RuntimeError(f"cannot act on a remote process ({url})")

        self.dispatcher = ActionDispatcher(
            alert_log=alert_log,
            hooks={
                k: unreachable
                for k in (ActionKind.CLEANUP, ActionKind.SCALE_UP, ActionKind.ROLLBACK)
            },
            diagnostics=self._diagnostics,
        )

    def _diagnostics(self) -> dict[str, Any]:
        return {"kpis": self.scraped.to_dict()["metrics"] if self.scraped is not None else {}}

    def tick(self, now: float | None = None) -> Evaluation:
        from perfect21.monitor.kpi import MetricKind
        from perfect21.monitor.metrics import scrape

        snap = scrape(self.url)
        self.scraped = snap
        for metric in snap.metrics:
            if metric.kind is MetricKind.COUNTER:
                for sample in metric.samples:
                    self.follower.sync_total(metric.name, sample.value, **dict(sample.labels))
        values = _Merged(snap, self.follower.snapshot())
        evaluation = evaluate(
            self.rules, values, self.state, time.monotonic() if now is None else now
        )
        self.state = evaluation.state
        self.last = evaluation
        for result in evaluation.started:
            self.dispatcher.dispatch(result)
        return evaluation

    def status(self) -> dict[str, Any]:
        snap = self.scraped
        evaluation = self.last

        def gauge(name: str) -> float:
            value = snap.value(name) if snap is not None else None
            return 0.0 if value is None else value

        return {
            "at": time.time(),
            "source": self.url,
            "memory": {
                "current_mb": gauge("memory_rss_mb"),
                "peak_mb": gauge("memory_peak_mb"),
                "growth_mb_per_hour": gauge("memory_growth_mb_per_hour"),
                "soft_limit_mb": gauge("memory_soft_limit_mb"),
                "hard_limit_mb": gauge("memory_hard_limit_mb"),
                "accepting": gauge("memory_accepting") > 0 if snap is not None else True,
            },
            "kpis": snap.to_dict()["metrics"] if snap is not None else {},
            "rules": [r.to_dict() for r in evaluation.results] if evaluation else [],
            "firing": [r.rule.name for r in evaluation.firing] if evaluation else [],
            "recent_alerts": list(self.dispatcher.alert_log.recent)[-20:],
        }
