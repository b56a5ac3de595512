"""Task analysis: complexity, domains, tech stack and size, each conclusion with its reasons.

Pure: works on the :class:`~perfect21.planner.index.Scan` of a request (one pass already
found every taxonomy term and complexity signal) plus a few cheap counts on the text.

Complexity is an ordinal linear model over general features of how people describe work
(length, list items, scope/planning/small-change/fix/migration signals, scale numbers, names
from code, breadth of domains and roles, error reports). Its weights are fitted by
``scripts/fit_complexity.py`` on all labelled files jointly and validated with repeated
stratified k-fold cross-validation; they live in :mod:`perfect21.planner.complexity_model`.
The reasons name the features that weighed most.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Iterable

from perfect21.planner.complexity_model import THRESHOLDS, WEIGHTS
from perfect21.planner.index import Scan
from perfect21.planner.models import Analysis, Complexity, new_analysis

__all__ = ["analyse", "features"]

# "40 services", "400 components", "15 万行", "3 个 k8s 集群", "1M users" …: a number, then
# (anchored right after it) an optional magnitude, measure word and qualifier, then a unit.
_NUMBER = re.compile(r"\d[\d,.]*")
_UNIT_PATTERN = (
    r"\s*(k|m|万|千|百万|亿)?\s*(?:多|余|几)?\s*(?:个|套|张|台|家|条)?\s*(?:[a-z0-9]+\s*)?"
    r"([a-z]+|[\u4e00-\u9fff]{1,3})"
)
_UNITS = frozenset(
    "services microservices components modules tables teams repos repositories pages screens "
    "endpoints apis lines loc users tenants regions countries clusters nodes accounts devices "
    "服务 微服务 组件 模块 表 团队 仓库 页面 接口 行 用户 租户 地区 国家 "
    "集群 节点 门店 账号 设备".split()
)
_SPEC_LIST_PATTERN = r"[:：][^:：]{0,200}?[,，、;；][^,，、;；]{0,200}?[,，、;；]"


@functools.cache
def _compiled(pattern: str) -> re.Pattern[str]:
    """Patterns compiled on first use. Character classes with CJK ranges take the ``re``
    compiler 0.6–2 ms each — a few per cent of a whole ``perfect21 plan`` process — and
    these two are needed only when a request has a number or a colon."""
    return re.compile(pattern)


_SENTENCE_MARKS = (". ", "; ", "! ", "? ", "。", "；", "！", "？", "\n")
_LIST_MARKS = (",", "，", "、", " and ", " plus ", "\n- ", "\n* ", "；")
# Marks of names from code — snake_case, call(), `quoted`: a request that names the exact code
# to change is usually a local change. Three str.count calls (a regex for identifiers, even
# just camelCase, costs several times more per request for no measurable gain in accuracy).
_IDENT_MARKS = ("_", "()", "`")
# A pasted error: file:line, a Java/JS stack frame, an ...Error/...Exception name, a Python
# traceback line. Each pattern is tried only when a cheap substring test says it can match.
_FILE_LINE = re.compile(r"\.(?:py|go|java|js|ts|rs|c|cpp|kt|swift):\d")
_FRAME = re.compile(r"^\s+at\s", re.MULTILINE)
_ERROR_NAME = re.compile(r"[a-z](?:Error|Exception)\b")


def _has_code(text: str) -> bool:
    return bool(
        (":" in text and _FILE_LINE.search(text))
        or (("Error" in text or "Exception" in text) and _ERROR_NAME.search(text))
        or (" at " in text and "\n" in text and _FRAME.search(text))
        or 'File "' in text
    )


def _spec_list(text: str) -> bool:
    return (":" in text or "：" in text) and _compiled(_SPEC_LIST_PATTERN).search(text) is not None


def _count(text: str, marks: tuple[str, ...]) -> int:
    # Most marks do not occur, and ``in`` costs a fraction of a str.count call.
    return sum([text.count(mark) for mark in marks if mark in text])


_LOC = {Complexity.SIMPLE: 60, Complexity.MEDIUM: 400, Complexity.COMPLEX: 2500}
_MODULES = {Complexity.SIMPLE: 1, Complexity.MEDIUM: 3, Complexity.COMPLEX: 6}
_SIGNALS = ("scope", "planning", "small", "diagnosis", "conjunction", "construction",
            "error_report", "change", "fix", "migration", "performance")
_SIGNAL_TAGS = tuple((signal, f"signal:{signal}") for signal in _SIGNALS)


def _number(text: str) -> float:
    text = text.replace(",", "").strip().lower()
    factor = 1.0
    for suffix, mult in (("百万", 1e6), ("亿", 1e8), ("万", 1e4), ("千", 1e3), ("k", 1e3),
                         ("m", 1e6)):
        if text.endswith(suffix):
            factor, text = mult, text[: -len(suffix)].strip()
            break
    try:
        return float(text) * factor
    except ValueError:
        return 0.0


def _big(value: float, unit: str) -> bool:
    unit = unit.lower()
    if unit in {"lines", "loc", "行"}:
        return value >= 20_000
    if unit in {"users", "用户", "tenants", "租户", "devices", "设备"}:
        return value >= 10_000
    if unit in {"components", "组件", "pages", "页面", "screens", "endpoints", "apis", "接口",
                "tables", "表", "门店"}:
        return value >= 20
    return value >= 3  # services, teams, regions, clusters, accounts …


def _scale_mentions(text: str) -> list[str]:
    found: list[str] = []
    lowered = text.lower()
    for number in _NUMBER.finditer(lowered):
        unit = _compiled(_UNIT_PATTERN).match(lowered, number.end())
        if unit is None:
            continue
        name = unit.group(2)
        if name not in _UNITS:
            # a CJK word may run on past the unit ("张表都要" → "张表都"): try its prefixes
            if name[:2] in _UNITS:
                name = name[:2]
            elif name[:1] in _UNITS:
                name = name[:1]
            else:
                continue
        value = _number(number.group() + (unit.group(1) or ""))
        if _big(value, name):
            found.append(text[number.start() : unit.end()].strip())
    return found


def features(
    text: str, scan: Scan, tags: Iterable[tuple[str, str]], *, agent_breadth: int
) -> tuple[dict[str, float], dict[str, list[str]], list[str]]:
    """(feature vector, tag buckets {domain:/stack:/signal:}, scale mentions)."""
    buckets: dict[str, list[str]] = {}
    for tag, key in tags:
        found = buckets.get(tag)
        if found is None:
            buckets[tag] = [key]
        elif key not in found:
            found.append(key)
    domains = stack = 0
    for tag in buckets:
        if tag.startswith("domain:"):
            domains += 1
        elif tag.startswith("stack:"):
            stack += 1
    words = scan.latin_count + scan.cjk_chars / 1.6  # CJK chars per English word, roughly
    scale = _scale_mentions(text)
    vector = {
        "log_words": math.log1p(words),
        "sentences": min(_count(text, _SENTENCE_MARKS), 8) / 4,
        "list_items": min(_count(text, _LIST_MARKS), 12) / 4,
        "domains": min(domains, 6) / 3,
        "stack": min(stack, 6) / 3,
        "breadth": min(agent_breadth, 8) / 4,
        "scale": 1.0 if scale else 0.0,
        "code": 1.0 if _has_code(text) else 0.0,
        "question": 1.0 if ("?" in text or "？" in text) else 0.0,
        # "Build X: a, b, c and d" — a colon introducing a list of deliverables
        "spec_list": 1.0 if _spec_list(text) else 0.0,
        "identifiers": min(_count(text, _IDENT_MARKS), 4) / 2,
    }
    for signal, tag in _SIGNAL_TAGS:
        vector[signal] = float(min(len(buckets.get(tag, ())), 3))
    return vector, buckets, scale


def complexity_score(vector: dict[str, float]) -> float:
    return sum(WEIGHTS.get(name, 0.0) * value for name, value in vector.items())


_BANDS = f"(simple < {THRESHOLDS[0]:+.2f} <= medium < {THRESHOLDS[1]:+.2f} <= complex)"


def analyse(
    text: str, scan: Scan, tags: Iterable[tuple[str, str]], *, agent_breadth: int
) -> Analysis:
    """Analyse ``text``; ``agent_breadth`` = how many distinct roles the routing found."""
    vector, buckets, scale = features(text, scan, tags, agent_breadth=agent_breadth)
    score = complexity_score(vector)
    if score >= THRESHOLDS[1]:
        complexity = Complexity.COMPLEX
    elif score < THRESHOLDS[0]:
        complexity = Complexity.SIMPLE
    else:
        complexity = Complexity.MEDIUM
    contributions = sorted([
        (-abs(weight), name, weight)
        for name, value in vector.items()
        if value and (weight := WEIGHTS.get(name, 0.0) * value)
    ])
    reasons = [f"complexity {complexity.value}: score {score:+.2f} {_BANDS}"]
    for _magnitude, name, weight in contributions[:4]:
        detail = ""
        if name in _SIGNALS:
            detail = ": " + ", ".join(buckets.get(f"signal:{name}", [])[:4])
        elif name == "scale":
            detail = ": " + ", ".join(scale[:3])
        reasons.append(f"{weight:+.2f} from {name}{detail}")
    domains: dict[str, list[str]] = {}
    stack: dict[str, list[str]] = {}
    for tag, keys in buckets.items():
        if tag.startswith("domain:"):
            domains[tag[7:]] = keys
        elif tag.startswith("stack:"):
            stack[tag[6:]] = keys
    for label, bucket in (("domains", domains), ("stack", stack)):
        if bucket:
            reasons.append(
                f"{label}: " + "; ".join([f"{k} ({', '.join(v[:2])})" for k, v in bucket.items()])
            )
    breadth = max(len(domains), 1)
    loc = int(_LOC[complexity] * (1 + 0.25 * (min(breadth, 6) - 1)))
    modules = _MODULES[complexity] + (min(breadth, 6) - 1) // 2
    latin, cjk = scan.latin_count, scan.cjk_chars
    language = "zh" if cjk and cjk >= latin else "en"
    if language == "zh" and latin >= 3:
        language = "mixed"
    return new_analysis(
        complexity, tuple(domains), tuple(stack), scan.hits[:32], loc, modules, language,
        tuple(reasons),
    )
