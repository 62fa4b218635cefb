"""One interface for every BM25 backend: build from documents, save, load, search.

An index folder holds ``meta.json`` (backend, BM25 parameters, analyzer), the
documents as ``docs.jsonl`` (so snippets, titles and ``open`` are the same whatever
the backend) and the backend's own files in a sub-folder.
"""

from __future__ import annotations

import json
import shutil
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from agentgym.errors import UserError
from envs.search.analysis import default_analyzer
from envs.search.corpus import Document, read_corpus, write_corpus
from envs.search.snippets import make_snippet

FORMAT_VERSION = 1
DEFAULT_K1 = 0.9  # Anserini's defaults, so both backends score alike out of the box
DEFAULT_B = 0.4


@dataclass(frozen=True, slots=True)
class SearchHit:
    doc_id: str
    score: float
    title: str
    snippet: str


class SearchIndex(ABC):
    """A BM25 index over a list of :class:`Document`. Subclasses implement ranking only."""

    backend: ClassVar[str]

    def __init__(
        self, docs: list[Document], k1: float = DEFAULT_K1, b: float = DEFAULT_B, path: Path | None = None
    ):
        self.docs = docs
        self.k1 = k1
        self.b = b
        self.path = path
        self._row_of = {d.id: i for i, d in enumerate(docs)}
        self._analyzer = default_analyzer()

    # -- what a backend implements -------------------------------------------------------------
    @abstractmethod
    def _rank(self, queries: Sequence[str], k: int, threads: int) -> list[list[tuple[int, float]]]:
        """For each query, up to ``k`` (row, score) pairs with score > 0, best first."""

    @classmethod
    @abstractmethod
    def _build_files(cls, docs: list[Document], folder: Path, k1: float, b: float, **options) -> None:
        """Write the backend's files for ``docs`` into ``folder`` (a fresh directory)."""

    @classmethod
    @abstractmethod
    def _open(cls, docs: list[Document], folder: Path, meta: dict, **options) -> SearchIndex:
        """Load the backend's files from ``folder``."""

    # -- the shared surface --------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.docs)

    def get(self, doc_id: str) -> Document | None:
        row = self._row_of.get(doc_id)
        return None if row is None else self.docs[row]

    def resolve(self, name: str) -> Document | None:
        """A document by id, or else by title (case-insensitive): what a model means by a name."""
        doc = self.get(name) or self.get(name.replace(" ", "_"))
        if doc is None:
            titles = self.__dict__.get("_by_title")
            if titles is None:
                titles = self._by_title = {}
                for d in self.docs:
                    titles.setdefault(d.title.casefold(), d)
            doc = titles.get(name.casefold())
        return doc

    def search_ids(self, query: str, k: int = 10) -> list[tuple[str, float]]:
        """Ids and scores only: the fast path (benchmarks, agreement checks)."""
        return [(self.docs[r].id, s) for r, s in self._rank([query], k, 1)[0]]

    def batch_search_ids(
        self, queries: Sequence[str], k: int = 10, threads: int = 1
    ) -> list[list[tuple[str, float]]]:
        return [[(self.docs[r].id, s) for r, s in hits] for hits in self._rank(list(queries), k, threads)]

    def search(self, query: str, k: int = 10, snippet_words: int = 30) -> list[SearchHit]:
        return self.batch_search([query], k, 1, snippet_words)[0]

    def batch_search(
        self, queries: Sequence[str], k: int = 10, threads: int = 1, snippet_words: int = 30
    ) -> list[list[SearchHit]]:
        ranked = self._rank(list(queries), k, threads)
        out = []
        for query, hits in zip(queries, ranked):
            terms = set(self._analyzer(query))
            out.append(
                [
                    SearchHit(
                        doc_id=self.docs[r].id,
                        score=float(s),
                        title=self.docs[r].title,
                        snippet=make_snippet(self.docs[r].contents, terms, snippet_words, self._analyzer),
                    )
                    for r, s in hits
                ]
            )
        return out

    def save(self, path: str | Path) -> Path:
        """Copy the index folder to ``path`` (indexes are written to disk when built)."""
        if self.path is None:
            raise UserError("this index was built without a folder; build it with `out=` to save it.")
        path = Path(path)
        if path.resolve() != self.path.resolve():
            shutil.copytree(self.path, path, dirs_exist_ok=True)
        return path

    def close(self) -> None:
        """Release backend resources (the Lucene searcher); the index stays on disk."""


def _backend_class(name: str) -> type[SearchIndex]:
    if name == "bm25s":
        from envs.search.backends.bm25s_backend import Bm25sIndex

        return Bm25sIndex
    if name == "lucene":
        from envs.search.backends.lucene import LuceneIndex

        return LuceneIndex
    raise UserError(f"unknown search backend {name!r}: choose one of {', '.join(BACKENDS)}.")


BACKENDS = ("bm25s", "lucene")


def build_index(
    corpus: str | Path | Sequence[Document],
    out: str | Path,
    backend: str = "bm25s",
    k1: float = DEFAULT_K1,
    b: float = DEFAULT_B,
    **options,
) -> SearchIndex:
    """Build an index of ``corpus`` (a JSONL path or documents) into the folder ``out``."""
    cls = _backend_class(backend)
    docs = read_corpus(corpus) if isinstance(corpus, (str, Path)) else list(corpus)
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        if not (out / "meta.json").is_file():
            raise UserError(f"{out} exists and is not an index folder: choose an empty or new folder.")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    write_corpus(docs, out / "docs.jsonl")
    cls._build_files(docs, out / backend, k1, b, **options)
    meta = {
        "format": FORMAT_VERSION,
        "backend": backend,
        "k1": k1,
        "b": b,
        "num_docs": len(docs),
        "analyzer": default_analyzer().name,
    }
    (out / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    return cls._open(docs, out / backend, meta, **options)


def load_index(path: str | Path, **options) -> SearchIndex:
    """Open an index folder written by :func:`build_index` (any backend)."""
    path = Path(path)
    meta_file = path / "meta.json"
    if not meta_file.is_file():
        raise UserError(
            f"{path} is not a search index: build one with `agentgym search index CORPUS.jsonl --out DIR`."
        )
    meta = json.loads(meta_file.read_text())
    if meta.get("format") != FORMAT_VERSION:
        raise UserError(
            f"{path} was built by another version of agentgym: rebuild it with `agentgym search index`."
        )
    cls = _backend_class(meta["backend"])
    docs = read_corpus(path / "docs.jsonl")
    index = cls._open(docs, path / meta["backend"], meta, **options)
    index.path = path
    return index
