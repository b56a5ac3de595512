"""``perfect21 decisions add|list|show|search|supersede|stats|export|import``.

A thin layer over :class:`perfect21.decisions.store.SyncDecisionStore`; the store module is
imported inside the commands and never pulls in asyncio.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from perfect21.cli._common import (
    add_command,
    config_from,
    dir_path,
    echo,
    echo_json,
    file_path,
    int_range,
    is_tty,
    read_text_arg,
    subcommands,
)

if TYPE_CHECKING:
    import argparse

    from perfect21.decisions.models import Decision
    from perfect21.decisions.store import SyncDecisionStore

STATUSES = ("proposed", "accepted", "rejected", "deprecated", "superseded")


DESCRIPTION = """\
Record, list, search and export architecture decisions (ADRs).

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


def configure(parser: argparse.ArgumentParser) -> None:
    parser.description = DESCRIPTION
    parser.add_argument(
        "--db", type=file_path, metavar="FILE",
        help="Database file (default: <home>/decisions.db, home = ./.perfect21).",
    )
    subs = subcommands(parser)

    p = add_command(subs, "add", add)
    p.add_argument("--title", required=True, metavar="TEXT",
                   help="Short title: the problem and the solution.")
    p.add_argument("--context", default="", metavar="TEXT",
                   help="Context and problem statement ('-' = stdin).")
    p.add_argument("--decision", dest="decision_text", default="", metavar="TEXT",
                   help="The chosen option / outcome.")
    p.add_argument("--rationale", default="", metavar="TEXT", help="Why this option.")
    for flag, dest, metavar, text in (
        ("--option", "options", "TEXT", "A considered option (repeatable)."),
        ("--consequence", "consequences", "TEXT", "A consequence (repeatable)."),
        ("--tag", "tags", "TAG", "A tag without spaces (repeatable)."),
        ("--decider", "deciders", "NAME", "Who decided (repeatable)."),
        ("--agent", "agents", "NAME", "An agent involved (repeatable)."),
    ):
        p.add_argument(flag, dest=dest, action="append", default=[], metavar=metavar, help=text)
    p.add_argument("--status", choices=STATUSES, default="proposed",
                   help="[default: proposed]")
    _format(p, ("text", "json"))

    p = add_command(subs, "list", list_)
    p.add_argument("--status", choices=STATUSES, help="Only this status.")
    p.add_argument("--tag", help="Only decisions with this tag.")
    p.add_argument("--since", metavar="DATE",
                   help="Created on or after this date (YYYY-MM-DD or ISO 8601, UTC).")
    p.add_argument("--limit", type=int_range(1, 10_000), default=50, metavar="N",
                   help="[default: 50; 1<=x<=10000]")
    _format(p, ("table", "json"))

    p = add_command(subs, "show", show)
    p.add_argument("ref", metavar="REF")
    _format(p, ("markdown", "json"))

    p = add_command(subs, "search", search)
    p.add_argument("query", metavar="QUERY")
    p.add_argument("--status", choices=STATUSES, help="Only this status.")
    p.add_argument("--limit", type=int_range(1, 10_000), default=20, metavar="N",
                   help="[default: 20; 1<=x<=10000]")
    _format(p, ("table", "json"))

    p = add_command(subs, "supersede", supersede)
    p.add_argument("old", metavar="OLD")
    p.add_argument("--by", dest="new", required=True, help="The decision that replaces OLD.")

    p = add_command(subs, "stats", stats)
    _format(p, ("text", "json"))

    p = add_command(subs, "export", export)
    p.add_argument("directory", type=dir_path, metavar="DIRECTORY")

    p = add_command(subs, "import", import_)
    p.add_argument("path", type=Path, metavar="PATH")
    _format(p, ("text", "json"))


def _format(parser: argparse.ArgumentParser, choices: tuple[str, str]) -> None:
    parser.add_argument("--format", dest="fmt", choices=choices, default=choices[0],
                        help=f"[default: {choices[0]}]")


def _open(db: Path | None) -> SyncDecisionStore:
    from perfect21.decisions.store import SyncDecisionStore

    return SyncDecisionStore.open(db, config=config_from())


def _rows(items: list[Decision]) -> None:
    """A table on a terminal (rich), plain aligned text otherwise."""
    if not items:
        echo("no decisions", err=True)
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
        echo(f"{d.ref:<{width}}  {d.status.value:<10}  {d.created[:10]}  {title}{tags}")


def _dump(items: list[Decision]) -> None:
    echo_json([d.to_dict() for d in items])


