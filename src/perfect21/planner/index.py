"""The compiled catalog index: every keyword, phrase, lexicon entry and taxonomy term in one
hash-keyed table, matched in one pass over the request.

Matching is forward maximum matching on two alphabets:

* Latin text is tokenised and stemmed (:mod:`perfect21.planner.text`); at each token the
  longest known phrase (up to ``max_ngram`` tokens) wins and is consumed;
* CJK runs are segmented the same way over characters, using the dictionary itself.

There is no loop over rules and no regex per rule: the cost is a few dict lookups per token
or character, whatever the size of the catalog. Each table entry carries its payload: agent
postings (which agents the term signals, with a weight), English translations (for Chinese
terms, from the bilingual lexicon), and taxonomy tags (domain, stack, complexity signal).

Lexical relevance (BM25) over each agent's name, description and keywords is precomputed per
token, so user agents that declare no keywords are still routed — and through the lexicon,
also from Chinese requests.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from perfect21.planner.models import AgentSpec
from perfect21.planner.signals import COMPLEXITY_SIGNALS, TAXONOMY_FILE
from perfect21.planner.text import CJK_RUN, latin_tokens, lowered_tokens, stem

__all__ = ["CACHE_LAYOUT", "FORMAT_VERSION", "CompiledIndex", "Scan", "TagGroups", "compile_index"]

# Matched keys by tag, split by the tag's kind: {domain name: keys}, {stack name: keys},
# {signal name: keys}, each in the order the request first mentions them.
TagGroups = tuple[dict[str, list[str]], dict[str, list[str]], dict[str, list[str]]]

# Bump when the compiled form or the scoring inputs change: invalidates disk caches and
# changes every plan id (catalog_version includes it).
FORMAT_VERSION = "p21-index-9"
# Bump when only the layout of the compiled form on disk changes (what ``to_dict`` writes),
# not what it plans: invalidates disk caches, keeps plan ids.
CACHE_LAYOUT = "8"  # 3: tuples instead of lists; 4: translations resolved per key;
# 5, 6: tags by kind, labels by tag; 7: phrases split at compile time; 8: CJK pairs

# Role words that say what kind of agent it is, not what it knows; not used as name evidence.
_ROLE_WORDS = frozenset(
    [
        "pro",
        "expert",
        "specialist",
        "engineer",
        "developer",
        "dev",
        "architect",
        "manager",
        "analyst",
        "designer",
        "writer",
        "auditor",
        "reviewer",
        "responder",
        "tester",
        "strategist",
        "detective",
        "agent",
        "assistant",
        "helper",
        "bot",
    ]
)
# Words too common in software requests to be evidence for BM25.
_STOPWORDS = frozenset(
    [
        "a",
        "an",
        "the",
        "and",
        "or",
        "of",
        "to",
        "in",
        "on",
        "for",
        "with",
        "by",
        "from",
        "at",
        "as",
        "is",
        "are",
        "be",
        "been",
        "it",
        "its",
        "this",
        "that",
        "these",
        "those",
        "we",
        "our",
        "you",
        "your",
        "i",
        "my",
        "me",
        "they",
        "them",
        "their",
        "us",
        "can",
        "could",
        "should",
        "would",
        "will",
        "must",
        "may",
        "not",
        "no",
        "do",
        "does",
        "did",
        "done",
        "have",
        "has",
        "had",
        "use",
        "using",
        "used",
        "make",
        "new",
        "add",
        "get",
        "set",
        "fix",
        "need",
        "want",
        "please",
        "help",
        "so",
        "but",
        "if",
        "then",
        "than",
        "when",
        "while",
        "into",
        "about",
        "over",
        "under",
        "up",
        "out",
        "all",
        "any",
        "some",
        "more",
        "most",
        "very",
        "also",
        "just",
        "only",
        "other",
        "such",
        "each",
        "per",
        "via",
        "code",
        "app",
        "application",
        "feature",
        "work",
        "system",
        "systems",
        "project",
        "thing",
        "change",
        "update",
        "issue",
        "problem",
        "task",
        "team",
        "user",
        "users",
        "data",
        "support",
        "build",
        "run",
        "way",
        "one",
        "two",
        "three",
        "like",
        "what",
        "which",
        "who",
        "how",
        "why",
        "where",
        "there",
        "here",
        "now",
        "it's",
        "don't",
        "can't",
        "doesn't",
        "isn't",
        "after",
        "before",
        "because",
        "still",
        "every",
        "many",
        "much",
        "few",
        "same",
        "own",
        "well",
        "good",
        "better",
        "best",
        "right",
        "without",
        "within",
        "across",
        "between",
    ]
)
# What the scan needs of a raw token: (stemmed, (the stemmed token,) if it is a BM25 query
# word else () (added with "+=", no None to filter: -850 a slow request), the stemmed token if
# it is a table key, {second token: phrase keys} if it can start a phrase; else None)
_TokenInfo = tuple[str, tuple[str, ...], str | None, Mapping[str, Sequence["_Phrase"]] | None]
# A Latin key of 2 to ``max_ngram`` tokens as the scan reads it: (key, its number of tokens,
# its tokens after the second, its tokens after the first that are not stopwords)
_Phrase = tuple[str, int, tuple[str, ...], tuple[str, ...]]
# A 2-character prefix of CJK keys as the scan reads it: (the lengths of its keys of 3 or
# more characters, longest first; the words of the translations of the pair itself if it is
# a key, else None)
_CjkPair = tuple[tuple[int, ...], tuple[str, ...] | None]


def _pair_slices(count: int) -> tuple[slice, ...]:
    """slice(j, j + 2) for j < count (_PAIRS, or the pairs of a longer run)."""
    return tuple(map(slice, range(count), range(2, count + 2)))


# slice(j, j + 2) for every position of a CJK run of up to _PAIR_SLICES + 1 characters
_PAIR_SLICES = 256
_PAIRS = _pair_slices(_PAIR_SLICES)
_TOKEN_CACHE_ENTRIES = 16_384
_K1 = 1.2
_B = 0.75
_TRANSLATION_FACTOR = 0.7
_PHRASE_BONUS = 1.3
_NAME_BONUS = 1.6


class Scan:
    """What one pass over a request found (an internal value, never mutated after the scan).

    A plain slotted class, not a dataclass: a dataclass costs ~1 ms to define at import (see
    docs/adr/0005-startup.md), a frozen one ~4 µs more to build on this hot path, and a named
    tuple's fields are slower to read than slots."""

    __slots__ = ("cjk_chars", "hits", "latin_count", "lowered", "query_tokens")

    def __init__(
        self, hits: tuple[str, ...], query_tokens: tuple[str, ...], latin_count: int,
        cjk_chars: int, lowered: str,
    ) -> None:
        self.hits = hits  # matched table keys, in text order, each once
        self.query_tokens = query_tokens  # unique stemmed tokens for BM25, incl. translations
        self.latin_count = latin_count
        self.cjk_chars = cjk_chars
        self.lowered = lowered  # text.lower() of the scanned text (the scan needs it anyway)


