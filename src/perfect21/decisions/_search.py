"""Full-text search text and queries: our own CJK segmentation on top of FTS5's unicode61.

FTS5's default tokenizer keeps a run of Chinese characters as one token, so "会话" would not
match "会话管理". We feed it text in which every run of CJK characters is rewritten as its
overlapping bigrams ("会话管理" -> "会话 话管 管理") and query the same way:

* a CJK term of two or more characters is the phrase of its bigrams — an exact substring
  match of any length ("会话" finds "会话管理", "数据库" finds "主数据库");
* a one-character CJK term is a prefix query; the last character of every run is indexed
  on its own (in the ``parts`` column) so that it is found too;
* other words match by prefix, case- and accent-insensitively ("postgres" finds PostgreSQL),
  and also inside camel-case/digit boundaries ("sql" finds PostgreSQL and MySQL), which are
  indexed as extra fragments in ``parts``.

Terms are separated by white space and all must match. Pure functions; no I/O.

Why not the trigram tokenizer: measured on 100k records it indexed 18k records/s against 38k
for this segmentation, and it cannot match one- or two-character terms, which are most
Chinese words; combining it with a second index for short terms made mixed queries
("jwt 会话") cost 8 ms to 1 s. One index with bigrams answers every query shape in < 1 ms.
"""

from __future__ import annotations

import functools
import re
from typing import NamedTuple

__all__ = ["compile_query", "document"]

# Han, kana, hangul and CJK compatibility ideographs: scripts written without spaces.
_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff"


class _Patterns(NamedTuple):
    run: re.Pattern[str]  # a CJK run, or a run of other letters/digits
    cjk_run: re.Pattern[str]
    ascii_word: re.Pattern[str]
    # Camel-case / digit boundaries in a word: PostgreSQL -> Postgre|SQL, OAuth2 -> O|Auth|2.
    fragment: re.Pattern[str]


@functools.cache
def _patterns() -> _Patterns:
    """Compiled on first use: the Unicode classes take ~6 ms to compile, which commands that
    neither search nor index (``decisions list``) should not pay at start-up."""
    return _Patterns(
        re.compile(f"[{_CJK}]+|[^\\W_{_CJK}]+"),
        re.compile(f"[{_CJK}]+"),
        re.compile(r"[A-Za-z0-9]+"),
        re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+"),
    )

MAX_TERMS = 16


def _bigrams(run: str) -> list[str]:
    if len(run) == 1:
        return [run]
    return list(map(str.__add__, run, run[1:]))


def document(*texts: str) -> tuple[str, str]:
    """The ``(body, parts)`` columns to index for the given texts.

    Only CJK runs are rewritten (into bigrams); FTS5's tokenizer handles the rest itself.
    """
    text = "\n".join(texts)
    parts: list[str] = []
    patterns = _patterns()

    def bigrams(match: re.Match[str]) -> str:
        run = match.group(0)
        if len(run) == 1:
            return f" {run} "
        parts.append(run[-1])
        return " " + " ".join(map(str.__add__, run, run[1:])) + " "

    body = patterns.cjk_run.sub(bigrams, text)
    for word in patterns.ascii_word.findall(text):
        if word[1:].islower() or word.islower() or word.isdigit():
            continue  # "word", "Word", "2025": no inner boundary
        fragments = patterns.fragment.findall(word)
        if len(fragments) > 1:
            parts.extend(fragments[1:])
    return body, " ".join(parts)


def _term_query(term: str) -> str | None:
    """One white-space separated term as an FTS5 expression, or None if it has no tokens."""
    patterns = _patterns()
    tokens: list[tuple[str, bool]] = []  # (token, is_cjk_run)
    for match in patterns.run.finditer(term):
        run = match.group(0)
        tokens.append((run, bool(patterns.cjk_run.fullmatch(run))))
    if not tokens:
        return None
    # The phrase of the term's pieces ("JWT认证" -> "JWT 认证"); the last one is a prefix
    # unless it is a CJK run, whose bigrams already match exactly.
    pieces: list[str] = []
    for run, cjk in tokens:
        pieces.extend(_bigrams(run) if cjk else [run])
    last_run, last_cjk = tokens[-1]
    prefix = "" if last_cjk and len(last_run) > 1 else "*"
    return '"' + " ".join(pieces) + '"' + prefix


def compile_query(query: str) -> str | None:
    """The FTS5 MATCH expression for a user's query; None when it has nothing to search."""
    terms = query.split()[:MAX_TERMS]
    parts = [q for q in (_term_query(t) for t in terms) if q]
    if not parts:
        return None
    return " AND ".join(parts)
