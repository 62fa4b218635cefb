"""The embedded default backend: bm25s, in-process, with its numba backend when installed.

We compute bm25s' eager score matrix ourselves, term by term exactly as Lucene's
``BM25Similarity`` scores: the same analyzer, ``idf = ln(1 + (N - df + 0.5) / (df + 0.5))``,
``tf / (tf + k1 (1 - b + b dl / avgdl))`` and, like Lucene, document lengths rounded
through its one-byte norm encoding (``SmallFloat.intToByte4``). bm25s then does what
it is good at: storing the matrix and summing its columns fast at query time.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from agentgym.errors import require
from envs.search.analysis import default_analyzer
from envs.search.backends.base import SearchIndex
from envs.search.cache import cache_root
from envs.search.corpus import Document


def _long_to_int4(i: int) -> int:
    num_bits = i.bit_length()
    if num_bits < 4:
        return i
    shift = num_bits - 4
    return ((i >> shift) & 0x07) | ((shift + 1) << 3)


def _int4_to_long(i: int) -> int:
    bits = i & 0x07
    shift = (i >> 3) - 1
    return bits if shift == -1 else (bits | 0x08) << shift


_NUM_FREE_VALUES = 255 - _long_to_int4(2**31 - 1)


def _lucene_length_table() -> np.ndarray:
    """Lucene's decoded norm for each of the 256 byte values (``SmallFloat.byte4ToInt``)."""
    return np.array(
        [
            i if i < _NUM_FREE_VALUES else _NUM_FREE_VALUES + _int4_to_long(i - _NUM_FREE_VALUES)
            for i in range(256)
        ],
        dtype=np.float64,
    )


def lucene_quantized_lengths(lengths: np.ndarray) -> np.ndarray:
    """Document lengths as Lucene sees them after encoding them into one byte."""
    uniq, inverse = np.unique(np.asarray(lengths, dtype=np.int64), return_inverse=True)
    codes = [
        x if x < _NUM_FREE_VALUES else _NUM_FREE_VALUES + _long_to_int4(x - _NUM_FREE_VALUES)
        for x in uniq.tolist()
    ]
    return _lucene_length_table()[np.asarray(codes, dtype=np.int64)][inverse]


def numba_available() -> bool:
    return importlib.util.find_spec("numba") is not None


_BM25S = None


def _import_bm25s():
    """Import bm25s, with its numba kernels cached on disk: compiling them takes ~10 s per process."""
    global _BM25S
    if _BM25S is None:
        if numba_available():
            os.environ.setdefault("NUMBA_CACHE_DIR", str(cache_root() / "numba"))
        bm25s = require("bm25s", "search", "the bm25s search backend")
        if numba_available():
            try:
                from bm25s.numba import retrieve_utils

                for name in ("_retrieve_internal_jitted_serial", "_retrieve_internal_jitted_parallel"):
                    getattr(retrieve_utils, name).enable_caching()
            except (ImportError, AttributeError):  # another bm25s layout: it compiles, just slower
                pass
        _BM25S = bm25s
    return _BM25S


class Bm25sIndex(SearchIndex):
    backend = "bm25s"

    def __init__(self, docs: list[Document], retriever, k1: float, b: float, path: Path | None = None):
        super().__init__(docs, k1, b, path)
        self.retriever = retriever
        self.vocab: dict[str, int] = retriever.vocab_dict
        self.numba = retriever.backend == "numba"

    @staticmethod
    def score_matrix(docs: Sequence[Document], k1: float, b: float) -> tuple[dict, dict[str, int]]:
        """bm25s' CSC score arrays (one column per term) and the vocabulary."""
        analyzer = default_analyzer()
        vocab: dict[str, int] = {}
        flat: list[int] = []
        lengths = np.empty(len(docs), dtype=np.int64)
        for row, doc in enumerate(docs):
            ids = [vocab.setdefault(t, len(vocab)) for t in analyzer(doc.text)]
            lengths[row] = len(ids)
            flat.extend(ids)
        n_docs = len(docs)
        terms = np.asarray(flat, dtype=np.int64)
        rows = np.repeat(np.arange(n_docs, dtype=np.int64), lengths)
        # Unique (term, doc) pairs sorted by term then doc: exactly CSC order, counts are tf.
        keys, tf = np.unique(terms * n_docs + rows, return_counts=True)
        term_of = keys // n_docs
        doc_of = keys % n_docs
        df = np.bincount(term_of, minlength=len(vocab))
        idf = np.log1p((n_docs - df + 0.5) / (df + 0.5))
        avgdl = lengths.sum() / max(n_docs, 1)
        dl = lucene_quantized_lengths(lengths)
        norm = k1 * ((1 - b) + b * dl[doc_of] / avgdl)
        data = (idf[term_of] * tf / (tf + norm)).astype(np.float32)
        indptr = np.zeros(len(vocab) + 1, dtype=np.int64)
        np.cumsum(df, out=indptr[1:])
        scores = {
            "data": data,
            "indices": doc_of.astype(np.int32),
            "indptr": indptr,
            "num_docs": n_docs,
        }
        return scores, vocab

    @classmethod
    def _make_retriever(cls, k1: float, b: float, backend: str | None):
        bm25s = _import_bm25s()
        backend = backend or ("numba" if numba_available() else "numpy")
        return bm25s.BM25(k1=k1, b=b, method="lucene", backend=backend)

    @classmethod
    def from_documents(
        cls, docs: Sequence[Document], k1: float = 0.9, b: float = 0.4, backend: str | None = None
    ) -> Bm25sIndex:
        """An in-memory index (tests, per-task corpora); ``save`` needs a built folder."""
        retriever = cls._make_retriever(k1, b, backend)
        scores, vocab = cls.score_matrix(docs, k1, b)
        retriever.scores = scores
        retriever.vocab_dict = vocab
        retriever.unique_token_ids_set = set(vocab.values())
        retriever.nonoccurrence_array = None
        return cls(list(docs), retriever, k1, b)

    @classmethod
    def _build_files(cls, docs: list[Document], folder: Path, k1: float, b: float, **options) -> None:
        index = cls.from_documents(docs, k1, b, options.get("numba_backend"))
        index.retriever.save(str(folder), show_progress=False)

    @classmethod
    def _open(cls, docs: list[Document], folder: Path, meta: dict, **options) -> Bm25sIndex:
        bm25s = _import_bm25s()
        backend = options.get("numba_backend") or ("numba" if numba_available() else "numpy")
        retriever = bm25s.BM25.load(str(folder), mmap=bool(options.get("mmap", False)), backend=backend)
        return cls(docs, retriever, meta["k1"], meta["b"])

    def query_ids(self, query: str) -> list[int]:
        vocab = self.vocab
        return [vocab[t] for t in self._analyzer(query) if t in vocab]

    def _rank(self, queries: Sequence[str], k: int, threads: int) -> list[list[tuple[int, float]]]:
        k = max(0, min(k, len(self.docs)))
        out: list[list[tuple[int, float]]] = [[] for _ in queries]
        todo = [(i, ids) for i, ids in enumerate(self.query_ids(q) for q in queries) if ids]
        if not todo or k == 0:
            return out
        res = self.retriever.retrieve(
            [ids for _, ids in todo],
            k=k,
            return_as="tuple",
            show_progress=False,
            n_threads=threads if threads != 1 else 0,
            sorted=True,
        )
        for (i, _), rows, scores in zip(todo, res.documents, res.scores):
            out[i] = [(int(r), float(s)) for r, s in zip(rows, scores) if s > 0]
        return out
