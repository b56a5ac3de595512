"""alerts.yaml and prometheus-rules.yml describe the same conditions."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from perfect21.monitor.alerts import DEFAULT_RULES_PATH, Rule, load_rules, parse_duration

PROM_RULES = Path(DEFAULT_RULES_PATH).with_name("prometheus-rules.yml")


def prometheus_rules() -> dict[str, dict[str, Any]]:
    data = yaml.safe_load(PROM_RULES.read_text(encoding="utf-8"))
    (group,) = data["groups"]
    return {r["alert"]: r for r in group["rules"]}


def expected_expr_parts(rule: Rule) -> list[str]:
    """What the PromQL must contain to express ``rule.condition``."""
    cond = rule.condition
    metric = f"perfect21_{cond.metric}"
    if cond.aggregation.startswith("p"):
        q = int(cond.aggregation[1:]) / 100
        parts = [f"histogram_quantile({q}", f"rate({metric}_bucket["]
    elif cond.aggregation == "rate":
        parts = [f"rate({metric}[1m])"]
    else:
        assert cond.aggregation == "value"
        parts = [f"max({metric})"]
    if cond.relative_to == "baseline_rate":
        parts.append(f"{cond.threshold:g} * sum(rate({metric}[10m] offset 1m))")
    if cond.min_baseline:
        parts.append(f"and sum(rate({metric}[10m] offset 1m)) > {cond.min_baseline:g}")
    return parts


def comparison(expr: str) -> tuple[str, float]:
    """The top-level comparison operator of a PromQL expression and its numeric right side."""
    match = re.search(r"\)\s*(>=|<=|==|!=|>|<)\s*([0-9.]+)", expr)
    assert match, expr
    return match.group(1), float(match.group(2))


def test_same_names_thresholds_for_and_severity() -> None:
    ours = {r.name: r for r in load_rules().rules}
    theirs = prometheus_rules()
    assert list(ours) == list(theirs)
    for name, rule in ours.items():
        prom = theirs[name]
        assert parse_duration(prom["for"]) == rule.for_s, name
        assert prom["labels"]["severity"] == rule.severity.value, name
        expr = " ".join(prom["expr"].split())
        for part in expected_expr_parts(rule):
            assert part in expr, (name, part, expr)
        op, number = comparison(expr)
        assert op == rule.condition.operator.value, name
        assert number == rule.condition.threshold, name
        actions = [a.strip() for a in prom["annotations"]["actions"].split(",")]
        assert actions == [a.kind.value for a in rule.actions], name
