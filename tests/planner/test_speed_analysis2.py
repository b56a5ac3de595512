"""The second speed pass over ``perfect21.planner.analysis``: the same results as before.

The references are the first pass' code, in ``test_speed_analysis``: the unit pattern as it
was written then and ``_scale_mentions`` with a number match and a unit match per number.
"""

from __future__ import annotations

import random

import pytest

from perfect21.planner import analysis

from .test_speed_analysis import _PIECES, _REF_UNIT, _random_texts, _ref_scale_mentions

# more of what the unit pattern's new alternatives take: "+", 多/余/几 and measure words with
# and without whitespace, magnitudes and qualifiers next to them, other cases
_MORE_PIECES = [
    *_PIECES, "MILLION", "Million", "Thousand", "BILLION", "Users", "CLUSTERS", "Apps", "LOC",
    "K8S", "Teams", "\u212a", "\u212aB", "k", "K", "M", "mM", "b", "t", "bi", "th", "百", "S",
    " + ", "+多", "余个", "几 套", "多 个", "+ 万", "万 +", "++", "多多", "个个", "σ", "Σ",
]


@pytest.mark.parametrize("seed", [11, 12])
def test_unit_pattern_matches_as_the_first_pass_on_random_text(seed: int) -> None:
    """The same span and groups at every position of the lowered text."""
    unit = analysis._compiled(analysis._UNIT_PATTERN)
    for text in _random_texts(seed, 20_000, pieces=_MORE_PIECES):
        lowered = text.lower()
        for pos in range(len(lowered) + 1):
            new, ref = unit.match(lowered, pos), _REF_UNIT.match(lowered, pos)
            assert (new and (new.span(), new.groups())) == (ref and (ref.span(), ref.groups())), \
                (text, pos)


def test_scale_pattern_is_a_number_and_its_unit() -> None:
    """The number's span, the unit's text right after it when there is one, and the unit's
    groups, as a number match and a unit match gave them."""
    scale = analysis._compiled(analysis._SCALE_PATTERN)
    number = analysis._compiled(r"\d[\d,.]*")
    for text in _random_texts(17, 20_000, pieces=_MORE_PIECES):
        lowered = text.lower()
        for pos in range(len(lowered) + 1):
            ref = number.match(lowered, pos)
            new = scale.match(lowered, pos)
            assert (new and new.span()) == (ref and ref.span())
            if ref is not None and new is not None:
                unit = _REF_UNIT.match(lowered, ref.end())
                groups = new.groups()
                assert groups[0] == ref.group()
                assert groups[1:] == ((unit.group(), *unit.groups()) if unit else
                                      (None, None, None, None))


@pytest.mark.parametrize("seed", [13, 14, 15])
def test_scale_mentions_as_before_on_random_text(seed: int) -> None:
    rng = random.Random(seed)
    for text in _random_texts(seed, 30_000, pieces=_MORE_PIECES):
        if rng.random() < 0.1:
            text = text.replace(" ", "\u3000")
        expected = _ref_scale_mentions(text)
        assert analysis._scale_mentions(text) == expected, text
        assert analysis._scale_mentions(text, text.lower()) == expected, text


def test_scale_mentions_as_before_on_random_ascii_text() -> None:
    for text in _random_texts(16, 30_000, pieces=[p for p in _MORE_PIECES if p.isascii()]):
        assert analysis._scale_mentions(text) == _ref_scale_mentions(text), text


def test_scale_mentions_with_dotted_capital_i() -> None:
    """"İ" lowers to two characters: positions in the lowered text, as before."""
    for text in ["İİ 40 services", "40 İ services", "İ 3 个服务 and 40 Services",
                 "İ5 million users İ", "5 \u212a users", "50\u212a users"]:
        assert analysis._scale_mentions(text) == _ref_scale_mentions(text), text
    assert analysis._scale_mentions("40 Services, 2 MILLION Users") == \
        ["40 Services", "2 MILLION Users"]


def test_scale_pattern_compiled_only_once_a_text_has_a_number(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Compiling it costs ~8M instructions: a process that plans one request without a
    number (the CLI) never does."""
    monkeypatch.setattr(analysis, "_scale", None)
    assert analysis._scale_mentions("实现用户登录功能，使用JWT认证") == []
    assert analysis._scale_mentions("Build a login page") == []
    assert analysis._scale is None
    assert analysis._scale_mentions("迁移 40 个服务") == ["40 个服务"]
    assert analysis._scale is not None
