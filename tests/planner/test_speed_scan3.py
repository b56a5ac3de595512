"""The third scan pass's compile-time CJK data and slices (index.py): the scan still gives
what the plain per-character segmentation gives, also past the precomputed pair slices."""

from __future__ import annotations

import random
import re

import pytest

from perfect21.planner.catalog import load_catalog
from perfect21.planner.index import _PAIR_SLICES, _PAIRS, CompiledIndex, _pair_slices

CJK_RUN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")


@pytest.fixture(scope="module")
def index() -> CompiledIndex:
    return load_catalog(user=False, cache_dir=None).index


def _segment(index: CompiledIndex, text: str) -> tuple[list[str], list[str]]:
    """Forward maximum matching over every CJK run, the plain way: the longest CJK key of
    2+ characters at each position wins and is consumed; its translations' words follow."""
    keys = sorted(k for k in index.table if CJK_RUN.fullmatch(k) and len(k) >= 2)
    longest = max(map(len, keys))
    hits: list[str] = []
    words: list[str] = []
    for run in CJK_RUN.findall(text):
        j = 0
        while j < len(run) - 1:
            for n in range(min(longest, len(run) - j), 1, -1):
                if run[j : j + n] in index.table:
                    if run[j : j + n] not in hits:
                        hits.append(run[j : j + n])
                    words += index.table[run[j : j + n]][1]
                    j += n
                    break
            else:
                j += 1
    return hits, words


def test_cjk_pairs_describe_the_cjk_keys(index: CompiledIndex) -> None:
    keys = [k for k in index.table if CJK_RUN.fullmatch(k) and len(k) >= 2]
    assert set(index.cjk_pairs) == {k[:2] for k in keys}
    for pair, (longer, words) in index.cjk_pairs.items():
        lengths = {len(k) for k in keys if k.startswith(pair)}
        assert longer == tuple(sorted(lengths - {2}, reverse=True))
        assert words == (index.table[pair][1] if 2 in lengths else None)


def test_pair_slices() -> None:
    assert len(_PAIRS) == _PAIR_SLICES
    assert _pair_slices(_PAIR_SLICES) == _PAIRS
    assert all(s == slice(j, j + 2) for j, s in enumerate(_pair_slices(600)))


def test_long_and_glued_cjk_runs_segment_as_the_plain_loop(index: CompiledIndex) -> None:
    rng = random.Random(3)
    keys = sorted(k for k in index.table if CJK_RUN.fullmatch(k))
    chars = [*sorted({c for k in keys for c in k}), "中", "文", "的"]
    for size in (1, 2, 3, 10, 255, 256, 257, 258, 600, 2000):
        for _ in range(5):
            parts: list[str] = []
            while sum(map(len, parts)) < size:
                parts.append(rng.choice(keys) if rng.random() < 0.6 else rng.choice(chars))
            run = "".join(parts)[:size]
            for text in (run, f"a {run} b", f"{run}，{run[::-1]}"):
                scan = index.scan(text)
                hits, words = _segment(index, text)
                assert list(scan.hits) == hits, text
                assert list(scan.query_tokens) == list(dict.fromkeys(words)), text
                assert scan.cjk_chars == sum(map(len, CJK_RUN.findall(text)))


def test_bm25_sums_are_the_dict_sums_bit_for_bit(index: CompiledIndex) -> None:
    """The list of running sums changes no value (float.hex) and no key order."""
    rng = random.Random(8)
    tokens = sorted(index.bm25)
    for _ in range(2000):
        text = " ".join(rng.choice(tokens) for _ in range(rng.randint(0, 40)))
        scan = index.scan(text)
        want: dict[int, float] = {}
        for token in scan.query_tokens:
            for idx, weight in index.bm25.get(token, ()):
                want[idx] = want[idx] + weight if idx in want else weight
        got = index.bm25_scores(scan)
        assert list(got) == list(want), text
        assert [v.hex() for v in got.values()] == [v.hex() for v in want.values()], text
