"""WebShop throughput: reset and step latency and search QPS, on the shipped catalog and on 10,000 products.

Two catalogs in the official file format: the shipped one (125 products) and one of
10,000 products that this benchmark generates with :mod:`envs.webshop.maker` into a
temporary folder. For each, in one process, one measurement after another:

* **engine build**: loading the files and building the BM25 index (what a process pays
  once; AgentGym's WebShop server rebuilds a whole engine per session, so this is also
  what a per-session design pays at every session);
* **reset** latency (p50, p99) of ``webshop/v0`` on the shared engine;
* **step** latency (p50, p99) over whole episodes played like an agent: the first action
  searches the instruction itself (a fresh query, so the query cache never helps), the
  rest are the oracle's (paging, opening the product, options, buying, with the reward);
  search steps are also reported on their own, and the episodes' mean reward (on the
  large catalog, 400 products share each type's queries, so the target is often not
  among the 50 results and the 15 steps run out);
* **search QPS**, one query at a time, top 50, over the goals' instructions: our index
  (bm25s, Lucene's analyzer) against the peer, ``rank_bm25.BM25Okapi`` (the BM25 library
  the original engine imports), on the same documents, in the same run.

The target is a step of at most 5 ms p50 at 10,000 products. The last line is one JSON object.

    python benchmarks/throughput_webshop.py [--products 10000] [--episodes 60] [--queries 200]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _ms(values: list[float]) -> dict:
    return {
        "p50_ms": round(_pct(values, 0.5) * 1e3, 3),
        "p99_ms": round(_pct(values, 0.99) * 1e3, 3),
        "n": len(values),
    }


def _engine_build(data_dir: str | None) -> tuple[float, object, object]:
    from envs.webshop.catalog import load_catalog
    from envs.webshop.search import ProductSearch, build_product_index

    start = time.perf_counter()
    catalog = load_catalog(data_dir)
    search = ProductSearch(catalog, build_product_index(catalog))
    return time.perf_counter() - start, catalog, search


def _episodes(env, episodes: int) -> tuple[list[float], list[float], list[float], list[float]]:
    resets, steps, search_steps, rewards = [], [], [], []
    for i in range(episodes):
        t = time.perf_counter()
        env.reset(seed=i)
        resets.append(time.perf_counter() - t)
        action = env.valid_actions()[0]  # search[<the instruction>]: a fresh query
        while not env.done:
            t = time.perf_counter()
            _, reward, *_ = env.step(action)
            spent = time.perf_counter() - t
            steps.append(spent)
            if action.startswith("search["):
                search_steps.append(spent)
            if not env.done:
                action = env.oracle_action()
        rewards.append(reward)
    return resets, steps, search_steps, rewards


def _search_qps(catalog, search, queries: list[str]) -> dict:
    from rank_bm25 import BM25Okapi

    from envs.webshop.search import SEARCH_RETURN_N, product_document

    index = search.index
    index.search_ids(queries[0], SEARCH_RETURN_N)  # warm (numba kernels)
    t = time.perf_counter()
    for q in queries:
        index.search_ids(q, SEARCH_RETURN_N)
    ours = len(queries) / (time.perf_counter() - t)
    corpus = [product_document(p).contents.split() for p in catalog.products]
    peer_index = BM25Okapi(corpus)
    t = time.perf_counter()
    for q in queries:
        peer_index.get_top_n(q.lower().split(), corpus, n=SEARCH_RETURN_N)
    peer = len(queries) / (time.perf_counter() - t)
    return {"qps": round(ours, 1), "peer_rank_bm25_qps": round(peer, 1), "ratio": round(ours / peer, 2)}


def measure_catalog(data_dir: str | None, label: str, episodes: int = 60, queries: int = 200) -> dict:
    """All figures for one catalog folder (None: the shipped catalog)."""
    from envs.webshop.env import WebShopEnv

    build_s, catalog, search = _engine_build(data_dir)
    env = WebShopEnv(data_dir=data_dir, split="test")  # the shared engine (built once per process)
    env.reset(seed=0)  # first-use costs (noun tagger lexicon, numba) outside the timings
    resets, steps, search_steps, rewards = _episodes(env, episodes)
    texts = [g.instruction_text.split(", and price lower than")[0].lower() for g in env.book.goals[:queries]]
    return {
        "catalog": label,
        "products": len(catalog),
        "goals": len(env.book.goals),
        "engine_build_s": round(build_s, 3),
        "reset": _ms(resets),
        "step": _ms(steps),
        "search_step": _ms(search_steps),
        "search": _search_qps(catalog, search, texts),
        "agent_mean_reward": round(statistics.fmean(rewards), 3),
    }


def measure(products: int = 10_000, episodes: int = 60, queries: int = 200, seed: int = 0) -> dict:
    """Measure the shipped catalog and a generated one of ``products`` products; return the figures."""
    from envs.webshop.maker import write_catalog

    shipped = measure_catalog(None, "shipped", episodes, queries)
    with tempfile.TemporaryDirectory(prefix="agentgym-webshop-bench-") as tmp:
        write_catalog(tmp, products, seed)
        large = measure_catalog(tmp, f"synthetic-{products}", episodes, queries)
    return {
        "benchmark": "webshop_throughput",
        "shipped": shipped,
        "large": large,
        "step_p50_ms_at_large": large["step"]["p50_ms"],
        "step_target_met": large["step"]["p50_ms"] <= 5.0,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--products", type=int, default=10_000, help="size of the generated catalog")
    parser.add_argument("--episodes", type=int, default=60, help="episodes per catalog (resets and steps)")
    parser.add_argument("--queries", type=int, default=200, help="distinct queries for search QPS")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    result = measure(args.products, args.episodes, args.queries, args.seed)
    for side in ("shipped", "large"):
        r = result[side]
        print(
            f"{r['catalog']:>16}: {r['products']} products, {r['goals']} goals; engine build {r['engine_build_s']} s; "
            f"reset p50 {r['reset']['p50_ms']} ms p99 {r['reset']['p99_ms']} ms; "
            f"step p50 {r['step']['p50_ms']} ms p99 {r['step']['p99_ms']} ms (search step p50 "
            f"{r['search_step']['p50_ms']} ms); search {r['search']['qps']} q/s vs rank_bm25 "
            f"{r['search']['peer_rank_bm25_qps']} q/s ({r['search']['ratio']}x)"
        )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
