"""Nothing blocks the event loop: an env whose every hook blocks runs concurrently through the engine.

Each hook of ``BlockingEnv`` (setup, the step's on_text, progress, hint, close) sleeps 0.25 s
in its thread, as a subprocess or a sandbox call would. 2 groups x 4 episodes of 4 turns run
with guidance (the env's hint, asked of a fresh env) and retrospective progress on; every
group fails, so 8 guided episodes follow. A probe measures the event loop's lag all along.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import time

from agentgym import Task, TextEnv, register
from agentgym.guidance import GuidanceConfig, GuidedRollouts, build_providers
from agentgym.policy.base import Completion
from agentgym.rewards.pipeline import RewardPipeline
from agentgym.rewards.progress import EnvProgressAssessor
from agentgym.rollout import EpisodeSpec, RolloutConfig, RolloutEngine

HOOK_S = 0.25
CALLS: list[tuple[int, str, str]] = []  # (env instance, hook, thread name)
SERIALS = itertools.count()


class BlockingEnv(TextEnv):
    """Every hook blocks HOOK_S seconds; replies never reach the goal (so every group is guided)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.serial = next(SERIALS)

    def _block(self, hook: str) -> None:
        CALLS.append((self.serial, hook, threading.current_thread().name))
        time.sleep(HOOK_S)

    def generate_task(self, index: int) -> Task:
        return Task(id=f"block-{index % 7}", inputs={"index": index % 7})

    def setup(self, task: Task) -> str:
        self._block("setup")
        self.steps = 0
        return "Say anything."

    def on_text(self, text: str) -> str:
        self._block("step")
        self.steps += 1
        return f"Noted ({self.steps})."

    def progress(self) -> float:
        self._block("progress")
        return self.steps / 10

    def hint(self) -> str:
        self._block("hint")
        return "There is no way out."

    def close(self) -> None:
        self._block("close")


register("test-blocking/v0", BlockingEnv, description="every hook blocks", max_turns=4)


class Talker:
    name = "talker"

    async def generate(self, requests):
        return [[Completion(text="hello")] for _ in requests]

    async def close(self) -> None:
        pass


async def probe(lags: list[float], stop: asyncio.Event, period: float = 0.005) -> None:
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        start = loop.time()
        await asyncio.sleep(period)
        lags.append(loop.time() - start - period)


async def test_blocking_hooks_overlap_and_the_loop_stays_responsive():
    CALLS.clear()
    engine = RolloutEngine(Talker(), RolloutConfig(max_tokens=4, step_timeout_s=30))
    config = GuidanceConfig(enabled=True, providers=["env_hint"], samples=4)
    guided = GuidedRollouts(config, build_providers(config))
    scoring = RewardPipeline(assessor=EnvProgressAssessor())
    lags: list[float] = []
    stop = asyncio.Event()
    watcher = asyncio.create_task(probe(lags, stop))
    started = time.perf_counter()
    batch = await guided.run_groups(engine, [EpisodeSpec("test-blocking/v0", seed=s) for s in (1, 2)], 4,
                                    score=scoring.score)
    wall = time.perf_counter() - started
    stop.set()
    await watcher

    episodes = [t for g in batch.groups for t in g]
    assert len(episodes) == 16 and all(t.status == "truncated" and t.num_turns == 4 for t in episodes)
    assert batch.metrics["guidance/guided_episodes"] == 8
    assert all(t.rewards is not None and len(t.rewards.progress) == 4 for t in episodes)
    # the concurrent bound: the longest chain of hooks of one unguided episode, of one provider's
    # env session, and of one guided episode, run one after the other
    per_env: dict[int, list[str]] = {}
    for env, hook, _ in CALLS:
        per_env.setdefault(env, []).append(hook)
    chains = list(per_env.values())
    episode_chain = max(len(c) for c in chains if "step" in c) * HOOK_S
    provider_chain = max(len(c) for c in chains if "hint" in c) * HOOK_S
    bound = 2 * episode_chain + provider_chain
    serial = len(CALLS) * HOOK_S
    assert episode_chain == (1 + 1 + 4 * 2 + 1) * HOOK_S  # setup, progress, 4 x (step, progress), close
    assert wall < 2 * bound, (wall, bound, serial)
    assert max(lags) < 0.05, f"the event loop lagged {max(lags) * 1000:.0f} ms"
    assert all(name.startswith("agentgym-env") for _, _, name in CALLS)
