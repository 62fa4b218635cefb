"""Text analysis that matches Lucene's English analyzer, so bm25s and Lucene agree.

Anserini indexes with ``DefaultEnglishAnalyzer``: StandardTokenizer (Unicode word
boundaries, UAX #29), EnglishPossessiveFilter, LowerCaseFilter, StopFilter with
Lucene's 33 English stopwords, PorterStemFilter. This module reproduces that chain
in Python: a regex that implements the word-boundary rules that matter for English
text, the same possessive and stopword handling, and Porter stemming through
PyStemmer with Lucene's two departures from the published algorithm. With the same
tokens and the same BM25 formula both backends rank alike (see the agreement test).
"""

from __future__ import annotations

import re
from functools import lru_cache

# org.apache.lucene.analysis.en.EnglishAnalyzer.ENGLISH_STOP_WORDS_SET
LUCENE_ENGLISH_STOPWORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "but",
        "by",
        "for",
        "if",
        "in",
        "into",
        "is",
        "it",
        "no",
        "not",
        "of",
        "on",
        "or",
        "such",
        "that",
        "the",
        "their",
        "then",
        "there",
        "these",
        "they",
        "this",
        "to",
        "was",
        "will",
        "with",
    ]
)

_MAX_TOKEN_LENGTH = 255  # StandardTokenizer's default; longer runs are split
# Han ideographs and Hiragana are one token per character in StandardTokenizer.
_IDEOGRAPHIC = re.compile(r"([\u3040-\u309f\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002fa1f])")


def _char_class(categories: tuple[str, ...], extra: str = "", upto: int = 0x10000) -> str:
    """A regex character class of every code point below ``upto`` in ``categories``.

    Only the Basic Multilingual Plane by default: ``re`` matches a class confined to it
    with a bitmap, but a class reaching beyond it with a slow list of ranges.
    """
    import unicodedata

    ranges: list[tuple[int, int]] = []
    for cp in range(upto):
        if unicodedata.category(chr(cp)) in categories or chr(cp) in extra:
            if ranges and ranges[-1][1] == cp - 1:
                ranges[-1] = (ranges[-1][0], cp)
            else:
                ranges.append((cp, cp))
    parts = [re.escape(chr(a)) if a == b else f"{re.escape(chr(a))}-{re.escape(chr(b))}" for a, b in ranges]
    return "[" + "".join(parts) + "]"


# Word characters: letters, decimal and letter numbers, connector punctuation and the
# narrow no-break space (ExtendNumLet), and the Extend/Format marks that stick to the
# character before them (WB4). Other numbers such as "²" or "½" break words.
_WORD = _char_class(("Lu", "Ll", "Lt", "Lm", "Lo", "Nd", "Nl", "Pc", "Mn", "Mc", "Me", "Cf"), extra="\u202f")
_LETTER = r"[^\W\d_]"
# UAX #29: letters join across MidLetter/MidNumLet (: · . ' ’) between letters (WB6/7),
# digits across MidNum/MidNumLet (, ; . ' ’ ⁄) between digits (WB11/12), letters and
# digits join (WB9/10), ExtendNumLet joins anything (WB13a/b); everything else breaks.
_TOKEN = re.compile(
    rf"{_WORD}+(?:(?:(?<={_LETTER})[:\u00b7\u2027.'\u2019\u2018\uff0e\ufe52](?={_LETTER})"
    rf"|(?<=\d)[,;.'\u2019\u2018\u066c\u2044\ufe50\ufe52\ufe54\uff0c\uff0e\uff1b](?=\d)){_WORD}+)*"
)
_ALNUM = re.compile(r"[^\W_]")
_POSSESSIVE = ("'s", "'S", "\u2019s", "\u2019S", "\uff07s", "\uff07S")


# The same rules for ASCII text, which most text is: a much smaller pattern, several times faster.
_ASCII_TOKEN = re.compile(
    r"[A-Za-z0-9_]+(?:(?:(?<=[A-Za-z])[:.'](?=[A-Za-z])|(?<=[0-9])[,;.'](?=[0-9]))[A-Za-z0-9_]+)*"
)


