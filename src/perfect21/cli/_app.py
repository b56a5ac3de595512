"""Root click group with lazily imported subcommands, and the one error-to-exit-code map."""

from __future__ import annotations

import importlib
import sys
from typing import Any

import click

from perfect21 import __version__
from perfect21._errors import Perfect21Error

# command name -> "module:attribute"; modules are imported only when the command runs.
COMMANDS: dict[str, tuple[str, str]] = {
    "plan": ("perfect21.cli.plan:plan", "Generate a phased multi-agent workflow for a request."),
    "agents": ("perfect21.cli.agents:agents", "List and show the agents of the catalog."),
    "decisions": ("perfect21.cli.decisions:decisions", "Record, search and export ADRs."),
    "run": ("perfect21.cli.run:run", "Run a workflow: agents in parallel, gates at sync points."),
    "runs": ("perfect21.cli.run:runs", "List, show and resume runs."),
    "cache": ("perfect21.cli.cache:cache", "Inspect, warm and clear the layered cache."),
    "monitor": ("perfect21.cli.monitor:monitor", "Live memory, KPIs and alerts."),
    "metrics": ("perfect21.cli.monitor:metrics", "Print KPIs in Prometheus text format."),
    "alerts": ("perfect21.cli.monitor:alerts", "Evaluate alert rules."),
    "serve": ("perfect21.cli.serve:serve", "Serve the HTTP API and dashboard."),
    "bench": ("perfect21.cli.bench:bench", "Benchmarks with baselines measured in the same run."),
}


class LazyGroup(click.Group):
    """A click group whose subcommands are imported on first use."""

    def __init__(self, *args: Any, lazy: dict[str, tuple[str, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._lazy = lazy

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self._lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self._lazy:
            target = self._lazy[cmd_name][0]
            module_name, attr = target.split(":")
            module = importlib.import_module(module_name)
            command = getattr(module, attr)
            assert isinstance(command, click.Command)
            return command
        return super().get_command(ctx, cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # Help text comes from the table, so `--help` does not import every command module.
        rows = [(name, self._lazy[name][1]) for name in sorted(self._lazy)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(
    cls=LazyGroup,
    lazy=COMMANDS,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(__version__, "--version", "-V", prog_name="perfect21")
def cli() -> None:
    """Perfect21 — plan, run and record multi-agent AI software work.

    \b
    Examples:
      perfect21 plan "实现用户登录功能，使用JWT认证"
      perfect21 plan "fix the flaky checkout test" --format json
      perfect21 agents list --category quality
      perfect21 run "add rate limiting to the API" --runner claude
      perfect21 decisions search "jwt 会话"

    Settings: defaults < perfect21.toml < PERFECT21_* environment < flags.
    Data lives in ./.perfect21 (override with PERFECT21_HOME).
    """


def run(args: list[str]) -> None:
    """Run the CLI and map Perfect21 errors to exit codes (the one place that does so)."""
    try:
        # Without standalone mode click *returns* the code of ctx.exit(n) instead of exiting.
        code = cli.main(args=args, prog_name="perfect21", standalone_mode=False)
        if isinstance(code, int) and code:
            sys.exit(code)
    except Perfect21Error as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
    except BrokenPipeError:
        # `perfect21 plan ... | head` closes the pipe early: not an error.
        sys.stderr.close()
        sys.exit(0)
