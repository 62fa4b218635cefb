"""The Lucene backend: Anserini's indexer and searcher from its fat jar, for large corpora.

Indexing runs ``io.anserini.index.IndexCollection`` in a child JVM (its memory is
returned when it ends); searching runs ``io.anserini.search.SimpleSearcher`` in the
in-process JVM through pyjnius. See :mod:`envs.search.java` for why not pyserini.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

from envs.search.backends.base import SearchIndex
from envs.search.corpus import Document
from envs.search.java import DEFAULT_HEAP, run_java, start_jvm


class LuceneIndex(SearchIndex):
    backend = "lucene"

    def __init__(self, docs: list[Document], folder: Path, k1: float, b: float, path: Path | None = None):
        super().__init__(docs, k1, b, path)
        start_jvm()
        from jnius import autoclass

        self._searcher = autoclass("io.anserini.search.SimpleSearcher")(str(folder))
        self._searcher.set_bm25(float(k1), float(b))
        self._JString = autoclass("java.lang.String")
        self._ArrayList = autoclass("java.util.ArrayList")

    @classmethod
    def _build_files(cls, docs: list[Document], folder: Path, k1: float, b: float, **options) -> None:
        threads = int(options.get("threads") or min(4, os.cpu_count() or 1))
        heap = options.get("heap", DEFAULT_HEAP)
        with tempfile.TemporaryDirectory(prefix="agentgym-lucene-input-") as tmp:
            # JsonCollection indexes `contents`; we index the title with it, as the bm25s backend does.
            with open(Path(tmp) / "docs.jsonl", "w", encoding="utf-8") as f:
                f.writelines(
                    json.dumps({"id": doc.id, "contents": doc.text}, ensure_ascii=False) + "\n"
                    for doc in docs
                )
            output = run_java(
                "io.anserini.index.IndexCollection",
                [
                    "-collection",
                    "JsonCollection",
                    "-generator",
                    "DefaultLuceneDocumentGenerator",
                    "-input",
                    tmp,
                    "-index",
                    str(folder),
                    "-threads",
                    str(threads),
                    "-memoryBuffer",
                    "512",
                    "-optimize",
                    "-quiet",
                ],
                heap=heap,
            )
        if not folder.is_dir() or not any(folder.glob("segments_*")):
            # IndexCollection exits 0 even when it rejects its arguments.
            raise RuntimeError(f"Anserini wrote no index into {folder}: {output.strip()[-1000:]}")

    @classmethod
    def _open(cls, docs: list[Document], folder: Path, meta: dict, **options) -> LuceneIndex:
        return cls(docs, folder, meta["k1"], meta["b"])

    def _rank(self, queries: Sequence[str], k: int, threads: int) -> list[list[tuple[int, float]]]:
        row_of = self._row_of
        if k <= 0:
            return [[] for _ in queries]
        if len(queries) == 1 or threads <= 1:
            out = []
            for q in queries:
                hits = self._searcher.search(self._JString(q), int(k))
                out.append([(row_of[h.docid], float(h.score)) for h in hits])
            return out
        jq, jids = self._ArrayList(), self._ArrayList()
        for i, q in enumerate(queries):
            jq.add(q)
            jids.add(str(i))
        results = self._searcher.batch_search(jq, jids, int(k), int(threads))
        out = []
        for i in range(len(queries)):
            hits = results.get(str(i))
            out.append([(row_of[h.docid], float(h.score)) for h in hits] if hits is not None else [])
        return out

    def close(self) -> None:
        if self._searcher is not None:
            self._searcher.close()
            self._searcher = None
