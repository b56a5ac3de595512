"""``perfect21 agents list|show``."""

from __future__ import annotations

import json
from pathlib import Path

import click

from perfect21._errors import InputError
from perfect21.cli._common import is_tty
from perfect21.cli.plan import agent_options, make_planner, quiet_broken_pipe


@click.group("agents")
def agents() -> None:
    """List and show the agents of the catalog (built-in and yours).

    \b
    Examples:
      perfect21 agents list
      perfect21 agents list --category quality --format json
      perfect21 agents show security-auditor
    """
    quiet_broken_pipe()


@agents.command("list")
@click.option("--category", help="Only this category (e.g. quality, development).")
@click.option("--format", "fmt", type=click.Choice(("text", "json")), default="text",
              show_default=True)
@agent_options
def list_agents(
    category: str | None, fmt: str, agents_dirs: tuple[Path, ...], no_builtin: bool
) -> None:
    """List agents with category, stage, origin and description."""
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
        click.echo(json.dumps([{k: v for k, v in r.items() if v is not None} for r in rows],
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
        click.echo(f"{a.name:<{width}}  {a.category:<14} {a.stage:<9} {origin:<8} "
                   f"{a.description}")


@agents.command("show")
@click.argument("name")
@click.option("--format", "fmt", type=click.Choice(("text", "json")), default="text",
              show_default=True)
@agent_options
def show_agent(name: str, fmt: str, agents_dirs: tuple[Path, ...], no_builtin: bool) -> None:
    """Show one agent: metadata, keywords and its system prompt."""
    agent = make_planner(agents_dirs, no_builtin).catalog.require(name)
    if fmt == "json":
        click.echo(json.dumps(agent.to_dict(), ensure_ascii=False, indent=2))
        return
    click.echo(f"name:        {agent.name}")
    click.echo(f"category:    {agent.category}")
    click.echo(f"stage:       {agent.stage}")
    click.echo(f"origin:      {'built-in' if agent.builtin else 'user'} ({agent.source})")
    click.echo(f"tools:       {', '.join(agent.tools) or '-'}")
    click.echo(f"keywords:    {', '.join(agent.keywords) or '-'}")
    click.echo(f"keywords_zh: {', '.join(agent.keywords_zh) or '-'}")
    click.echo(f"description: {agent.description}")
    click.echo("")
    click.echo(agent.prompt)
