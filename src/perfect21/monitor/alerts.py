"""Alert rules: load them from YAML, evaluate them (pure), and run their actions (I/O).

A rules file (the defaults are ``alerts.yaml`` beside this module; the same conditions are
in ``prometheus-rules.yml`` for users who run Prometheus)::

    rules:
      - name: PerformanceRegression
        condition: {metric: workflow_generation_seconds, aggregation: p95,
                    operator: ">", threshold: 0.1}
        for: 5m
        severity: critical
        actions: [rollback, investigate, log]

``condition.relative_to`` turns the threshold into a factor of another aggregation of the
same metric (``threshold: 0.8, relative_to: baseline_rate`` = "below 80 % of baseline");
``min_baseline`` then says how large that baseline must be for the rule to apply at all
(an idle process has no throughput to drop).

Three layers, kept apart:

* :func:`parse_rules` / :func:`load_rules` — YAML (imported lazily) to frozen :class:`Rule`
  values. Any problem raises :class:`AlertRulesError` with the file, line and reason, and
  nothing is returned half-loaded.
* :func:`evaluate` — pure: rules + metric values + previous :class:`AlertState` + a time →
  the new state and what is firing, pending, resolved or without data.
* :class:`ActionDispatcher` — runs a firing alert's actions (log, webhook POST, clean-up,
  scale-up / rollback hooks, investigate, command). A failing action is logged and never
  stops the others or the monitor; every firing alert is written to the alert log first.
"""

from __future__ import annotations

import collections
import json
import logging
import math
import os
import re
import subprocess
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from perfect21._errors import AlertRulesError

if TYPE_CHECKING:
    import yaml

__all__ = [
    "DEFAULT_RULES_PATH",
    "Action",
    "ActionDispatcher",
    "ActionKind",
    "ActionOutcome",
    "AlertLog",
    "AlertRules",
    "AlertState",
    "AlertStatus",
    "Condition",
    "Evaluation",
    "Operator",
    "Rule",
    "RuleResult",
    "Severity",
    "Values",
    "evaluate",
    "format_duration",
    "load_rules",
    "load_state",
    "parse_duration",
    "parse_rules",
    "save_state",
]

log = logging.getLogger("perfect21.monitor.alerts")

DEFAULT_RULES_PATH = Path(__file__).with_name("alerts.yaml")
AGGREGATIONS = ("value", "rate", "baseline_rate", "p50", "p95", "p99", "mean", "max", "count")
MAX_RULES = 100
MAX_ACTIONS = 10


class Operator(str, Enum):
    GT = ">"
    GE = ">="
    LT = "<"
    LE = "<="
    EQ = "=="
    NE = "!="

    def compare(self, left: float, right: float) -> bool:
        if self is Operator.GT:
            return left > right
        if self is Operator.GE:
            return left >= right
        if self is Operator.LT:
            return left < right
        if self is Operator.LE:
            return left <= right
        if self is Operator.EQ:
            return left == right
        return left != right


