"""``perfect21 monitor``, ``perfect21 metrics`` and ``perfect21 alerts check``.

These look at the *current process*: a fresh CLI process has measured little besides its own
memory, and says so. A long-running process (``perfect21 serve``) exposes the same registry
at ``/metrics``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from perfect21.cli._common import (
    add_command,
    config_from,
    doc_text,
    echo,
    echo_json,
    file_path,
    is_tty,
    subcommands,
)

if TYPE_CHECKING:
    import argparse

__all__ = ["alerts_check", "configure_alerts", "configure_metrics", "configure_monitor",
           "metrics", "monitor"]


def configure_monitor(parser: argparse.ArgumentParser) -> None:
    parser.description = doc_text(monitor.__doc__)
    parser.add_argument("--once", action="store_true", help="Print one JSON snapshot and exit.")
    parser.add_argument(
        "--format", dest="fmt", choices=("live", "json"), default=None,
        help="live (default on a terminal) or json (one snapshot; default otherwise).",
    )
    parser.add_argument("--interval", type=float, default=1.0, metavar="SECONDS",
                        help="Refresh seconds. [default: 1.0]")
    parser.add_argument("--rules", type=Path, default=None, metavar="PATH",
                        help="Alert rules file.")
    parser.add_argument("--url", default=None, help="Watch a running process's /metrics instead.")
    parser.set_defaults(_handler=monitor)


def configure_metrics(parser: argparse.ArgumentParser) -> None:
    parser.description = doc_text(metrics.__doc__)
    parser.set_defaults(_handler=metrics)


ALERTS_DESCRIPTION = """\
Evaluate alert rules (YAML; the packaged defaults unless --rules or <home>/alerts.yaml).

Examples:
  perfect21 alerts check
  perfect21 alerts check --rules my-alerts.yaml --format json
