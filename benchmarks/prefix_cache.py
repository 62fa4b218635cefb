"""Multi-turn generation with and without the hf backend's prefix cache, same run.

Every turn of a multi-turn episode sends the whole conversation. Without a prefix cache
the ``hf`` backend prefills all of it again; with it (the default, ``prefix_cache_gb``)
the keys and values of the previous turn are reused and only the reply's last token and
the new observation are prefilled. Both sides roll out the same episodes through the
rollout engine with greedy decoding, so they must produce the same trajectories (checked)
and only the time differs.

    python benchmarks/prefix_cache.py [--model default] [--episodes 16] [--turns 8] [--repeats 3]

Runs alternate (cache off, cache on, ...); medians are reported. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from typing import Any

from agentgym.malloc import limit_malloc_growth
from agentgym.policy.hf import HFPolicy
from agentgym.rollout import EpisodeSpec, RolloutConfig, RolloutEngine


async def rollout(policy: HFPolicy, args: argparse.Namespace) -> tuple[dict[str, float], list[list[int]]]:
    engine = RolloutEngine(policy, RolloutConfig(
        temperature=0.0, max_tokens=args.max_tokens, max_batch=args.episodes,
        max_context_tokens=None, episode_timeout_s=None,
    ))
    specs = [EpisodeSpec(args.env, env_kwargs={"obs_mode": args.obs_mode, "max_turns": args.turns}, seed=i)
             for i in range(args.episodes)]
    start = time.perf_counter()
    trajectories = await engine.run(specs)
    wall = time.perf_counter() - start
    await engine.aclose()
    bad = [t for t in trajectories if t.status not in ("completed", "truncated")]
    if bad:
        raise RuntimeError(f"{len(bad)} episodes failed: {bad[0].error}")
    return {
        "wall_s": wall,
        "policy_busy_s": engine.batcher.stats.busy_s,
        "turns": sum(t.num_turns for t in trajectories),
        "context_tokens": sum(len(t.token_ids) for t in trajectories),
    }, [t.token_ids for t in trajectories]


async def main(args: argparse.Namespace) -> dict[str, Any]:
    limit_malloc_growth()  # as the CLI does
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    cached = HFPolicy(args.model)
    plain = HFPolicy(cached.model, cached.tokenizer, prefix_cache_gb=0)
    await rollout(plain, argparse.Namespace(**{**vars(args), "episodes": 2, "turns": 2}))  # warm-up
    off_runs, on_runs = [], []
    for r in range(args.repeats):
        off, off_tokens = await rollout(plain, args)
        on, on_tokens = await rollout(cached, args)
        if on_tokens != off_tokens:
            raise RuntimeError("the prefix cache changed what was sampled (greedy decoding must not change)")
        off_runs.append(off)
        on_runs.append(on)
        print(f"repeat {r + 1}: cache off {off['wall_s']:.2f} s (policy busy {off['policy_busy_s']:.2f} s); "
              f"cache on {on['wall_s']:.2f} s (policy busy {on['policy_busy_s']:.2f} s); "
              f"{on['turns']} turns, {on['context_tokens']} tokens in final contexts", flush=True)
    stats = cached.prefix_cache
    med = lambda runs, key: statistics.median(x[key] for x in runs)
    off_wall, on_wall = med(off_runs, "wall_s"), med(on_runs, "wall_s")
    return {
        "bench": "prefix_cache",
        "model": cached.name,
        "env": args.env,
        "obs_mode": args.obs_mode,
        "episodes": args.episodes,
        "max_turns": args.turns,
        "max_tokens": args.max_tokens,
        "turns_total": on_runs[-1]["turns"],
        "cache_off_s": round(off_wall, 3),
        "cache_on_s": round(on_wall, 3),
        "speedup": round(off_wall / on_wall, 3),
        "policy_busy_off_s": round(med(off_runs, "policy_busy_s"), 3),
        "policy_busy_on_s": round(med(on_runs, "policy_busy_s"), 3),
        "hit_rate": round(stats.hits / max(1, stats.hits + stats.misses), 3),
        "reused_tokens": stats.reused_tokens,
        "same_trajectories": True,
        "repeats": args.repeats,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="default", help="model alias or folder for the hf backend")
    parser.add_argument("--env", default="maze-medium/v0")
    parser.add_argument("--obs-mode", default="grid")
    parser.add_argument("--episodes", type=int, default=16)
    parser.add_argument("--turns", type=int, default=8)
    parser.add_argument("--max-tokens", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch default)")
    print(json.dumps(asyncio.run(main(parser.parse_args()))))
