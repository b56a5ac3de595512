"""Routing quality on labelled requests: the shared sample (the issue's thresholds) and a
held-out set written independently, with a catalog of user agents described only in English
and routed from Chinese requests."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from perfect21.planner import Planner
from perfect21.planner.catalog import load_catalog
from perfect21.planner.evaluate import Quality, evaluate, read_rows

from .conftest import DATA, QUALITY_REPORT, USER_AGENTS

HELDOUT = DATA / "heldout.jsonl"
HELDOUT_USER = DATA / "heldout_user_agents.jsonl"
# Written after the planner's authors had seen HELDOUT's results. Since the complexity model is
# fitted on the sample and both of these files jointly (scripts/fit_complexity.py), they are
# no longer blind for complexity; their routing labels were never tuned to.
HELDOUT_FRESH = DATA / "heldout_fresh.jsonl"
# 60 requests (complexity labels only) written and committed before any model scored them; the
# blind check until blind set 3 was written, fitted on since (so no longer blind).
HELDOUT_BLIND2 = DATA / "heldout_blind2.jsonl"
# 80 requests with complexity and routing labels, written and committed before any model scored
# them and never used for fitting or tuning: the blind check of the complexity model now.
HELDOUT_BLIND3 = DATA / "heldout_blind3.jsonl"


@pytest.fixture(scope="module")
def user_planner() -> Planner:
    """Built-in agents plus the six English-only user agents of ``data/user_agents``."""
    catalog = load_catalog(user=False, extra_dirs=[USER_AGENTS], cache_dir=None)
    assert catalog.problems == ()
    return Planner(catalog)


def _summary(name: str, quality: Quality) -> str:
    numbers = quality.to_dict()
    QUALITY_REPORT[name] = {k: float(v) for k, v in numbers.items()}
    head = ", ".join(f"{k}={v}" for k, v in numbers.items())
    failures = "\n  ".join(quality.failures[:25])
    return f"{name}: {head}\n  {failures}"


def test_sample_quality(builtin_planner: Planner, shared_dir: Path) -> None:
    """On the 160 labelled sample requests: every `must` satisfied in >= 90 % of plans, a
    `must_not` chosen in <= 3 %, complexity exact >= 80 %, mean simple team <= 3."""
    rows = read_rows(shared_dir / "data" / "routing_sample.jsonl")
    assert len(rows) == 160
    quality = evaluate(builtin_planner, rows)
    message = _summary("sample (160)", quality)
    assert quality.must_ok >= 0.90, message
    assert quality.must_not_hit <= 0.03, message
    assert quality.complexity_exact >= 0.80, message
    assert quality.simple_team_mean <= 3, message


def _check_rows(rows: list[dict[str, Any]], names: set[str]) -> None:
    ids = [r["id"] for r in rows]
    assert len(ids) == len(set(ids))
    for row in rows:
        assert row["lang"] in {"en", "zh", "mixed"} and row["request"].strip()
        assert row["complexity"] in {"simple", "medium", "complex"}
        assert row["must"] and row["must_not"]
        for entry in row["must"]:
            group = [entry] if isinstance(entry, str) else entry
            assert set(group) <= names, row["id"]
        assert set(row["must_not"]) <= names, row["id"]


def test_heldout_files_are_well_formed(user_planner: Planner) -> None:
    """The held-out labels name only existing agents (a typo would count as a routing
    failure); about 40 % of the requests are Chinese; all three complexities appear."""
    names = {a.name for a in user_planner.catalog.agents}
    rows = read_rows(HELDOUT)
    user_rows = read_rows(HELDOUT_USER)
    _check_rows(rows, names)
    _check_rows(user_rows, names)
    fresh = read_rows(HELDOUT_FRESH)
    _check_rows(fresh, names)
    assert len(fresh) == 30 and not {r["id"] for r in fresh} & {r["id"] for r in rows}
    langs = Counter(r["lang"] for r in rows)
    assert len(rows) == 40 and 0.3 <= (langs["zh"] + langs["mixed"]) / len(rows) <= 0.6
    assert set(Counter(r["complexity"] for r in rows)) == {"simple", "medium", "complex"}
    user_names = {p.stem for p in USER_AGENTS.glob("*.md")}
    assert all(r["lang"] == "zh" for r in user_rows)
    assert {r["must"][0] for r in user_rows} == user_names
    for path in USER_AGENTS.glob("*.md"):
        agent = user_planner.catalog.require(path.stem)
        assert not agent.keywords and not agent.keywords_zh and not agent.builtin
        assert agent.description.isascii()
    assert json.loads(HELDOUT.read_text(encoding="utf-8").splitlines()[0])["id"] == "h01"


def test_heldout_quality(builtin_planner: Planner) -> None:
    """On 40 held-out requests the routing generalises (looser bars than the sample's; the
    measured values are printed in the terminal summary)."""
    quality = evaluate(builtin_planner, read_rows(HELDOUT))
    message = _summary("held-out (40)", quality)
    assert quality.must_ok >= 0.75, message
    assert quality.must_not_hit <= 0.10, message
    assert quality.complexity_exact >= 0.55, message
    assert quality.simple_team_mean <= 3, message


def test_fresh_heldout_quality(builtin_planner: Planner) -> None:
    """On 30 more requests, written after the first held-out results were known to the
    planner's authors (so untouched by any tuning), the same loose bars hold."""
    quality = evaluate(builtin_planner, read_rows(HELDOUT_FRESH))
    message = _summary("fresh held-out (30)", quality)
    assert quality.must_ok >= 0.75, message
    assert quality.must_not_hit <= 0.10, message
    assert quality.complexity_exact >= 0.55, message
    assert quality.simple_team_mean <= 3, message


