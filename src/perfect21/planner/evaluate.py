"""Routing quality on labelled requests (``routing_sample.jsonl`` format).

Each row: ``{"id", "request", "complexity", "must", "must_not"}``; a ``must`` entry is an
agent name or a list meaning "at least one of these". Used by the test suite and by
``perfect21 bench planner`` so the quality numbers and the speed numbers come from one place.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from perfect21.planner import Planner

__all__ = ["Quality", "evaluate", "read_rows"]


@dataclass(frozen=True, slots=True)
class Quality:
    total: int
    must_ok: float  # share of plans with every `must` satisfied
    must_not_hit: float  # share of plans choosing any `must_not`
    complexity_exact: float
    simple_team_mean: float
    failures: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "must_ok": round(self.must_ok, 4),
            "must_not_hit": round(self.must_not_hit, 4),
            "complexity_exact": round(self.complexity_exact, 4),
            "simple_team_mean": round(self.simple_team_mean, 3),
        }


def read_rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()
            if line.strip()]


def _satisfied(entry: str | Sequence[str], chosen: set[str]) -> bool:
    if isinstance(entry, str):
        return entry in chosen
    return any(name in chosen for name in entry)


def evaluate(planner: Planner, rows: Iterable[Mapping[str, Any]]) -> Quality:
    total = must_ok = must_not = exact = 0
    simple_sizes: list[int] = []
    failures: list[str] = []
    for row in rows:
        plan = planner.plan(row["request"])
        chosen = {a.name for a in plan.agents}
        total += 1
        missing = [m for m in row.get("must", ()) if not _satisfied(m, chosen)]
        forbidden = sorted(chosen & set(row.get("must_not", ())))
        if not missing:
            must_ok += 1
        if forbidden:
            must_not += 1
        if plan.analysis.complexity.value == row.get("complexity"):
            exact += 1
        else:
            failures.append(f"{row.get('id')}: complexity {plan.analysis.complexity.value} "
                            f"!= {row.get('complexity')}")
        if row.get("complexity") == "simple":
            simple_sizes.append(len(chosen))
        if missing or forbidden:
            failures.append(
                f"{row.get('id')}: chose {sorted(chosen)} missing {missing} forbidden {forbidden}"
            )
    return Quality(
        total=total,
        must_ok=must_ok / total if total else 0.0,
        must_not_hit=must_not / total if total else 0.0,
        complexity_exact=exact / total if total else 0.0,
        simple_team_mean=sum(simple_sizes) / len(simple_sizes) if simple_sizes else 0.0,
        failures=tuple(failures),
    )
