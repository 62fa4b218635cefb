"""Rollout workers on their own: weights through the object store, blocking env calls off the actor's loop."""

from __future__ import annotations

import asyncio
import time

import pytest
import torch

from agentgym.distributed.worker import pack_state, unpack_state
from agentgym.rollout.engine import EpisodeSpec
from agentgym.train.config import load_config
from tests.distributed.envs import register


def test_state_round_trips_through_numpy_bf16_included():
    state = {"w": torch.randn(3, 4), "b": torch.randn(5).to(torch.bfloat16), "i": torch.arange(3)}
    packed = pack_state(state)
    assert packed["b"][0] == "bfloat16" and packed["b"][1].dtype.itemsize == 2
    back = unpack_state(packed)
    for name, tensor in state.items():
        assert back[name].dtype == tensor.dtype and torch.equal(back[name], tensor)


def test_config_section_validates_without_ray():
    from agentgym.errors import UserError

    cfg = load_config(None, ["envs=[{id: maze/v0}]", "distributed={rollout_workers: 3, worker_cpus: 0.25}"])
    assert cfg.distributed.rollout_workers == 3 and cfg.distributed.backend == "ray"
    assert load_config(None, ["envs=[{id: maze/v0}]"]).distributed is None
    with pytest.raises(UserError, match="distributed.rollout_workers"):
        load_config(None, ["envs=[{id: maze/v0}]", "distributed={rollout_workers: 0}"])
    with pytest.raises(UserError, match="distributed.backend"):
        load_config(None, ["envs=[{id: maze/v0}]", "distributed={backend: dask}"])


def test_bad_worker_setup_is_one_clear_error(tmp_path):
    from agentgym.distributed.driver import open_distributed
    from agentgym.errors import UserError

    cfg = load_config(None, ["envs=[{id: maze/v0}]", "distributed={worker_setup: ['no_such_module:register']}"])
    with pytest.raises(UserError, match="worker_setup"):
        open_distributed(cfg)


@pytest.mark.slow
def test_blocking_env_steps_run_off_the_workers_event_loop(ray_cluster, tiny_folder):
    """8 episodes x 2 steps of 0.5 s blocking sleep on one worker: ~1 s when they overlap, 8 s if they did not."""
    from agentgym.distributed.rollouts import RayRolloutEngine
    from agentgym.policy.hf import HFPolicy

    register()
    cfg = load_config(None, [
        f"model.policy=hf:{tiny_folder}", "envs=[{id: slow-letter/v0}]", "rollout.max_tokens=3",
        "distributed={rollout_workers: 1, worker_setup: ['tests.distributed.envs:register']}",
    ])

    async def scenario():
        engine = RayRolloutEngine(HFPolicy(str(tiny_folder)), cfg)
        await engine.start()
        try:
            spec = EpisodeSpec("slow-letter/v0", env_kwargs={"delay_s": 0.5}, seed=3, group_id="g")
            await engine.run_groups([spec], 2)  # warm-up: the first generation loads kernels
            t = time.perf_counter()
            (group,) = await engine.run_groups([spec], 8)
            return time.perf_counter() - t, group, engine.slots[0].generation
        finally:
            await engine.aclose()

    wall, group, generation = asyncio.run(scenario())
    assert len(group) == 8 and all(t.status == "completed" and t.num_turns == 2 for t in group)
    assert generation == 0
    assert wall < 4.0, f"8 episodes took {wall:.1f} s: blocking steps ran one at a time"
