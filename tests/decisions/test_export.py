"""Markdown export: adr-tools names, MADR sections, links between superseding records."""

from __future__ import annotations

import re
from pathlib import Path

from perfect21.decisions import Decision, Option, SyncDecisionStore
from perfect21.decisions.export import export_markdown, filename, render_madr, slug

from .conftest import sample


def test_slug_and_file_name() -> None:
    assert slug("Use PostgreSQL for the orders DB!") == "use-postgresql-for-the-orders-db"
    assert slug("认证方式: JWT 还是 Session?") == "认证方式-jwt-还是-session"
    assert slug("???") == "decision"
    assert len(slug("x" * 200)) == 60
    assert filename(Decision(title="Use Redis", number=7)) == "0007-use-redis.md"


def test_madr_layout() -> None:
    d = sample(number=3, id="01ARZ3NDEKTSV4RRFFQ69G5FAV", created="2025-09-17T10:00:00Z",
               updated="2025-09-18T10:00:00Z", status="accepted")  # fmt: skip
    text = render_madr(d)
    headings = re.findall(r"^#+ .*$", text, flags=re.M)
    assert headings == [
        "# Use PostgreSQL",
        "## Context and Problem Statement",
        "## Considered Options",
        "## Decision Outcome",
        "### Consequences",
        "## Pros and Cons of the Options",
        "### PostgreSQL",
        "### MongoDB",
        "## More Information",
    ]
    assert text.startswith('---\nstatus: "accepted"\ndate: 2025-09-18\n')
    assert 'Chosen option: "PostgreSQL", because mature and the team knows it' in text
    assert "* Good, because mature\n* Bad, because ops cost" in text
    assert "* 更好的数据一致性" in text


def test_export_writes_every_decision_and_links_supersession(
    store: SyncDecisionStore, tmp_path: Path
) -> None:
    store.record(sample("Use MySQL"))
    store.record(Decision(title="认证方式", options=[Option("JWT")], decision="JWT"))
    store.record(sample("Use PostgreSQL"))
    store.supersede(1, 3)
    out = tmp_path / "docs" / "adr"
    files = export_markdown(store, out)
    assert sorted(p.name for p in out.iterdir()) == [
        "0001-use-mysql.md", "0002-认证方式.md", "0003-use-postgresql.md"
    ]  # fmt: skip
    assert files == sorted(files)
    old = (out / "0001-use-mysql.md").read_text(encoding="utf-8")
    assert 'status: "superseded by [ADR-0003](0003-use-postgresql.md)"' in old
    new = (out / "0003-use-postgresql.md").read_text(encoding="utf-8")
    assert "Supersedes [ADR-0001](0001-use-mysql.md)." in new
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    export_markdown(store, out)  # again: same files, same bytes
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
