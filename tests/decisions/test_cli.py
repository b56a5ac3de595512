"""``perfect21 decisions …`` as a user runs it: real processes, exit codes, output formats."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from .conftest import RunCli


def test_add_list_show_search(run_cli: RunCli) -> None:
    out = run_cli("decisions", "add", "--title", "Use PostgreSQL", "--context",
                  "需要JWT认证和会话管理", "--decision", "PostgreSQL", "--option", "PostgreSQL",
                  "--option", "MongoDB", "--consequence", "team learns SQL", "--tag", "db",
                  "--status", "accepted")  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("recorded ADR-0001 ")
    out = run_cli("decisions", "add", "--title", "Cache with Redis", "--tag", "ops",
                  "--format", "json")  # fmt: skip
    record = json.loads(out.stdout)
    assert record["number"] == 2 and record["status"] == "proposed"

    out = run_cli("decisions", "list")  # not a TTY: plain text, newest first
    lines = out.stdout.splitlines()
    assert lines[0].startswith("ADR-0002  proposed") and "Cache with Redis  [ops]" in lines[0]
    assert lines[1].startswith("ADR-0001  accepted")
    out = run_cli("decisions", "list", "--status", "accepted", "--tag", "db", "--format", "json")
    assert [d["title"] for d in json.loads(out.stdout)] == ["Use PostgreSQL"]
    out = run_cli("decisions", "list", "--since", "2999-01-01")
    assert out.returncode == 0 and out.stdout == "" and "no decisions" in out.stderr

    out = run_cli("decisions", "show", "1")
    assert "# Use PostgreSQL" in out.stdout and "* MongoDB" in out.stdout
    out = run_cli("decisions", "show", record["id"], "--format", "json")
    assert json.loads(out.stdout)["title"] == "Cache with Redis"

    out = run_cli("decisions", "search", "jwt 会话")
    assert out.returncode == 0 and out.stdout.startswith("ADR-0001")
    out = run_cli("decisions", "search", "redis", "--format", "json")
    assert [d["number"] for d in json.loads(out.stdout)] == [2]


def test_errors_map_to_exit_codes(run_cli: RunCli) -> None:
    out = run_cli("decisions", "show", "ADR-0042")
    assert out.returncode == 3 and "decision not found: ADR-0042" in out.stderr
    out = run_cli("decisions", "add", "--title", "x" * 501)
    assert out.returncode == 2 and "title: too long (501 characters; the limit is 500)" in (
        out.stderr
    )
    out = run_cli("decisions", "add", "--title", "t", "--tag", "two words")
    assert out.returncode == 2 and "tags:" in out.stderr
    out = run_cli("decisions", "list", "--since", "last week")
    assert out.returncode == 2 and "since:" in out.stderr
    out = run_cli("decisions", "search", "   ")
    assert out.returncode == 2 and "nothing to search for" in out.stderr
    out = run_cli("decisions", "supersede", "1", "--by", "2")
    assert out.returncode == 3


def test_supersede_stats_export(run_cli: RunCli, tmp_path: Path) -> None:
    for title in ("Use MySQL", "Use PostgreSQL"):
        run_cli("decisions", "add", "--title", title, "--status", "accepted")
    out = run_cli("decisions", "supersede", "ADR-0001", "--by", "2")
    assert out.returncode == 0 and out.stdout.strip() == "ADR-0001 is superseded by ADR-0002"
    out = run_cli("decisions", "stats", "--format", "json")
    stats = json.loads(out.stdout)
    assert stats["total"] == 2 and stats["by_status"]["superseded"] == 1
    out = run_cli("decisions", "stats")
    assert "total:    2" in out.stdout
    out = run_cli("decisions", "export", str(tmp_path / "adr"))
    assert out.returncode == 0 and "wrote 2 file(s)" in out.stdout
    assert (tmp_path / "adr" / "0002-use-postgresql.md").is_file()


def test_db_option_and_not_a_database(run_cli: RunCli, tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("hello\n")
    out = run_cli("decisions", "--db", str(notes), "list")
    assert out.returncode == 1 and "not a SQLite database" in out.stderr
    assert notes.read_text() == "hello\n"
    other = tmp_path / "other.db"
    assert run_cli("decisions", "--db", str(other), "add", "--title", "x").returncode == 0
    assert other.is_file()


def test_help_states_the_search_lag(run_cli: RunCli) -> None:
    out = run_cli("decisions", "search", "--help")
    assert "lag" in out.stdout and "second" in out.stdout
    out = run_cli("decisions", "--help")
    for command in ("add", "list", "show", "search", "supersede", "stats", "export", "import"):
        assert command in out.stdout


def test_decisions_list_does_not_import_asyncio_or_rich(tmp_path: Path) -> None:
    """CLI start-up stays light: the synchronous store needs neither."""
    code = (
        "import sys\n"
        "from perfect21.cli import main\n"
        "try:\n"
        "    main(['decisions', 'list'])\n"
        "finally:\n"
        "    heavy = [m for m in ('asyncio', 'rich', 'concurrent.futures', 'perfect21.planner')\n"
        "             if m in sys.modules]\n"
        "    print('HEAVY', heavy, file=sys.stderr)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=tmp_path, timeout=60, check=False)  # fmt: skip
    assert "HEAVY []" in out.stderr, out.stderr
