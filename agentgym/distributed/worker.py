"""A rollout worker: a Ray actor with its own env factory, policy and rollout engine.

The driver sends it episodes one call each (every episode of a group goes to the same
worker) and gets finished :class:`~agentgym.rollout.trajectory.Trajectory` s back. The actor
is async: its calls share one event loop, and nothing blocks it, because the engine already
runs blocking environment code on env worker threads (:mod:`agentgym.core.workers`) and
torch work on the torch thread (:mod:`agentgym.torch_thread`).

The policy the worker generates with is its own copy of ``model.policy`` (an hf model with a
few torch threads, or an in-process vLLM engine), kept current by the driver, which pushes
the learner's weights after each step through the policy's ``update_weights`` (the same
weight-sync protocol the trainer uses locally) and says which version they are. With
``distributed.engines > 0`` the worker's policy is instead a client of the vLLM engine actors
(:mod:`agentgym.distributed.engines`), which receive the weights themselves.

Weights travel through Ray's object store as numpy arrays (read without copying by workers on
the driver's node; bf16 as its 16-bit pattern), see :func:`pack_state`.
"""

from __future__ import annotations

import importlib
import os
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np

from agentgym.rollout.engine import EpisodeSpec
from agentgym.rollout.trajectory import Trajectory


def pack_state(state: Mapping[str, Any]) -> dict[str, tuple[str, np.ndarray]]:
    """A state dict as ``{name: (torch dtype name, numpy array)}`` (CPU copies; bf16 as uint16 bits)."""
    import torch

    packed = {}
    for name, tensor in state.items():
        t = tensor.detach().to("cpu").contiguous()
        dtype = str(t.dtype).removeprefix("torch.")
        if t.dtype == torch.bfloat16:
            t = t.view(torch.int16)
        packed[name] = (dtype, t.numpy())
    return packed


def unpack_state(packed: Mapping[str, tuple[str, np.ndarray]]) -> dict[str, Any]:
    """The inverse of :func:`pack_state`; tensors share the arrays' memory (read-only in the object store)."""
    import torch

    state = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # read-only arrays: the policy copies them in
        for name, (dtype, array) in packed.items():
            t = torch.from_numpy(array)
            state[name] = t.view(getattr(torch, dtype)) if dtype == "bfloat16" else t
    return state


def call_setup(targets: list[str]) -> None:
    """Run ``module:function`` s (e.g. registering environments) in this process."""
    for target in targets:
        module, _, attr = target.partition(":")
        fn = getattr(importlib.import_module(module), attr)
        fn()


class PolicyHost:
    """What every actor that holds a policy answers to after a learner step."""

    policy: Any

    async def load_weights(self, packed: Mapping[str, Any], version: int) -> int:
        """The learner's weights of policy ``version`` (packed by :func:`pack_state`), through the
        policy's in-memory path (the Ray object store carries them; no GPU transfer group)."""
        await self.policy.update_weights(unpack_state(packed))
        self.policy.version = version
        return version

    async def set_version(self, version: int) -> int:
        """The policy generates with the weights of ``version`` already (they reached it another way)."""
        self.policy.version = version
        return version


class RolloutWorker(PolicyHost):
    """The actor class (made a Ray actor by :class:`~agentgym.distributed.rollouts.RayRolloutEngine`)."""

    def __init__(self, config: dict[str, Any], index: int, engines: list[Any] | None = None):
        from agentgym.malloc import limit_malloc_growth
        from agentgym.train.config import TrainConfig

        limit_malloc_growth()
        self.config = TrainConfig.model_validate(config)
        dist = self.config.distributed
        assert dist is not None
        import torch

        torch.set_num_threads(dist.worker_torch_threads)
        call_setup(dist.worker_setup)
        self.index = index
        self.policy = self._policy(engines)
        from agentgym.core.factory import env_factory
        from agentgym.rollout.engine import RolloutEngine

        self.factory = env_factory(self.config.env_factory)
        overrides = {"max_concurrent_episodes": dist.worker_episodes} if dist.worker_episodes else {}
        self.engine = RolloutEngine(self.policy, self.config.rollout.engine_config(**overrides), factory=self.factory)

    def _policy(self, engines: list[Any] | None) -> Any:
        if engines:
            from agentgym.distributed.engines import EngineClientPolicy
            from agentgym.train.parallel import model_folder

            return EngineClientPolicy(engines, model_folder(self.config.model.policy), name=self.config.model.policy)
        from agentgym.policy import load_policy

        kwargs = dict(self.config.model.policy_kwargs)
        if self.config.model.policy.startswith("vllm:"):
            kwargs.setdefault("sleep_mode", False)  # nothing else uses the worker's GPU
        return load_policy(self.config.model.policy, **kwargs)

    async def ready(self) -> dict[str, Any]:
        """Who this worker is (also the driver's health check)."""
        return {"index": self.index, "pid": os.getpid(), "policy": getattr(self.policy, "name", ""),
                "version": getattr(self.policy, "version", 0)}

    async def run_episode(self, spec: EpisodeSpec, version: int) -> Trajectory:
        """One episode with this worker's policy; trajectories record ``version`` at their start."""
        self.engine.set_policy_version(version)
        return await self.engine.run_episode(spec)

    async def close(self) -> None:
        await self.engine.aclose()
        await self.factory.aclose()
        await self.policy.close()
