"""Task analysis: complexity, domains, tech stack and size, each conclusion with its reasons.

Pure: works on the :class:`~perfect21.planner.index.Scan` of a request (one pass already
found every taxonomy term and complexity signal) plus a few cheap counts on the text.

Complexity is an ordinal linear model over general features of how people describe work
(length, list items, scope/planning/small-change/fix/migration signals, scale numbers, names
from code and quoted text, breadth of roles, error reports). Signal words count once per word
of the request in either language (a Chinese word and its English translations are one).
Its weights are fitted by ``scripts/fit_complexity.py`` on all labelled files jointly and
validated with repeated stratified k-fold cross-validation; they live in
:mod:`perfect21.planner.complexity_model`.
The reasons name the features that weighed most.
"""

from __future__ import annotations

import functools
import math
import re
from operator import itemgetter

from perfect21.planner.complexity_model import THRESHOLDS, WEIGHTS
from perfect21.planner.index import Scan, TagGroups
from perfect21.planner.models import Analysis, Complexity, draft_class

__all__ = ["analyse", "features"]

# "40 services", "400 components", "30 of our services", "15 万行", "3 个 k8s 集群",
# "2 million accounts" …: a number, then (anchored right after it) an optional magnitude, measure
# word and up to two qualifier words, then a unit that counts parts of a system. The unit is an
# explicit alternative: a free ``[a-z]+`` let the qualifier swallow "component" and leave "s",
# so plain English "40 services" was never found.
# ASCII digits as b"0", every other byte unchanged: in an ASCII text (where \d is [0-9]) a
# number starts at the next b"0" after the last number, found by bytes.find — a few hundred
# instructions, where sre's search for \d costs ~80 per character (~13k fewer per slow English
# request). A non-ASCII text keeps the search: \d also takes other scripts' digits.
_ZEROS = bytes.maketrans(b"123456789", b"000000000")
_DIGIT = re.compile(r"\d")
# unit -> the count from which it means a large piece of work
_UNITS: dict[str, float] = {
    **dict.fromkeys(
        "services microservices teams squads repos repositories regions countries clusters "
        "accounts apps applications databases languages markets cities 服务 微服务 团队 仓库 "
        "地区 国家 集群 账号 应用 数据库 语言 城市".split(), 3),
    **dict.fromkeys(
        "components modules tables pages screens endpoints apis 组件 模块 表 页面 接口 "
        "存储过程".split(), 20),
    **dict.fromkeys("stores shops merchants sites 门店 商家 站点".split(), 10),
    **dict.fromkeys("lines loc 行".split(), 20_000),
    **dict.fromkeys("users tenants devices customers 用户 租户 设备 客户".split(), 10_000),
}
# magnitude -> factor ("" when there is none)
_FACTORS = {"": 1.0, "million": 1e6, "thousand": 1e3, "billion": 1e9, "百万": 1e6, "亿": 1e8,
            "万": 1e4, "千": 1e3, "k": 1e3, "m": 1e6}


def _by_first_letter(units: list[str]) -> str:
    """The units as one alternation, grouped by first letter ("s(?:ervices|quads|…)|…"): sre
    tries a branch's alternatives one by one, and a dozen first letters fail faster than 33
    words (~0.7k instructions per slow request). The same matches: where a unit is tried, at
    most one of them matches, as each must end at a word boundary."""
    groups: dict[str, list[str]] = {}
    for unit in sorted(units, key=len, reverse=True):
        groups.setdefault(unit[0], []).append(unit[1:])
    return "|".join(f"{first}(?:{'|'.join(rests)})" if len(rests) > 1 else first + rests[0]
                    for first, rests in groups.items())


