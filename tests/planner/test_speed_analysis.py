"""The analysis' fast paths give exactly what the plain code they replaced gives.

Each reference below is the earlier, straightforward version of a piece of
``perfect21.planner.analysis``; the tests compare the two on every labelled request and on
many random strings built from the pieces the patterns care about (numbers, magnitudes,
measure words, qualifier words, units, whitespace, punctuation, digits of other scripts).
"""

from __future__ import annotations

import json
import math
import random
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from perfect21.planner import analysis
from perfect21.planner.catalog import load_catalog
from perfect21.planner.complexity_model import THRESHOLDS, WEIGHTS
from perfect21.planner.index import CompiledIndex, Scan, TagGroups
from perfect21.planner.models import Analysis, Complexity
from perfect21.planner.text import normalize_request

DATA = Path(__file__).resolve().parent / "data"
SAMPLE = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "routing_sample.jsonl"

# -- references: the code before the speed pass --------------------------------------------

_REF_NUMBER = re.compile(r"\d[\d,.]*")
_REF_LATIN_UNITS = "|".join(sorted((u for u in analysis._UNITS if u.isascii()), key=len,
                                   reverse=True))
_REF_CJK_UNITS = "|".join(sorted((u for u in analysis._UNITS if not u.isascii()), key=len,
                                 reverse=True))
_REF_UNIT = re.compile(
    r"\s*(million|thousand|billion|百万|[km](?![a-z])|万|千|亿)?\s*\+?\s*(?:多|余|几)?\s*"
    r"(?:个|套|张|台|家|条|种|座)?\s*(?:[a-z0-9][a-z0-9-]*\s+){0,2}?"
    rf"(?:({_REF_LATIN_UNITS})\b|({_REF_CJK_UNITS}))"
)
_REF_MAGNITUDE = {"million": 1e6, "thousand": 1e3, "billion": 1e9}


def _ref_number(text: str) -> float:
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


def _ref_scale_mentions(text: str) -> list[str]:
    found: list[str] = []
    lowered = text.lower()
    for number in _REF_NUMBER.finditer(lowered):
        unit = _REF_UNIT.match(lowered, number.end())
        if unit is None:
            continue
        magnitude = unit.group(1) or ""
        if magnitude in _REF_MAGNITUDE:
            value = _ref_number(number.group()) * _REF_MAGNITUDE[magnitude]
        else:
            value = _ref_number(number.group() + magnitude)
        if value >= analysis._UNITS[unit.group(2) or unit.group(3)]:
            found.append(text[number.start() : unit.end()].strip())
    return found


# -- inputs ---------------------------------------------------------------------------------


def _requests() -> list[str]:
    rows = []
    for path in [SAMPLE, *sorted(DATA.glob("*.jsonl"))]:
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                rows.append(normalize_request(json.loads(line)["request"]))
    return rows


_PIECES = [
    *["0", "3", "40", "1,500", "2.5", "1.2.3", "300k", "50k", "8", ",", ".", "1,", "٣", "５",
      "１０", "߂", "𝟒"],
    *["million", "thousand", "billion", "百万", "k", "m", "K", "M", "万", "千", "亿", "k-means",
      "kitchens", "millionaire", "m3"],
    *["+", "多", "余", "几", "个", "套", "张", "台", "家", "条", "种", "座"],
    *["of", "our", "k8s", "aws", "micro-", "legacy", "-", "x", "s", "ab-c"],
    *sorted(analysis._UNITS), "Services", "SERVICES", "servicesx", "services_", "appsx",
    *[" ", " ", " ", "  ", "\t", "\n", "\u3000", "", "，", "、", ":", "：", ";", "(", ")", "İ",
      "Σ", "ſ", "\u212a", "é", "代码", "的", "_", "`", "()", '"', "“", " '", "Error", " at ",
      "File \""],
]


_ASCII_PIECES = [piece for piece in _PIECES if piece.isascii()]


