"""Task sampling: which environments and tasks the groups of a learner step play.

The tasks of step ``s`` are a pure function of ``(seed, s)``: environments are drawn by
weight and each group gets its own reset seed (every episode of a group plays the same
task). So the data cursor is the step, and a resumed run sees the tasks the original would
have.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from agentgym.rollout.engine import EpisodeSpec
from agentgym.train.config import EnvEntry, TrainConfig


def episode_specs(config: TrainConfig, step: int) -> list[EpisodeSpec]:
    """The groups of step ``step`` (one spec per group)."""
    rng = np.random.default_rng([config.seed, 7919, step])
    weights = np.asarray([e.weight for e in config.envs], dtype=np.float64)
    picks = rng.choice(len(config.envs), size=config.rollout.groups_per_step, p=weights / weights.sum())
    specs = []
    for g, idx in enumerate(picks):
        entry = config.envs[int(idx)]
        specs.append(
            EpisodeSpec(
                entry.id,
                env_kwargs=env_kwargs(entry, config.rollout.max_turns, "train"),
                seed=int(rng.integers(2**31 - 1)),
                group_id=f"s{step}-g{g}",
                metadata={"env": entry.label, "step": step},
            )
        )
    return specs


def env_kwargs(entry: EnvEntry, max_turns: int | None, split: str | None) -> dict[str, Any]:
    """An entry's environment arguments, with the run's split and turn limit unless it sets them."""
    kwargs = dict(entry.kwargs)
    if split is not None:
        kwargs.setdefault("split", split)
    if max_turns is not None:
        kwargs.setdefault("max_turns", max_turns)
    return kwargs
