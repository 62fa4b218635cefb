"""One GRPO optimisation step on a causal language model.

The learner owns the trainable model, AdamW, the learning-rate schedule and an
optional frozen reference model. :meth:`Learner.step` takes :class:`Sample` s (exact
sampled tokens, loss masks, behaviour log-probs, token advantages), packs them into
micro-batches by a padded-token budget (a prompt that several samples share run once:
:mod:`agentgym.train.packing`), and for each one runs the transformer body,
keeps only the hidden states that predict sampled tokens, and computes their log-probs
chunk by chunk (:func:`chunked_logprobs`) before the clipped loss. Gradients accumulate
over micro-batches with per-token weights fixed for the whole step, so the result does
not depend on how the step was split.

Precision (:mod:`agentgym.train.precision`): fp32 weights train as they are, under bf16
autocast on CUDA; low-precision (bf16) weights train through an fp32 master copy that the
optimizer steps on, since AdamW's small updates round away on bf16 weights.
"""

from __future__ import annotations

import contextlib
import math
import time
from pathlib import Path
from typing import Any, Sequence

import torch
from torch import nn

from agentgym.malloc import release_free_memory
from agentgym.torch_thread import call_on_torch_thread
from agentgym.train.advantages import Sample
from agentgym.train.config import AlgorithmConfig, TrainerConfig
from agentgym.train.losses import LossStats, chunked_logprobs, logprobs_from_logits, ppo_loss, token_weights
from agentgym.train.packing import MicroBatch, pack_micro_batches
from agentgym.train.precision import MasterWeights


def unwrap(model: nn.Module) -> nn.Module:
    """The transformers model inside a peft wrapper (LoRA layers stay injected)."""
    get_base = getattr(model, "get_base_model", None)
    return get_base() if callable(get_base) else model


def split_causal_lm(model: nn.Module) -> tuple[nn.Module, nn.Module] | None:
    """(transformer body returning hidden states, output projection), or None if logits are post-processed.

    Models whose logits are more than ``lm_head(hidden)`` (soft-capping, logit scales)
    fall back to the model's own forward; log-probs then come from full logits.
    """
    inner = unwrap(model)
    config = getattr(inner, "config", None)
    if config is not None and (
        getattr(config, "final_logit_softcapping", None) or getattr(config, "logit_scale", None) not in (None, 1, 1.0)
    ):
        return None
    head = inner.get_output_embeddings() if hasattr(inner, "get_output_embeddings") else None
    prefix = getattr(inner, "base_model_prefix", "model")
    body = getattr(inner, prefix, None)
    if head is None or body is None or not isinstance(getattr(head, "weight", None), torch.Tensor):
        return None
    if type(head) is not nn.Linear:  # e.g. a LoRA-wrapped head: keep the exact forward
        return None
    return body, head


def prefix_cache_shareable(module: nn.Module) -> bool:
    """Whether ``module`` (a causal LM or its body) returns, in its current mode, a key/value cache of
    full-attention layers that continuations can extend (not so under gradient checkpointing, which
    turns the cache off, nor for sliding-window or recurrent layers)."""
    try:
        from transformers.cache_utils import DynamicCache, DynamicLayer
    except ImportError:
        return False
    device = next(module.parameters()).device
    with torch.no_grad():
        out = module(input_ids=torch.zeros((1, 2), dtype=torch.long, device=device), use_cache=True)
    cache = getattr(out, "past_key_values", None)
    layers = getattr(cache, "layers", None)
    return type(cache) is DynamicCache and bool(layers) and all(type(layer) is DynamicLayer for layer in layers)


def _after_prefix(module: nn.Module, prefix_ids: torch.Tensor, attn: torch.Tensor) -> dict[str, Any]:
    """Run the shared prompt once; the keyword arguments with which ``module`` continues it in every row.

    The rows attend to the prompt's keys and values (expanded, not copied), so the backward
    pass sums each row's gradient into the prompt's single forward.
    """
    from transformers.cache_utils import DynamicCache

    out = module(input_ids=prefix_ids, use_cache=True)
    rows, width = attn.shape
    length = prefix_ids.shape[1]
    shared = DynamicCache(ddp_cache_data=[
        (layer.keys.expand(rows, -1, -1, -1), layer.values.expand(rows, -1, -1, -1))
        for layer in out.past_key_values.layers])
    positions = torch.arange(length, length + width, device=attn.device).expand(rows, width)
    return {"past_key_values": shared, "use_cache": True, "position_ids": positions,
            "full_attention_mask": torch.cat([attn.new_ones((rows, length)), attn], dim=1)}