_LATIN_UNITS = _by_first_letter([u for u in _UNITS if u.isascii()])
_CJK_UNITS = "|".join(sorted((u for u in _UNITS if not u.isascii()), key=len, reverse=True))
_LATIN_FIRST = "".join(sorted({u[0] for u in _UNITS if u.isascii()}))
_QUALIFIER = r"[a-z0-9][a-z0-9-]*+\s++"
# The pattern after the number, as the first pass wrote it:
#     \s*(magnitude)?\s*\+?\s*(?:多|余|几)?\s*(?:个|套|…)?\s*(?:Q){0,2}?(?:(Latin)\b|(CJK))
# with Q = [a-z0-9][a-z0-9-]*\s+, a qualifier word. Now, with the same matches:
# * The whitespace runs and a qualifier word's tail are possessive (``*+``, ``++``: Python
#   3.11): what follows each of them never starts with what they match, so giving a character
#   back could only reach a state already tried — without sre retrying the rest of the pattern
#   once per way of splitting a space between the ``\s*`` (~11k instructions fewer per slow
#   request in the first pass).
# * The optional pieces are alternatives with an empty last one, ``(?:X|)`` for ``X?`` and
#   ``(?:|Q(?:|Q))`` for the lazy ``(?:Q){0,2}?``: the same alternatives in the same order,
#   without sre's REPEAT context. "+", 多/余/几 and the measure word take the whitespace after
#   them along, which the next ``\s*`` took before (the same, as that one is possessive).
# * Lookaheads skip the magnitudes where none starts and the Latin units where no Latin unit
#   starts (sre enters every alternative that does not start with a plain character or class).
# * No character class holds a character beyond U+00FF, and one-character alternatives are
#   written with their whitespace so that the parser keeps them as alternatives: sre compiles
#   such a class into a 64K-entry table in Python code (~2.3M instructions each, once per
#   process, when the first number is found), and the pattern compiles in ~8M, as the first
#   pass' did.
# Together ~1.3k instructions fewer a number (6.4k -> 5.1k on the numbers of the 16 slowest
# requests; tests/planner/test_speed_analysis2.py compares the matches on random text).
_UNIT_PATTERN = (
    r"\s*+(?:(?=[bkmt]|百万|万|千|亿)(million|thousand|billion|百万|[km](?![a-z])|万|千|亿)"
    r"\s*+|)(?:\+\s*+|)(?:多\s*+|余\s*+|几\s*+|)"
    r"(?:个\s*+|套\s*+|张\s*+|台\s*+|家\s*+|条\s*+|种\s*+|座\s*+|)"
    rf"(?:|{_QUALIFIER}(?:|{_QUALIFIER}))"
    rf"(?:(?=[{_LATIN_FIRST}])({_LATIN_UNITS})\b|({_CJK_UNITS}))"
)
# A number and, when one follows it, its unit (in a lookahead, so that a search goes on right
# after the number, as it did when numbers were found first: "3 个 k8s 集群" has the number
# "8" too): groups (number, unit text, magnitude, Latin unit, CJK unit). One match per number
# instead of a number match and a unit match (~1k instructions fewer a number).
_SCALE_PATTERN = rf"(\d[\d,.]*+)(?:(?=({_UNIT_PATTERN}))|)"
# A colon, within 200 characters (and before another colon) a separator, and within 200 more
# another. Only the first separator after the colon can start the pair: if the next one after
# it is more than 200 characters on, every later one is more than 200 from the colon. So the
# runs are possessive (the same matches as lazy runs that try every separator in turn, tested;
# ~3k instructions fewer per slow request: no backtracking through up to 200 characters).
_SPEC_LIST_PATTERN = r"[:：][^:：,，、;；]{0,200}+[,，、;；][^,，、;；]{0,200}+[,，、;；]"


@functools.cache
def _compiled(pattern: str) -> re.Pattern[str]:
    """Patterns compiled on first use. Character classes with CJK ranges take the ``re``
    compiler 0.6–2 ms each — a few per cent of a whole ``perfect21 plan`` process — and the
    spec-list pattern is needed only when a request has a colon (the scale pattern, needed
    once a request has a number, is held in ``_scale``)."""
    return re.compile(pattern)


