"""Text normalisation shared by the catalog compiler and the analyser.

Both sides of every match go through the same functions, so a keyword written as
"Next.js", "next js" or "NEXTJS" and a request saying "next.js" meet on the same key.
Deterministic and dependency-free: no hash-seeded ordering anywhere.
"""

from __future__ import annotations

import re
from functools import lru_cache

__all__ = [
    "CJK_RUN", "MAX_TEXT_CHARS", "is_cjk", "latin_tokens", "lowered_tokens", "normalize_request",
    "raw_tokens", "stem",
]

# Analysis reads at most this many characters of a request; the rest is kept in the plan's
# brief but not scanned (a 1 MB request still plans in well under 50 ms).
MAX_TEXT_CHARS = 20_000

CJK_RUN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")

# Words whose plural/verb forms must not be stripped (they would collide or lose meaning).
_KEEP = frozenset(
    {"redis", "kubernetes", "postgres", "ios", "macos", "js", "css", "aws", "gcs", "s3", "sms",
     "ens", "vs", "status", "canvas", "https", "series", "analysis", "axis", "bus", "less",
     "sass", "nodejs", "nextjs", "vuejs", "dns", "cors", "ads", "ms", "process", "access",
     "class", "pass", "unless", "tls", "ssl", "news", "apis", "gis", "kms", "ecs", "eks", "rds"}
)


@lru_cache(maxsize=1 << 14)
def stem(token: str) -> str:
    """A deliberately tiny English stemmer: plurals and common verb endings."""
    if token in _KEEP or len(token) <= 3 or not token.isalpha():
        return token
    if token.endswith("ies") and len(token) > 4:
        return token[:-3] + "y"
    if token.endswith("sses"):
        return token[:-2]
    if token.endswith("ing") and len(token) > 5:
        base = token[:-3]
        if len(base) > 2 and base[-1] == base[-2] and base[-1] not in "lsz":
            base = base[:-1]  # running -> run
        return base
    if token.endswith("ed") and len(token) > 4:
        base = token[:-2]
        if len(base) > 2 and base[-1] == base[-2] and base[-1] not in "lsz":
            base = base[:-1]
        return base
    if token.endswith("es") and len(token) > 4 and token[-3] in "sxz":
        return token[:-2]
    if token.endswith("s") and not token.endswith("ss") and not token.endswith("us"):
        return token[:-1]
    return token


# Every byte that cannot be part of a token, mapped to a space (see raw_tokens).
_TOKEN_BYTES = bytes(
    b if chr(b) in "abcdefghijklmnopqrstuvwxyz0123456789+#" else 32 for b in range(256)
)


def raw_tokens(text: str) -> list[str]:
    """The Latin/number tokens of ``text`` lower-cased, not stemmed: exactly
    ``re.findall(r"[a-z0-9][a-z0-9+#]*", text.lower())`` (tests/planner/test_speed_index.py
    checks every code point), computed without a regex.

    Every non-ASCII character becomes one "?" (encode's fast "replace" path), every byte
    outside ``[a-z0-9+#]`` a space, and str.split() cuts the maximal runs of token
    characters; a regex match is such a run without its leading "+"/"#" characters. A few C
    calls over the whole text instead of one regex match per token: ~1.1k fewer
    instructions per token (callgrind, the slow English sample requests: 69k -> 21k), and
    no pattern to compile at start-up.
    """
    return lowered_tokens(text.lower())


def lowered_tokens(lowered: str) -> list[str]:
    """``raw_tokens`` of a text already lower-cased (``lowered == text.lower()``)."""
    spaced = lowered.encode("ascii", "replace").translate(_TOKEN_BYTES).decode()
    if "+" in spaced or "#" in spaced:  # a run may start with them: "c++" yes, "+1" no
        return [token for token in (run.lstrip("+#") for run in spaced.split()) if token]
    return spaced.split()


def latin_tokens(text: str) -> list[str]:
    """Lower-cased, stemmed Latin/number tokens of ``text`` (CJK characters are skipped)."""
    return [stem(t) for t in raw_tokens(text)]


def is_cjk(text: str) -> bool:
    return CJK_RUN.search(text) is not None


def normalize_request(text: str) -> str:
    """Whitespace-collapsed, stripped request: the key for plan ids and the plan cache."""
    return " ".join(text.split())  # str.split() is several times faster than a regex here