def _lr_lambda(schedule: str, warmup: int, total: int):
    def fn(step: int) -> float:
        if warmup and step < warmup:
            return (step + 1) / warmup
        if schedule == "constant":
            return 1.0
        progress = min(1.0, (step - warmup) / max(1, total - warmup))
        if schedule == "linear":
            return max(0.0, 1.0 - progress)
        return 0.5 * (1.0 + math.cos(math.pi * progress))

    return fn


class Learner:
    """Holds the trainable model, optimizer and schedule; :meth:`step` does one GRPO update."""

    def __init__(
        self,
        model: nn.Module,
        trainer: TrainerConfig,
        algorithm: AlgorithmConfig,
        *,
        ref_model: nn.Module | None = None,
        temperature: float = 1.0,
        norm_tokens: int | None = None,
        pad_id: int = 0,
        autocast: torch.dtype | None | str = "auto",
        master_weights: bool | None = None,
    ):
        """``autocast``: the compute dtype under ``torch.autocast`` (None: off; "auto": bf16 on
        CUDA for fp32 weights). ``master_weights``: step an fp32 copy of the trainable weights
        (None: whenever one of them is not fp32; False only to show what pure bf16 AdamW loses)."""
        self.model = model
        self.trainer = trainer
        self.algorithm = algorithm
        self.ref_model = ref_model
        self.temperature = temperature
        self.norm_tokens = norm_tokens
        self.pad_id = pad_id
        self.device = next(model.parameters()).device
        params = [p for p in model.parameters() if p.requires_grad]
        if not params:
            raise ValueError("the model has no trainable parameters")
        all_fp32 = all(p.dtype == torch.float32 for p in params)
        if autocast == "auto":
            autocast = torch.bfloat16 if self.device.type == "cuda" and all_fp32 else None
        self.autocast_dtype = autocast
        if master_weights is None:
            master_weights = not all_fp32
        self.master = MasterWeights(params) if master_weights else None
        self.parts = split_causal_lm(model)
        self.ref_parts = split_causal_lm(ref_model) if ref_model is not None else None
        self.optimizer = torch.optim.AdamW(
            self.master.master if self.master is not None else params,
            lr=trainer.lr,
            betas=tuple(trainer.betas),
            eps=trainer.adam_eps,
            weight_decay=trainer.weight_decay,
            # One fused kernel per step (CPU and CUDA): faster than foreach, and no temporary
            # copies of every parameter (foreach held ~2 extra model-sized buffers at its peak).
            fused=True,
        )
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, _lr_lambda(trainer.schedule, trainer.warmup_steps, trainer.steps)
        )
        self.steps_done = 0
        self._prefix_sharing: bool | None = None

    # ----------------------------------------------------------------- log-probs
    def _logprobs(self, parts, model: nn.Module, mb: MicroBatch, with_entropy: bool):
        ids = mb.input_ids.to(self.device)
        attn = mb.attention_mask.to(self.device)
        select = mb.select.to(self.device)
        targets = mb.targets.to(self.device)
        autocast = self.autocast_dtype
        with torch.autocast(self.device.type, dtype=autocast or torch.bfloat16, enabled=autocast is not None):
            extra = {"use_cache": False}
            if mb.prefix_ids is not None:
                extra = _after_prefix(model if parts is None else parts[0], mb.prefix_ids.to(self.device), attn)
                attn = extra.pop("full_attention_mask")
            if parts is None:
                logits = model(input_ids=ids, attention_mask=attn, **extra).logits[:, :-1][select]
                return logprobs_from_logits(logits, targets, self.temperature)
            body, head = parts
            out = body(input_ids=ids, attention_mask=attn, **extra)
            hidden = out[0] if isinstance(out, tuple) else out.last_hidden_state
            hidden = hidden[:, :-1][select]
        return chunked_logprobs(
            hidden,
            head.weight,
            targets,
            bias=head.bias,
            chunk=self.trainer.logprob_chunk,
            temperature=self.temperature,
            with_entropy=with_entropy,
        )

    # ----------------------------------------------------------------- one step
    def step(self, samples: Sequence[Sample], update_lock: Any = None) -> dict[str, Any]:
        """One learner step (``algorithm.epochs`` optimizer updates) on ``samples``.

        ``update_lock`` (a ``threading.Lock``) is held while the optimizer writes the
        weights, for a rollout policy that generates with this very module.

        On CPU it runs on the process's torch thread whichever thread calls it: a step on
        another thread gives that thread a second OpenMP team, and with more OpenMP threads
        than cores every operation of both generation and training pays a sleep and wake
        (:mod:`agentgym.torch_thread`). So a caller on another thread must not hold
        ``update_lock`` meanwhile: the step would wait for it forever.
        """
        lengths = [s.num_sampled for s in samples]
        weights = token_weights(lengths, self.algorithm.aggregation, self.norm_tokens)
        return self.step_weighted(samples, weights, update_lock)

    def step_weighted(self, samples: Sequence[Sample], weights: Sequence[float], update_lock: Any = None
                      ) -> dict[str, Any]:
        """:meth:`step` with each sample's per-token loss weight given (a data-parallel rank gets its share
        of a step whose weights were computed over the whole batch); on the torch thread too.

        On a GPU the step runs on the calling thread: the current CUDA device is per thread
        (torchrun's ranks set theirs on the main thread), and OpenMP teams do not matter there."""
        if self.device.type == "cuda":
            return self._step_weighted(samples, weights, update_lock)
        return call_on_torch_thread(self._step_weighted, samples, weights, update_lock)

    def _step_weighted(self, samples: Sequence[Sample], weights: Sequence[float], update_lock: Any
                       ) -> dict[str, Any]:
        t0 = time.perf_counter()
        release_free_memory()  # what generation freed goes back before the step's activations arrive
        lengths = [s.num_sampled for s in samples]
        self.model.train()
        batches = self._align(pack_micro_batches(samples, weights, self.trainer.micro_batch_tokens, self.pad_id,
                                                 share_prefixes=self._shares_prefixes()))
        ref_logps = self._reference_logprobs(batches) if self.ref_model is not None else None
        stats = LossStats()
        loss_total = 0.0
        grad_norm = 0.0
        fwd_s = bwd_s = 0.0
        for epoch in range(self.algorithm.epochs):
            self.optimizer.zero_grad(set_to_none=True)
            for i, mb in enumerate(batches):
                self._gradient_sync(i == len(batches) - 1)
                t = time.perf_counter()
                logp, entropy = self._logprobs(self.parts, self.model, mb, with_entropy=epoch == 0)
                loss, mb_stats = ppo_loss(
                    logp,
                    mb.behaviour.to(self.device),
                    mb.advantages.to(self.device),
                    mb.weights.to(self.device),
                    clip_low=self.algorithm.clip_low,
                    clip_high=self.algorithm.clip_high,
                    ref_logp=ref_logps[i] if ref_logps is not None else None,
                    kl_coef=self.algorithm.kl_coef,
                    entropy=entropy,
                )
                t1 = time.perf_counter()
                (loss * self.loss_scale if self.loss_scale != 1 else loss).backward()
                if self.master is not None:
                    self.master.accumulate()  # fp32 accumulation across micro-batches
                fwd_s += t1 - t
                bwd_s += time.perf_counter() - t1
                if epoch == 0 and mb.padded_tokens:  # (a data-parallel rank's idle filler has none)
                    stats.add(mb_stats)
                    loss_total += float(loss.detach())
            grad_norm = self._clip()
            if math.isfinite(grad_norm):
                lock = update_lock if update_lock is not None else contextlib.nullcontext()
                if self.master is not None:
                    self.optimizer.step()  # writes the fp32 copy only: generation may go on meanwhile
                    with lock:
                        self.master.publish()
                else:
                    with lock:
                        self.optimizer.step()
            self.optimizer.zero_grad(set_to_none=True)
        lr = self.scheduler.get_last_lr()[0]
        self.scheduler.step()
        self.steps_done += 1
        loss_total, trained, padded, stats = self._reduce(
            loss_total, sum(lengths), sum(mb.padded_tokens for mb in batches), stats)
        elapsed = time.perf_counter() - t0
        out = {
            "loss": loss_total,
            "grad_norm": grad_norm,
            "lr": lr,
            "tokens/trained": trained,
            "tokens/padded": padded,
            "micro_batches": len(batches),
            "time/train_s": elapsed,
            "time/forward_s": fwd_s,
            "time/backward_s": bwd_s,
            "tokens/train_per_s": trained / elapsed if elapsed > 0 else 0.0,
            "skipped_update": not math.isfinite(grad_norm),
        }
        out.update(stats.summary())
        if ref_logps is None:
            out.pop("kl")
        release_free_memory()  # the step's activations and gradients are freed: give the pages back
        return out

    def _shares_prefixes(self) -> bool:
        """Whether micro-batches run a prompt shared by several samples once (asked the model on the first
        step, in training mode: :func:`prefix_cache_shareable`)."""
        if self._prefix_sharing is None:
            modules = [(self.parts[0] if self.parts else self.model)]
            if self.ref_model is not None:
                modules.append(self.ref_parts[0] if self.ref_parts else self.ref_model)
            self._prefix_sharing = self.trainer.share_prefixes and all(prefix_cache_shareable(m) for m in modules)
        return self._prefix_sharing

    # ----------------------------------------------------------------- hooks of a data-parallel learner
    #: The loss is multiplied by it before backward (ranks whose gradients are averaged sum them instead).
    loss_scale = 1

    def _align(self, batches: list[MicroBatch]) -> list[MicroBatch]:
        """The micro-batches to run (every rank must run as many)."""
        return batches

    def _gradient_sync(self, last: bool) -> None:
        """Before each micro-batch: whether its backward reduces gradients across ranks."""

    def _clip(self) -> float:
        return float(torch.nn.utils.clip_grad_norm_(self._optimized(), self.trainer.max_grad_norm))

    def _reduce(self, loss: float, trained: int, padded: int, stats: LossStats) -> tuple[float, int, int, LossStats]:
        """The step's figures over every rank."""
        return loss, trained, padded, stats

    def _optimized(self) -> list[torch.Tensor]:
        """The tensors AdamW steps on: the fp32 master copy, or the model's trainable weights."""
        if self.master is not None:
            return self.master.master
        return [p for p in self.model.parameters() if p.requires_grad]

    @torch.no_grad()
    def _reference_logprobs(self, batches: list[MicroBatch]) -> list[torch.Tensor]:
        self.ref_model.eval()
        return [self._logprobs(self.ref_parts, self.ref_model, mb, with_entropy=False)[0] for mb in batches]

    # ----------------------------------------------------------------- state
    def trainable_state(self) -> dict[str, torch.Tensor]:
        """Trainable parameters by name (tied weights appear once); the fp32 master copy when there is one."""
        named = [(n, p) for n, p in self.model.named_parameters() if p.requires_grad]
        if self.master is not None:
            return {n: m.detach().contiguous() for (n, _), m in zip(named, self.master.master)}
        return {n: p.detach().contiguous() for n, p in named}

    def checkpoint_files(self) -> dict[str, Any]:
        """Writers for the checkpoint: trainable weights and optimizer + schedule state."""
        from safetensors.torch import save_file

        def write_model(path: Path) -> None:
            save_file({k: v.cpu() for k, v in self.trainable_state().items()}, str(path))

        def write_optim(path: Path) -> None:
            torch.save(
                {
                    "optimizer": self.optimizer.state_dict(),
                    "scheduler": self.scheduler.state_dict(),
                    "steps_done": self.steps_done,
                },
                path,
            )

        return {"model.safetensors": write_model, "optimizer.pt": write_optim}

    def load_checkpoint(self, folder: str | Path) -> None:
        """Restore weights, optimizer and schedule from a checkpoint folder (on the torch thread)."""
        call_on_torch_thread(self._load_checkpoint, folder)

    def _load_checkpoint(self, folder: str | Path) -> None:
        from safetensors.torch import load_file

        folder = Path(folder)
        tensors = load_file(str(folder / "model.safetensors"))
        params = dict(self.model.named_parameters())
        missing = [n for n, p in params.items() if p.requires_grad and n not in tensors]
        if missing:
            raise ValueError(f"checkpoint {folder} lacks parameters such as {missing[0]}")
        with torch.no_grad():
            for name, tensor in tensors.items():
                params[name].copy_(tensor.to(params[name].device, params[name].dtype))
        if self.master is not None:  # the saved fp32 values, not their rounding in the model
            names = [n for n, p in self.model.named_parameters() if p.requires_grad]
            with torch.no_grad():
                for name, m in zip(names, self.master.master):
                    m.copy_(tensors[name].to(m.device, m.dtype))
        state = torch.load(folder / "optimizer.pt", map_location=self.device, weights_only=True)
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.steps_done = int(state.get("steps_done", 0))
