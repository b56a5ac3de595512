"""The analysis' fast paths give exactly what the plain code they replaced gives.

Each reference below is the earlier, straightforward version of a piece of
``perfect21.planner.analysis``; the tests compare the two on every labelled request and on
many random strings built from the pieces the patterns care about (numbers, magnitudes,
measure words, qualifier words, units, whitespace, punctuation, digits of other scripts).
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import pytest

from perfect21.planner import analysis
from perfect21.planner.text import normalize_request

DATA = Path(__file__).resolve().parent / "data"
SAMPLE = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "routing_sample.jsonl"

# -- references: the code before the speed pass --------------------------------------------

_REF_NUMBER = re.compile(r"\d[\d,.]*")
_REF_UNIT = re.compile(
    r"\s*(million|thousand|billion|百万|[km](?![a-z])|万|千|亿)?\s*\+?\s*(?:多|余|几)?\s*"
    r"(?:个|套|张|台|家|条|种|座)?\s*(?:[a-z0-9][a-z0-9-]*\s+){0,2}?"
    rf"(?:({analysis._LATIN_UNITS})\b|({analysis._CJK_UNITS}))"
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
      "Σ", "ſ", "é", "代码", "的", "_", "`", "()", '"', "“", " '", "Error", " at ", "File \""],
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
