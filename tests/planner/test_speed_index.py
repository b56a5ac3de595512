"""The planner's fast paths in index.py and text.py give exactly what the plain versions
they replace gave (the plain versions are kept here as references)."""

from __future__ import annotations

import json
import random
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from perfect21.planner.catalog import load_catalog
from perfect21.planner.index import _STOPWORDS, CompiledIndex, Scan
from perfect21.planner.text import lowered_tokens, normalize_request, raw_tokens, stem

TOKEN = re.compile(r"[a-z0-9][a-z0-9+#]*")
CJK_RUN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")
SAMPLE = Path(__file__).resolve().parents[3] / "shared" / "data" / "routing_sample.jsonl"
DATA = Path(__file__).resolve().parent / "data"


@pytest.fixture(scope="module")
def index() -> CompiledIndex:
    return load_catalog(user=False, cache_dir=None).index


def _reference_scan(index: CompiledIndex, text: str) -> Scan:
    """The scan as a plain loop per token and per character (the former implementation)."""
    hits: dict[str, None] = {}
    query: dict[str, None] = {}
    info = []
    for raw in TOKEN.findall(text.lower()):
        token = stem(raw)
        info.append((token, token not in _STOPWORDS and len(token) > 1 and not token.isdigit()))
    i = 0
    while i < len(info):
        token, is_query = info[i]
        if is_query:
            query[token] = None
        if token in index.phrases and i + 1 < len(info):
            keys = [phrase[0] for phrase in index.phrases[token].get(info[i + 1][0], ())]
            for key in keys:
                words = key.split(" ")
                if [t for t, _ in info[i : i + len(words)]] == words:
                    hits[key] = None
                    for extra in words[1:]:
                        if extra not in _STOPWORDS:
                            query[extra] = None
                    i += len(words)
                    break
            else:
                keys = ()
            if keys:
                continue
        if token in index.table:
            hits[token] = None
        i += 1
    # 2-character prefix -> the lengths of the CJK keys that start with it, longest first
    lengths: dict[str, list[int]] = {}
    for key in index.table:
        if CJK_RUN.fullmatch(key) and len(key) >= 2:
            lengths.setdefault(key[:2], []).append(len(key))
    cjk_chars = 0
    for run in CJK_RUN.findall(text):
        cjk_chars += len(run)
        j = 0
        while j < len(run) - 1:
            step = 1
            for n in sorted(set(lengths.get(run[j : j + 2], ())), reverse=True):
                key = run[j : j + n]
                if j + n <= len(run) and key in index.table:
                    hits[key] = None
                    for t in index.table[key][1]:
                        query[t] = None
                    step = n
                    break
            j += step
    return Scan(tuple(hits), tuple(query), len(info), cjk_chars, text.lower())


def _texts(index: CompiledIndex) -> Iterator[str]:
    for path in (SAMPLE, *sorted(DATA.glob("*.jsonl"))):
        if path.exists():
            for line in path.read_text(encoding="utf-8").splitlines():
                if line.strip():
                    yield normalize_request(json.loads(line)["request"])
    # token soups built from the index's own words: phrases that overlap, repeat, end the
    # text early or are cut by CJK text and punctuation, CJK keys glued to each other
    rng = random.Random(21)
    words = sorted({w for first, seconds in index.phrases.items() for w in (first, *seconds)})
    phrases = sorted({k[0] for by_second in index.phrases.values() for ks in by_second.values()
                      for k in ks})
    cjk = sorted(k for k in index.table if CJK_RUN.fullmatch(k))
    glue = [" ", " ", " ", "，", "、", ". ", "+", "#", " c++ ", " C# ", "İ", "\u212a", "😀"]
    for _ in range(3000):
        parts = []
        for _ in range(rng.randint(0, 12)):
            pool = rng.choice((words, phrases, cjk, cjk))
            parts.append(rng.choice(pool))
            parts.append(rng.choice(glue))
        yield "".join(parts)