_LIST_MARKS = (",", "，", "、", " and ", " plus ", "；")
# Marks that start with a line break, looked for only when the text has one: `in` with a
# one-character needle is a memchr, a longer one (converted to the text's width first in a
# Chinese text) costs ~1k instructions (~3k fewer per slow plan, with " '" below waiting for
# "'" and _has_code's longer needles waiting for "\n", "E" and '"').
_LINE_LIST_MARKS = ("\n- ", "\n* ")
# A quoted error message, UI text or value ("Invalid Date", “请选择城市”, 'Pay'): the request
# points at one concrete thing. An apostrophe has no space before it, an opening quote has.
_QUOTE_MARKS = ('"', "“", "「", "‘")  # and " '"
# Marks of names from code — snake_case, call(), `quoted`: a request that names the exact code
# to change is usually a local change. Three str.count calls (a regex for identifiers, even
# just camelCase, costs several times more per request for no measurable gain in accuracy).
# "()" is counted apart, only when the text has a "(": a one-character memchr first (~0.4k
# instructions fewer per slow plan: Chinese requests rarely have one).
_IDENT_MARKS = ("_", "`")
# A pasted error: file:line, a Java/JS stack frame, an ...Error/...Exception name, a Python
# traceback line. Each pattern is tried only when a cheap substring test says it can match.
_FILE_LINE = re.compile(r"\.(?:py|go|java|js|ts|rs|c|cpp|kt|swift):\d")
_FRAME = re.compile(r"^\s+at\s", re.MULTILINE)
_ERROR_NAME = re.compile(r"[a-z](?:Error|Exception)\b")


def _has_code(text: str) -> bool:
    return bool(
        (":" in text and _FILE_LINE.search(text))
        or ("E" in text and ("Error" in text or "Exception" in text)
            and _ERROR_NAME.search(text))
        or ("\n" in text and " at " in text and _FRAME.search(text))
        or ('"' in text and 'File "' in text)
    )


def _spec_list(text: str) -> bool:
    return (":" in text or "：" in text) and _compiled(_SPEC_LIST_PATTERN).search(text) is not None


def _has_any(text: str, marks: tuple[str, ...]) -> bool:
    # a loop: in Python 3.11 any() over a generator or a list costs more for a few marks
    for mark in marks:  # noqa: SIM110
        if mark in text:
            return True
    return False


def _count(text: str, marks: tuple[str, ...]) -> int:
    # Most marks do not occur, and ``in`` costs a fraction of a str.count call.
    count = 0
    for mark in marks:
        if mark in text:
            count += text.count(mark)
    return count


_LOC = {Complexity.SIMPLE: 60, Complexity.MEDIUM: 400, Complexity.COMPLEX: 2500}
_MODULES = {Complexity.SIMPLE: 1, Complexity.MEDIUM: 3, Complexity.COMPLEX: 6}
_BANDS = f"(simple < {THRESHOLDS[0]:+.2f} <= medium < {THRESHOLDS[1]:+.2f} <= complex)"
# Templates for ``%``: "%+.2f" % x formats a float exactly as f"{x:+.2f}" (both end in
# PyOS_double_to_string(x, 'f', 2, Py_DTSF_SIGN)) without format() and a format-spec parse:
# ~0.7k instructions fewer for the head below, ~0.8k for a term (named, as ruff's UP031 would
# rewrite a literal into the dearer form). The bands, formatted once, have no "%".
_TERM = "%+.2f from %s"


