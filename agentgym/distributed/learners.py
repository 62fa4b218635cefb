"""Learner ranks as Ray actors: the same FSDP2 learner torchrun would start, launched from the driver.

With ``distributed.learner_ranks: N`` the driver is rank 0 and starts N-1 :class:`LearnerRank`
actors (one GPU each in a placement group where there are GPUs, ``num_cpus=0`` otherwise);
each joins the process group at the driver's address and runs
:func:`agentgym.train.parallel.run_follower` until rank 0 says stop.
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any

from agentgym.train.parallel import LearnerGroup, init_group, run_follower


class LearnerRank:
    """One non-zero learner rank (made a Ray actor by :func:`start_learner_ranks`)."""

    def __init__(self, config: dict[str, Any], rank: int, world_size: int, init_method: str):
        from agentgym.train.config import TrainConfig

        self.config = TrainConfig.model_validate(config)
        self.rank, self.world_size, self.init_method = rank, world_size, init_method

    def run(self) -> int:
        """Join the group, follow rank 0 until it stops the run; returns the rank."""
        group = init_group(self.rank, self.world_size, 0, self.init_method)  # Ray shows each actor its own GPU
        run_follower(self.config, group)
        return self.rank


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("", 0))
        return s.getsockname()[1]


async def start_learner_ranks(config: Any) -> tuple[LearnerGroup, list[Any], list[Any]]:
    """Start ranks 1..N-1 as actors and join as rank 0; (this process's group, the actors, their runs)."""
    import ray
    import torch

    world = config.distributed.learner_ranks
    address = f"tcp://{ray.util.get_node_ip_address()}:{_free_port()}"
    options: dict[str, Any] = {"num_cpus": 0}
    if torch.cuda.is_available():
        from ray.util.placement_group import placement_group
        from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

        group = placement_group([{"GPU": 1, "CPU": 1}] * (world - 1), strategy="PACK")
        await group.ready()
        options = {"num_gpus": 1, "num_cpus": 1}
    actor_class = ray.remote(LearnerRank)
    actors, runs = [], []
    for rank in range(1, world):
        opts = dict(options)
        if torch.cuda.is_available():
            opts["scheduling_strategy"] = PlacementGroupSchedulingStrategy(group, placement_group_bundle_index=rank - 1)
        actor = actor_class.options(**opts).remote(config.model_dump(mode="json"), rank, world, address)
        actors.append(actor)
        runs.append(actor.run.remote())
    mine = await asyncio.to_thread(init_group, 0, world, 0, address)
    return mine, actors, runs
