"""BM25 backends compared in one run: bm25s (ours, embedded), Lucene (Anserini) and rank_bm25.

For each corpus (the 10,033 Wikipedia summaries and a generated 200k-document corpus)
and each backend, a fresh process builds the index, loads it, and measures build
time, load time, single-query QPS (one query at a time through the common
interface, median of 3 rounds after one untimed warm-up pass), batch QPS (``batch_search_ids`` with 2 threads,
median of 3), resident memory added by the loaded index, and index size on disk.
All backends use the same analyzer tokens and k1=0.9, b=0.4; rank_bm25 (BM25Okapi,
pure Python) is the reference peer and is very slow at 200k documents, so it runs
few queries. On the Wikipedia corpus the top-10 lists of 1,000 queries are compared:
mean overlap@10 of bm25s vs Lucene (the agreement target is >= 0.97).

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


def _qps(fn, queries: list[str], rounds: int = 3) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn(queries)
        times.append(time.perf_counter() - start)
    return len(queries) / statistics.median(times)


def _worker(backend: str, corpus_path: str, queries: list[str], n_single: int, keep_top: int, out) -> None:
    """Runs in a fresh process so memory and JIT/JVM start-up are measured per backend."""
    from envs.search.corpus import read_corpus

    docs = read_corpus(corpus_path)
    result: dict = {"backend": backend, "docs": len(docs)}
    single = queries[:n_single]
    with tempfile.TemporaryDirectory(prefix="agentgym-bench-") as tmp:
        if backend == "rank_bm25":
            import numpy as np
            from rank_bm25 import BM25Okapi

            from envs.search.analysis import default_analyzer

            analyze = default_analyzer()
            rss0 = _rss_mb()
            start = time.perf_counter()
            bm = BM25Okapi([analyze(d.text) for d in docs], k1=K1, b=B)
            result["build_s"] = time.perf_counter() - start
            result["load_s"] = None
            result["rss_mb"] = _rss_mb() - rss0
            result["disk_mb"] = None
            ids = [d.id for d in docs]

            def top(q: str) -> list[str]:
                scores = bm.get_scores(analyze(q))
                best = np.argpartition(-scores, 10)[:10]
                return [ids[i] for i in best[np.argsort(-scores[best])] if scores[i] > 0]

            run_single = lambda qs: [top(q) for q in qs]  # noqa: E731
            result["single_qps"] = _qps(run_single, single, rounds=1)
            result["batch_qps"] = None
            result["top10"] = [top(q) for q in queries[:keep_top]] if keep_top else []
        else:
            from envs.search.backends import build_index, load_index

            name, _, variant = backend.partition("-")
            options = {"numba_backend": variant} if variant else {}
            start = time.perf_counter()
            build_index(docs, Path(tmp) / "idx", name, K1, B, **options).close()
            result["build_s"] = time.perf_counter() - start
            result["disk_mb"] = _dir_mb(Path(tmp) / "idx" / name)
            del docs
            rss0 = _rss_mb()
            start = time.perf_counter()
            index = load_index(Path(tmp) / "idx", **options)
            index.search_ids("warm up the search path", 10)
            result["load_s"] = time.perf_counter() - start
            for q in queries:  # one full untimed pass: JIT compilers (numba, the JVM's) warm up
                index.search_ids(q, 10)
            index.batch_search_ids(queries, 10, threads=2)
            result["single_qps"] = _qps(lambda qs: [index.search_ids(q, 10) for q in qs], single)
            result["batch_qps"] = _qps(lambda qs: index.batch_search_ids(qs, 10, threads=2), queries)
            result["rss_mb"] = _rss_mb() - rss0
            result["top10"] = [[d for d, _ in hits] for hits in index.batch_search_ids(queries[:keep_top], 10)] if keep_top else []
            index.close()
    out.put(result)


def run(backend: str, corpus_path: Path, queries: list[str], n_single: int, keep_top: int) -> dict:
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    proc = ctx.Process(target=_worker, args=(backend, str(corpus_path), queries, n_single, keep_top, out))
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
    parser.add_argument("--rank-bm25-queries", type=int, nargs=2, default=(100, 20), metavar=("WIKI", "SYNTHETIC"))
    parser.add_argument("--skip-lucene", action="store_true")
    args = parser.parse_args()

    from envs.search.corpus import sample_queries, synthetic_corpus, wikipedia_corpus_path, read_corpus, write_corpus

    backends = ["bm25s", "bm25s-numpy", "lucene", "rank_bm25"]
    if args.skip_lucene:
        backends.remove("lucene")
    rows: list[dict] = []
    tops: dict[str, list] = {}
    with tempfile.TemporaryDirectory(prefix="agentgym-bench-corpus-") as tmp:
        wiki = wikipedia_corpus_path()
        synthetic = Path(tmp) / f"synthetic-{args.docs}.jsonl"
        write_corpus(synthetic_corpus(args.docs, seed=0), synthetic)
        for corpus_name, path, n_rank in (("wiki", wiki, args.rank_bm25_queries[0]), (f"synthetic{args.docs // 1000}k", synthetic, args.rank_bm25_queries[1])):
            docs = read_corpus(path)
            queries = sample_queries(docs, args.queries, seed=1)
            del docs
            for backend in backends:
                n_single = n_rank if backend == "rank_bm25" else len(queries)
                keep = (n_rank if backend == "rank_bm25" else len(queries)) if corpus_name == "wiki" else 0
                row = run(backend, path, queries, n_single, keep)
                tops[f"{corpus_name}/{backend}"] = row.pop("top10")
                row["corpus"] = corpus_name
                rows.append(row)
                fmt = lambda v, spec: "-" if v is None else format(v, spec)  # noqa: E731
                print(
                    f"{corpus_name:>15} {backend:>12}: docs {row['docs']:>7,}  build {fmt(row['build_s'], '7.1f')} s  "
                    f"load {fmt(row['load_s'], '5.2f')} s  single {fmt(row['single_qps'], '8.0f')} q/s  "
                    f"batch {fmt(row['batch_qps'], '8.0f')} q/s  rss +{fmt(row['rss_mb'], '6.0f')} MB  "
                    f"disk {fmt(row['disk_mb'], '6.1f')} MB",
                    flush=True,
                )

    def get(corpus: str, backend: str, key: str):
        for r in rows:
            if r["corpus"] == corpus and r["backend"] == backend:
                return r[key]
        return None

    big = f"synthetic{args.docs // 1000}k"
    headline: dict = {"bench": "search_backends", "queries": args.queries, "k1": K1, "b": B}
    for corpus in ("wiki", big):
        for backend in backends:
            key = backend.replace("-", "_")
            for metric in ("single_qps", "batch_qps", "build_s", "rss_mb"):
                value = get(corpus, backend, metric)
                headline[f"{corpus}_{key}_{metric}"] = None if value is None else round(value, 2)
    if "lucene" in backends:
        overlap = overlap_at_10(tops["wiki/bm25s"], tops["wiki/lucene"])
        print(f"bm25s vs Lucene mean overlap@10 on {len(tops['wiki/bm25s'])} Wikipedia queries: {overlap:.4f}")
        headline["wiki_overlap_at_10_bm25s_vs_lucene"] = round(overlap, 4)
        ratio = get(big, "bm25s", "single_qps") / get(big, "lucene", "single_qps")
        headline[f"{big}_single_qps_ratio_bm25s_vs_lucene"] = round(ratio, 2)
        print(f"single-query QPS at {args.docs:,} docs: bm25s / Lucene = {ratio:.2f}x")
    n = len(tops["wiki/rank_bm25"])
    headline["wiki_overlap_at_10_bm25s_vs_rank_bm25"] = round(overlap_at_10(tops["wiki/bm25s"][:n], tops["wiki/rank_bm25"]), 4)
    print(json.dumps(headline))


if __name__ == "__main__":
    main()