class Severity(str, Enum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


class ActionKind(str, Enum):
    LOG = "log"  # a log line at the alert's severity
    WEBHOOK = "webhook"  # POST the alert as JSON to ``url``
    CLEANUP = "cleanup"  # run the memory guard's clean-up callbacks + gc
    SCALE_UP = "scale_up"  # call the registered scale-up hook
    ROLLBACK = "rollback"  # call the registered rollback hook
    INVESTIGATE = "investigate"  # attach a diagnostic snapshot (KPIs, memory) to the alert log
    COMMAND = "command"  # run ``argv`` (no shell) with the alert in the environment


class AlertStatus(str, Enum):
    INACTIVE = "inactive"
    PENDING = "pending"  # condition true, ``for:`` not yet elapsed
    FIRING = "firing"
    NO_DATA = "no_data"  # the metric (or its baseline) has no value yet


@dataclass(frozen=True, slots=True)
class Condition:
    metric: str
    aggregation: str
    operator: Operator
    threshold: float
    relative_to: str | None = None
    labels: tuple[tuple[str, str], ...] = ()
    min_baseline: float = 0.0  # with relative_to: below this baseline the rule has no data

    def describe(self) -> str:
        left = f"{self.aggregation}({self.metric})"
        right = f"{self.threshold:g}"
        if self.relative_to:
            right = f"{right} * {self.relative_to}({self.metric})"
        return f"{left} {self.operator.value} {right}"


@dataclass(frozen=True, slots=True)
class Action:
    kind: ActionKind
    url: str = ""
    argv: tuple[str, ...] = ()
    timeout_s: float = 2.0


@dataclass(frozen=True, slots=True)
class Rule:
    name: str
    condition: Condition
    for_s: float
    severity: Severity
    actions: tuple[Action, ...]
    description: str = ""
    line: int = 0


@dataclass(frozen=True, slots=True)
class AlertRules:
    rules: tuple[Rule, ...]
    source: str

    def names(self) -> tuple[str, ...]:
        return tuple(r.name for r in self.rules)


# -- durations -------------------------------------------------------------------------------
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(value: object) -> float:
    """``"5m"``, ``"1h30m"``, ``"90s"``, ``30`` (seconds) → seconds; ValueError otherwise."""
    if isinstance(value, bool):
        raise ValueError("expected a duration like 5m")
    if isinstance(value, int | float):
        if value < 0 or math.isnan(value):
            raise ValueError("must not be negative")
        return float(value)
    text = str(value).strip()
    if not text or _DURATION_PART.sub("", text):
        raise ValueError(f"expected a duration like 30s, 5m or 1h30m, got {text!r}")
    return sum(float(n) * _UNIT_S[u] for n, u in _DURATION_PART.findall(text))


def format_duration(seconds: float) -> str:
    """Seconds → Prometheus style (``300`` → ``"5m"``, ``5400`` → ``"1h30m"``)."""
    if seconds == 0:
        return "0s"
    out = ""
    rest = seconds
    for unit in ("d", "h", "m", "s"):
        size = _UNIT_S[unit]
        n = int(rest // size)
        if n:
            out += f"{n}{unit}"
            rest -= n * size
    if rest > 1e-9:
        out += f"{round(rest * 1000)}ms"
    return out


# -- loading ---------------------------------------------------------------------------------
def load_rules(path: Path | None = None) -> AlertRules:
    """Load and validate a rules file (the packaged defaults when ``path`` is None)."""
    path = DEFAULT_RULES_PATH if path is None else path
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise AlertRulesError(f"{path}: rules file not found") from None
    except UnicodeDecodeError:
        raise AlertRulesError(f"{path}: not UTF-8 text") from None
    except OSError as exc:
        raise AlertRulesError(f"{path}: cannot read: {exc.strerror}") from None
    return parse_rules(text, source=str(path))


def parse_rules(text: str, *, source: str = "<rules>") -> AlertRules:
    """Validate rules YAML; raises :class:`AlertRulesError` naming ``source:line`` and why."""
    import yaml

    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 0
        raise AlertRulesError(f"{source}:{line}: invalid YAML: {exc.problem}") from None
    except yaml.YAMLError as exc:
        raise AlertRulesError(f"{source}: invalid YAML: {exc}") from None
    return _Parser(source).rules(root)


class _Parser:
    """Turns composed YAML nodes into rules, raising with the node's line on any problem."""

    def __init__(self, source: str) -> None:
        import yaml

        self.source = source
        self._yaml = yaml
        self._constructor = yaml.SafeLoader("")

    def fail(self, node: yaml.Node | None, reason: str) -> AlertRulesError:
        line = node.start_mark.line + 1 if node is not None else 1
        return AlertRulesError(f"{self.source}:{line}: {reason}")

    def mapping(
        self, node: yaml.Node, what: str, allowed: tuple[str, ...], required: tuple[str, ...]
    ) -> dict[str, tuple[yaml.Node, yaml.Node]]:
        if not isinstance(node, self._yaml.MappingNode):
            raise self.fail(node, f"{what}: expected a mapping")
        out: dict[str, tuple[yaml.Node, yaml.Node]] = {}
        for key_node, value_node in node.value:
            key = self.scalar(key_node)
            if not isinstance(key, str):
                raise self.fail(key_node, f"{what}: keys must be strings")
            if key in out:
                raise self.fail(key_node, f"{what}: duplicate key {key!r}")
            if key not in allowed:
                raise self.fail(
                    key_node, f"{what}: unknown key {key!r} (allowed: {', '.join(allowed)})"
                )
            out[key] = (key_node, value_node)
        for key in required:
            if key not in out:
                raise self.fail(node, f"{what}: missing required key {key!r}")
        return out

    def scalar(self, node: yaml.Node) -> Any:
        if not isinstance(node, self._yaml.ScalarNode):
            raise self.fail(node, "expected a single value")
        return self._constructor.construct_object(node)

    def text(self, node: yaml.Node, what: str) -> str:
        value = self.scalar(node)
        if not isinstance(value, str) or not value.strip():
            raise self.fail(node, f"{what}: expected a non-empty string")
        return value.strip()

    def number(self, node: yaml.Node, what: str) -> float:
        value = self.scalar(node)
        if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
            raise self.fail(node, f"{what}: expected a number, got {value!r}")
        return float(value)

    def choice(self, node: yaml.Node, what: str, options: tuple[str, ...]) -> str:
        value = self.scalar(node)
        if value not in options:
            raise self.fail(node, f"{what}: {value!r} is not one of {', '.join(options)}")
        return str(value)

    def rules(self, root: yaml.Node | None) -> AlertRules:
        if root is None:
            raise self.fail(None, "the rules file is empty")
        top = self.mapping(root, "rules file", ("rules",), ("rules",))
        rules_node = top["rules"][1]
        if not isinstance(rules_node, self._yaml.SequenceNode):
            raise self.fail(rules_node, "'rules' must be a list")
        if len(rules_node.value) > MAX_RULES:
            raise self.fail(rules_node, f"at most {MAX_RULES} rules")
        rules: list[Rule] = []
        seen: set[str] = set()
        for node in rules_node.value:
            rule = self.rule(node)
            if rule.name in seen:
                raise self.fail(node, f"duplicate rule name {rule.name!r}")
            seen.add(rule.name)
            rules.append(rule)
        return AlertRules(tuple(rules), self.source)

    def rule(self, node: yaml.Node) -> Rule:
        keys = ("name", "description", "condition", "for", "severity", "actions")
        fields = self.mapping(node, "rule", keys, ("name", "condition", "severity", "actions"))
        name = self.text(fields["name"][1], "name")
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            raise self.fail(fields["name"][1], f"name {name!r}: letters, digits and _ only")
        what = f"rule {name!r}"
        for_s = 0.0
        if "for" in fields:
            for_node = fields["for"][1]
            try:
                for_s = parse_duration(self.scalar(for_node))
            except ValueError as exc:
                raise self.fail(for_node, f"{what}: 'for': {exc}") from None
        severity = self.choice(
            fields["severity"][1], f"{what}: severity", tuple(s.value for s in Severity)
        )
        description = ""
        if "description" in fields:
            description = self.text(fields["description"][1], f"{what}: description")
        actions_node = fields["actions"][1]
        if not isinstance(actions_node, self._yaml.SequenceNode) or not actions_node.value:
            raise self.fail(actions_node, f"{what}: 'actions' must be a non-empty list")
        if len(actions_node.value) > MAX_ACTIONS:
            raise self.fail(actions_node, f"{what}: at most {MAX_ACTIONS} actions")
        return Rule(
            name=name,
            condition=self.condition(fields["condition"][1], what),
            for_s=for_s,
            severity=Severity(severity),
            actions=tuple(self.action(a, what) for a in actions_node.value),
            description=description,
            line=node.start_mark.line + 1,
        )

    def condition(self, node: yaml.Node, what: str) -> Condition:
        what = f"{what}: condition"
        keys = (
            "metric", "aggregation", "operator", "threshold", "relative_to", "min_baseline",
            "labels",
        )  # fmt: skip
        fields = self.mapping(node, what, keys, ("metric", "operator", "threshold"))
        metric = self.text(fields["metric"][1], f"{what}: metric")
        if not re.fullmatch(r"[a-z_][a-z0-9_]*", metric):
            raise self.fail(fields["metric"][1], f"{what}: metric {metric!r} is not a metric name")
        aggregation = "value"
        if "aggregation" in fields:
            aggregation = self.choice(
                fields["aggregation"][1], f"{what}: aggregation", AGGREGATIONS
            )
        operator = self.choice(
            fields["operator"][1], f"{what}: operator", tuple(o.value for o in Operator)
        )
        threshold = self.number(fields["threshold"][1], f"{what}: threshold")
        relative_to = None
        if "relative_to" in fields:
            relative_to = self.choice(
                fields["relative_to"][1], f"{what}: relative_to", AGGREGATIONS
            )
        labels: tuple[tuple[str, str], ...] = ()
        if "labels" in fields:
            label_node = fields["labels"][1]
            if not isinstance(label_node, self._yaml.MappingNode):
                raise self.fail(label_node, f"{what}: labels: expected a mapping")
            names = tuple(str(self.scalar(k)) for k, _ in label_node.value)
            label_fields = self.mapping(label_node, f"{what}: labels", names, ())
            labels = tuple(
                sorted(
                    (k, self.text(v, f"{what}: label {k}")) for k, (_, v) in label_fields.items()
                )
            )
        min_baseline = 0.0
        if "min_baseline" in fields:
            node = fields["min_baseline"][1]
            if relative_to is None:
                raise self.fail(
                    fields["min_baseline"][0], f"{what}: min_baseline needs relative_to"
                )
            min_baseline = self.number(node, f"{what}: min_baseline")
            if min_baseline < 0:
                raise self.fail(node, f"{what}: min_baseline must not be negative")
        return Condition(
            metric, aggregation, Operator(operator), threshold, relative_to, labels, min_baseline
        )

    def action(self, node: yaml.Node, what: str) -> Action:
        kinds = tuple(k.value for k in ActionKind)
        if isinstance(node, self._yaml.ScalarNode):
            kind = ActionKind(self.choice(node, f"{what}: action", kinds))
            if kind in (ActionKind.WEBHOOK, ActionKind.COMMAND):
                need = "url" if kind is ActionKind.WEBHOOK else "argv"
                raise self.fail(node, f"{what}: action {kind.value!r} needs {need!r}")
            return Action(kind)
        fields = self.mapping(
            node, f"{what}: action", ("type", "url", "argv", "timeout_s"), ("type",)
        )
        kind = ActionKind(self.choice(fields["type"][1], f"{what}: action type", kinds))
        timeout = 2.0 if kind is not ActionKind.COMMAND else 10.0
        if "timeout_s" in fields:
            timeout = self.number(fields["timeout_s"][1], f"{what}: timeout_s")
            if not 0 < timeout <= 60:
                raise self.fail(fields["timeout_s"][1], f"{what}: timeout_s must be in (0, 60]")
        url = ""
        argv: tuple[str, ...] = ()
        if kind is ActionKind.WEBHOOK:
            if "url" not in fields:
                raise self.fail(node, f"{what}: webhook action needs 'url'")
            url = self.text(fields["url"][1], f"{what}: url")
            if not re.match(r"^https?://", url):
                raise self.fail(
                    fields["url"][1], f"{what}: url must start with http:// or https://"
                )
        elif "url" in fields:
            raise self.fail(fields["url"][0], f"{what}: 'url' only applies to webhook actions")
        if kind is ActionKind.COMMAND:
            argv_node = fields["argv"][1] if "argv" in fields else node
            if not isinstance(argv_node, self._yaml.SequenceNode) or not argv_node.value:
                raise self.fail(argv_node, f"{what}: command action needs 'argv', a list")
            argv = tuple(self.text(a, f"{what}: argv item") for a in argv_node.value)
        elif "argv" in fields:
            raise self.fail(fields["argv"][0], f"{what}: 'argv' only applies to command actions")
        return Action(kind, url=url, argv=argv, timeout_s=timeout)


# -- evaluation (pure) -----------------------------------------------------------------------
class Values(Protocol):
    """Where metric values come from (a :class:`perfect21.monitor.kpi.Snapshot` fits)."""

    def value(
        self, name: str, aggregation: str = "value", labels: Mapping[str, str] | None = None
    ) -> float | None: ...


@dataclass(frozen=True, slots=True)
class AlertState:
    """What evaluation remembers between rounds: since when each rule's condition held."""

    pending_since: tuple[tuple[str, float], ...] = ()
    firing: frozenset[str] = frozenset()


def load_state(path: Path, scope: str) -> AlertState:
    """The :class:`AlertState` a scheduled ``alerts check --state`` saved for ``scope`` (the
    rules file and the source of values), or a fresh one: when the file is missing, written
    for another scope, or unreadable (then with a warning — it only holds derived state)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return AlertState()
    except (OSError, ValueError) as exc:
        log.warning("alert state %s unreadable (%s): starting afresh", path, exc)
        return AlertState()
    try:
        if data.get("scope") != scope:
            return AlertState()
        pending = tuple(sorted((str(k), float(v)) for k, v in data["pending_since"].items()))
        return AlertState(pending, frozenset(str(name) for name in data["firing"]))
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        log.warning("alert state %s malformed (%s): starting afresh", path, exc)
        return AlertState()


def save_state(path: Path, scope: str, state: AlertState) -> None:
    """Write ``state`` atomically (a temporary file renamed over ``path``)."""
    from perfect21._files import write_atomic

    payload = {
        "scope": scope,
        "pending_since": dict(state.pending_since),
        "firing": sorted(state.firing),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, json.dumps(payload, indent=1) + "\n")


@dataclass(frozen=True, slots=True)
class RuleResult:
    rule: Rule
    status: AlertStatus
    value: float | None
    threshold: float | None  # effective threshold (after relative_to)
    since: float | None
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.rule.name,
            "status": self.status.value,
            "severity": self.rule.severity.value,
            "condition": self.rule.condition.describe(),
            "for": format_duration(self.rule.for_s),
            "value": self.value,
            "threshold": self.threshold,
            "since": self.since,
            "message": self.message,
            "actions": [a.kind.value for a in self.rule.actions],
        }


@dataclass(frozen=True, slots=True)
class Evaluation:
    state: AlertState
    results: tuple[RuleResult, ...]
    started: tuple[RuleResult, ...] = ()  # began firing in this round
    resolved: tuple[str, ...] = ()  # stopped firing in this round

    @property
    def firing(self) -> tuple[RuleResult, ...]:
        return tuple(r for r in self.results if r.status is AlertStatus.FIRING)


def evaluate(
    rules: AlertRules,
    values: Values,
    state: AlertState,
    now: float,
    *,
    ignore_for: bool = False,
) -> Evaluation:
    """One evaluation round; no I/O, no clock (``now`` is given, any monotonic seconds).

    A condition must hold continuously for ``for:`` seconds before the rule fires
    (``ignore_for`` drops that wait, for one-shot checks that have no history). No value or
    no baseline means NO_DATA, which neither fires nor keeps a pending timer.
    """
    pending = dict(state.pending_since)
    new_pending: dict[str, float] = {}
    results: list[RuleResult] = []
    for rule in rules.rules:
        cond = rule.condition
        labels = dict(cond.labels) or None
        value = values.value(cond.metric, cond.aggregation, labels)
        threshold: float | None = cond.threshold
        missing = "no data"
        if value is not None and cond.relative_to is not None:
            base = values.value(cond.metric, cond.relative_to, labels)
            if base is None or base <= 0 or base < cond.min_baseline:
                threshold = None
                missing = f"{cond.relative_to} {base or 0:.6g} below {cond.min_baseline:g}"
                if base is None or base <= 0:
                    missing = f"no {cond.relative_to} yet"
            else:
                threshold = cond.threshold * base
        if value is None or threshold is None:
            results.append(
                RuleResult(
                    rule, AlertStatus.NO_DATA, value, None, None, f"{cond.describe()}: {missing}"
                )
            )
            continue
        shown = (
            f"{cond.aggregation}({cond.metric})={value:.6g} {cond.operator.value} {threshold:.6g}"
        )
        if not cond.operator.compare(value, threshold):
            results.append(
                RuleResult(rule, AlertStatus.INACTIVE, value, threshold, None, f"ok: not {shown}")
            )
            continue
        since = pending.get(rule.name, now)
        new_pending[rule.name] = since
        held = now - since
        if ignore_for or held >= rule.for_s:
            status, note = AlertStatus.FIRING, f"{shown} for {format_duration(held)}"
        else:
            status = AlertStatus.PENDING
            note = f"{shown} for {format_duration(held)} of {format_duration(rule.for_s)}"
        results.append(RuleResult(rule, status, value, threshold, since, note))
    firing = frozenset(r.rule.name for r in results if r.status is AlertStatus.FIRING)
    return Evaluation(
        state=AlertState(tuple(sorted(new_pending.items())), firing),
        results=tuple(results),
        started=tuple(r for r in results if r.rule.name in firing - state.firing),
        resolved=tuple(sorted(state.firing - firing)),
    )


# -- actions (I/O) ---------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ActionOutcome:
    kind: ActionKind
    ok: bool
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return {"action": self.kind.value, "ok": self.ok, "detail": self.detail}


class AlertLog:
    """Firing alerts as JSON lines, bounded: rotated to ``.1`` past ``max_bytes``.

    The last ``max_recent`` entries are also kept in memory for ``perfect21 monitor``.
    Without a path it only keeps the in-memory tail.
    """

    def __init__(self, path: Path | None, *, max_bytes: int = 1024 * 1024, max_recent: int = 256):
        self.path = path
        self.max_bytes = max_bytes
        self.recent: collections.deque[dict[str, Any]] = collections.deque(maxlen=max_recent)
        self._lock = threading.Lock()

    def write(self, entry: dict[str, Any]) -> None:
        line = json.dumps(entry, ensure_ascii=False, default=str)
        with self._lock:
            self.recent.append(entry)
            if self.path is None:
                return
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                if self.path.exists() and self.path.stat().st_size + len(line) > self.max_bytes:
                    os.replace(self.path, self.path.with_name(self.path.name + ".1"))
                with self.path.open("a", encoding="utf-8") as fh:
                    fh.write(line + "\n")
            except OSError as exc:  # the log is best effort; the logger still has the line
                log.error("cannot write alert log %s: %s", self.path, exc.strerror)


Hook = Callable[[RuleResult], object]


class ActionDispatcher:
    """Runs a firing alert's actions; each failure becomes an outcome, never an exception."""

    def __init__(
        self,
        *,
        alert_log: AlertLog | None = None,
        cleanup: Callable[[], object] | None = None,
        hooks: Mapping[ActionKind, Hook] | None = None,
        diagnostics: Callable[[], dict[str, Any]] | None = None,
    ) -> None:
        self.alert_log = AlertLog(None) if alert_log is None else alert_log
        self.cleanup = cleanup
        self.hooks: dict[ActionKind, Hook] = dict(hooks or {})
        self.diagnostics = diagnostics
        self._investigation: dict[str, Any] | None = None

    def register_hook(self, kind: ActionKind, hook: Hook) -> None:
        """Set the handler of ``scale_up`` or ``rollback`` (or override another kind)."""
        self.hooks[kind] = hook

    def dispatch(self, result: RuleResult) -> tuple[ActionOutcome, ...]:
        self._investigation = None
        outcomes = tuple(self._run(action, result) for action in result.rule.actions)
        entry: dict[str, Any] = {
            "at": time.time(),
            **result.to_dict(),
            "outcomes": [o.to_dict() for o in outcomes],
        }
        if self._investigation is not None:
            entry["investigation"] = self._investigation
        self.alert_log.write(entry)
        return outcomes

    def record(self, name: str, severity: Severity, message: str, **extra: Any) -> None:
        """Log an alert that does not come from a rule (e.g. the memory guard's events)."""
        level = logging.CRITICAL if severity is Severity.CRITICAL else logging.WARNING
        log.log(level, "ALERT %s [%s]: %s", name, severity.value, message)
        self.alert_log.write(
            {
                "at": time.time(),
                "name": name,
                "status": "firing",
                "severity": severity.value,
                "message": message,
                **extra,
            }
        )

    def _run(self, action: Action, result: RuleResult) -> ActionOutcome:
        try:
            hook = self.hooks.get(action.kind)
            if hook is not None:
                hook(result)
                return ActionOutcome(action.kind, True, "hook ran")
            handler = getattr(self, f"_do_{action.kind.value}")
            outcome: ActionOutcome = handler(action, result)
        except Exception as exc:  # one failing action never stops the others
            outcome = ActionOutcome(action.kind, False, f"{type(exc).__name__}: {exc}")
        if not outcome.ok:
            log.warning(
                "alert %s: action %s failed: %s",
                result.rule.name,
                action.kind.value,
                outcome.detail,
            )
        return outcome

    def _do_log(self, action: Action, result: RuleResult) -> ActionOutcome:
        level = {
            Severity.INFO: logging.INFO,
            Severity.WARNING: logging.WARNING,
            Severity.CRITICAL: logging.CRITICAL,
        }[result.rule.severity]
        log.log(
            level, "ALERT %s [%s]: %s", result.rule.name, result.rule.severity.value, result.message
        )
        return ActionOutcome(action.kind, True, "logged")

    def _do_webhook(self, action: Action, result: RuleResult) -> ActionOutcome:
        import urllib.error
        import urllib.request

        body = json.dumps({"status": "firing", "at": time.time(), **result.to_dict()}).encode()
        request = urllib.request.Request(
            action.url, data=body, method="POST", headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=action.timeout_s) as response:
                status = int(response.status)
        except urllib.error.HTTPError as exc:
            return ActionOutcome(action.kind, False, f"{action.url}: HTTP {exc.code}")
        except (urllib.error.URLError, OSError, TimeoutError) as exc:
            reason = getattr(exc, "reason", exc)
            return ActionOutcome(action.kind, False, f"{action.url}: {reason}")
        return ActionOutcome(action.kind, 200 <= status < 300, f"{action.url}: HTTP {status}")

    def _do_cleanup(self, action: Action, result: RuleResult) -> ActionOutcome:
        import gc

        if self.cleanup is not None:
            self.cleanup()
            return ActionOutcome(action.kind, True, "clean-up callbacks ran")
        gc.collect()
        return ActionOutcome(action.kind, True, "no clean-up callbacks registered; gc ran")

    def _do_scale_up(self, action: Action, result: RuleResult) -> ActionOutcome:
        return ActionOutcome(action.kind, False, "no scale_up hook registered")

    def _do_rollback(self, action: Action, result: RuleResult) -> ActionOutcome:
        return ActionOutcome(action.kind, False, "no rollback hook registered")

    def _do_investigate(self, action: Action, result: RuleResult) -> ActionOutcome:
        if self.diagnostics is None:
            return ActionOutcome(action.kind, False, "no diagnostics source")
        self._investigation = self.diagnostics()
        return ActionOutcome(action.kind, True, "diagnostic snapshot attached")

    def _do_command(self, action: Action, result: RuleResult) -> ActionOutcome:
        env = {
            **os.environ,
            "PERFECT21_ALERT": result.rule.name,
            "PERFECT21_ALERT_SEVERITY": result.rule.severity.value,
            "PERFECT21_ALERT_MESSAGE": result.message,
            "PERFECT21_ALERT_VALUE": "" if result.value is None else repr(result.value),
        }
        try:
            done = subprocess.run(
                list(action.argv),
                env=env,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=action.timeout_s,
                check=False,
            )
        except FileNotFoundError:
            return ActionOutcome(action.kind, False, f"{action.argv[0]}: command not found")
        except subprocess.TimeoutExpired:
            return ActionOutcome(action.kind, False, f"timed out after {action.timeout_s:g}s")
        tail = done.stderr.decode("utf-8", "replace").strip()[-200:]
        detail = f"exit {done.returncode}" + (f": {tail}" if tail and done.returncode else "")
        return ActionOutcome(action.kind, done.returncode == 0, detail)