def _random_texts(seed: int, count: int, max_pieces: int = 14, *,
                  pieces: list[str] = _PIECES) -> list[str]:
    rng = random.Random(seed)
    return ["".join(rng.choice(pieces) for _ in range(rng.randint(1, max_pieces)))
            for _ in range(count)]


# -- scale mentions -------------------------------------------------------------------------


def test_unit_pattern_matches_as_the_greedy_one_on_random_text() -> None:
    """The possessive unit pattern: the same span and groups at every position."""
    unit = analysis._compiled(analysis._UNIT_PATTERN)
    for text in _random_texts(1, 20_000):
        lowered = text.lower()
        for pos in range(len(lowered) + 1):
            new, ref = unit.match(lowered, pos), _REF_UNIT.match(lowered, pos)
            assert (new and (new.span(), new.groups())) == (ref and (ref.span(), ref.groups()))


@pytest.mark.parametrize("seed", [2, 3])
def test_scale_mentions_as_before_on_random_text(seed: int) -> None:
    for text in _random_texts(seed, 30_000):
        assert analysis._scale_mentions(text) == _ref_scale_mentions(text), text


def test_scale_mentions_as_before_on_random_ascii_text() -> None:
    """ASCII texts take the bytes.find path for numbers."""
    for text in _random_texts(4, 30_000, pieces=_ASCII_PIECES):
        assert text.isascii()
        assert analysis._scale_mentions(text) == _ref_scale_mentions(text), text


def test_scale_mentions_as_before_on_every_request() -> None:
    requests = _requests()
    assert len(requests) > 300
    found = 0
    for text in requests:
        mentions = analysis._scale_mentions(text)
        assert mentions == _ref_scale_mentions(text), text
        found += bool(mentions)
    assert found > 20  # the samples do mention scale


def test_scale_mentions_examples() -> None:
    assert analysis._scale_mentions("40 services, 15 万行代码, 3 个 k8s 集群, 2 million users") \
        == ["40 services", "15 万行", "3 个 k8s 集群", "8s 集群", "2 million users"]
    assert analysis._scale_mentions("5 k-means services and 1.2.3 services") == \
        ["5 k-means services"]
    # digits of other scripts are numbers too (the text is not ASCII)
    assert analysis._scale_mentions("٤٠ services, ４０ services") == \
        ["٤٠ services", "４０ services"]
    assert analysis._scale_mentions("2 services") == []


# -- features and analyse -------------------------------------------------------------------

_REF_SPEC_LIST = re.compile(r"[:：][^:：]{0,200}?[,，、;；][^,，、;；]{0,200}?[,，、;；]")
_REF_FILE_LINE = re.compile(r"\.(?:py|go|java|js|ts|rs|c|cpp|kt|swift):\d")
_REF_FRAME = re.compile(r"^\s+at\s", re.MULTILINE)
_REF_ERROR_NAME = re.compile(r"[a-z](?:Error|Exception)\b")
_REF_SIGNALS = ("scope", "planning", "small", "diagnosis", "conjunction", "construction",
                "error_report", "change", "fix", "migration", "performance")
_REF_LOC = {"simple": 60, "medium": 400, "complex": 2500}
_REF_MODULES = {"simple": 1, "medium": 3, "complex": 6}


def _ref_count(text: str, marks: tuple[str, ...]) -> int:
    return sum(text.count(mark) for mark in marks)


def _ref_has_code(text: str) -> bool:
    return bool(
        (":" in text and _REF_FILE_LINE.search(text))
        or (("Error" in text or "Exception" in text) and _REF_ERROR_NAME.search(text))
        or (" at " in text and "\n" in text and _REF_FRAME.search(text))
        or 'File "' in text
    )