class CompiledIndex:
    """Serialisable compiled form of the catalog (see module docstring)."""

    __slots__ = ("agent_count", "bm25", "cjk_pairs", "max_ngram", "names", "phrases", "position",
                 "table", "token_cache")

    def __init__(
        self,
        *,
        names: list[str],
        position: dict[str, int],
        table: Mapping[str, Sequence[Any]],
        max_ngram: int,
        cjk_pairs: Mapping[str, _CjkPair],
        bm25: Mapping[str, Sequence[Sequence[Any]]],
        phrases: Mapping[str, Mapping[str, Sequence[_Phrase]]],
    ) -> None:
        self.names = names
        self.agent_count = len(names)  # agent indices are below it
        self.position = position
        # key -> (agent postings ((idx, weight), ...), the words of its translations (str, ...),
        #         the postings of its translations ((idx, weight × _TRANSLATION_FACTOR,
        #         translated key, "key→translated"), ...), its tags and its translations' by
        #         tag ((kind: 0 domain, 1 stack, 2 signal, tag name, (key and/or
        #         "key→translated", ...)), ...)): what the scan, rule_scores and tag_groups
        #         read per hit, resolved once when the catalog is compiled (see _resolve)
        self.table = table
        self.max_ngram = max_ngram
        # 2-char prefix of a CJK key -> _CjkPair
        self.cjk_pairs = cjk_pairs
        self.bm25 = bm25  # token -> [[idx, weight], ...]
        # first token -> second token -> the Latin keys of up to ``max_ngram`` tokens that start
        # with those two, longest first, each split at compile time (_Phrase). Most tokens that
        # can start a phrase are not followed by a second word that continues one, and this
        # finds that with one lookup, no join.
        self.phrases = phrases
        # raw token -> _TokenInfo; a per-process memo of _token_info, bounded
        self.token_cache: dict[str, _TokenInfo] = {}

    # -- matching -------------------------------------------------------------------------

    def _token_info(self, raw: str) -> _TokenInfo:
        """What the scan needs of a raw lower-case token; memoised, bounded."""
        stemmed = stem(raw)
        query: tuple[str, ...] = (stemmed,)
        if stemmed in _STOPWORDS or len(stemmed) <= 1 or stemmed.isdigit():
            query = ()
        info = (stemmed, query, stemmed if stemmed in self.table else None,
                self.phrases.get(stemmed))
        cache = self.token_cache
        if len(cache) >= _TOKEN_CACHE_ENTRIES:
            cache.clear()
        cache[raw] = info
        return info

    def scan(self, text: str) -> Scan:
        # One plain loop over the tokens' memoised infos, each phrase matched where it starts
        # and its tokens skipped. This replaced columns picked in C (zip(*infos), then
        # dict.fromkeys/filter over the columns and a second pass for the phrases): their
        # fixed costs outweighed the per-token savings (the Latin part of the slow Chinese
        # requests, ~5 tokens: 35k -> 25k instructions; English, ~42 tokens: 117k -> 94k).
        lowered = text.lower()
        raws = lowered_tokens(lowered)
        cache = self.token_cache
        # a miss is None (a cached info is a non-empty tuple): none are left after the check
        infos: list[_TokenInfo] = list(map(cache.get, raws))  # type: ignore[arg-type]
        if not all(infos):
            infos = [info or self._token_info(raw) for raw, info in zip(raws, infos, strict=True)]
        count = len(infos)
        hits: dict[str, None] = {}
        query_seq: list[str] = []
        i = 0  # the position after this token
        done = 0  # the tokens before this position are in a phrase already matched
        for _stemmed, query, key, starts in infos:
            i += 1
            if i <= done:
                continue
            if starts is not None and i < count:
                # the phrases that start with this token and the next, longest first
                candidates = starts.get(infos[i][0])
                if candidates is not None:
                    start = i - 1
                    # split and stopword-filtered at compile time (_Phrase)
                    for phrase, size, rest, extra in candidates:
                        end = start + size
                        # the first two words are known to match; compare the rest (3-4
                        # words; past the last token the slice is short and so unequal)
                        if size == 2 or tuple([info[0] for info in infos[i + 1 : end]]) == rest:
                            hits[phrase] = None
                            query_seq += query
                            query_seq += extra
                            done = end
                            break
                    if done > start:
                        continue
            if key is not None:
                hits[key] = None
            query_seq += query
        cjk_chars = 0
        table = self.table
        cjk = self.cjk_pairs
        # str.isascii() is O(1): most English requests skip the search for CJK runs
        for run in () if text.isascii() else CJK_RUN.findall(text):
            size = len(run)
            cjk_chars += size
            if size < 3:
                # a 2-character run is its own only possible key: no slice, no lengths
                # (~1.5k instructions; a quarter of the runs of the slow Chinese requests)
                if size == 2 and run in table:
                    hits[run] = None
                    query_seq += table[run][1]  # the words of its translations
                continue
            last = size - 1
            # the pairs as slices made once: no slice object built per position (-160)
            pairs = _PAIRS if last <= _PAIR_SLICES else _pair_slices(last)
            j = 0
            while j < last:
                pair = run[pairs[j]]
                if pair not in cjk:  # "in", not .get: most pairs start no key (-300)
                    j += 1
                    continue
                longer, words = cjk[pair]
                for n in longer:  # the lengths of its keys of 3+ characters, longest first
                    end = j + n
                    if end <= size:
                        key = run[j:end]
                        if key in table:
                            hits[key] = None
                            query_seq += table[key][1]
                            j = end
                            break
                else:
                    if words is None:  # the pair is no key
                        j += 1
                    else:
                        # the pair is a key (3 of 4 CJK hits): no lookup, its words stored
                        hits[pair] = None
                        query_seq += words
                        j += 2
        return Scan(tuple(hits), tuple(dict.fromkeys(query_seq)), count, cjk_chars,
                    lowered)

    def rule_scores(self, scan: Scan) -> tuple[dict[int, float], dict[int, list[str]]]:
        """Keyword score and matched terms (the reasons) of every agent that matched."""
        scores: dict[int, float] = {}
        evidence: dict[int, list[str]] = {}
        table = self.table
        # "in" then "+=" or a plain store: no scores.get call, no list built by setdefault
        # only to be dropped (~1.7k fewer instructions per plan). scores and evidence always
        # have the same keys; 0.0 + weight == weight (weights are never -0.0).
        for key in scan.hits:
            entry = table[key]
            # most keys have no translated postings, many no postings of their own (a lexicon
            # or taxonomy term): a test skips the loop's set-up (rule 28.2k -> 26.1k a slow plan)
            direct = entry[0]
            if direct:
                for idx, weight in direct:
                    if idx in scores:
                        scores[idx] += weight
                        evidence[idx].append(key)
                    else:
                        scores[idx] = weight
                        evidence[idx] = [key]
            # the postings of its translations, weighted and labelled at compile time
            translations = entry[2]
            if not translations:
                continue
            for idx, weight, translated, label in translations:
                if idx in scores:
                    seen = evidence[idx]
                    if translated in seen:
                        continue
                    scores[idx] += weight
                    seen.append(label)
                else:
                    scores[idx] = weight
                    evidence[idx] = [label]
        return scores, evidence

    def bm25_scores(self, scan: Scan) -> dict[int, float]:
        """BM25 relevance of every agent whose document shares a token with the request."""
        scores: dict[int, float] = {}
        # the running sums also in a list by agent: a list read and an "is None" instead of
        # a dict's "in" and read per posting (score 113.0k -> 110.0k a slow plan; the same
        # in rule_scores, with ~10 postings, cost more than it saved). The same sums in the
        # same order, the keys inserted in the same order.
        sums: list[float | None] = [None] * self.agent_count
        for postings in filter(None, map(self.bm25.get, scan.query_tokens)):
            for idx, weight in postings:
                total = sums[idx]
                if total is None:
                    sums[idx] = scores[idx] = weight
                else:
                    sums[idx] = scores[idx] = total + weight
        return scores

    def tag_groups(self, scan: Scan) -> TagGroups:
        """The matched keys by tag, split by the tag's kind: ({domain: keys}, {stack: keys},
        {signal: keys}), tags in the order the request first mentions them, each key once
        (a Chinese key's translations as "key→translated")."""
        groups: TagGroups = ({}, {}, {})
        table = self.table
        for key in scan.hits:
            # by tag, in the order of the key's own tags and then its translations': (kind,
            # name, labels). A label is the key or starts with "key→" (keys never hold "→"),
            # so no two hits share one and the lists need no check for repeats.
            for kind, name, labels in table[key][3]:
                group = groups[kind]
                found = group.get(name)
                if found is None:
                    group[name] = [*labels]  # a display, not a list() call: -250 per tag
                else:
                    found += labels
        return groups

    # -- persistence ----------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """The index as plain data for the disk cache, with tuples for lists: a process
        unmarshals tuples about twice as fast (the index is read-only once compiled)."""
        data: dict[str, Any] = _tuples({
            "names": self.names,
            "table": self.table,
            "max_ngram": self.max_ngram,
            "cjk_pairs": self.cjk_pairs,
            "bm25": self.bm25,
            "phrases": self.phrases,
        })
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CompiledIndex:
        names = list(data["names"])
        return cls(
            names=names,
            position={n: i for i, n in enumerate(names)},
            table=dict(data["table"]),
            max_ngram=int(data["max_ngram"]),
            cjk_pairs=dict(data["cjk_pairs"]),
            bm25=dict(data["bm25"]),
            phrases=dict(data["phrases"]),
        )


def _is(a: object, b: object) -> bool:
    return a is b


def _tuples(data: Any) -> Any:
    """``data`` with every list (also inside dicts and lists) turned into a tuple."""
    if isinstance(data, dict):
        return {key: _tuples(value) for key, value in data.items()}
    if isinstance(data, list):
        return tuple([_tuples(item) for item in data])
    if isinstance(data, tuple):
        items = [_tuples(item) for item in data]
        # a tuple with no list inside is kept: an object shared in the index (see _phrases)
        # stays one object, which marshal stores and loads once
        return data if all(map(_is, items, data)) else tuple(items)
    return data


# -- compilation ------------------------------------------------------------------------------


def _key(term: str) -> str:
    """Table key of a term: stemmed tokens joined by spaces, or the CJK string itself.

    Mixed-script terms ("组合式 api") cannot be matched as one unit by the two-alphabet
    scan, and their Latin half alone would be a misleadingly generic key: they get no key.
    """
    term = term.strip()
    if CJK_RUN.fullmatch(term):
        return term
    if CJK_RUN.search(term):
        return ""
    return " ".join(latin_tokens(term))


def name_terms(name: str) -> list[str]:
    """Knowledge words in an agent's name (``golang-pro`` → ``golang``)."""
    parts = [p for p in name.replace("_", "-").split("-") if p]
    return [p for p in parts if p not in _ROLE_WORDS and len(p) > 1]


