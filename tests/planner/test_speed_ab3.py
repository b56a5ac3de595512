"""The third speed pass over analyse and build: the fast forms give what the plain code gives.

``analysis._terms`` (the score's terms, prebuilt per feature value) against the feature
vector of ``analysis.features`` weighed as ``_contributions`` does it; the end-to-end
comparisons with the earlier code are in test_speed_analysis.py and test_speed_build.py.
"""

from __future__ import annotations

import random

import pytest
from tests.planner.test_speed_analysis import _random_texts, _requests

from perfect21.planner import analysis
from perfect21.planner.catalog import load_catalog
from perfect21.planner.index import CompiledIndex, TagGroups
from perfect21.planner.text import normalize_request


@pytest.fixture(scope="module")
def index() -> CompiledIndex:
    return load_catalog(user=False, cache_dir=None).index


def _check_terms(index: CompiledIndex, text: str, breadth: int,
                 groups: TagGroups | None = None) -> None:
    scan = index.scan(text)
    if groups is None:
        groups = index.tag_groups(scan)
    vector, scale = analysis.features(text, scan, groups, agent_breadth=breadth)
    terms, term_scale = analysis._terms(text, scan, groups[2], breadth)
    assert term_scale == scale
    # the same (-|w·x|, name, w·x) in the same (vector) order, bit for bit
    expected = analysis._contributions(vector)
    assert [t[:3] for t in terms] == expected, text
    for t in terms:
        assert repr(t[0]) == repr(-abs(t[2]))
        name, weight, prefix, kind = t[1], t[2], t[3], t[4]
        if name == "log_words":
            assert (prefix, kind) == ("", 0)
            continue
        assert kind == (analysis._KEYED if name in analysis._SIGNAL_SET else
                        analysis._SCALED if name == "scale" else 0)
        assert prefix == f"{weight:+.2f} from {name}" + (": " if kind else "")
    # the score, as complexity_score sums it
    assert sum([t[2] for t in terms], 0.0) == analysis.complexity_score(vector)


def test_terms_as_the_vector_on_every_request(index: CompiledIndex) -> None:
    for n, text in enumerate(_requests()):
        _check_terms(index, text, n % 12)


def test_terms_as_the_vector_on_mixed_requests(index: CompiledIndex) -> None:
    requests = _requests()
    rng = random.Random(31)
    for n in range(800):
        parts = [rng.choice(requests)[: rng.randint(0, 300)] for _ in range(rng.randint(1, 4))]
        parts += _random_texts(n, rng.randint(0, 2), 8)
        rng.shuffle(parts)
        _check_terms(index, normalize_request(" ".join(parts) or "x"), rng.randint(-3, 14))


def test_terms_of_odd_groups(index: CompiledIndex) -> None:
    """Empty key lists, unknown signals, repeated words and a negative breadth."""
    text = "Build a login page: form, validation, and tests?"
    groups: TagGroups = ({"auth": []}, {}, {
        "construction": [], "unknown": ["x"], "scope": ["a", "a→b", "c→d", "e", "f"],
        "fix": ["修复", "修复→fix"], "small": ["a", "b"], "migration": ["x"],
    })
    for breadth in (-5, -1, 0, 1, 7, 8, 9, 100):
        _check_terms(index, text, breadth, groups)
