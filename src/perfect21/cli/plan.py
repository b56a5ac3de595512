"""``perfect21 plan``: a phased multi-agent workflow for a request."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from perfect21._errors import InputError, NotFoundError
from perfect21.cli._common import config_from, doc_text, echo, is_tty, read_text_arg

if TYPE_CHECKING:
    import argparse

    from perfect21.planner import Planner
    from perfect21.planner.models import Plan

FORMATS = ("text", "json", "mermaid", "claude")


def quiet_broken_pipe() -> None:
    """Die quietly like other Unix filters when the reader goes away (``... | head``).

    Only for commands that just print: servers and runners keep Python's SIGPIPE=ignore so
    a closed socket or pipe is an exception, not a silent death.
    """
    import signal

    if hasattr(signal, "SIGPIPE"):
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)


def _warn_problems(planner: object) -> None:
    for problem in getattr(getattr(planner, "catalog", None), "problems", ()):
        echo(f"warning: skipped agent file {problem}", err=True)


def add_agent_options(parser: argparse.ArgumentParser) -> None:
    """--agents-dir / --no-builtin, shared by plan and agents."""
    parser.add_argument(
        "--agents-dir", dest="agents_dirs", action="append", type=Path, default=[],
        metavar="PATH",
        help="Extra folder of Claude Code agent files (repeatable; later ones win).",
    )
    parser.add_argument(
        "--no-builtin", action="store_true",
        help="Use only your agents (.claude/agents, ~/.claude/agents, --agents-dir).",
    )


def make_planner(
    agents_dirs: Sequence[Path], no_builtin: bool, team_size: str | None = None
) -> Planner:
    from perfect21.planner import parse_team_size

    config = config_from()  # a missing --agents-dir is reported by the catalog loader
    bounds = parse_team_size(team_size) if team_size else None
    from perfect21.planner import Planner

    planner = Planner.from_config(
        config, agents_dirs=agents_dirs, builtin=False if no_builtin else None, bounds=bounds
    )
    _warn_problems(planner)
    return planner


def configure(parser: argparse.ArgumentParser) -> None:
    parser.description = doc_text(plan.__doc__)
    parser.add_argument("request", nargs="?", metavar="REQUEST",
                        help="What to plan; - reads it from stdin.")
    parser.add_argument(
        "-f", "--format", dest="fmt", choices=FORMATS, default="text",
        help="text (rich on a terminal), json, mermaid flowchart, or a prompt for Claude Code."
        " [default: text]",
    )
    parser.add_argument("--explain", action="store_true",
                        help="Show why each agent was chosen or rejected.")
    parser.add_argument(
        "--batch", type=Path, metavar="PATH",
        help="JSON Lines file of {\"id\", \"request\"} (or - for stdin); one plan per line out.",
    )
    parser.add_argument(
        "--team-size", metavar="S-M-C",
        help="Team size per complexity: 4-6-8 (fixed, like the old system) or 1:3-3:6-5:8.",
    )
    parser.add_argument("--record", action="store_true",
                        help="Store the plan's decision as a proposed ADR.")
    add_agent_options(parser)
    parser.set_defaults(_handler=plan)


def plan(
    request: str | None,
    fmt: str,
    explain: bool,
    batch: Path | None,
    team_size: str | None,
    record: bool,
    agents_dirs: list[Path],
    no_builtin: bool,
) -> None:
    """Generate a phased multi-agent workflow for REQUEST (use - to read it from stdin).

    Examples:
      perfect21 plan "实现用户登录功能，使用JWT认证"
      perfect21 plan "Checkout is slow for users in Japan" --format json
      perfect21 plan "..." --format mermaid > plan.mmd
      perfect21 plan "..." --format claude | claude -p
      git log -1 --format=%B | perfect21 plan -
      perfect21 plan --batch requests.jsonl > plans.jsonl
      perfect21 plan "add SSO" --explain --agents-dir ./my-agents
    """
    quiet_broken_pipe()
    if batch is not None:
        if request is not None:
            raise InputError("give either REQUEST or --batch, not both")
        planner = make_planner(agents_dirs, no_builtin, team_size)
        failed = _run_batch(planner, batch)
        if failed:
            sys.exit(1)
        return
    if request is None:
        raise InputError('missing REQUEST: perfect21 plan "describe the task" (or - for stdin)')
    text = read_text_arg(request)
    if not text.strip():
        raise InputError("request is empty: describe the task to plan")
    planner = make_planner(agents_dirs, no_builtin, team_size)
    result = planner.plan(text)
    if fmt == "text" and is_tty():
        from perfect21.planner.render import render_rich

        render_rich(result, explain=explain)
    else:
        from perfect21.planner.render import render

        echo(render(result, fmt, explain=explain))
    if record:
        _record(result)


def _record(result: Plan) -> None:
    from perfect21.decisions.planner_hook import record_plan

    decision_id = record_plan(config_from(), result)
    echo(f"recorded decision {decision_id}", err=True)


def _run_batch(planner: Planner, path: Path) -> int:
    """Plan every line; report bad lines with their number on stderr. Returns #failed."""
    from perfect21.planner.render import to_json

    if str(path) == "-":
        stream = sys.stdin.buffer
    else:
        if not path.is_file():
            raise NotFoundError(f"--batch file not found: {path}")
        stream = path.open("rb")
    failed = 0
    out = sys.stdout
    with stream:
        for number, raw in enumerate(stream, 1):
            if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]  # a UTF-8 byte-order mark is not part of the first object
            if not raw.strip():
                continue
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                failed += 1
                echo(f"{path}:{number}: invalid UTF-8 at byte {exc.start}", err=True)
                continue
            try:
                item = json.loads(line)
            except json.JSONDecodeError as exc:
                failed += 1
                echo(f"{path}:{number}: invalid JSON: {exc.msg} (column {exc.colno})",
                           err=True)
                continue
            if not isinstance(item, dict) or not isinstance(item.get("request"), str):
                failed += 1
                echo(f"{path}:{number}: expected an object with a \"request\" string",
                           err=True)
                continue
            try:
                result = planner.plan(item["request"])
            except InputError as exc:
                failed += 1
                echo(f"{path}:{number}: {exc}", err=True)
                continue
            out.write(to_json(result, indent=None, extra={"input_id": item.get("id")}) + "\n")
    if failed:
        echo(f"{failed} line(s) could not be planned", err=True)
    return failed