def add(db: Path | None, title: str, context: str, decision_text: str, rationale: str,
        options: list[str], consequences: list[str], tags: list[str], deciders: list[str],
        agents: list[str], status: str, fmt: str) -> None:
    """Record a decision; prints its number (ADR-0012) and id once it is durable.

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
        consequences=tuple(consequences),
        tags=tuple(tags),
        deciders=tuple(deciders),
        agents=tuple(agents),
        status=Status.parse(status),
    )
    with _open(db) as store:
        stored = store.record(d)
    if fmt == "json":
        echo_json(stored.to_dict())
    else:
        echo(f"recorded {stored.ref} {stored.id}  {stored.title}")


def list_(db: Path | None, status: str | None, tag: str | None, since: str | None,
          limit: int, fmt: str) -> None:
    """List decisions, newest first.

    Example:
      perfect21 decisions list --status accepted --tag db --since 2025-09-01
    """  # fmt: skip
    with _open(db) as store:
        items = store.list(status=status, tag=tag, since=since, limit=limit)
    _dump(items) if fmt == "json" else _rows(items)


def show(db: Path | None, ref: str, fmt: str) -> None:
    """Show one decision by number (12, ADR-0012), id, or unique legacy id.

    Example:
      perfect21 decisions show ADR-0012 --format json
    """
    with _open(db) as store:
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

        echo(f"<!-- {d.ref} -->\n" + render_madr(d, link))


def search(db: Path | None, query: str, status: str | None, limit: int, fmt: str) -> None:
    """Full-text search in English and Chinese; every word must match; newest first.

    Chinese matches as exact substrings of any length ("会话" finds 会话管理); other words
    match by prefix, also inside camel case ("postgres" and "sql" find PostgreSQL).

    The index is updated off the write path and may lag a write by up to about a second;
    this command first indexes anything still waiting, so its results are complete.

    Example:
      perfect21 decisions search "jwt 会话"
    """
    with _open(db) as store:
        store.wait_indexed()
        items = store.search(query, limit=limit, status=status)
    _dump(items) if fmt == "json" else _rows(items)


def supersede(db: Path | None, old: str, new: str) -> None:
    """Mark OLD as superseded by another decision (both: number or id).

    Example:
      perfect21 decisions supersede ADR-0003 --by ADR-0012
    """
    with _open(db) as store:
        old_d, new_d = store.supersede(old, new)
    echo(f"{old_d.ref} is superseded by {new_d.ref}")


def stats(db: Path | None, fmt: str) -> None:
    """Counts by status and tag, time range, and the search index backlog."""
    with _open(db) as store:
        data: dict[str, Any] = {"path": str(store.path), **store.stats()}
    if fmt == "json":
        echo_json(data)
        return
    echo(f"store:    {data['path']}")
    echo(f"total:    {data['total']}  (imported: {data['imported']})")
    echo("status:   " + ", ".join(f"{k} {v}" for k, v in data["by_status"].items()))
    if data["top_tags"]:
        echo("tags:     " + ", ".join(f"{k} {v}" for k, v in data["top_tags"].items()))
    if data["total"]:
        echo(f"created:  {data['first_created']} … {data['last_created']}")
    echo(f"search:   indexed up to ADR-{data['search_indexed_upto']:04d}"
               f" (backlog {data['search_backlog']})")  # fmt: skip


def export(db: Path | None, directory: Path) -> None:
    """Write every decision as Markdown: NNNN-slug.md (adr-tools names), MADR layout.

    Example:
      perfect21 decisions export docs/adr
    """
    from perfect21.decisions.export import export_markdown

    with _open(db) as store:
        files = export_markdown(store, directory)
    echo(f"wrote {len(files)} file(s) to {directory}")


def import_(db: Path | None, path: Path, fmt: str) -> None:
    """Import the old system's decisions: a decisions.json, an ADR-*.json, or a folder.

    Every valid record is imported (records that share a legacy id are kept apart); importing
    again adds nothing. Invalid records and unreadable files are listed with their location;
    the exit status is 1 if anything was skipped, 0 otherwise.

    Example:
      perfect21 decisions import ../shared/data/legacy
    """
    from perfect21.decisions.legacy import import_legacy

    with _open(db) as store:
        report = import_legacy(store, path)
    if fmt == "json":
        echo_json(report.to_dict())
    else:
        echo(f"read {report.read} record(s) from {len(report.files)} file(s): "
                   f"{report.added} added, {report.existing} already imported, "
                   f"{report.skipped} skipped")  # fmt: skip
        for problem in report.problems:
            echo(f"skipped {problem}", err=True)
    if report.problems:
        raise SystemExit(1)
