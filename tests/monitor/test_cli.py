"""``perfect21 monitor``, ``metrics`` and ``alerts check`` as real processes."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families


def p21(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "perfect21", *args],
        capture_output=True, text=True, timeout=60, cwd=cwd, stdin=subprocess.DEVNULL,
    )  # fmt: skip


def test_metrics_prints_prometheus_text() -> None:
    done = p21("metrics")
    assert done.returncode == 0, done.stderr
    names = {f.name for f in text_string_to_metric_families(done.stdout)}
    assert {"perfect21_memory_rss_mb", "perfect21_memory_peak_mb"} <= names


def test_monitor_without_tty_prints_one_json_snapshot() -> None:
    done = p21("monitor")
    assert done.returncode == 0, done.stderr
    status = json.loads(done.stdout)
    assert status["memory"]["current_mb"] > 0 and status["memory"]["accepting"] is True
    assert len(status["rules"]) == 3 and status["firing"] == []
    assert json.loads(p21("monitor", "--once", "--format", "json").stdout)["memory"]


def test_alerts_check_quiet_exits_0() -> None:
    done = p21("alerts", "check")
    assert done.returncode == 0, done.stderr
    assert "INACTIVE  MemoryLeak" in done.stdout
    assert "NO_DATA   PerformanceRegression" in done.stdout


def test_alerts_check_firing_exits_1(tmp_path: Path) -> None:
    """A rule that holds in this process (RSS > 1 MiB) fires at once: exit status 1."""
    rules = tmp_path / "r.yaml"
    rules.write_text(
        "rules:\n  - name: Tiny\n    condition: {metric: memory_rss_mb, operator: '>',"
        " threshold: 1}\n    for: 10m\n    severity: info\n    actions: [log]\n"
    )
    done = p21("alerts", "check", "--rules", str(rules), "--format", "json")
    assert done.returncode == 1, done.stderr
    assert json.loads(done.stdout)["firing"] == ["Tiny"]


def test_alerts_check_state_honours_for_across_checks(tmp_path: Path) -> None:
    """With --state, a condition that holds is pending until it has held for its `for:`
    duration across separate checks, then fires; a corrupt or foreign state file only
    restarts the wait (with a warning for a corrupt one)."""
    rules = tmp_path / "r.yaml"
    rules.write_text(
        "rules:\n  - name: Tiny\n    condition: {metric: memory_rss_mb, operator: '>',"
        " threshold: 1}\n    for: 1s\n    severity: info\n    actions: [log]\n"
    )
    state = tmp_path / "state" / "alerts.json"

    def check() -> tuple[int, str, str]:
        done = p21("alerts", "check", "--rules", str(rules), "--state", str(state),
                   "--format", "json")  # fmt: skip
        status = {r["name"]: r["status"] for r in json.loads(done.stdout)["rules"]}["Tiny"]
        return done.returncode, status, done.stderr

    assert check()[:2] == (0, "pending")
    saved = json.loads(state.read_text(encoding="utf-8"))
    assert "Tiny" in saved["pending_since"] and saved["firing"] == []
    time.sleep(1.2)
    assert check()[:2] == (1, "firing")
    assert json.loads(state.read_text(encoding="utf-8"))["firing"] == ["Tiny"]
    assert check()[:2] == (1, "firing")  # still held: still firing
    state.write_text("{not json", encoding="utf-8")
    code, status, err = check()
    assert (code, status) == (0, "pending") and "unreadable" in err
    other = tmp_path / "other.yaml"
    other.write_text(rules.read_text(encoding="utf-8"))
    time.sleep(1.2)  # the state now says Tiny held for > 1 s, but for the rules in r.yaml
    done = p21("alerts", "check", "--rules", str(other), "--state", str(state), "--format",
               "json")  # fmt: skip
    assert done.returncode == 0 and json.loads(done.stdout)["firing"] == []


def test_alerts_check_invalid_file_exits_2_with_line(tmp_path: Path) -> None:
    rules = tmp_path / "bad.yaml"
    rules.write_text(
        "rules:\n  - name: X\n    condition: {metric: m, operator: '~', threshold: 1}\n"
        "    severity: info\n    actions: [log]\n"
    )
    done = p21("alerts", "check", "--rules", str(rules))
    assert done.returncode == 2
    assert f"{rules}:3:" in done.stderr and "operator" in done.stderr
    missing = p21("alerts", "check", "--rules", str(tmp_path / "nope.yaml"))
    assert missing.returncode == 2 and "not found" in missing.stderr


@pytest.mark.parametrize("args", [["monitor"], ["metrics"], ["alerts"], ["alerts", "check"]])
def test_help_has_examples(args: list[str]) -> None:
    done = p21(*args, "--help")
    assert done.returncode == 0 and "Examples" in done.stdout


def test_memory_limit_type() -> None:
    """Sizes like 1.5GB are MiB; anything else is a usage error (exit 2) naming the value."""
    from perfect21.cli._common import memory_limit

    assert memory_limit("1.5GB") == 1536.0 and memory_limit("512M") == 512.0
    bad = p21("bench", "soak", "--memory-limit", "lots")
    assert bad.returncode == 2 and "invalid memory limit 'lots'" in bad.stderr
    assert bad.stdout == ""


def test_live_view_renders() -> None:
    """The rich live view renders a real status (memory, KPIs, rules) without errors."""
    from rich.console import Console

    from perfect21.cli.monitor import _view
    from perfect21.monitor.alerts import load_rules
    from perfect21.monitor.kpi import Registry
    from perfect21.monitor.memory import MemoryGuard
    from perfect21.monitor.runtime import Monitor

    reg = Registry()
    reg.observe("workflow_generation_seconds", 0.2)
    reg.inc("cache_hits_total", level="l1")
    mon = Monitor(guard=MemoryGuard(registry=reg), rules=load_rules(), registry=reg)
    mon.tick(ignore_for=True)
    console = Console(record=True, width=140)
    console.print(_view(mon.status()))
    text = console.export_text()
    assert "PerformanceRegression" in text and "firing" in text
    assert "workflow_generation_seconds" in text and "accepting" in text


def test_alerts_check_url_scrapes_a_running_process(tmp_path: Path) -> None:
    """--url evaluates another process's /metrics: slow plans there fire PerformanceRegression;
    an unreachable URL cannot be evaluated (exit 2)."""
    import http.server
    import socket
    import threading

    from perfect21.monitor.kpi import Registry
    from perfect21.monitor.metrics import render

    reg = Registry()
    for _ in range(50):
        reg.observe("workflow_generation_seconds", 0.4)
    reg.set("memory_rss_mb", 80.0)
    body = render(reg).encode()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/metrics"
        done = p21("alerts", "check", "--url", url, "--format", "json")
    finally:
        server.shutdown()
        server.server_close()
    assert done.returncode == 1, done.stderr
    result = json.loads(done.stdout)
    assert result["firing"] == ["PerformanceRegression"]
    states = {r["name"]: r["status"] for r in result["rules"]}
    assert states == {"PerformanceRegression": "firing", "MemoryLeak": "inactive",
                      "ThroughputDrop": "no_data"}  # fmt: skip
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    down = p21("alerts", "check", "--url", f"http://127.0.0.1:{port}/metrics")
    assert down.returncode == 2 and "cannot scrape" in down.stderr