def standard_tokens(text: str) -> list[str]:
    """Split text into words the way Lucene's StandardTokenizer does (for English)."""
    if text.isascii():
        tokens = _ASCII_TOKEN.findall(text)
        if "_" not in text and len(text) <= _MAX_TOKEN_LENGTH:
            return tokens
        return _clean(tokens)
    if _IDEOGRAPHIC.search(text):
        text = _IDEOGRAPHIC.sub(r" \1 ", text)
    return _clean(_TOKEN.findall(text))


def _clean(tokens: list[str]) -> list[str]:
    """Drop tokens with no letter or digit, strip leading marks, split over-long tokens."""
    out: list[str] = []
    for tok in tokens:
        start = _ALNUM.search(tok)
        if start is None:
            continue
        if start.start() and tok[0] != "_":  # marks with nothing before them belong to no word
            tok = tok[start.start() :]
        while len(tok) > _MAX_TOKEN_LENGTH:
            out.append(tok[:_MAX_TOKEN_LENGTH])
            tok = tok[_MAX_TOKEN_LENGTH:]
        out.append(tok)
    return out


class _LucenePorter:
    """PyStemmer's Porter, corrected to what Lucene's PorterStemmer produces.

    Lucene leaves words of one or two letters alone and, like Martin Porter's own
    reference code, has two step-2 rules the published algorithm (PyStemmer's) lacks:
    ``-bli`` -> ``-ble`` and ``-logi`` -> ``-log`` when the rest has measure > 0.
    A Snowball stem ending in ``bli``/``logi`` is exactly a word that reached step 2
    with that ending, so the fix can be applied afterwards.
    """

    def __init__(self) -> None:
        import Stemmer

        self._stem = Stemmer.Stemmer("porter").stemWord

    def __call__(self, word: str) -> str:
        if len(word) <= 2:
            return word
        stem = self._stem(word)
        if stem.endswith("logi") and _measure(stem[:-4]) > 0:
            return stem[:-1]
        if stem.endswith("bli") and _measure(stem[:-3]) > 0:
            return self._stem(stem[:-1] + "e")
        return stem


def _measure(stem: str) -> int:
    """Porter's m: the number of vowel-consonant sequences in ``stem``."""
    m = 0
    prev_vowel = False
    for i, ch in enumerate(stem):
        vowel = ch in "aeiou" or (ch == "y" and i > 0 and not prev_vowel)
        if prev_vowel and not vowel:
            m += 1
        prev_vowel = vowel
    return m


class LuceneEnglishAnalyzer:
    """Callable that turns text into index terms exactly as Anserini's default analyzer."""

    name = "lucene-english-porter"

    def __init__(self, stopwords: frozenset[str] = LUCENE_ENGLISH_STOPWORDS) -> None:
        self.stopwords = stopwords
        self._porter = _LucenePorter()
        self._cache: dict[str, str | None] = {}

    def term(self, token: str) -> str | None:
        """The index term for one token (None for a stopword)."""
        term = self._cache.get(token, _MISSING)
        if term is _MISSING:
            term = self._compute(token)
        return term

    def _compute(self, token: str) -> str | None:
        word = token
        if word.endswith(_POSSESSIVE):
            word = word[:-2]
        word = word.lower() if "\u0130" not in word else word.replace("\u0130", "i").lower()
        term = None if not word or word in self.stopwords else self._porter(word)
        if len(self._cache) < 2_000_000:
            self._cache[token] = term
        return term

    def __call__(self, text: str) -> list[str]:
        tokens = standard_tokens(text)
        cache = self._cache
        try:
            terms = [cache[t] for t in tokens]
        except KeyError:
            terms = [self.term(t) for t in tokens]
        return [t for t in terms if t is not None]


_MISSING = object()


@lru_cache(maxsize=1)
def default_analyzer() -> LuceneEnglishAnalyzer:
    return LuceneEnglishAnalyzer()