def _band(complexity: Complexity) -> tuple[Complexity, str, tuple[tuple[int, int], ...]]:
    """(complexity, its reason's %-format, (estimated LOC, modules) by number of domains 0–6+),
    computed once: an Enum member's attribute, its .value and the size arithmetic cost
    ~5k instructions per plan."""
    sizes = []
    for domains in range(7):
        breadth = max(domains, 1)
        sizes.append((int(_LOC[complexity] * (1 + 0.25 * (min(breadth, 6) - 1))),
                      _MODULES[complexity] + (min(breadth, 6) - 1) // 2))
    head = f"complexity {complexity.value}: score %+.2f {_BANDS}"
    return complexity, head, tuple(sizes)


_SIMPLE, _MEDIUM, _COMPLEX = (_band(c) for c in
                              (Complexity.SIMPLE, Complexity.MEDIUM, Complexity.COMPLEX))
_SIGNALS = ("scope", "planning", "small", "diagnosis", "conjunction", "construction",
            "error_report", "change", "fix", "migration", "performance")
_SIGNAL_SET = frozenset(_SIGNALS)


_AnalysisDraft = draft_class(Analysis)

_scale: re.Pattern[str] | None = None  # _SCALE_PATTERN compiled, once a text has a number


def _compile_scale() -> re.Pattern[str]:
    global _scale
    _scale = re.compile(_SCALE_PATTERN)
    return _scale


def _scale_mentions(text: str, lowered: str | None = None) -> list[str]:
    """The scale numbers of ``text`` ("40 services", "15 万行"); ``lowered`` is
    ``text.lower()`` when the caller has it (the scan's: ~6k instructions on a 100-character
    Chinese request)."""
    found: list[str] = []
    if lowered is None:
        lowered = text.lower()
    if lowered.isascii():
        digits = lowered.encode().translate(_ZEROS)
        start = digits.find(b"0")
        if start < 0:
            return found
        scale = _scale or _compile_scale()
        while start >= 0:
            match = scale.match(lowered, start)
            assert match is not None  # a digit is a number
            number, unit, magnitude, latin, cjk = match.groups("")
            if unit and _large(number, magnitude, latin or cjk):
                found.append(text[start : start + len(number) + len(unit)].strip())
            start = digits.find(b"0", start + len(number))
        return found
    pattern = _scale
    if pattern is None:  # compiled only once a text has a number (~8M instructions)
        if _DIGIT.search(lowered) is None:
            return found
        pattern = _compile_scale()
    for match in pattern.finditer(lowered):
        number, unit, magnitude, latin, cjk = match.groups("")
        if unit and _large(number, magnitude, latin or cjk):
            start = match.start()
            found.append(text[start : start + len(number) + len(unit)].strip())
    return found


def _large(number: str, magnitude: str, unit: str) -> bool:
    """Whether ``number`` ``magnitude`` of ``unit`` is a large count of it. A number is
    digits, "," and "." only (no case, no space): float() of it without the commas, times the
    magnitude's factor, or 0 — ~7k instructions fewer per slow request than stripping and
    lowering it and trying each magnitude as a suffix, as before."""
    try:
        value = float(number.replace(",", "")) * _FACTORS[magnitude]
    except ValueError:  # "1.2.3"
        value = 0.0
    return value >= _UNITS[unit]


# the features, in the order of features()' vector: the general ones, then one per signal
_NAMES = ("log_words", "list_items", "breadth", "scale", "code", "question", "quoted",
          "spec_list", "identifiers", *_SIGNALS)
_LOG_WEIGHT = WEIGHTS.get("log_words", 0.0)
# signal -> its position among the signals, and a row of zeros to copy (only the signals the
# request has are filled in)
_SIGNAL_INDEX = {signal: i for i, signal in enumerate(_SIGNALS)}
_NO_SIGNALS = [0.0] * len(_SIGNALS)
_ROOTS = tuple([math.sqrt(n) for n in range(17)])  # math.sqrt(min(n, 16)) for n < 17
_FLOATS = (0.0, 1.0, 2.0)


def _measures(text: str, scan: Scan) -> tuple[float, list[str], int, bool, bool, bool, bool, int]:
    """What the general features are computed from, for _values() and _terms(): (words,
    scale mentions, list marks, code, question, quoted, spec list, identifier marks)."""
    return (
        scan.latin_count + scan.cjk_chars / 1.6,  # CJK chars per English word, roughly
        _scale_mentions(text, scan.lowered),
        # separators of enumerations
        _count(text, _LIST_MARKS) + (_count(text, _LINE_LIST_MARKS) if "\n" in text else 0),
        _has_code(text),
        "?" in text or "？" in text,
        _has_any(text, _QUOTE_MARKS) or ("'" in text and " '" in text),
        # "Build X: a, b, c and d" — a colon introducing a list of deliverables
        _spec_list(text),
        _count(text, _IDENT_MARKS) + (text.count("()") if "(" in text else 0),
    )


def _distinct_words(keys: list[str]) -> int:
    """How many distinct words of the request a signal's keys are: a Chinese word and its
    English translations ("迁移", "迁移→migration") are one piece of evidence, as the English
    word alone is. (partition() only for a translation: ~0.3k a key fewer otherwise.)"""
    words_of: set[str] = set()
    for key in keys:
        words_of.add(key.partition("→")[0] if "→" in key else key)
    return len(words_of)


def _values(
    text: str, scan: Scan, signals: dict[str, list[str]], agent_breadth: int
) -> tuple[list[float], list[str]]:
    """(the feature values in _NAMES order, scale mentions), for features()."""
    words, scale, marks, code, question, quoted, spec_list, idents = _measures(text, scan)
    values = [
        math.log1p(words),
        _ROOTS[marks if marks < 16 else 16],  # square-rooted: the third item says more
        (agent_breadth if agent_breadth < 8 else 8) / 4,
        1.0 if scale else 0.0,
        1.0 if code else 0.0,
        1.0 if question else 0.0,
        1.0 if quoted else 0.0,
        1.0 if spec_list else 0.0,
        (idents if idents < 4 else 4) / 2,
    ]
    counts = _NO_SIGNALS.copy()
    for signal, keys in signals.items():
        index = _SIGNAL_INDEX.get(signal)
        if index is not None:
            n = _distinct_words(keys)
            counts[index] = _FLOATS[n] if n < 3 else 3.0
    values += counts
    return values, scale


def features(
    text: str, scan: Scan, groups: TagGroups, *, agent_breadth: int
) -> tuple[dict[str, float], list[str]]:
    """(feature vector, scale mentions); ``groups`` is ``index.tag_groups(scan)``."""
    values, scale = _values(text, scan, groups[2], agent_breadth)
    return dict(zip(_NAMES, values, strict=True)), scale


def _contributions(vector: dict[str, float]) -> list[tuple[float, str, float]]:
    """(-|w·x|, name, w·x) of every feature that adds to the score, in vector order."""
    out = []
    for name, value in vector.items():
        if value and (weight := WEIGHTS.get(name, 0.0) * value):
            out.append((-abs(weight), name, weight))
    return out


def complexity_score(vector: dict[str, float]) -> float:
    # Terms that are zero leave a float sum unchanged: the same sum, in the same order.
    return sum([weight for _magnitude, _name, weight in _contributions(vector)], 0.0)


# A term of the score as analyse() sorts and words it: (-|w·x|, feature, w·x, the start of
# its reason, kind: 0, or _KEYED for a signal (its words follow), _SCALED for scale (its
# mentions follow)). The features' names are distinct, so a sort never compares past them.
_Term = tuple[float, str, float, str, int]
_KEYED, _SCALED = 1, 2


def _term(name: str, value: float) -> _Term | None:
    """The term of feature ``name`` at ``value``, None when it adds nothing (as in
    _contributions: a zero value or a zero product)."""
    weight = WEIGHTS.get(name, 0.0) * value
    if not value or not weight:
        return None
    kind = _KEYED if name in _SIGNAL_SET else _SCALED if name == "scale" else 0
    text = _TERM % (weight, name) + (": " if kind else "")
    return (weight if weight < 0.0 else -weight, name, weight, text, kind)


# Every term but log_words' (the only feature with a continuous value) built once per
# process from the values features() can give (the same expressions, so the same floats):
# analyse() appends a ready tuple where it multiplied, compared, negated, built a tuple and
# looked up its text per feature and plan (~11k instructions fewer per slow plan).
_LIST_TERMS = tuple([_term("list_items", root) for root in _ROOTS])  # by min(marks, 16)
_BREADTH_TERMS = tuple([_term("breadth", (n if n < 8 else 8) / 4) for n in range(9)])
_IDENT_TERMS = tuple([_term("identifiers", n / 2) for n in range(5)])  # by min(marks, 4)
_SCALE_TERM = _term("scale", 1.0)
_CODE_TERM = _term("code", 1.0)
_QUESTION_TERM = _term("question", 1.0)
_QUOTED_TERM = _term("quoted", 1.0)
_SPEC_LIST_TERM = _term("spec_list", 1.0)
# signal -> (its position among the signals, its term by count of distinct words 0-3)
_SIGNAL_TERMS = {
    signal: (i, (None, *[_term(signal, _FLOATS[n] if n < 3 else 3.0) for n in (1, 2, 3)]))
    for i, signal in enumerate(_SIGNALS)
}
_NO_TERMS: list[_Term | None] = [None] * len(_SIGNALS)
_WEIGHT_OF = itemgetter(2)


def _terms(
    text: str, scan: Scan, signals: dict[str, list[str]], agent_breadth: int
) -> tuple[list[_Term], list[str]]:
    """(the terms of the features that add to the score, in vector order, scale mentions):
    _values() with each value made its term, for analyse(). The same expressions as there
    (tests compare the two)."""
    words, scale, marks, code, question, quoted, spec_list, idents = _measures(text, scan)
    terms: list[_Term] = []
    value = math.log1p(words)
    weight = _LOG_WEIGHT * value
    if value and weight:
        # no text yet: analyse() formats it only when the term is among the four shown
        terms.append((weight if weight < 0.0 else -weight, "log_words", weight, "", 0))
    term = _LIST_TERMS[marks if marks < 16 else 16]
    if term is not None:
        terms.append(term)
    if agent_breadth >= 0:
        term = _BREADTH_TERMS[agent_breadth if agent_breadth < 8 else 8]
    else:  # (a breadth is a count; the plain expression all the same)
        term = _term("breadth", agent_breadth / 4)
    if term is not None:
        terms.append(term)
    if scale and _SCALE_TERM is not None:
        terms.append(_SCALE_TERM)
    if code and _CODE_TERM is not None:
        terms.append(_CODE_TERM)
    if question and _QUESTION_TERM is not None:
        terms.append(_QUESTION_TERM)
    if quoted and _QUOTED_TERM is not None:
        terms.append(_QUOTED_TERM)
    if spec_list and _SPEC_LIST_TERM is not None:
        terms.append(_SPEC_LIST_TERM)
    term = _IDENT_TERMS[idents if idents < 4 else 4]
    if term is not None:
        terms.append(term)
    if signals:
        # each signal's term in its slot, then the filled slots in vector order (filter() in C)
        slots = _NO_TERMS.copy()
        for signal, keys in signals.items():
            entry = _SIGNAL_TERMS.get(signal)
            if entry is not None:
                if len(keys) == 1:  # most signals have one key
                    slots[entry[0]] = entry[1][1]
                    continue
                n = _distinct_words(keys)
                slots[entry[0]] = entry[1][n if n < 3 else 3]
        terms += filter(None, slots)
    return terms, scale


def _tag_reason(head: str, tags: dict[str, list[str]]) -> str:
    """``head`` and each tag with its first one or two labels (a tag always has one; the
    last case is for an empty list all the same): ~5k instructions fewer per slow plan than
    slicing and joining every list."""
    parts = []
    for k, v in tags.items():
        n = len(v)
        parts.append(f"{k} ({v[0]})" if n == 1 else f"{k} ({v[0]}, {v[1]})" if n else f"{k} ()")
    return head + "; ".join(parts)


def analyse(text: str, scan: Scan, groups: TagGroups, *, agent_breadth: int) -> Analysis:
    """Analyse ``text``; ``groups`` = ``index.tag_groups(scan)``, ``agent_breadth`` = how
    many distinct roles the routing found."""
    domains, stack, signals = groups
    contributions, scale = _terms(text, scan, signals, agent_breadth)
    # the sum of complexity_score(vector): the same terms, in the same order
    score = sum(map(_WEIGHT_OF, contributions), 0.0)
    if score >= THRESHOLDS[1]:
        complexity, head, sizes = _COMPLEX
    elif score < THRESHOLDS[0]:
        complexity, head, sizes = _SIMPLE
    else:
        complexity, head, sizes = _MEDIUM
    contributions.sort()
    reasons = [head % score]
    for _magnitude, name, weight, term, kind in contributions[:4]:
        if not term:  # log_words
            term = _TERM % (weight, name)
        elif kind == _KEYED:  # the signal's first four words (a one-item join is the item)
            keys = signals[name]
            term += keys[0] if len(keys) == 1 else ", ".join(keys[:4])
        elif kind:  # the first three scale mentions
            term += scale[0] if len(scale) == 1 else ", ".join(scale[:3])
        reasons.append(term)
    if domains:
        reasons.append(_tag_reason("domains: ", domains))
    if stack:
        reasons.append(_tag_reason("stack: ", stack))
    n = len(domains)
    loc, modules = sizes[n if n < 6 else 6]  # (not min(): a builtin call, ~1.1k more)
    latin, cjk = scan.latin_count, scan.cjk_chars
    language = ("mixed" if latin >= 3 else "zh") if cjk and cjk >= latin else "en"
    # built as a draft (models.draft_class), inline: ~0.5k instructions fewer than a call
    result = _AnalysisDraft()
    result.complexity = complexity
    result.domains = tuple(domains)
    result.stack = tuple(stack)
    result.terms = scan.hits[:32]
    result.estimated_loc = loc
    result.modules = modules
    result.language = language
    result.reasons = tuple(reasons)
    result.__class__ = Analysis
    built: Analysis = result  # (a draft is typed Any)
    return built