def test_raw_tokens_match_the_token_regex_for_every_code_point() -> None:
    for code in range(0x110000):
        text = f"a{chr(code)}b +{chr(code)}# c{chr(code)}"
        assert raw_tokens(text) == TOKEN.findall(text.lower()), hex(code)


def test_raw_tokens_match_the_token_regex_on_random_text() -> None:
    rng = random.Random(5)
    alphabet = [*"abcXYZ019 +#.-_,/\t\n", "中", "文", "\u212a", "İ", "é", "Ａ", "ß", "\u0307",
                "😀", "\ud800", "ǅ", "ﬃ"]
    for _ in range(20_000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 30)))
        assert raw_tokens(text) == TOKEN.findall(text.lower()), repr(text)


def test_scan_matches_the_reference_scan(index: CompiledIndex) -> None:
    for text in _texts(index):
        for _ in range(2):  # with the token memo cold, then warm
            got, want = index.scan(text), _reference_scan(index, text)
            assert (got.hits, got.query_tokens, got.latin_count, got.cjk_chars, got.lowered) == (
                want.hits, want.query_tokens, want.latin_count, want.cjk_chars, want.lowered), text


def _reference_rule_scores(
    index: CompiledIndex, scan: Scan
) -> tuple[dict[int, float], dict[int, list[str]]]:
    scores: dict[int, float] = {}
    evidence: dict[int, list[str]] = {}
    for key in scan.hits:
        entry = index.table[key]
        for idx, weight in entry[0]:
            scores[idx] = scores.get(idx, 0.0) + weight
            evidence.setdefault(idx, []).append(key)
        for idx, weight, translated, label in entry[2]:
            seen = evidence.setdefault(idx, [])
            if translated in seen:
                continue
            scores[idx] = scores.get(idx, 0.0) + weight
            seen.append(label)
    return scores, evidence


def _reference_bm25_scores(index: CompiledIndex, scan: Scan) -> dict[int, float]:
    scores: dict[int, float] = {}
    for token in scan.query_tokens:
        for idx, weight in index.bm25.get(token, ()):
            scores[idx] = scores.get(idx, 0.0) + weight
    return scores


def test_scores_match_the_reference_scores(index: CompiledIndex) -> None:
    """Same values (bit for bit: summed in the same order), same keys in the same order."""
    for text in _texts(index):
        scan = index.scan(text)
        rule, evidence = index.rule_scores(scan)
        want_rule, want_evidence = _reference_rule_scores(index, scan)
        assert list(rule.items()) == list(want_rule.items()), text
        assert list(evidence.items()) == list(want_evidence.items()), text
        bm25 = index.bm25_scores(scan)
        assert list(bm25.items()) == list(_reference_bm25_scores(index, scan).items()), text


def test_phrases_are_split_like_their_keys(index: CompiledIndex) -> None:
    """The compile-time split the scan reads instead of key.split(" ") per match."""
    for first, by_second in index.phrases.items():
        for second, phrases in by_second.items():
            assert [p[1] for p in phrases] == sorted((p[1] for p in phrases), reverse=True)
            for key, size, rest, extra in phrases:
                words = key.split(" ")
                assert words[:2] == [first, second] and size == len(words)
                assert rest == tuple(words[2:])
                assert extra == tuple(w for w in words[1:] if w not in _STOPWORDS)


def test_tuples_keeps_shared_list_free_tuples() -> None:
    from perfect21.planner.index import _tuples

    shared = ("a", ("b",))
    data = _tuples({"x": [shared, shared, ["c", shared]], "y": ("d", ["e"])})
    assert data == {"x": (shared, shared, ("c", shared)), "y": ("d", ("e",))}
    assert data["x"][0] is shared and data["x"][1] is shared and data["x"][2][1] is shared


def test_lowered_tokens_are_the_raw_tokens_of_the_lowered_text() -> None:
    for text in ("Next.js + C# 中文 İSTANBUL \u212aelvin", "", "ABC def", "😀 x+y"):
        assert lowered_tokens(text.lower()) == raw_tokens(text)
