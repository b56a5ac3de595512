"""Alert rules: loading with line-numbered errors, pure evaluation, and the action handlers."""

from __future__ import annotations

import http.server
import json
import socket
import sys
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import ClassVar

import pytest

from perfect21._errors import AlertRulesError
from perfect21.monitor.alerts import (
    ActionDispatcher,
    ActionKind,
    AlertLog,
    AlertState,
    AlertStatus,
    RuleResult,
    Severity,
    evaluate,
    format_duration,
    load_rules,
    parse_duration,
    parse_rules,
)

RULE = """\
rules:
  - name: Slow
    condition:
      metric: workflow_generation_seconds
      aggregation: p95
      operator: ">"
      threshold: 0.1
    for: 30s
    severity: critical
    actions: [log]
"""


class Values:
    """A dict-backed stand-in for a KPI snapshot."""

    def __init__(self, values: Mapping[tuple[str, str], float]) -> None:
        self.values = dict(values)

    def value(
        self, name: str, aggregation: str = "value", labels: Mapping[str, str] | None = None
    ) -> float | None:
        return self.values.get((name, aggregation))


def test_default_rules_are_the_seeds_three() -> None:
    rules = load_rules()
    assert rules.names() == ("PerformanceRegression", "MemoryLeak", "ThroughputDrop")
    by = {r.name: r for r in rules.rules}
    perf = by["PerformanceRegression"]
    assert (perf.condition.aggregation, perf.condition.threshold) == ("p95", 0.1)
    assert {a.kind for a in perf.actions} >= {ActionKind.ROLLBACK, ActionKind.INVESTIGATE}
    assert by["MemoryLeak"].condition.threshold == 450
    assert ActionKind.CLEANUP in {a.kind for a in by["MemoryLeak"].actions}
    drop = by["ThroughputDrop"]
    assert drop.condition.relative_to == "baseline_rate" and drop.condition.threshold == 0.8
    assert {a.kind for a in drop.actions} >= {ActionKind.SCALE_UP, ActionKind.INVESTIGATE}


@pytest.mark.parametrize(
    ("text", "line", "reason"),
    [
        ("rules: [\n  {name: A,\n", 3, "invalid YAML"),
        ("", 1, "empty"),
        ("rulez: []\n", 1, "unknown key 'rulez'"),
        ("rules: 5\n", 1, "must be a list"),
        (RULE.replace("    for: 30s\n", "    for: soon\n"), 8, "'for'"),
        (RULE.replace('operator: ">"', 'operator: "=>"'), 6, "operator"),
        (RULE.replace("threshold: 0.1", "threshold: fast"), 7, "expected a number"),
        (RULE.replace("aggregation: p95", "aggregation: p42"), 5, "aggregation"),
        (RULE.replace("severity: critical", "severity: meh"), 9, "severity"),
        (RULE.replace("actions: [log]", "actions: [log, email]"), 10, "'email'"),
        (RULE.replace("actions: [log]", "actions: [webhook]"), 10, "needs 'url'"),
        (RULE.replace("actions: [log]", "actions: []"), 10, "non-empty list"),
        (RULE.replace("actions: [log]", "actions: [{type: webhook, url: ftp://x}]"), 10, "http"),
        (RULE.replace("actions: [log]", "actions: [{type: command, argv: ls}]"), 10, "argv"),
        (RULE.replace("    for: 30s\n", "    for: 30s\n    colour: red\n"), 9, "unknown key"),
        (RULE.replace("    for: 30s\n", "    for: 30s\n    for: 1m\n"), 9, "duplicate key"),
        (RULE.replace("      threshold: 0.1\n", ""), 4, "missing required key 'threshold'"),
        (RULE + RULE.replace("rules:\n", ""), 11, "duplicate rule name 'Slow'"),
        (RULE.replace("name: Slow", "name: 'not ok'"), 2, "letters"),
        (
            RULE.replace("threshold: 0.1", "threshold: 0.1\n      min_baseline: 2"),
            8,
            "needs relative",
        ),
    ],
)
def test_invalid_rules_name_line_and_reason(text: str, line: int, reason: str) -> None:
    """Every problem is an AlertRulesError naming the file, the line and the reason."""
    with pytest.raises(AlertRulesError) as info:
        parse_rules(text, source="my.yaml")
    message = str(info.value)
    assert message.startswith(f"my.yaml:{line}: "), message
    assert reason in message


