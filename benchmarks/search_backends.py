"""BM25 backends compared in one run: bm25s (ours, embedded), Lucene (Anserini) and rank_bm25.

For each corpus (the 10,033 Wikipedia summaries and a generated 200k-document corpus):

* each index is built in a fresh process (build time, size on disk);
* then one process loads every backend (load time, resident memory each adds), warms
  each up with one untimed pass over the queries, and times them in interleaved rounds
  (median of 3): single-query QPS (one query at a time through the common interface)
  and batch QPS (``batch_search_ids`` with 2 threads). Interleaving exposes every
  backend to the same machine load, so the ratios are fair on a shared machine.

All backends use the same analyzer tokens and k1=0.9, b=0.4. rank_bm25 (BM25Okapi, pure
Python; its "build" includes analysis) is the reference peer and is very slow at 200k
documents, so it runs few queries, once. On the Wikipedia corpus the top-10 lists of
all queries are compared: mean overlap@10 of bm25s vs Lucene (target >= 0.97).

    python benchmarks/search_backends.py [--docs 200000] [--queries 1000] [--skip-lucene]

The last line printed is one JSON object with the headline figures.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

K1, B = 0.9, 0.4


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _dir_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20


def _options(backend: str) -> dict:
    variant = backend.partition("-")[2]
    return {"numba_backend": variant} if variant else {}


def _build_worker(backend: str, corpus_path: str, folder: str, out) -> None:
    """Build one index in a fresh process, so its time and memory are its own."""
    from envs.search.backends import build_index
    from envs.search.corpus import read_corpus

    docs = read_corpus(corpus_path)
    start = time.perf_counter()
    build_index(docs, folder, backend.partition("-")[0], K1, B, **_options(backend)).close()
    out.put(
        {"build_s": time.perf_counter() - start, "disk_mb": _dir_mb(Path(folder) / backend.partition("-")[0])}
    )


def _rank_bm25_runner(corpus_path: str):
    import numpy as np
    from rank_bm25 import BM25Okapi

    from envs.search.analysis import default_analyzer
    from envs.search.corpus import read_corpus

    analyze = default_analyzer()
    docs = read_corpus(corpus_path)
    bm = BM25Okapi([analyze(d.text) for d in docs], k1=K1, b=B)
    ids = [d.id for d in docs]

    def top(q: str) -> list[str]:
        scores = bm.get_scores(analyze(q))
        best = np.argpartition(-scores, 10)[:10]
        return [ids[i] for i in best[np.argsort(-scores[best])] if scores[i] > 0]

    return top


def _search_worker(backends, folders, corpus_path, queries, n_rank, rounds, keep_top, out) -> None:
    """Load every backend in one process; time them in interleaved rounds."""
    from envs.search.backends import load_index

    res: dict[str, dict] = {b: {"backend": b, "load_s": None, "batch_qps": None} for b in backends}
    top: dict = {}
    single: dict = {}
    batch: dict = {}
    for backend in backends:
        rss0 = _rss_mb()
        start = time.perf_counter()
        if backend == "rank_bm25":
            top[backend] = _rank_bm25_runner(corpus_path)
            res[backend]["build_s"] = time.perf_counter() - start
        else:
            index = load_index(folders[backend], **_options(backend))
            index.search_ids("warm up the search path", 10)
            res[backend]["load_s"] = time.perf_counter() - start
            for q in queries:  # one untimed pass: JIT compilers (numba, the JVM's) warm up
                index.search_ids(q, 10)
            index.batch_search_ids(queries, 10, threads=2)
            top[backend] = lambda q, index=index: [d for d, _ in index.search_ids(q, 10)]
            batch[backend] = lambda qs, index=index: index.batch_search_ids(qs, 10, threads=2)
        single[backend] = lambda qs, f=top[backend]: [f(q) for q in qs]
        res[backend]["rss_mb"] = _rss_mb() - rss0
    times: dict = {b: {"single": [], "batch": []} for b in backends}
    for r in range(rounds):
        for backend in backends:
            qs = queries[:n_rank] if backend == "rank_bm25" else queries
            if backend != "rank_bm25" or r == 0:
                start = time.perf_counter()
                single[backend](qs)
                times[backend]["single"].append(len(qs) / (time.perf_counter() - start))
            if backend in batch:
                start = time.perf_counter()
                batch[backend](queries)
                times[backend]["batch"].append(len(queries) / (time.perf_counter() - start))
    for backend in backends:
        res[backend]["single_qps"] = statistics.median(times[backend]["single"])
        if times[backend]["batch"]:
            res[backend]["batch_qps"] = statistics.median(times[backend]["batch"])
        n = min(keep_top, n_rank) if backend == "rank_bm25" else keep_top
        res[backend]["top10"] = [top[backend](q) for q in queries[:n]]
    out.put(res)


def _in_process(target, *args):
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    proc = ctx.Process(target=target, args=(*args, out))
    proc.start()
    result = out.get()
    proc.join()
    return result


def overlap_at_10(a: list[list[str]], b: list[list[str]]) -> float:
    vals = []
    for x, y in zip(a, b):
        denom = max(len(set(x)), len(set(y)))
        vals.append(len(set(x) & set(y)) / denom if denom else 1.0)
    return sum(vals) / len(vals)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=int, default=200_000, help="size of the generated corpus")
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--rank-bm25-queries", type=int, nargs=2, default=(100, 20), metavar=("WIKI", "SYNTHETIC")
    )
    parser.add_argument("--skip-lucene", action="store_true")
    args = parser.parse_args()

    from envs.search.corpus import (
        read_corpus,
        sample_queries,
        synthetic_corpus,
        wikipedia_corpus_path,
        write_corpus,
    )

    backends = ["bm25s", "bm25s-numpy", "lucene", "rank_bm25"]
    if args.skip_lucene:
        backends.remove("lucene")
    big = f"synthetic{args.docs // 1000}k"
    rows: dict[tuple[str, str], dict] = {}
    tops: dict[str, list] = {}
    fmt = lambda v, spec: "-" if v is None else format(v, spec)
    with tempfile.TemporaryDirectory(prefix="agentgym-bench-") as tmp:
        synthetic = Path(tmp) / f"{big}.jsonl"
        write_corpus(synthetic_corpus(args.docs, seed=0), synthetic)
        corpora = (
            ("wiki", wikipedia_corpus_path(), args.rank_bm25_queries[0]),
            (big, synthetic, args.rank_bm25_queries[1]),
        )
        for corpus_name, path, n_rank in corpora:
            docs = read_corpus(path)
            queries = sample_queries(docs, args.queries, seed=1)
            n_docs = len(docs)
            del docs
            folders = {}
            built = {}
            for backend in backends:
                if backend == "rank_bm25":
                    continue
                folders[backend] = str(Path(tmp) / f"{corpus_name}-{backend}")
                built[backend] = _in_process(_build_worker, backend, str(path), folders[backend])
            keep = len(queries) if corpus_name == "wiki" else 0
            searched = _in_process(
                _search_worker, backends, folders, str(path), queries, n_rank, args.rounds, keep
            )
            for backend in backends:
                row = {
                    **searched[backend],
                    **built.get(backend, {"disk_mb": None}),
                    "corpus": corpus_name,
                    "docs": n_docs,
                }
                tops[f"{corpus_name}/{backend}"] = row.pop("top10")
                rows[(corpus_name, backend)] = row
                print(
                    f"{corpus_name:>15} {backend:>12}: docs {n_docs:>7,}  build {fmt(row['build_s'], '7.1f')} s  "
                    f"load {fmt(row['load_s'], '5.2f')} s  single {fmt(row['single_qps'], '8.0f')} q/s  "
                    f"batch {fmt(row['batch_qps'], '8.0f')} q/s  rss +{fmt(row['rss_mb'], '6.0f')} MB  "
                    f"disk {fmt(row['disk_mb'], '6.1f')} MB",
                    flush=True,
                )

    headline: dict = {"bench": "search_backends", "queries": args.queries, "k1": K1, "b": B}
    for (corpus, backend), row in rows.items():
        for metric in ("single_qps", "batch_qps", "build_s", "rss_mb"):
            value = row[metric]
            headline[f"{corpus}_{backend.replace('-', '_')}_{metric}"] = (
                None if value is None else round(value, 2)
            )
    if "lucene" in backends:
        overlap = overlap_at_10(tops["wiki/bm25s"], tops["wiki/lucene"])
        print(
            f"bm25s vs Lucene mean overlap@10 on {len(tops['wiki/bm25s'])} Wikipedia queries: {overlap:.4f}"
        )
        headline["wiki_overlap_at_10_bm25s_vs_lucene"] = round(overlap, 4)
        ratio = rows[(big, "bm25s")]["single_qps"] / rows[(big, "lucene")]["single_qps"]
        headline[f"{big}_single_qps_ratio_bm25s_vs_lucene"] = round(ratio, 2)
        print(f"single-query QPS at {args.docs:,} docs: bm25s / Lucene = {ratio:.2f}x")
    n = len(tops["wiki/rank_bm25"])
    headline["wiki_overlap_at_10_bm25s_vs_rank_bm25"] = round(
        overlap_at_10(tops["wiki/bm25s"][:n], tops["wiki/rank_bm25"]), 4
    )
    print(json.dumps(headline))


if __name__ == "__main__":
    main()
