"""Query-biased snippets: the window of a document that best covers the query terms.

Both backends return document ids and scores; snippets are cut here from our own
document store, so every backend shows the same text for the same document.
"""

from __future__ import annotations

import re
from functools import lru_cache

from envs.search.analysis import LuceneEnglishAnalyzer, default_analyzer

_WORDS = re.compile(r"\S+")


def make_snippet(
    text: str, query_terms: set[str], width: int = 30, analyzer: LuceneEnglishAnalyzer | None = None
) -> str:
    """The ``width``-word window with the most distinct query terms (the start if none match)."""
    analyzer = analyzer or default_analyzer()
    words = _WORDS.findall(text)
    if len(words) <= width:
        return " ".join(words)
    if not query_terms:
        hits = [False] * len(words)
    else:
        terms_of = _word_terms if analyzer is default_analyzer() else lambda w: analyzer(w)
        hits = [not query_terms.isdisjoint(terms_of(w)) for w in words]
    best_start, best = 0, -1
    window = sum(hits[:width])
    for start in range(len(words) - width + 1):
        if start:
            window += hits[start + width - 1] - hits[start - 1]
        if window > best:
            best, best_start = window, start
    if best <= 0:
        best_start = 0
    chunk = " ".join(words[best_start : best_start + width])
    prefix = "… " if best_start > 0 else ""
    suffix = " …" if best_start + width < len(words) else ""
    return prefix + chunk + suffix


@lru_cache(maxsize=1 << 18)
def _word_terms(word: str) -> tuple[str, ...]:
    return tuple(default_analyzer()(word))