"""


def configure_alerts(parser: argparse.ArgumentParser) -> None:
    parser.description = ALERTS_DESCRIPTION
    p = add_command(subcommands(parser), "check", alerts_check)
    p.add_argument("--rules", type=Path, default=None, metavar="PATH", help="Alert rules file.")
    p.add_argument("--url", default=None, help="Evaluate a running process's /metrics instead.")
    p.add_argument("--format", dest="fmt", choices=("text", "json"), default="text")
    p.add_argument("--run-actions", action="store_true",
                   help="Also run the actions of firing alerts.")
    p.add_argument(
        "--state", dest="state_file", type=file_path, default=None, metavar="FILE",
        help="Remember pending alerts in this file between checks, so `for:` is honoured "
        "(for checks run on a schedule, e.g. from cron).",
    )


def monitor(
    once: bool, fmt: str | None, interval: float, rules: Path | None, url: str | None
) -> None:
    """Memory, KPIs and alert states: live on a terminal, else one JSON snapshot.

    Without --url it watches this process; with --url it scrapes a running `perfect21 serve`
    every interval (rates appear from the second scrape on) and evaluates the rules on it.

    Examples:
      perfect21 monitor                 # live view (Ctrl-C to stop)
      perfect21 monitor --once          # one JSON snapshot, then exit
      perfect21 monitor --url http://127.0.0.1:8021/metrics
      perfect21 monitor --format json | jq .memory
    """
    from perfect21.monitor.runtime import Monitor, RemoteMonitor, rules_path_for

    config = config_from()
    mon: Monitor | RemoteMonitor
    if url is not None:
        from perfect21.monitor.alerts import AlertLog, load_rules

        mon = RemoteMonitor(
            url,
            rules=load_rules(rules_path_for(config, rules)),
            alert_log=AlertLog(config.path("monitor") / "alerts.jsonl"),
        )
    else:
        mon = Monitor.from_config(config, rules_file=rules, interval_s=max(0.1, interval))
    live = fmt == "live" or (fmt is None and not once and is_tty())
    if not live:
        mon.tick()
        echo_json(mon.status())
        return
    _live(mon, max(0.1, interval))


def _live(mon: Any, interval: float) -> None:
    from rich.console import Console
    from rich.live import Live

    console = Console()
    mon.tick()
    try:
        with Live(_view(mon.status()), console=console, auto_refresh=False) as view:
            while True:
                time.sleep(interval)
                mon.tick()
                view.update(_view(mon.status()), refresh=True)
    except KeyboardInterrupt:
        return


def _view(status: dict[str, Any]) -> Any:
    from rich.console import Group
    from rich.table import Table

    mem = status["memory"]
    title = f"perfect21 monitor ({status.get('source', 'this process')})"
    head = Table(title=title, show_header=False, box=None)
    head.add_row("memory", f"{mem['current_mb']:.1f} MiB (peak {mem['peak_mb']:.1f})")
    head.add_row("growth", f"{mem['growth_mb_per_hour']:+.2f} MiB/h")
    head.add_row("limits", f"soft {mem['soft_limit_mb']:.0f} / hard {mem['hard_limit_mb']:.0f} MiB")
    head.add_row("accepting", "yes" if mem["accepting"] else "NO (shedding new work)")
    kpis = Table("KPI", "labels", "value")
    for name, metric in status["kpis"].items():
        for sample in metric["samples"]:
            labels = ",".join(f"{k}={v}" for k, v in sample["labels"].items())
            if "quantiles" in sample:
                q = sample["quantiles"]
                value = f"n={sample['count']} p50={q.get('p50', 0):.4g} p95={q.get('p95', 0):.4g}"
            else:
                value = f"{sample['value']:.6g}"
            kpis.add_row(name, labels, value)
    rules = Table("alert", "status", "detail")
    for rule in status["rules"]:
        style = {"firing": "bold red", "pending": "yellow"}.get(rule["status"], "")
        rules.add_row(rule["name"], f"[{style}]{rule['status']}[/]" if style else rule["status"],
                      rule["message"])  # fmt: skip
    return Group(head, kpis, rules)


def metrics() -> None:
    """Print this process's KPIs in Prometheus text exposition format.

    A fresh CLI process has measured little: it prints the memory gauges sampled now plus
    whatever its registry holds. Scrape `perfect21 serve`'s /metrics for a long-running one.

    Examples:
      perfect21 metrics
      perfect21 metrics | grep perfect21_memory
    """
    from perfect21.monitor.memory import MemoryGuard
    from perfect21.monitor.metrics import render

    MemoryGuard.from_config(config_from()).sample()
    echo(render(), nl=False)


def alerts_check(
    rules: Path | None, url: str | None, fmt: str, run_actions: bool, state_file: Path | None
) -> None:
    """Evaluate the rules now; exit 1 if any alert fires, 2 if they cannot be evaluated.

    Without --url the rules see this process (mostly its memory); with --url they see the
    KPIs a running `perfect21 serve` exposes. A single check has no history: without --state
    `for:` durations are not waited for, and rates (ThroughputDrop) have no data from one
    scrape. With --state FILE the check remembers since when each condition has held (wall
    clock), fires a rule only once it has held for its `for:` duration across checks, and
    with --run-actions runs actions only when an alert starts firing, not on every check.
    An invalid rules file exits with status 2 and names the line and the reason.

    Examples:
      perfect21 alerts check
      perfect21 alerts check --url http://127.0.0.1:8021/metrics
      perfect21 alerts check --rules alerts.yaml || echo "something is firing"
      # every minute from cron: fire only what held for its `for:` duration
      perfect21 alerts check --url http://127.0.0.1:8021/metrics --state alerts.state --run-actions
    """
    from perfect21.monitor.alerts import evaluate
    from perfect21.monitor.runtime import Monitor

    mon = Monitor.from_config(config_from(), rules_file=rules)
    if url is not None:
        from perfect21.monitor.metrics import scrape

        values = scrape(url)
    else:
        mon.guard.sample()
        values = mon.registry.snapshot()
    scope = f"{mon.rules.source} | {url or 'this process'}"
    if state_file is None:
        evaluation = evaluate(mon.rules, values, mon.state, time.monotonic(), ignore_for=True)
    else:
        from perfect21.monitor.alerts import load_state, save_state

        previous = load_state(state_file, scope)
        evaluation = evaluate(mon.rules, values, previous, time.time())
        try:
            save_state(state_file, scope, evaluation.state)
        except OSError as exc:  # the evaluation stands; only the next check loses its memory
            echo(f"warning: cannot write alert state {state_file}: {exc}", err=True)
    if run_actions:
        todo = evaluation.firing if state_file is None else evaluation.started
        for result in todo:
            mon.dispatcher.dispatch(result)
    firing = evaluation.firing
    if fmt == "json":
        echo_json(
            {
                "rules_file": mon.rules.source,
                "source": url or "this process",
                "firing": [r.rule.name for r in firing],
                "rules": [r.to_dict() for r in evaluation.results],
            }
        )
    else:
        for result in sorted(evaluation.results, key=lambda r: r.status.value != "firing"):
            echo(
                f"{result.status.value.upper():9} {result.rule.name} "
                f"[{result.rule.severity.value}] {result.message}"
            )
        echo(f"{len(firing)} firing of {len(evaluation.results)} rules ({mon.rules.source};"
                   f" values from {url or 'this process'})", err=True)  # fmt: skip
    if firing:
        raise SystemExit(1)
