"""Where the learner runs and in which precision: the device, the weights' dtype, autocast, master weights.

AdamW's update at a typical RL learning rate (1e-6 .. 3e-5) is far below a bf16 weight's
rounding step (2^-8 of its magnitude), so an optimizer that writes bf16 weights in place
loses most updates: they round back to the old value. Two set-ups keep them, as TRL, verl
and SkyRL do:

* **fp32 weights, bf16 autocast** — the learner's model is fp32 (the master weights); on
  CUDA the forward and backward run under ``torch.autocast(bfloat16)``. The default on CUDA.
* **bf16 weights, fp32 master copy** — the model stays bf16 (half the memory; an hf rollout
  policy that shares it generates in bf16), gradients are accumulated into fp32 copies of
  the trainable weights, AdamW steps on those, and the model receives their rounding after
  every step (:class:`MasterWeights`). Chosen on CUDA when an hf rollout policy shares the
  learner's weights, or by ``model.dtype: bfloat16``.

:func:`resolve` turns ``model.device`` / ``model.dtype`` / ``model.autocast`` (each may be
``auto``) into a :class:`Precision`; the trainer writes the resolved values into the run's
saved ``config.yaml`` and logs :meth:`Precision.describe`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from agentgym.errors import UserError


@dataclass(frozen=True)
class Precision:
    """The learner's resolved set-up (see the module docstring)."""

    device: str
    #: "float32" or "bfloat16": the dtype of the model the learner trains.
    dtype: str
    #: "bfloat16" or "none": the compute dtype of fp32 weights under ``torch.autocast``.
    autocast: str

    @property
    def master_weights(self) -> bool:
        """bf16 weights always train through an fp32 master copy."""
        return self.dtype != "float32"

    @property
    def autocast_dtype(self) -> Any:
        import torch

        return torch.bfloat16 if self.autocast == "bfloat16" else None

    def describe(self) -> str:
        """One line for the log, e.g. ``cuda:0, fp32 master weights, bf16 autocast``."""
        if self.master_weights:
            return f"{self.device}, {self.dtype} weights with an fp32 master copy in the optimizer"
        compute = "bf16 autocast" if self.autocast == "bfloat16" else "fp32 compute"
        return f"{self.device}, fp32 master weights, {compute}"


def resolve(device: str = "auto", dtype: str = "auto", autocast: str = "auto", *,
            shared_device: str | None = None) -> Precision:
    """Resolve the ``auto`` s of ``model.device`` / ``model.dtype`` / ``model.autocast``.

    ``shared_device``: the device of an hf rollout policy whose module the learner trains
    itself (``pipeline.share_weights``); the learner must run there, and on CUDA it keeps the
    policy's bf16 weights with an fp32 master copy unless ``dtype`` says otherwise.
    """
    import torch

    cuda = torch.cuda.is_available()
    if shared_device is not None:
        if device not in ("auto", shared_device) and not (device == "cuda" and shared_device.startswith("cuda")):
            raise UserError(f"model.device={device} but the rollout policy whose weights the learner shares is on "
                            f"{shared_device}; set model.device=auto or pipeline.share_weights=false.")
        device = shared_device
    elif device == "auto":
        device = "cuda" if cuda else "cpu"
    if device.startswith("cuda"):
        if not cuda:
            raise UserError(f"model.device={device} but this machine has no CUDA device; use model.device=auto or cpu.")
        device = _indexed(device)
    elif device != "cpu":
        raise UserError(f"model.device={device!r}: use auto, cpu, cuda or cuda:N.")
    on_cuda = device.startswith("cuda")
    bf16_ok = on_cuda and torch.cuda.is_bf16_supported()
    if dtype == "auto":
        dtype = "bfloat16" if (shared_device is not None and bf16_ok) else "float32"
    if autocast == "auto":
        autocast = "bfloat16" if (bf16_ok and dtype == "float32") else "none"
    if autocast == "bfloat16" and dtype != "float32":
        autocast = "none"  # bf16 weights already compute in bf16
    if autocast == "bfloat16" and not on_cuda:
        raise UserError("model.autocast=bfloat16 is for CUDA; on the CPU the learner computes in fp32 "
                        "(set model.autocast=auto).")
    return Precision(device, dtype, autocast)


def _indexed(device: str) -> str:
    """``cuda`` -> ``cuda:<current device>`` so the saved config names one GPU."""
    import torch

    if device == "cuda":
        return f"cuda:{torch.cuda.current_device()}"
    return device


class MasterWeights:
    """fp32 copies of low-precision trainable parameters; the optimizer steps on the copies.

    After each backward pass :meth:`accumulate` adds the model's gradients into the copies'
    fp32 gradients (so micro-batches accumulate in fp32) and frees the model's; after the
    optimizer step :meth:`publish` writes the copies, rounded, into the model.
    """

    def __init__(self, params: Iterable[Any]):
        import torch

        self.params = [p for p in params if p.requires_grad]
        self.master = [torch.nn.Parameter(p.detach().float().clone()) for p in self.params]

    def accumulate(self) -> None:
        """Model gradients -> fp32 master gradients (summed), model gradients freed."""
        for p, m in zip(self.params, self.master):
            if p.grad is None:
                continue
            g = p.grad.float()
            if m.grad is None:
                m.grad = g if g.data_ptr() != p.grad.data_ptr() else g.clone()
            else:
                m.grad.add_(g)
            p.grad = None

    def publish(self) -> None:
        """Master weights -> model weights (rounded to the model's dtype)."""
        import torch

        with torch.no_grad():
            for p, m in zip(self.params, self.master):
                p.copy_(m)

    def load_from_model(self) -> None:
        """Model weights -> master weights (after loading the model from elsewhere)."""
        import torch

        with torch.no_grad():
            for p, m in zip(self.params, self.master):
                m.copy_(p)
