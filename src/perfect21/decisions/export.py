"""Markdown export: adr-tools file names (``NNNN-slug.md``) in the MADR 3 layout."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Protocol

from perfect21._errors import NotFoundError, StoreError
from perfect21._files import write_atomic
from perfect21.decisions.models import Decision, Status, format_number

__all__ = ["export_markdown", "filename", "render_madr", "slug"]

_NON_WORD = re.compile(r"[^\w]+")
MAX_SLUG = 60


class _Source(Protocol):
    def iter_all(self) -> Iterable[Decision]: ...
    def get(self, ref: str | int) -> Decision: ...


def slug(title: str) -> str:
    """adr-tools style: lower case, runs of anything but letters/digits become ``-``."""
    text = _NON_WORD.sub("-", title.lower().replace("_", "-")).strip("-")
    text = text[:MAX_SLUG].rstrip("-")
    return text or "decision"


def filename(d: Decision) -> str:
    """``0012-use-postgresql.md``."""
    return f"{d.number:04d}-{slug(d.title)}.md"


def _quote_yaml(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _bullets(items: Iterable[str]) -> list[str]:
    return [f"* {' '.join(item.split())}" for item in items]


def render_madr(d: Decision, link: Callable[[str], str | None] = lambda _id: None) -> str:
    """One decision as a MADR document. ``link(id)`` gives ``[ADR-0003](0003-x.md)`` text."""

    def ref(decision_id: str) -> str:
        return link(decision_id) or decision_id

    status = d.status.value
    if d.status is Status.SUPERSEDED and d.links.superseded_by:
        status = f"superseded by {ref(d.links.superseded_by)}"
    front = ["---", f"status: {_quote_yaml(status)}", f"date: {d.updated[:10] or d.created[:10]}"]
    if d.deciders:
        front.append(f"decision-makers: {_quote_yaml(', '.join(d.deciders))}")
    if d.agents:
        front.append(f"consulted: {_quote_yaml(', '.join(d.agents))}")
    if d.tags:
        front.append(f"tags: [{', '.join(_quote_yaml(t) for t in d.tags)}]")
    front.append("---")
    out = [*front, "", f"# {' '.join(d.title.split())}", ""]
    if d.links.supersedes:
        out += [f"Supersedes {', '.join(ref(i) for i in d.links.supersedes)}.", ""]
    out += ["## Context and Problem Statement", "", d.context.strip() or "_Not recorded._", ""]
    if d.options:
        out += ["## Considered Options", "", *_bullets(o.name for o in d.options), ""]
    out += ["## Decision Outcome", ""]
    if d.decision.strip():
        chosen = f'Chosen option: "{" ".join(d.decision.split())}"'
        rationale = " ".join(d.rationale.split())
        out += [f"{chosen}, because {rationale}" if rationale else chosen, ""]
    elif d.rationale.strip():
        out += [d.rationale.strip(), ""]
    else:
        out += ["_Not decided yet._", ""]
    if d.consequences:
        out += ["### Consequences", "", *_bullets(d.consequences), ""]
    if any(o.pros or o.cons for o in d.options):
        out += ["## Pros and Cons of the Options", ""]
        for option in d.options:
            out += [f"### {' '.join(option.name.split())}", ""]
            out += _bullets(f"Good, because {p}" for p in option.pros)
            out += _bullets(f"Bad, because {c}" for c in option.cons)
            if not option.pros and not option.cons:
                out.append("_No arguments recorded._")
            out.append("")
    more = []
    if d.links.workflow_id:
        more.append(f"* Workflow (plan): `{d.links.workflow_id}`")
    if d.links.run_id:
        more.append(f"* Run: `{d.links.run_id}`")
    if d.links.related:
        more.append(f"* Related: {', '.join(ref(r) for r in d.links.related)}")
    if d.legacy_id:
        more.append(f"* Imported from the old system, where its id was `{d.legacy_id}`")
    more.append(f"* Id: `{d.id}` · recorded {d.created}")
    out += ["## More Information", "", *more, ""]
    return "\n".join(out)


def export_markdown(store: _Source, directory: Path) -> list[Path]:
    """Write every decision to ``directory`` (created if needed); returns the files written.

    Files are written atomically; existing files with the same name are replaced, so
    exporting again refreshes the folder.
    """
    directory = Path(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(f"{directory}: cannot create folder: {exc.strerror or exc}") from None
    names: dict[str, str | None] = {}

    def link(decision_id: str) -> str | None:
        if decision_id not in names:
            try:
                target = store.get(decision_id)
            except NotFoundError:
                names[decision_id] = None
            else:
                names[decision_id] = f"[{format_number(target.number)}]({filename(target)})"
        return names[decision_id]

    written = []
    for d in store.iter_all():
        path = directory / filename(d)
        try:
            write_atomic(path, render_madr(d, link))
        except OSError as exc:
            raise StoreError(f"{path}: cannot write: {exc.strerror or exc}") from None
        written.append(path)
    return written
