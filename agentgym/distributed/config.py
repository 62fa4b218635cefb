"""The ``distributed:`` section of a training config: where rollouts (and vLLM engines) run.

``distributed: null`` (the default) runs everything in this process. With
``{backend: ray, rollout_workers: N}`` the same config runs its rollouts on N Ray actors, on
a local cluster this process starts (``address: null``) or on an existing one
(``address: auto`` or ``ray://HOST:PORT``). Kept free of Ray imports: a config validates
without Ray installed.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class DistributedConfig(BaseModel):
    """Rollout workers on Ray (docs/distributed.md)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    backend: Literal["ray"] = "ray"
    #: None: start a local cluster here (stopped when the run ends); "auto" or "ray://HOST:PORT": join one.
    address: str | None = None
    #: Rollout worker actors; each owns an env factory and runs its share of the step's groups.
    rollout_workers: int = Field(2, ge=1)
    #: Ray CPUs each worker reserves: 0 (the default) lets a small cluster hold many workers; their
    #: environments and generation still use the node's cores.
    worker_cpus: float = Field(0.0, ge=0)
    #: GPUs each worker reserves (for a worker whose own policy copy should generate on a GPU).
    worker_gpus: float = Field(0.0, ge=0)
    #: Torch threads in each worker (its own policy copy generates there).
    worker_torch_threads: int = Field(1, ge=1)
    #: Episodes in flight per worker (its engine's ``max_concurrent_episodes``); None: the rollout section's.
    worker_episodes: int | None = Field(None, ge=1)
    #: ``module:function`` s each worker calls at start, e.g. to register environments that are not
    #: installed through the ``agentgym.envs`` entry points.
    worker_setup: list[str] = Field(default_factory=list)
    #: Restarts of dead workers before the run gives up.
    max_worker_restarts: int = Field(20, ge=0)
    #: Object store of a local cluster, in MiB (Ray's default takes 30% of memory).
    object_store_mb: int = Field(1024, ge=64)
    #: CPUs a local cluster advertises (None: the machine's count).
    num_cpus: int | None = Field(None, ge=1)
    #: vLLM engines as Ray actors (each on ``engine_gpus`` GPUs in a placement group); the workers
    #: send their requests there. 0: each worker generates with its own copy of the policy.
    engines: int = Field(0, ge=0)
    engine_gpus: int = Field(1, ge=1)
    #: Ranks of the learner (PyTorch FSDP2, data parallel): the driver is rank 0 and Ray starts the
    #: others as actors, one GPU each where there are GPUs. 1: the driver's learner alone. (Under
    #: torchrun the ranks come from torchrun instead.)
    learner_ranks: int = Field(1, ge=1)