def test_load_rules_file_errors(tmp_path: Path) -> None:
    with pytest.raises(AlertRulesError, match="not found"):
        load_rules(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_bytes(b"\xff\xfe")
    with pytest.raises(AlertRulesError, match="UTF-8"):
        load_rules(bad)


def test_actions_parse_with_parameters() -> None:
    text = RULE.replace(
        "actions: [log]",
        "actions:\n      - {type: webhook, url: 'http://127.0.0.1:9/x', timeout_s: 0.5}\n"
        "      - {type: command, argv: [echo, hi]}",
    )
    rule = parse_rules(text).rules[0]
    assert rule.actions[0].url == "http://127.0.0.1:9/x" and rule.actions[0].timeout_s == 0.5
    assert rule.actions[1].argv == ("echo", "hi") and rule.actions[1].timeout_s == 10.0


@pytest.mark.parametrize(
    ("text", "seconds"), [("5m", 300), ("1h30m", 5400), ("90s", 90), (30, 30), ("250ms", 0.25)]
)
def test_durations(text: str | int, seconds: float) -> None:
    assert parse_duration(text) == seconds
    assert parse_duration(format_duration(seconds)) == seconds


def test_duration_rejects() -> None:
    for bad in ("", "5 minutes", "-1s", True):
        with pytest.raises(ValueError):
            parse_duration(bad)


def test_for_duration_pending_then_firing_then_resolved() -> None:
    """A condition must hold for `for:` before firing; it resolves when it stops holding."""
    rules = parse_rules(RULE)
    slow = Values({("workflow_generation_seconds", "p95"): 0.2})
    fast = Values({("workflow_generation_seconds", "p95"): 0.01})
    e1 = evaluate(rules, slow, AlertState(), now=100.0)
    assert e1.results[0].status is AlertStatus.PENDING and not e1.started
    e2 = evaluate(rules, slow, e1.state, now=129.0)
    assert e2.results[0].status is AlertStatus.PENDING
    e3 = evaluate(rules, slow, e2.state, now=130.0)
    assert e3.results[0].status is AlertStatus.FIRING
    assert [r.rule.name for r in e3.started] == ["Slow"]
    assert e3.results[0].since == 100.0 and "0.2 > 0.1" in e3.results[0].message
    e4 = evaluate(rules, slow, e3.state, now=131.0)
    assert e4.firing and not e4.started  # still firing, not started again
    e5 = evaluate(rules, fast, e4.state, now=132.0)
    assert e5.results[0].status is AlertStatus.INACTIVE and e5.resolved == ("Slow",)
    e6 = evaluate(rules, slow, e5.state, now=133.0)
    assert e6.results[0].status is AlertStatus.PENDING  # the timer restarted


def test_no_data_neither_fires_nor_keeps_timer() -> None:
    rules = parse_rules(RULE)
    e1 = evaluate(rules, Values({("workflow_generation_seconds", "p95"): 1.0}), AlertState(), 0.0)
    e2 = evaluate(rules, Values({}), e1.state, 100.0)
    assert e2.results[0].status is AlertStatus.NO_DATA and not e2.state.pending_since


def test_ignore_for_fires_at_once() -> None:
    rules = parse_rules(RULE)
    values = Values({("workflow_generation_seconds", "p95"): 0.5})
    assert evaluate(rules, values, AlertState(), 0.0, ignore_for=True).firing


def test_relative_threshold_against_baseline() -> None:
    """ThroughputDrop: rate below 80 % of the baseline fires; no baseline is no data."""
    rules = load_rules()
    base = {("memory_rss_mb", "value"): 10.0}
    drop = Values({**base, ("decisions_recorded_total", "rate"): 70.0,
                   ("decisions_recorded_total", "baseline_rate"): 100.0})  # fmt: skip
    steady = Values({**base, ("decisions_recorded_total", "rate"): 90.0,
                     ("decisions_recorded_total", "baseline_rate"): 100.0})  # fmt: skip
    no_base = Values({**base, ("decisions_recorded_total", "rate"): 5.0,
                      ("decisions_recorded_total", "baseline_rate"): 0.0})  # fmt: skip
    status = {
        name: {r.rule.name: r for r in evaluate(rules, v, AlertState(), 0, ignore_for=True).results}
        for name, v in (("drop", drop), ("steady", steady), ("no_base", no_base))
    }
    assert status["drop"]["ThroughputDrop"].status is AlertStatus.FIRING
    assert status["drop"]["ThroughputDrop"].threshold == pytest.approx(80.0)
    assert status["steady"]["ThroughputDrop"].status is AlertStatus.INACTIVE
    assert status["no_base"]["ThroughputDrop"].status is AlertStatus.NO_DATA
    idle = Values({**base, ("decisions_recorded_total", "rate"): 0.0,
                   ("decisions_recorded_total", "baseline_rate"): 0.5})  # fmt: skip
    quiet = {
        r.rule.name: r for r in evaluate(rules, idle, AlertState(), 0, ignore_for=True).results
    }
    assert quiet["ThroughputDrop"].status is AlertStatus.NO_DATA  # below min_baseline (1/s)
    assert "below 1" in quiet["ThroughputDrop"].message
    assert status["drop"]["MemoryLeak"].status is AlertStatus.INACTIVE
    assert status["drop"]["PerformanceRegression"].status is AlertStatus.NO_DATA


def test_real_snapshot_works_as_values() -> None:
    """A KPI registry snapshot plugs straight into evaluate()."""
    from perfect21.monitor.kpi import Registry

    reg = Registry()
    for _ in range(50):
        reg.observe("workflow_generation_seconds", 0.3)
    result = evaluate(parse_rules(RULE), reg.snapshot(), AlertState(), 0.0, ignore_for=True)
    assert result.firing[0].value == pytest.approx(0.3)


# -- actions ---------------------------------------------------------------------------------
def firing(actions: str) -> RuleResult:
    rules = parse_rules(RULE.replace("actions: [log]", f"actions: {actions}"))
    values = Values({("workflow_generation_seconds", "p95"): 0.5})
    return evaluate(rules, values, AlertState(), 0.0, ignore_for=True).firing[0]


class Receiver(http.server.BaseHTTPRequestHandler):
    received: ClassVar[list[dict[str, object]]] = []

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        Receiver.received.append(json.loads(self.rfile.read(length)))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def webhook_url() -> Iterator[str]:
    """A real HTTP server on loopback that records the JSON bodies POSTed to it."""
    Receiver.received = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    server.shutdown()
    server.server_close()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_webhook_posts_the_alert(webhook_url: str, tmp_path: Path) -> None:
    log = AlertLog(tmp_path / "alerts.jsonl")
    outcomes = ActionDispatcher(alert_log=log).dispatch(
        firing(f"[{{type: webhook, url: '{webhook_url}'}}]")
    )
    assert outcomes[0].ok, outcomes
    assert Receiver.received[0]["name"] == "Slow"
    assert Receiver.received[0]["status"] == "firing"
    assert Receiver.received[0]["severity"] == "critical"


def test_webhook_target_down_alert_still_logged(tmp_path: Path) -> None:
    """A closed port fails the webhook; the alert is logged and the other actions ran."""
    log = AlertLog(tmp_path / "alerts.jsonl")
    cleaned: list[int] = []
    dispatcher = ActionDispatcher(alert_log=log, cleanup=lambda: cleaned.append(1))
    url = f"http://127.0.0.1:{closed_port()}/hook"
    outcomes = dispatcher.dispatch(
        firing(f"[{{type: webhook, url: '{url}', timeout_s: 1}}, cleanup, log]")
    )
    assert [o.ok for o in outcomes] == [False, True, True]
    assert "refused" in outcomes[0].detail.lower()
    assert cleaned == [1]
    entries = [json.loads(line) for line in log.path.read_text().splitlines()]  # type: ignore[union-attr]
    assert entries[0]["name"] == "Slow" and entries[0]["outcomes"][0]["ok"] is False


def test_command_action_runs_without_shell(tmp_path: Path) -> None:
    """The command gets the alert in its environment; its exit status is the outcome."""
    out = tmp_path / "out.txt"
    script = f"import os; open({str(out)!r}, 'w').write(os.environ['PERFECT21_ALERT'])"
    argv = json.dumps([sys.executable, "-c", script])
    outcomes = ActionDispatcher().dispatch(firing(f"[{{type: command, argv: {argv}}}]"))
    assert outcomes[0].ok and out.read_text() == "Slow"
    failing = json.dumps([sys.executable, "-c", "import sys; sys.exit(3)"])
    assert (
        "exit 3"
        in ActionDispatcher().dispatch(firing(f"[{{type: command, argv: {failing}}}]"))[0].detail
    )
    missing = ActionDispatcher().dispatch(firing("[{type: command, argv: [no-such-prog-p21]}]"))
    assert not missing[0].ok and "not found" in missing[0].detail


def test_hooks_and_investigate(tmp_path: Path) -> None:
    """scale_up/rollback need a hook (else an honest failure); investigate attaches data."""
    log = AlertLog(tmp_path / "a.jsonl")
    seen: list[str] = []
    d = ActionDispatcher(alert_log=log, diagnostics=lambda: {"kpis": {"x": 1}})
    outcomes = d.dispatch(firing("[scale_up, rollback, investigate]"))
    assert [o.ok for o in outcomes] == [False, False, True]
    assert "no scale_up hook" in outcomes[0].detail
    assert log.recent[-1]["investigation"] == {"kpis": {"x": 1}}
    d.register_hook(ActionKind.SCALE_UP, lambda r: seen.append(r.rule.name))
    assert d.dispatch(firing("[scale_up]"))[0].ok and seen == ["Slow"]


def test_alert_log_is_bounded(tmp_path: Path) -> None:
    path = tmp_path / "alerts.jsonl"
    log = AlertLog(path, max_bytes=2000, max_recent=5)
    for i in range(200):
        log.write({"i": i, "pad": "x" * 50})
    assert path.stat().st_size <= 2000
    assert path.with_name("alerts.jsonl.1").stat().st_size <= 2000
    assert len(log.recent) == 5 and log.recent[-1]["i"] == 199


def test_record_non_rule_alert(tmp_path: Path) -> None:
    log = AlertLog(tmp_path / "a.jsonl")
    ActionDispatcher(alert_log=log).record("Memory_soft_limit", Severity.WARNING, "over")
    assert json.loads((tmp_path / "a.jsonl").read_text())["name"] == "Memory_soft_limit"
