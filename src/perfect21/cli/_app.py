"""Root parser with lazily configured commands, and the one error-to-exit-code map.

Every command module exposes ``configure(parser)``: it sets the parser's description, adds
the command's options (and subcommands, for groups) and sets ``_handler``, the function
called with the parsed options as keyword arguments. Only the module of the command being
run is imported: the root parser lists the others from :data:`COMMANDS`.
"""

from __future__ import annotations

import argparse
import sys

from perfect21 import __version__
from perfect21._errors import Perfect21Error
from perfect21.cli._common import HelpFormatter, echo, subcommands

__all__ = ["COMMANDS", "add_lazy_commands", "build_parser", "run"]

# command name -> ("module:configure function", one-line help); imported only when run.
COMMANDS: dict[str, tuple[str, str]] = {
    "plan": ("perfect21.cli.plan:configure",
             "Generate a phased multi-agent workflow for a request."),
    "agents": ("perfect21.cli.agents:configure", "List and show the agents of the catalog."),
    "decisions": ("perfect21.cli.decisions:configure", "Record, search and export ADRs."),
    "run": ("perfect21.cli.run:configure_run",
            "Run a workflow: agents in parallel, gates at sync points."),
    "runs": ("perfect21.cli.run:configure_runs", "List, show and resume runs."),
    "cache": ("perfect21.cli.cache:configure", "Inspect, warm and clear the layered cache."),
    "monitor": ("perfect21.cli.monitor:configure_monitor", "Live memory, KPIs and alerts."),
    "metrics": ("perfect21.cli.monitor:configure_metrics",
                "Print KPIs in Prometheus text format."),
    "alerts": ("perfect21.cli.monitor:configure_alerts", "Evaluate alert rules."),
    "serve": ("perfect21.cli.serve:configure", "Serve the HTTP API and dashboard."),
    "bench": ("perfect21.cli.bench:configure",
              "Benchmarks with baselines measured in the same run."),
}  # fmt: skip

DESCRIPTION = """\
Perfect21 — plan, run and record multi-agent AI software work.

Examples:
  perfect21 plan "实现用户登录功能，使用JWT认证"
  perfect21 plan "fix the flaky checkout test" --format json
  perfect21 agents list --category quality
  perfect21 run "add rate limiting to the API" --runner claude
  perfect21 decisions search "jwt 会话"

Settings: defaults < perfect21.toml < PERFECT21_* environment < flags.
Data lives in ./.perfect21 (override with PERFECT21_HOME).
"""


def add_lazy_commands(parser: argparse.ArgumentParser, table: dict[str, tuple[str, str]]) -> None:
    """One subcommand per ``table`` entry (name -> ("module:configure", help)), sorted."""
    subs = subcommands(parser)
    for name in sorted(table):
        target, summary = table[name]
        subs.add_lazy(name, summary, target)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="perfect21", description=DESCRIPTION, formatter_class=HelpFormatter,
        allow_abbrev=False,
    )
    parser.add_argument("-V", "--version", action="version", version=f"perfect21 {__version__}",
                        help="show the version and exit")  # fmt: skip
    add_lazy_commands(parser, COMMANDS)
    return parser


def run(args: list[str]) -> None:
    """Run the CLI and map Perfect21 errors to exit codes (the one place that does so)."""
    try:
        options = vars(build_parser().parse_args(args))
        handler = options["_handler"]
        handler(**{k: v for k, v in options.items() if not k.startswith("_")})
        sys.stdout.flush()  # here, so a closed pipe is handled below
    except Perfect21Error as exc:
        echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        echo("interrupted", err=True)
        sys.exit(130)
    except BrokenPipeError:
        # `perfect21 plan ... | head` closes the pipe early: not an error.
        sys.stderr.close()
        sys.exit(0)
