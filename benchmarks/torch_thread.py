"""Generation with torch on one thread vs spread over asyncio's thread pool, same run.

Before :mod:`agentgym.torch_thread`, ``agentgym train`` ran generation, learner steps and
model loading with ``asyncio.to_thread``: whichever of the pool's 32 threads was free ran
them, each with its own OpenMP team. libgomp counts every team's threads, and once that
exceeds the number of cores it stops spinning between parallel regions for good. Each side
runs in a fresh process (the slowdown lasts for the life of the process): ``pool`` loads the
model and generates from pool threads (several of them, as the engine's concurrent work
made it), ``torch`` does all of it on the torch thread. Same greedy batch (``--batch``
prompts of ~130 tokens, ``--max-tokens`` new tokens, SmolLM2-135M by default); sides
alternate; medians.

    python benchmarks/torch_thread.py [--model default] [--repeats 3]

The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import json
import statistics
import subprocess
import sys
import time

from agentgym.malloc import limit_malloc_growth
from agentgym.policy.base import GenerationRequest, SamplingParams
from agentgym.policy.hf import HFPolicy
from agentgym.torch_thread import run_on_torch_thread


def side(args: argparse.Namespace) -> float:
    """Seconds per batch (median of ``--calls``) in this process, the ``args.side`` way."""
    limit_malloc_growth()  # as the CLI does

    async def run() -> float:
        pool = concurrent.futures.ThreadPoolExecutor(max_workers=32)
        asyncio.get_running_loop().set_default_executor(pool)
        on = run_on_torch_thread if args.side == "torch" else asyncio.to_thread
        policy = await on(HFPolicy, args.model, prefix_cache_gb=0)
        requests = [GenerationRequest(prompt_ids=list(range(1000, 1127 + i)),
                                      params=SamplingParams(temperature=0, max_tokens=args.max_tokens))
                    for i in range(args.batch)]
        if args.side == "pool":  # the engine's concurrent calls put torch work on several pool threads
            await asyncio.gather(*(asyncio.to_thread(policy.generate_sync, requests[:1]) for _ in range(4)))
        else:
            await on(policy.generate_sync, requests[:1])
        times = []
        for _ in range(args.calls):
            start = time.perf_counter()
            await on(policy.generate_sync, requests)
            times.append(time.perf_counter() - start)
        return statistics.median(times)

    return asyncio.run(run())


def main(args: argparse.Namespace) -> dict:
    results: dict[str, list[float]] = {"pool": [], "torch": []}
    for r in range(args.repeats):
        for name in ("pool", "torch"):
            out = subprocess.run(
                [sys.executable, __file__, "--side", name, "--model", args.model, "--batch", str(args.batch),
                 "--max-tokens", str(args.max_tokens), "--calls", str(args.calls)],
                capture_output=True, text=True, check=True,
            )
            results[name].append(float(out.stdout.strip().splitlines()[-1]))
        print(f"repeat {r + 1}: pool threads {results['pool'][-1]:.2f} s/batch, "
              f"torch thread {results['torch'][-1]:.2f} s/batch", flush=True)
    pool, single = statistics.median(results["pool"]), statistics.median(results["torch"])
    return {"bench": "torch_thread", "model": args.model, "batch": args.batch, "max_tokens": args.max_tokens,
            "pool_s_per_batch": round(pool, 3), "torch_thread_s_per_batch": round(single, 3),
            "speedup": round(pool / single, 3), "repeats": args.repeats}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="default")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--max-tokens", type=int, default=16)
    parser.add_argument("--calls", type=int, default=3, help="batches per process (median)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--side", choices=["pool", "torch"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.side:
        print(side(args))
    else:
        print(json.dumps(main(args)))
