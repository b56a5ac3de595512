"""The running monitor: rules + guard + dispatcher, in its own threads."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

from perfect21._config import load_config
from perfect21.monitor.alerts import ActionDispatcher, AlertLog, parse_rules
from perfect21.monitor.kpi import Registry
from perfect21.monitor.memory import MemoryGuard
from perfect21.monitor.runtime import Monitor


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rules_text(url: str) -> str:
    return f"""\
rules:
  - name: Slow
    condition: {{metric: workflow_generation_seconds, aggregation: p95, operator: ">",
                threshold: 0.05}}
    for: 0s
    severity: critical
    actions:
      - {{type: webhook, url: "{url}", timeout_s: 0.5}}
      - log
"""


def wait_for(predicate: object, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(0.02)
    return False


def test_webhook_down_alert_logged_and_monitor_keeps_running(tmp_path: Path) -> None:
    """The webhook target is a closed port: the alert is still logged, ticks keep coming."""
    reg = Registry()
    log = AlertLog(tmp_path / "alerts.jsonl")
    monitor = Monitor(
        guard=MemoryGuard(sampler=lambda: 10.0, registry=reg, interval_s=0.02),
        rules=parse_rules(rules_text(f"http://127.0.0.1:{closed_port()}/x")),
        registry=reg,
        dispatcher=ActionDispatcher(alert_log=log),
        interval_s=0.02,
    )
    for _ in range(20):
        reg.observe("workflow_generation_seconds", 0.2)
    with monitor:
        assert wait_for(lambda: log.recent)
        first = monitor.guard.stats().samples
        assert wait_for(lambda: monitor.guard.stats().samples > first + 3)
        assert monitor.last is not None and monitor.last.firing
    entry = log.recent[0]
    assert entry["name"] == "Slow" and entry["outcomes"][0]["ok"] is False
    assert entry["outcomes"][1] == {"action": "log", "ok": True, "detail": "logged"}
    assert monitor.errors == 0
    assert len(log.recent) == 1  # fired once, not on every tick
    assert reg.snapshot().value("alerts_fired_total") == 1
    assert json.loads((tmp_path / "alerts.jsonl").read_text())["name"] == "Slow"


def test_memory_rule_runs_cleanup_and_guard_events_are_logged(tmp_path: Path) -> None:
    """A MemoryLeak-style rule fires, its clean-up action runs the guard's callbacks, and the
    guard's own soft-limit event lands in the same alert log."""
    rss = [100.0]
    cleaned: list[int] = []
    reg = Registry()
    log = AlertLog(tmp_path / "alerts.jsonl")
    monitor = Monitor(
        guard=MemoryGuard(
            soft_limit_mb=80,
            hard_limit_mb=200,
            sampler=lambda: rss[0],
            registry=reg,
            interval_s=1,
            cleanup_cooldown_s=3600,
        ),
        rules=parse_rules(
            "rules:\n  - name: MemoryLeak\n    condition: {metric: memory_rss_mb, operator: '>',"
            " threshold: 90}\n    for: 0s\n    severity: warning\n    actions: [cleanup, log]\n"
        ),
        registry=reg,
        dispatcher=ActionDispatcher(alert_log=log),
    )
    monitor.guard.register_cleanup(lambda: cleaned.append(1))
    evaluation = monitor.tick()
    assert [r.rule.name for r in evaluation.started] == ["MemoryLeak"]
    assert len(cleaned) == 2  # once by the guard at the soft limit, once by the rule's action
    names = [e["name"] for e in log.recent]
    assert names == ["Memory_soft_limit", "MemoryLeak"]


def test_from_config_and_status(tmp_path: Path) -> None:
    """Built from the config: default rules, alert log under <home>/monitor, JSON status."""
    config = load_config(cwd=tmp_path)
    monitor = Monitor.from_config(config, registry=Registry())
    monitor.tick()
    status = monitor.status()
    assert status["memory"]["current_mb"] > 0
    assert {r["name"] for r in status["rules"]} == {
        "PerformanceRegression", "MemoryLeak", "ThroughputDrop",
    }  # fmt: skip
    json.dumps(status)
    user_rules = config.path("alerts.yaml")
    user_rules.parent.mkdir(parents=True, exist_ok=True)
    user_rules.write_text(rules_text("http://127.0.0.1:1/x"))
    assert Monitor.from_config(config, registry=Registry()).rules.names() == ("Slow",)


def test_remote_monitor_follows_another_process(tmp_path: Path) -> None:
    """Scrapes a real /metrics server twice: gauges and histograms come from the scrape,
    rates from following counters between scrapes; remote clean-up is reported, not faked."""
    import http.server
    import threading

    from perfect21.monitor.metrics import render
    from perfect21.monitor.runtime import RemoteMonitor

    served = Registry()
    served.set("memory_rss_mb", 470.0)
    served.inc("decisions_recorded_total", 1000)

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = render(served).encode()
            self.send_response(200)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    rules = parse_rules(
        "rules:\n"
        "  - name: MemoryLeak\n    condition: {metric: memory_rss_mb, operator: '>', "
        "threshold: 450}\n    for: 0s\n    severity: warning\n    actions: [cleanup, log]\n"
        "  - name: Busy\n    condition: {metric: decisions_recorded_total, aggregation: rate,"
        " operator: '>', threshold: 0}\n    for: 0s\n    severity: info\n    actions: [log]\n"
    )
    log = AlertLog(tmp_path / "alerts.jsonl")
    try:
        remote = RemoteMonitor(
            f"http://127.0.0.1:{server.server_address[1]}/metrics", rules=rules, alert_log=log
        )
        first = {r.rule.name: r for r in remote.tick().results}
        assert first["MemoryLeak"].status.value == "firing"
        assert first["Busy"].status.value == "inactive"  # history, not a rate yet
        served.inc("decisions_recorded_total", 500)
        second = {r.rule.name: r for r in remote.tick().results}
        assert second["Busy"].status.value == "firing" and (second["Busy"].value or 0) > 0
        status = remote.status()
    finally:
        server.shutdown()
        server.server_close()
    assert status["memory"]["current_mb"] == 470.0 and status["firing"] == ["MemoryLeak", "Busy"]
    leak = next(e for e in log.recent if e["name"] == "MemoryLeak")
    assert leak["outcomes"][0]["ok"] is False and "remote" in leak["outcomes"][0]["detail"]
    assert leak["outcomes"][1]["ok"] is True
