"""Evaluation during training: held-out success (with a Wilson interval) at the start, every
``eval.every`` steps and at the end, through the eval package on the rollout policy."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from agentgym.core.factory import EnvFactory
from agentgym.eval.metrics import wilson
from agentgym.eval.runner import aevaluate
from agentgym.eval.suite import Suite, SuiteEnv, load_suite
from agentgym.policy.base import Policy
from agentgym.rollout.engine import RolloutEngine
from agentgym.train.config import TrainConfig
from agentgym.train.sampling import env_kwargs


def eval_suite(config: TrainConfig) -> Suite:
    """The suite ``eval.suite`` names, else ``eval.envs`` (or the training envs) on ``eval.split``."""
    cfg = config.eval
    if cfg.suite:
        return load_suite(cfg.suite)
    entries = cfg.envs or config.envs
    total_w = sum(e.weight for e in entries)
    envs = [
        SuiteEnv(id=e.id, name=e.label, kwargs=env_kwargs(e, config.rollout.max_turns, None), split=cfg.split,
                 num_tasks=max(1, round(cfg.episodes * e.weight / total_w)), samples=1, seed=cfg.seed)
        for e in entries
    ]
    return Suite(name=f"{config.name}-eval", envs=envs)


async def evaluate(config: TrainConfig, policy: Policy, factory: EnvFactory, *, run_dir: Path, step: int,
                   tag: str, version: int) -> dict[str, Any]:
    """One evaluation of ``policy`` at ``step``; the record logged under ``kind: eval``."""
    cfg = config.eval
    engine = RolloutEngine(policy, config.rollout.engine_config(temperature=cfg.temperature), factory=factory)
    t = time.perf_counter()
    try:
        result = await aevaluate(
            eval_suite(config), policy, engine=engine, policy_version=version,
            out_dir=run_dir / "eval" / f"{tag}-step-{step:06d}", progress=False,
            temperature=cfg.temperature, max_tokens=config.rollout.max_tokens,
        )
    finally:
        await engine.aclose()
    trajs = result.trajectories
    wins = sum(t.success for t in trajs)
    lo, hi = wilson(wins, len(trajs))
    return {
        "tag": tag,
        "success_rate": wins / max(1, len(trajs)),
        "success_ci_low": lo,
        "success_ci_high": hi,
        "episodes": len(trajs),
        "reward_mean": float(np.mean([t.reward for t in trajs])) if trajs else 0.0,
        "time_s": time.perf_counter() - t,
    }