def test_blind_complexity_set_is_well_formed() -> None:
    """The blind set labels complexity only (no routing labels), ~40 % Chinese or mixed, all
    three levels, ids distinct from every other labelled file."""
    rows = read_rows(HELDOUT_BLIND2)
    ids = {r["id"] for r in rows}
    assert len(rows) == 60 and len(ids) == 60
    others = read_rows(HELDOUT) + read_rows(HELDOUT_FRESH) + read_rows(HELDOUT_USER)
    assert not ids & {r["id"] for r in others}
    for row in rows:
        assert row["lang"] in {"en", "zh", "mixed"} and row["request"].strip()
        assert row["complexity"] in {"simple", "medium", "complex"}
        assert row["must"] == [] and row["must_not"] == []
    langs = Counter(r["lang"] for r in rows)
    assert 0.3 <= (langs["zh"] + langs["mixed"]) / len(rows) <= 0.6
    assert set(Counter(r["complexity"] for r in rows)) == {"simple", "medium", "complex"}


def test_blind_complexity(builtin_planner: Planner) -> None:
    """Complexity on the 60 requests of blind set 2 (in-sample since blind set 3; the same
    loose bar as the other held-out files, the value is printed in the terminal summary)."""
    quality = evaluate(builtin_planner, read_rows(HELDOUT_BLIND2))
    message = _summary("blind2 complexity (60)", quality)
    assert quality.complexity_exact >= 0.55, message
    assert quality.simple_team_mean <= 3, message


def test_blind3_is_well_formed(builtin_planner: Planner) -> None:
    """Blind set 3: 80 requests, ids distinct from every other labelled file, labels that name
    only existing agents, ~40 % Chinese plus a few mixed, the three levels about equally."""
    rows = read_rows(HELDOUT_BLIND3)
    _check_rows(rows, {a.name for a in builtin_planner.catalog.agents})
    assert len(rows) == 80 and all(r["id"].startswith("b3-") for r in rows)
    others = (read_rows(HELDOUT) + read_rows(HELDOUT_FRESH) + read_rows(HELDOUT_USER)
              + read_rows(HELDOUT_BLIND2))
    assert not {r["id"] for r in rows} & {r["id"] for r in others}
    langs = Counter(r["lang"] for r in rows)
    assert 0.3 <= langs["zh"] / len(rows) <= 0.5 and langs["mixed"] >= 3
    levels = Counter(r["complexity"] for r in rows)
    assert set(levels) == {"simple", "medium", "complex"} and min(levels.values()) >= 20


def test_blind3_quality(builtin_planner: Planner) -> None:
    """Blind set 3, never fitted on: complexity and routing are printed in the terminal
    summary; the routing bars of the other held-out files hold."""
    quality = evaluate(builtin_planner, read_rows(HELDOUT_BLIND3))
    message = _summary("blind3 (80)", quality)
    assert quality.must_ok >= 0.75, message
    assert quality.must_not_hit <= 0.10, message
    assert quality.simple_team_mean <= 3, message


def test_user_agents_routed_from_chinese(user_planner: Planner) -> None:
    """Chinese requests reach user agents that have only an English description."""
    quality = evaluate(user_planner, read_rows(HELDOUT_USER))
    message = _summary("user agents zh (12)", quality)
    assert quality.must_ok >= 0.75, message
    assert quality.must_not_hit <= 0.10, message


def test_heldout_with_user_catalog(user_planner: Planner) -> None:
    """Adding user agents does not break routing of the other held-out requests."""
    quality = evaluate(user_planner, read_rows(HELDOUT) + read_rows(HELDOUT_USER))
    message = _summary("held-out + user (52)", quality)
    assert quality.must_ok >= 0.75, message
    assert quality.must_not_hit <= 0.10, message
    assert quality.simple_team_mean <= 3, message
