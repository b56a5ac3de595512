"""``perfect21 agents list|show``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from perfect21._errors import InputError
from perfect21.cli._common import add_command, echo, is_tty, subcommands
from perfect21.cli.plan import add_agent_options, make_planner, quiet_broken_pipe

DESCRIPTION = """\
List and show the agents of the catalog (built-in and yours).

Examples:
  perfect21 agents list
  perfect21 agents list --category quality --format json
  perfect21 agents show security-auditor
"""


def configure(parser: argparse.ArgumentParser) -> None:
    parser.description = DESCRIPTION
    subs = subcommands(parser)
    p = add_command(subs, "list", list_agents)
    p.add_argument("--category", help="Only this category (e.g. quality, development).")
    p.add_argument("--format", dest="fmt", choices=("text", "json"), default="text",
                   help="[default: text]")
    add_agent_options(p)
    p = add_command(subs, "show", show_agent)
    p.add_argument("name", metavar="NAME")
    p.add_argument("--format", dest="fmt", choices=("text", "json"), default="text",
                   help="[default: text]")
    add_agent_options(p)


def list_agents(
    category: str | None, fmt: str, agents_dirs: list[Path], no_builtin: bool
) -> None:
    """List agents with category, stage, origin and description."""
    quiet_broken_pipe()
    catalog = make_planner(agents_dirs, no_builtin).catalog
    chosen = list(catalog.agents)
    if category is not None:
        if category not in catalog.categories:
            raise InputError(
                f"unknown category {category!r}; valid: {', '.join(catalog.categories)}"
            )
        chosen = [a for a in chosen if a.category == category]
    if fmt == "json":
        rows = [a.to_dict() | {"prompt": None} for a in chosen]
        echo(json.dumps([{k: v for k, v in r.items() if v is not None} for r in rows],
                              ensure_ascii=False, indent=2))
        return
    if is_tty():
        from rich.console import Console
        from rich.table import Table

        table = Table("agent", "category", "stage", "origin", "description")
        for a in chosen:
            table.add_row(a.name, a.category, a.stage, "built-in" if a.builtin else "user",
                          a.description)
        Console().print(table)
        return
    width = max((len(a.name) for a in chosen), default=5)
    for a in chosen:
        origin = "built-in" if a.builtin else "user"
        echo(f"{a.name:<{width}}  {a.category:<14} {a.stage:<9} {origin:<8} "
                   f"{a.description}")


def show_agent(name: str, fmt: str, agents_dirs: list[Path], no_builtin: bool) -> None:
    """Show one agent: metadata, keywords and its system prompt."""
    quiet_broken_pipe()
    agent = make_planner(agents_dirs, no_builtin).catalog.require(name)
    if fmt == "json":
        echo(json.dumps(agent.to_dict(), ensure_ascii=False, indent=2))
        return
    echo(f"name:        {agent.name}")
    echo(f"category:    {agent.category}")
    echo(f"stage:       {agent.stage}")
    echo(f"origin:      {'built-in' if agent.builtin else 'user'} ({agent.source})")
    echo(f"tools:       {', '.join(agent.tools) or '-'}")
    echo(f"keywords:    {', '.join(agent.keywords) or '-'}")
    echo(f"keywords_zh: {', '.join(agent.keywords_zh) or '-'}")
    echo(f"description: {agent.description}")
    echo("")
    echo(agent.prompt)
