"""The Python analyzer produces Lucene's EnglishAnalyzer terms (checked against Lucene in test_backends)."""

from __future__ import annotations

import pytest

from envs.search.analysis import LUCENE_ENGLISH_STOPWORDS, LuceneEnglishAnalyzer, standard_tokens


@pytest.fixture(scope="module")
def analyze():
    return LuceneEnglishAnalyzer()


def test_lucene_stopword_list_is_the_33_english_words():
    assert len(LUCENE_ENGLISH_STOPWORDS) == 33
    assert {"the", "a", "with", "into", "such"} <= LUCENE_ENGLISH_STOPWORDS
    assert "he" not in LUCENE_ENGLISH_STOPWORDS


@pytest.mark.parametrize(
    ("text", "tokens"),
    [
        ("U.S. troops", ["U.S", "troops"]),
        ("3.14 and 1,000,000", ["3.14", "and", "1,000,000"]),
        ("don't stop", ["don't", "stop"]),
        ("20th-century art", ["20th", "century", "art"]),
        ("a:b c.d 1.a", ["a:b", "c.d", "1", "a"]),
        ("snake_case x²", ["snake_case", "x"]),
        ("北京 city", ["北", "京", "city"]),
        ("", []),
    ],
)
def test_standard_tokenizer_word_boundaries(text, tokens):
    assert standard_tokens(text) == tokens


@pytest.mark.parametrize(
    ("text", "terms"),
    [
        ("Sample query", ["sampl", "queri"]),
        ("Mary had a little lamb", ["mari", "had", "littl", "lamb"]),
        ("Kubrick's films", ["kubrick", "film"]),
        ("technology and mythology", ["technolog", "mytholog"]),  # Lucene's -logi rule
        ("possibly assembly", ["possibl", "assembl"]),  # Lucene's -bli rule
        ("İzmir", ["izmir"]),
        ("as is OS", ["os"]),  # stopwords dropped; two-letter words are not stemmed
    ],
)
def test_english_analyzer_matches_lucene(analyze, text, terms):
    assert analyze(text) == terms