def _ref_features(
    text: str, scan: Scan, groups: TagGroups, agent_breadth: int
) -> tuple[dict[str, float], list[str]]:
    words = scan.latin_count + scan.cjk_chars / 1.6
    scale = _ref_scale_mentions(text)
    vector = {
        "log_words": math.log1p(words),
        "list_items": math.sqrt(min(_ref_count(text, (",", "，", "、", " and ", " plus ", "\n- ",
                                                      "\n* ", "；")), 16)),
        "breadth": min(agent_breadth, 8) / 4,
        "scale": 1.0 if scale else 0.0,
        "code": 1.0 if _ref_has_code(text) else 0.0,
        "question": 1.0 if ("?" in text or "？" in text) else 0.0,
        "quoted": 1.0 if any(m in text for m in ('"', "“", "「", "‘", " '")) else 0.0,
        "spec_list": 1.0 if _REF_SPEC_LIST.search(text) else 0.0,
        "identifiers": min(_ref_count(text, ("_", "()", "`")), 4) / 2,
    }
    counts = dict.fromkeys(_REF_SIGNALS, 0.0)
    for signal, keys in groups[2].items():
        if signal in counts:
            counts[signal] = float(min(len({key.partition("→")[0] for key in keys}), 3))
    vector.update(counts)
    return vector, scale


def _ref_analyse(text: str, scan: Scan, groups: TagGroups, agent_breadth: int) -> Analysis:
    vector, scale = _ref_features(text, scan, groups, agent_breadth)
    domains, stack, signals = groups
    contributions = []
    for name, value in vector.items():
        if value and (weight := WEIGHTS.get(name, 0.0) * value):
            contributions.append((-abs(weight), name, weight))
    score = sum([weight for _m, _n, weight in contributions], 0.0)
    if score >= THRESHOLDS[1]:
        complexity = Complexity.COMPLEX
    elif score < THRESHOLDS[0]:
        complexity = Complexity.SIMPLE
    else:
        complexity = Complexity.MEDIUM
    contributions.sort()
    bands = f"(simple < {THRESHOLDS[0]:+.2f} <= medium < {THRESHOLDS[1]:+.2f} <= complex)"
    reasons = [f"complexity {complexity.value}: score {score:+.2f} {bands}"]
    for _magnitude, name, weight in contributions[:4]:
        term = f"{weight:+.2f} from {name}"
        if name in _REF_SIGNALS:
            term += ": " + ", ".join(signals.get(name, [])[:4])
        elif name == "scale":
            term += ": " + ", ".join(scale[:3])
        reasons.append(term)
    for label, bucket in (("domains", domains), ("stack", stack)):
        if bucket:
            reasons.append(f"{label}: " + "; ".join(f"{k} ({', '.join(v[:2])})"
                                                    for k, v in bucket.items()))
    breadth = max(len(domains), 1)
    loc = int(_REF_LOC[complexity.value] * (1 + 0.25 * (min(breadth, 6) - 1)))
    modules = _REF_MODULES[complexity.value] + (min(breadth, 6) - 1) // 2
    latin, cjk = scan.latin_count, scan.cjk_chars
    language = "zh" if cjk and cjk >= latin else "en"
    if language == "zh" and latin >= 3:
        language = "mixed"
    return Analysis(complexity, tuple(domains), tuple(stack), scan.hits[:32], loc, modules,
                    language, tuple(reasons))


@pytest.fixture(scope="module")
def index() -> CompiledIndex:
    return load_catalog(user=False, cache_dir=None).index


def _check_analysis(index: CompiledIndex, text: str, breadth: int) -> Analysis:
    scan = index.scan(text)
    groups = index.tag_groups(scan)
    vector, scale = analysis.features(text, scan, groups, agent_breadth=breadth)
    ref_vector, ref_scale = _ref_features(text, scan, groups, breadth)
    # the same keys in the same order, the same values bit for bit
    assert list(vector.items()) == list(ref_vector.items()), text
    assert scale == ref_scale
    assert analysis.complexity_score(vector) == sum(
        [WEIGHTS.get(k, 0.0) * v for k, v in ref_vector.items() if v], 0.0)
    result = analysis.analyse(text, scan, groups, agent_breadth=breadth)
    assert result == _ref_analyse(text, scan, groups, breadth), text
    assert result.to_dict() == _ref_analyse(text, scan, groups, breadth).to_dict()
    return result