def compile_index(agents: Sequence[AgentSpec], lexicon: Mapping[str, Any]) -> CompiledIndex:
    """Compile agents, the bilingual lexicon, the taxonomy and complexity signals."""
    import json

    names = [a.name for a in agents]
    n_agents = max(len(agents), 1)
    # key -> {agent idx: raw weight}
    raw: dict[str, dict[int, float]] = {}
    for idx, agent in enumerate(agents):
        terms: dict[str, float] = {}
        for term in (*agent.keywords, *agent.keywords_zh):
            key = _key(term)
            if key:
                terms[key] = max(terms.get(key, 0.0), _PHRASE_BONUS if " " in key else 1.0)
        # An agent without authored keywords (a user's Claude Code agent) is still matched by
        # the knowledge words of its name; authored keywords already say what the name says.
        if not agent.keywords and not agent.keywords_zh:
            for term in name_terms(agent.name):
                key = _key(term)
                if key:
                    terms[key] = max(terms.get(key, 0.0), _NAME_BONUS)
        for key, weight in terms.items():
            raw.setdefault(key, {})[idx] = weight
    table: dict[str, list[Any]] = {}
    for key in sorted(raw):
        postings = raw[key]
        idf = 1.0 + math.log(n_agents / len(postings))
        table[key] = [[[idx, round(w * idf, 4)] for idx, w in sorted(postings.items())], [], []]

    def entry(key: str) -> list[Any]:
        return table.setdefault(key, [[], [], []])

    for zh in sorted(lexicon):
        translations = lexicon[zh]
        if not isinstance(zh, str) or not CJK_RUN.fullmatch(zh) or len(zh) < 2:
            continue
        if not isinstance(translations, list):
            continue
        keys = [_key(str(t)) for t in translations if str(t).strip()]
        entry(zh)[1] = sorted({k for k in keys if k})

    try:
        taxonomy = json.loads(TAXONOMY_FILE.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        taxonomy = {}
    for domain in sorted(taxonomy.get("domains", {})):
        spec = taxonomy["domains"][domain]
        for term in (*spec.get("en", ()), *spec.get("zh", ())):
            key = _key(str(term))
            if key:
                _add_tag(entry(key), f"domain:{domain}")
    for stack in sorted(taxonomy.get("stack", {})):
        for alias in (stack, *taxonomy["stack"][stack]):
            key = _key(str(alias))
            if key:
                _add_tag(entry(key), f"stack:{stack}")
    for signal, signal_terms in sorted(COMPLEXITY_SIGNALS.items()):
        for term in signal_terms:
            key = _key(term)
            if key:
                _add_tag(entry(key), f"signal:{signal}")

    resolved = _resolve(table)
    max_ngram = max((k.count(" ") + 1 for k in table if not CJK_RUN.fullmatch(k)), default=1)
    max_ngram = min(max_ngram, 4)
    cjk_lengths: dict[str, set[int]] = {}
    for key in table:
        if CJK_RUN.fullmatch(key) and len(key) >= 2:
            cjk_lengths.setdefault(key[:2], set()).add(len(key))
    cjk_pairs: dict[str, _CjkPair] = {}
    # one object per distinct value (marshal stores and loads a shared object once)
    shared: dict[Any, Any] = {}
    for pair, lengths in sorted(cjk_lengths.items()):
        longer = tuple(sorted((n for n in lengths if n > 2), reverse=True))
        value = (shared.setdefault(longer, longer), resolved[pair][1] if 2 in lengths else None)
        cjk_pairs[pair] = shared.setdefault(value, value)
    return CompiledIndex(
        names=names,
        position={n: i for i, n in enumerate(names)},
        table=resolved,
        max_ngram=max_ngram,
        cjk_pairs=cjk_pairs,
        bm25=_bm25(agents, n_agents),
        phrases=_phrases(table, max_ngram),
    )


def _resolve(table: Mapping[str, list[Any]]) -> dict[str, tuple[Any, ...]]:
    """The table as the planner reads it (see ``CompiledIndex.table``): each key's
    translations resolved to their words, postings and tags once, not per plan."""
    out: dict[str, tuple[Any, ...]] = {}
    names: dict[str, str] = {}  # one string object per tag name (stored once in the cache)
    for key, (postings, translations, tags) in table.items():
        words: list[str] = []
        translated_postings: list[tuple[int, float, str, str]] = []
        # (kind, tag name) -> labels, in the order the tags first appear
        by_tag: dict[tuple[int, str], list[str]] = {}
        for tag in tags:
            by_tag.setdefault(_tag_kind(tag, names), []).append(key)
        for translated in translations:
            words += translated.split()
            entry = table.get(translated)
            if entry is None:
                continue
            label = f"{key}→{translated}"
            for idx, weight in entry[0]:
                translated_postings.append((idx, weight * _TRANSLATION_FACTOR, translated, label))
            for tag in entry[2]:
                labels = by_tag.setdefault(_tag_kind(tag, names), [])
                if label not in labels:
                    labels.append(label)
        out[key] = (
            tuple([(idx, weight) for idx, weight in postings]),
            tuple(dict.fromkeys(words)),  # in order, each once (as the scan adds them)
            tuple(translated_postings),
            tuple([(kind, name, tuple(labels)) for (kind, name), labels in by_tag.items()]),
        )
    return out


_TAG_KINDS = {"domain": 0, "stack": 1, "signal": 2}  # the positions in TagGroups


def _tag_kind(tag: str, names: dict[str, str]) -> tuple[int, str]:
    kind, _colon, name = tag.partition(":")
    return _TAG_KINDS[kind], names.setdefault(name, name)


def _phrases(table: Mapping[str, Any], max_ngram: int) -> dict[str, dict[str, list[_Phrase]]]:
    """Latin keys of 2 to ``max_ngram`` tokens by first and second token, longest first
    (the scan never tries longer phrases), as _Phrase."""
    phrases: dict[str, dict[str, list[_Phrase]]] = {}
    # one object per distinct word and word tuple: marshal stores a shared object once and
    # the cache loads it once (loading the catalog stays within ~0.3M instructions of the
    # unsplit phrases)
    shared: dict[Any, Any] = {}
    for key in sorted(table):
        words = [shared.setdefault(word, word) for word in key.split(" ")]
        if 2 <= len(words) <= max_ngram:
            rest = tuple(words[2:])
            extra = tuple([w for w in words[1:] if w not in _STOPWORDS])
            phrase = (key, len(words), shared.setdefault(rest, rest),
                      shared.setdefault(extra, extra))
            phrases.setdefault(words[0], {}).setdefault(words[1], []).append(phrase)
    for by_second in phrases.values():
        for keys in by_second.values():
            keys.sort(key=lambda phrase: -phrase[1])
    return phrases


def _add_tag(entry: list[Any], tag: str) -> None:
    if tag not in entry[2]:
        entry[2].append(tag)
        entry[2].sort()


def _document(agent: AgentSpec) -> list[str]:
    name = latin_tokens(" ".join(name_terms(agent.name)))
    words = latin_tokens(" ".join((agent.description, *agent.keywords)))
    return [
        t
        for t in (*name, *name, *name, *words)
        if len(t) > 1 and t not in _STOPWORDS and not t.isdigit()
    ]


def _bm25(agents: Iterable[AgentSpec], n_agents: int) -> dict[str, list[list[Any]]]:
    docs = [_document(a) for a in agents]
    avg = sum(len(d) for d in docs) / max(len(docs), 1) or 1.0
    df: dict[str, int] = {}
    for doc in docs:
        for token in set(doc):
            df[token] = df.get(token, 0) + 1
    out: dict[str, list[list[Any]]] = {}
    for idx, doc in enumerate(docs):
        tf: dict[str, int] = {}
        for token in doc:
            tf[token] = tf.get(token, 0) + 1
        norm = _K1 * (1 - _B + _B * len(doc) / avg)
        for token in sorted(tf):
            idf = math.log(1 + (n_agents - df[token] + 0.5) / (df[token] + 0.5))
            weight = idf * tf[token] * (_K1 + 1) / (tf[token] + norm)
            out.setdefault(token, []).append([idx, round(weight, 4)])
    return dict(sorted(out.items()))
