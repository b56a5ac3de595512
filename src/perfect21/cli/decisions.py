"""``perfect21 decisions add|list|show|search|supersede|stats|export|import``.

A thin layer over :class:`perfect21.decisions.store.SyncDecisionStore`; the store module is
imported inside the commands and never pulls in asyncio.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from perfect21.cli._common import config_from, echo_json, is_tty, read_text_arg

if TYPE_CHECKING:
    from perfect21.decisions.models import Decision
    from perfect21.decisions.store import SyncDecisionStore

STATUSES = ("proposed", "accepted", "rejected", "deprecated", "superseded")
_FORMAT = click.Choice(("table", "json"))


def _open(ctx: click.Context) -> SyncDecisionStore:
    from perfect21.decisions.store import SyncDecisionStore

    return SyncDecisionStore.open(ctx.obj.get("db"), config=config_from())


def _rows(items: list[Decision]) -> None:
    """A table on a terminal (rich), plain aligned text otherwise."""
    if not items:
        click.echo("no decisions", err=True)
        return
    if is_tty():
        from rich.console import Console
        from rich.table import Table

        table = Table("ref", "status", "created", "title", "tags")
        for d in items:
            table.add_row(d.ref, d.status.value, d.created[:10], d.title, " ".join(d.tags))
        Console().print(table)
        return
    width = max(len(d.ref) for d in items)
    for d in items:
        tags = f"  [{' '.join(d.tags)}]" if d.tags else ""
        title = " ".join(d.title.split())
        click.echo(f"{d.ref:<{width}}  {d.status.value:<10}  {d.created[:10]}  {title}{tags}")


def _dump(items: list[Decision]) -> None:
    echo_json([d.to_dict() for d in items])


@click.group("decisions")
@click.option("--db", type=click.Path(dir_okay=False, path_type=Path),
              help="Database file (default: <home>/decisions.db, home = ./.perfect21).")
@click.pass_context
def decisions(ctx: click.Context, db: Path | None) -> None:
    """Record, list, search and export architecture decisions (ADRs).

    \b
    Examples:
      perfect21 decisions add --title "Use PostgreSQL" --context "need joins" \\
          --decision PostgreSQL --option PostgreSQL --option MongoDB --tag db
      perfect21 decisions list --status accepted --since 2025-09-01
      perfect21 decisions show ADR-0012
      perfect21 decisions search "jwt 会话"
      perfect21 decisions export docs/adr
      perfect21 decisions import ../legacy

    Records are durable when a command returns (SQLite, synchronous=FULL). Search covers a
    new record within about a second (it is indexed off the write path).
    """
    ctx.ensure_object(dict)
    ctx.obj["db"] = db


@decisions.command("add")
@click.option("--title", required=True, help="Short title: the problem and the solution.")
@click.option("--context", default="", help="Context and problem statement ('-' = stdin).")
@click.option("--decision", "decision_text", default="", help="The chosen option / outcome.")
@click.option("--rationale", default="", help="Why this option.")
@click.option("--option", "options", multiple=True, help="A considered option (repeatable).")
@click.option("--consequence", "consequences", multiple=True,
              help="A consequence (repeatable).")
@click.option("--tag", "tags", multiple=True, help="A tag without spaces (repeatable).")
@click.option("--decider", "deciders", multiple=True, help="Who decided (repeatable).")
@click.option("--agent", "agents", multiple=True, help="An agent involved (repeatable).")
@click.option("--status", type=click.Choice(STATUSES), default="proposed", show_default=True)
@click.option("--format", "fmt", type=click.Choice(("text", "json")), default="text",
              show_default=True)
@click.pass_context
def add(ctx: click.Context, title: str, context: str, decision_text: str, rationale: str,
        options: tuple[str, ...], consequences: tuple[str, ...], tags: tuple[str, ...],
        deciders: tuple[str, ...], agents: tuple[str, ...], status: str, fmt: str) -> None:
    """Record a decision; prints its number (ADR-0012) and id once it is durable.

    \b
    Example:
      perfect21 decisions add --title "Use PostgreSQL" --decision PostgreSQL \\
          --option PostgreSQL --option MongoDB --consequence "team learns SQL" --tag db
    """  # fmt: skip
    from perfect21.decisions.models import Decision, Option, Status

    d = Decision(
        title=title,
        context=read_text_arg(context, what="--context"),
        decision=decision_text,
        rationale=rationale,
        options=tuple(Option(name) for name in options),
        consequences=consequences,
        tags=tags,
        deciders=deciders,
        agents=agents,
        status=Status.parse(status),
    )
    with _open(ctx) as store:
        stored = store.record(d)
    if fmt == "json":
        echo_json(stored.to_dict())
    else:
        click.echo(f"recorded {stored.ref} {stored.id}  {stored.title}")


@decisions.command("list")
@click.option("--status", type=click.Choice(STATUSES), help="Only this status.")
@click.option("--tag", help="Only decisions with this tag.")
@click.option("--since", help="Created on or after this date (YYYY-MM-DD or ISO 8601, UTC).")
@click.option("--limit", type=click.IntRange(1, 10_000), default=50, show_default=True)
@click.option("--format", "fmt", type=_FORMAT, default="table", show_default=True)
@click.pass_context
def list_(ctx: click.Context, status: str | None, tag: str | None, since: str | None,
          limit: int, fmt: str) -> None:
    """List decisions, newest first.

    \b
    Example:
      perfect21 decisions list --status accepted --tag db --since 2025-09-01
    """  # fmt: skip
    with _open(ctx) as store:
        items = store.list(status=status, tag=tag, since=since, limit=limit)
    _dump(items) if fmt == "json" else _rows(items)


@decisions.command("show")
@click.argument("ref")
@click.option("--format", "fmt", type=click.Choice(("markdown", "json")), default="markdown",
              show_default=True)
@click.pass_context
def show(ctx: click.Context, ref: str, fmt: str) -> None:
    """Show one decision by number (12, ADR-0012), id, or unique legacy id.

    \b
    Example:
      perfect21 decisions show ADR-0012 --format json
    """
    with _open(ctx) as store:
        d = store.get(ref)
        if fmt == "json":
            echo_json(d.to_dict())
            return
        from perfect21.decisions.export import render_madr

        def link(decision_id: str) -> str | None:
            from perfect21._errors import NotFoundError

            try:
                return store.get(decision_id).ref
            except NotFoundError:
                return None

        click.echo(f"<!-- {d.ref} -->\n" + render_madr(d, link))


@decisions.command("search")
@click.argument("query")
@click.option("--status", type=click.Choice(STATUSES), help="Only this status.")
@click.option("--limit", type=click.IntRange(1, 10_000), default=20, show_default=True)
@click.option("--format", "fmt", type=_FORMAT, default="table", show_default=True)
@click.pass_context
def search(ctx: click.Context, query: str, status: str | None, limit: int, fmt: str) -> None:
    """Full-text search in English and Chinese; every word must match; newest first.

    Chinese matches as exact substrings of any length ("会话" finds 会话管理); other words
    match by prefix, also inside camel case ("postgres" and "sql" find PostgreSQL).

    The index is updated off the write path and may lag a write by up to about a second;
    this command first indexes anything still waiting, so its results are complete.

    \b
    Example:
      perfect21 decisions search "jwt 会话"
    """
    with _open(ctx) as store:
        store.wait_indexed()
        items = store.search(query, limit=limit, status=status)
    _dump(items) if fmt == "json" else _rows(items)


@decisions.command("supersede")
@click.argument("old")
@click.option("--by", "new", required=True, help="The decision that replaces OLD.")
@click.pass_context
def supersede(ctx: click.Context, old: str, new: str) -> None:
    """Mark OLD as superseded by another decision (both: number or id).

    \b
    Example:
      perfect21 decisions supersede ADR-0003 --by ADR-0012
    """
    with _open(ctx) as store:
        old_d, new_d = store.supersede(old, new)
    click.echo(f"{old_d.ref} is superseded by {new_d.ref}")


@decisions.command("stats")
@click.option("--format", "fmt", type=click.Choice(("text", "json")), default="text",
              show_default=True)
@click.pass_context
def stats(ctx: click.Context, fmt: str) -> None:
    """Counts by status and tag, time range, and the search index backlog."""
    with _open(ctx) as store:
        data: dict[str, Any] = {"path": str(store.path), **store.stats()}
    if fmt == "json":
        echo_json(data)
        return
    click.echo(f"store:    {data['path']}")
    click.echo(f"total:    {data['total']}  (imported: {data['imported']})")
    click.echo("status:   " + ", ".join(f"{k} {v}" for k, v in data["by_status"].items()))
    if data["top_tags"]:
        click.echo("tags:     " + ", ".join(f"{k} {v}" for k, v in data["top_tags"].items()))
    if data["total"]:
        click.echo(f"created:  {data['first_created']} … {data['last_created']}")
    click.echo(f"search:   indexed up to ADR-{data['search_indexed_upto']:04d}"
               f" (backlog {data['search_backlog']})")  # fmt: skip


@decisions.command("export")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.pass_context
def export(ctx: click.Context, directory: Path) -> None:
    """Write every decision as Markdown: NNNN-slug.md (adr-tools names), MADR layout.

    \b
    Example:
      perfect21 decisions export docs/adr
    """
    from perfect21.decisions.export import export_markdown

    with _open(ctx) as store:
        files = export_markdown(store, directory)
    click.echo(f"wrote {len(files)} file(s) to {directory}")


@decisions.command("import")
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--format", "fmt", type=click.Choice(("text", "json")), default="text",
              show_default=True)
@click.pass_context
def import_(ctx: click.Context, path: Path, fmt: str) -> None:
    """Import the old system's decisions: a decisions.json, an ADR-*.json, or a folder.

    Every valid record is imported (records that share a legacy id are kept apart); importing
    again adds nothing. Invalid records and unreadable files are listed with their location;
    the exit status is 1 if anything was skipped, 0 otherwise.

    \b
    Example:
      perfect21 decisions import ../shared/data/legacy
    """
    from perfect21.decisions.legacy import import_legacy

    with _open(ctx) as store:
        report = import_legacy(store, path)
    if fmt == "json":
        echo_json(report.to_dict())
    else:
        click.echo(f"read {report.read} record(s) from {len(report.files)} file(s): "
                   f"{report.added} added, {report.existing} already imported, "
                   f"{report.skipped} skipped")  # fmt: skip
        for problem in report.problems:
            click.echo(f"skipped {problem}", err=True)
    if report.problems:
        raise SystemExit(1)  # not ctx.exit: with standalone_mode=False click would return it
