"""Async rollout engine vs a lockstep loop, same policy, same environment, same run.

The environment's step waits ``--env-ms`` (a simulated tool call). ``--episodes``
episodes of exactly ``--turns`` turns each are rolled out by:

* lockstep (the peer: how a simple batched rollout loop works): every live environment
  steps (concurrently), then the policy generates for all of them, turn after turn. Two
  variants: one ``generate`` call with every request (``full``), and calls of the async
  engine's batch size (``same-batch``), so that only the overlap differs;
* async: agentgym's :class:`RolloutEngine`; each episode runs on its own and requests go
  through the batching queue (``--max-batch``), so some episodes generate while others
  wait on their environment.

Bounds, with ``G`` the lockstep generation time of one turn for all episodes, ``E`` one
step's wait and ``n`` turns: the ideal ``max(n G, n E)`` (total generation or one
episode's chain of waits), and the pipeline bound ``max(G + n E, n G + E)``: the first
turn of every episode must be generated before the last one can start its chain of
waits, and the last generation is followed by one more wait. Lockstep takes
``n (G + E)``, so no engine can beat it by more than ``2n / (n + 1)`` (1.6 at n = 4).

Those bounds hold for identical episodes. Real tool calls vary: with ``--env-sigma S``
each wait is drawn (log-normal, mean ``--env-ms``, the same draws for both loops) and
lockstep waits for the slowest environment of every turn, which is where verl-tool's
1.7-2x comes from. With a policy that batches by itself (``--model vllm:default``) the
async engine also sends every request alone, so a short reply never waits for a long one.

Runs alternate (lockstep, async, ...) and medians are reported. The policy is real: the
tiny test model through the ``hf`` backend by default (``--model default`` for
SmolLM2-135M through hf, or any policy spec such as ``vllm:default``). The last line is
one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from agentgym import Task, TextEnv, register
from agentgym.core.protocol import StepResult
from agentgym.core.registry import make
from agentgym.policy.base import SamplingParams
from agentgym.rollout import ContextBuilder, EpisodeSpec, RolloutConfig, RolloutEngine

ENV_ID = "bench-toolwait/v0"


class ToolWaitEnv(TextEnv):
    """Every step is a tool call that takes ``delay_s``; the episode ends after ``turns`` steps."""

    system_prompt = "You are an agent. Each reply runs a tool; read its result and continue."

    def __init__(self, delay_s: float = 0.1, turns: int = 4, obs_words: int = 12, sigma: float = 0.0,
                 **kwargs: Any):
        super().__init__(max_turns=turns, **kwargs)
        self.delay_s, self.turns, self.obs_words, self.sigma = delay_s, turns, obs_words, sigma

    def generate_task(self, index: int) -> Task:
        return Task(id=f"wait-{index}", inputs={"index": index})

    def setup(self, task: Task) -> str:
        self.turn = 0
        rng = random.Random(task.inputs["index"])  # same waits for the same episode in both loops
        mu = math.log(self.delay_s) - self.sigma**2 / 2  # log-normal with mean delay_s
        self.waits = [rng.lognormvariate(mu, self.sigma) if self.sigma else self.delay_s
                      for _ in range(self.turns)]
        return f"Task {task.id}: look at the grid and move to the goal."

    async def astep(self, message: Any) -> StepResult:
        self._check_running()
        await asyncio.sleep(self.waits[self.turn])  # the tool call: network, sandbox, search...
        self.turn += 1
        done = self.turn >= self.turns
        self._done = done
        words = " ".join(["the tool result is open floor"] * max(1, self.obs_words // 6))
        info = {"turn": self.turn, "invalid_action": False, "invalid_actions": 0}
        if done:
            info["success"] = True
        return StepResult([{"role": "user", "content": f"Step {self.turn}: {words}."}], 0.0, done, False, info)


register(ENV_ID, ToolWaitEnv, description="benchmark env: each step waits like a tool call")


async def lockstep(
    policy: Any, episodes: int, env_kwargs: dict[str, Any], params: SamplingParams, chunk: int
) -> dict[str, float]:
    """All environments step, then all generate, turn after turn.

    Generation goes out in chunks of ``chunk`` requests, the async engine's batch size, so
    both sides run the policy on the same batch shapes and only the overlap differs.
    """
    start = time.perf_counter()
    builder = ContextBuilder(max_context_tokens=None)
    envs = [make(ENV_ID, **env_kwargs) for _ in range(episodes)]
    resets = await asyncio.gather(*(env.areset(seed=i) for i, env in enumerate(envs)))
    ctxs = [builder.start(obs, info, renderer=policy.renderer) for obs, info in resets]
    live = list(range(episodes))
    gen_s = env_s = 0.0
    while live:
        t = time.perf_counter()
        requests = [ctxs[i].request(params) for i in live]
        results = []
        for at in range(0, len(requests), chunk):
            results += await policy.generate(requests[at : at + chunk])
        gen_s += time.perf_counter() - t
        replies = [ctxs[i].add_completion(result[0]) for i, result in zip(live, results)]
        t = time.perf_counter()
        steps = await asyncio.gather(*(envs[i].astep(reply) for i, reply in zip(live, replies)))
        env_s += time.perf_counter() - t
        still = []
        for i, step in zip(live, steps):
            if step.done:
                continue
            ctxs[i].add_observation(step.messages)
            still.append(i)
        live = still
    return {"wall_s": time.perf_counter() - start, "generation_s": gen_s, "env_s": env_s}


async def run_async(engine: RolloutEngine, episodes: int, env_kwargs: dict[str, Any]) -> dict[str, float]:
    start = time.perf_counter()
    before = (engine.batcher.stats.calls, engine.batcher.stats.requests, engine.batcher.stats.busy_s)
    trajs = await engine.run([EpisodeSpec(ENV_ID, env_kwargs=env_kwargs, seed=i) for i in range(episodes)])
    wall = time.perf_counter() - start
    bad = [t for t in trajs if t.status != "completed"]
    if bad:
        raise RuntimeError(f"{len(bad)} async episodes did not complete: {bad[0].error or bad[0].status}")
    s = engine.batcher.stats
    calls = s.calls - before[0]
    return {
        "wall_s": wall,
        "policy_busy_s": s.busy_s - before[2],
        "calls": calls,
        "mean_batch": (s.requests - before[1]) / calls if calls else 0.0,
    }


def load_policy(model: str):
    from agentgym.policy.hf import HFPolicy

    if ":" in model:
        from agentgym.policy.load import load_policy as load_spec

        return load_spec(model), model
    if model == "tiny":
        from agentgym.policy.tiny import make_tiny_model

        folder = Path(tempfile.gettempdir()) / "agentgym-bench-tiny"
        if not (folder / "config.json").exists():
            make_tiny_model(folder)
        return HFPolicy(str(folder), name="hf:tiny"), "hf:tiny (2-layer Llama, 0.4 M params, CPU)"
    return HFPolicy(model), f"hf:{model}"


async def main(args: argparse.Namespace) -> dict[str, Any]:
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    policy, label = load_policy(args.model)
    params = SamplingParams(temperature=1.0, max_tokens=args.max_tokens)
    env_kwargs = {"delay_s": args.env_ms / 1000, "turns": args.turns, "obs_words": args.obs_words,
                  "sigma": args.env_sigma}
    engine = RolloutEngine(
        policy,
        RolloutConfig(temperature=params.temperature, max_tokens=params.max_tokens, max_batch=args.max_batch,
                      batch_wait_s=args.batch_wait_ms / 1000, max_context_tokens=None, episode_timeout_s=None),
    )
    await lockstep(policy, min(8, args.episodes), env_kwargs, params, args.max_batch)  # warm-up
    same_runs, full_runs, async_runs = [], [], []
    for r in range(args.repeats):
        same_runs.append(await lockstep(policy, args.episodes, env_kwargs, params, args.max_batch))
        async_runs.append(await run_async(engine, args.episodes, env_kwargs))
        if not args.skip_full:
            full_runs.append(await lockstep(policy, args.episodes, env_kwargs, params, args.episodes))
        full = f"; lockstep full batch {full_runs[-1]['wall_s']:.2f} s" if full_runs else ""
        print(f"repeat {r + 1}: lockstep same-batch {same_runs[-1]['wall_s']:.2f} s "
              f"(generation {same_runs[-1]['generation_s']:.2f} s, env {same_runs[-1]['env_s']:.2f} s); "
              f"async {async_runs[-1]['wall_s']:.2f} s ({async_runs[-1]['calls']} policy calls, "
              f"mean batch {async_runs[-1]['mean_batch']:.1f}, policy busy {async_runs[-1]['policy_busy_s']:.2f} s)"
              f"{full}", flush=True)
    await engine.aclose()
    await policy.close()
    med = lambda runs, key: statistics.median(x[key] for x in runs)
    same_wall, async_wall = med(same_runs, "wall_s"), med(async_runs, "wall_s")
    full_wall = med(full_runs, "wall_s") if full_runs else None
    best_lock = min(same_wall, full_wall) if full_wall is not None else same_wall
    n, wait = args.turns, args.env_ms / 1000
    per_turn = med(same_runs, "generation_s") / n
    ideal = max(n * per_turn, n * wait)
    pipeline = max(per_turn + n * wait, n * per_turn + wait)
    return {
        "bench": "rollout_async",
        "policy": label,
        "episodes": args.episodes,
        "turns": args.turns,
        "env_step_ms": args.env_ms,
        "env_sigma": args.env_sigma,
        "max_tokens": args.max_tokens,
        "max_batch": args.max_batch,
        "torch_threads": args.threads or None,
        "async_s": round(async_wall, 3),
        "lockstep_same_batch_s": round(same_wall, 3),
        "lockstep_full_batch_s": round(full_wall, 3) if full_wall is not None else None,
        "speedup": round(best_lock / async_wall, 3),
        "speedup_vs_same_batch": round(same_wall / async_wall, 3),
        "speedup_vs_full_batch": round(full_wall / async_wall, 3) if full_wall is not None else None,
        "ideal_s": round(ideal, 3),
        "pipeline_bound_s": round(pipeline, 3),
        "max_speedup_vs_same_batch": round(same_wall / pipeline, 3),
        "lockstep_generation_s": round(n * per_turn, 3),
        "lockstep_env_s": round(med(same_runs, "env_s"), 3),
        "repeats": args.repeats,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="tiny",
                        help="tiny (built in code) | default | a model folder | a policy spec (vllm:default)")
    parser.add_argument("--episodes", type=int, default=64)
    parser.add_argument("--turns", type=int, default=4)
    parser.add_argument("--env-ms", type=float, default=100.0)
    parser.add_argument("--max-tokens", type=int, default=4)
    parser.add_argument("--env-sigma", type=float, default=0.0,
                        help="spread of the tool wait (log-normal sigma; 0 = every wait is --env-ms)")
    parser.add_argument("--obs-words", type=int, default=12)
    parser.add_argument("--max-batch", type=int, default=16,
                        help="largest batch of the async engine (16 was fastest of 8-64 for the tiny model)")
    parser.add_argument("--skip-full", action="store_true", help="skip the full-batch lockstep variant")
    parser.add_argument("--batch-wait-ms", type=float, default=2.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (default 1: the tiny model gains nothing from more; 0 = torch default)")
    args = parser.parse_args()
    result = asyncio.run(main(args))
    print(json.dumps(result))