def test_analysis_as_before_on_every_request(index: CompiledIndex) -> None:
    complexities = set()
    for n, text in enumerate(_requests()):
        complexities.add(_check_analysis(index, text, n % 10).complexity)
    assert complexities == set(Complexity)


def test_analysis_as_before_on_mixed_requests(index: CompiledIndex) -> None:
    """Pieces of different requests glued together, with pieces of the random texts: other
    combinations of signals, tags, marks and scale mentions than the samples have."""
    rng = random.Random(5)
    for text in _mixed_requests(rng, 1500):
        _check_analysis(index, text, rng.randint(0, 12))


def _mixed_requests(rng: random.Random, count: int) -> Iterator[str]:
    """``count`` normalised texts: pieces of the sample requests and of the random texts,
    shuffled and joined (``rng`` is also free to draw between them)."""
    requests = _requests()
    for n in range(count):
        parts = [rng.choice(requests)[: rng.randint(0, 300)] for _ in range(rng.randint(1, 4))]
        parts += _random_texts(n, rng.randint(0, 2), 8)
        rng.shuffle(parts)
        yield normalize_request(" ".join(parts) or "x")


def test_analysis_of_empty_tag_lists(index: CompiledIndex) -> None:
    """A tag with no labels (tag_groups never makes one) reads as before too."""
    text = "Build a login page with React: form, validation, and tests"
    scan = index.scan(text)
    groups: TagGroups = ({"auth": [], "frontend": ["a", "b", "c"]}, {"react": ["x"]},
                         {"construction": [], "scope": ["a", "a→b", "c→d", "e"]})
    assert analysis.analyse(text, scan, groups, agent_breadth=3) == \
        _ref_analyse(text, scan, groups, 3)


def test_spec_list_pattern_matches_as_the_lazy_one() -> None:
    """The possessive spec-list pattern finds the same first match as the lazy one, on
    texts of colons, separators and runs of other characters around the 200 bound."""
    pattern = analysis._compiled(analysis._SPEC_LIST_PATTERN)
    pieces = [":", "：", ",", "，", "、", ";", "；", "a", "b c", "代码", "\n", *["x" * n for n in
              (1, 2, 50, 99, 100, 101, 197, 198, 199, 200, 201, 202)]]
    rng = random.Random(6)
    found = 0
    for _ in range(20_000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(1, 12)))
        new, ref = pattern.search(text), _REF_SPEC_LIST.search(text)
        assert (new and new.span()) == (ref and ref.span()), text
        found += ref is not None
    assert 500 < found < 19_000


def test_percent_template_formats_as_the_f_string() -> None:
    """analysis' "%+.2f" templates give f"{x:+.2f}" for every float: ties, zeros, huge,
    tiny, non-finite, and many random values around the reasons' range."""
    rng = random.Random(7)
    xs = [0.0, -0.0, 0.005, -0.005, 0.015, 0.125, -0.125, 2.675, 1e300, -1e300, 5e-324,
          float("inf"), float("-inf"), float("nan"), 7.1998, 10.4612]
    xs += [rng.uniform(-30, 30) for _ in range(50_000)]
    xs += [round(rng.uniform(-30, 30), 3) for _ in range(20_000)]  # ties like x.xx5
    xs += [n / 1000 + 0.0005 for n in range(-30_000, 30_000, 7)]
    xs += [rng.uniform(-1e18, 1e18) for _ in range(5_000)]
    for x in xs:
        assert analysis._TERM % (x, "log_words") == f"{x:+.2f} from log_words"
    assert "%" not in analysis._BANDS
    for complexity, head, _sizes in (analysis._SIMPLE, analysis._MEDIUM, analysis._COMPLEX):
        for x in xs[:2_000]:
            assert head % x == f"complexity {complexity.value}: score {x:+.2f} {analysis._BANDS}"
