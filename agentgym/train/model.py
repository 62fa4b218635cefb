"""Model set-up: the rollout policy, the learner's trainable model, its weight sync, the export.

Where the policy's weights live decides the rest (:meth:`~agentgym.policy.base.
TrainablePolicy.weights`): an hf policy generates with a torch module in this process, so the
learner trains that very module (``pipeline.share_weights``) or a copy of it; a vLLM policy
holds its own copy, so the learner loads the same weights from the model folder with
transformers and pushes its state after each step. The learner runs where ``model.device`` says
(CUDA when present, whatever the sync mode), in the precision :func:`agentgym.train.precision.
resolve` picks from ``model.dtype`` / ``model.autocast``.
"""

from __future__ import annotations

import copy
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agentgym.errors import UserError, require
from agentgym.policy.base import LocalWeights, TrainablePolicy
from agentgym.train.config import TrainConfig
from agentgym.train.precision import Precision, resolve
from agentgym.train.weights import CopySync, PushSync, SharedSync, WeightSync


@dataclass
class ModelSetup:
    """What the trainer holds: the policy, the trainable model, a frozen reference, the sync."""

    policy: TrainablePolicy
    model: Any
    ref_model: Any
    sync: WeightSync
    precision: Precision


def load_rollout_policy(config: TrainConfig) -> TrainablePolicy:
    """The rollout policy ``model.policy`` names; refused unless a learner can train it."""
    from agentgym.policy import load_policy

    policy = load_policy(config.model.policy, **config.model.policy_kwargs)
    if not isinstance(policy, TrainablePolicy):
        raise UserError(f"policy {config.model.policy!r} cannot be trained (its weights are out of reach); "
                        "train an hf: or vllm: policy.")
    return policy


def build_model(config: TrainConfig, policy: TrainablePolicy, *, group: Any = None, sharded: Any = None) -> ModelSetup:
    """The learner's model, reference model and weight sync for ``policy`` (run on the torch thread).

    With a multi-rank learner (``group``, :mod:`agentgym.train.parallel`) the model is ``sharded``
    (its :class:`~agentgym.train.parallel.LogprobModule` root and reference root, built on every
    rank) and the sync copies or pushes the full weights gathered to rank 0.
    """
    import torch

    if group is not None:
        return _sharded_setup(config, policy, group, sharded)
    weights = policy.weights()
    shared = isinstance(weights, LocalWeights) and config.pipeline.share_weights
    shared_device = str(_device_of(weights.module)) if shared else None
    m = config.model
    precision = resolve(m.device, m.dtype, m.autocast, shared_device=shared_device)
    dtype = getattr(torch, precision.dtype)
    if isinstance(weights, LocalWeights):
        model = weights.module if shared else copy.deepcopy(weights.module)
    else:
        model = _load_from_folder(weights.path, dtype)
    model = model.to(device=precision.device, dtype=dtype)
    if config.model.gradient_checkpointing and hasattr(model, "gradient_checkpointing_enable"):
        model.gradient_checkpointing_enable()
    ref_model = copy.deepcopy(model).requires_grad_(False).eval() if config.algorithm.kl_coef > 0 else None
    if config.model.lora is not None:
        model = apply_lora(model, config)
    else:
        model.requires_grad_(True)
    if not isinstance(weights, LocalWeights):
        sync: WeightSync = PushSync(policy, model, colocated=precision.device.startswith("cuda"))
    elif shared:
        sync = SharedSync(policy, model, weights)
    else:
        sync = CopySync(policy, model, weights)
    return ModelSetup(policy, model, ref_model, sync, precision)


def _sharded_setup(config: TrainConfig, policy: TrainablePolicy, group: Any, sharded: Any) -> ModelSetup:
    import functools

    from agentgym.train.parallel import full_state

    root, ref_root, compute = sharded
    precision = Precision(group.device, "float32", "bfloat16" if compute is not None else "none")
    state_fn = functools.partial(full_state, group, root)
    weights = policy.weights()
    if isinstance(weights, LocalWeights):  # the hf policy keeps its own copy: a sharded model cannot be shared
        sync: WeightSync = CopySync(policy, root.lm, weights, state_fn=state_fn)
    else:
        sync = PushSync(policy, root.lm, colocated=group.device.startswith("cuda"), state_fn=state_fn)
    return ModelSetup(policy, root, ref_root, sync, precision)


def export_state(source: str, state: dict[str, Any], tokenizer: Any, folder: Path) -> None:
    """Export full weights (a sharded learner's, gathered) as a model folder, through a CPU copy of ``source``."""
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(source, dtype=torch.float32)
    model.load_state_dict(state, strict=False)
    export_model(model, tokenizer, folder)


def _device_of(module: Any) -> Any:
    return next(module.parameters()).device


def _load_from_folder(path: str, dtype: Any) -> Any:
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(str(path), dtype=dtype)


def apply_lora(model: Any, cfg: TrainConfig) -> Any:
    peft = require("peft", "lora", "LoRA training")
    lora = cfg.model.lora
    assert lora is not None
    peft_config = peft.LoraConfig(
        r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout,
        target_modules=lora.target_modules, task_type="CAUSAL_LM",
    )
    return peft.get_peft_model(model, peft_config)


def export_model(model: Any, tokenizer: Any, folder: Path) -> None:
    """Save the trained weights (LoRA merged) and tokenizer as a folder ``hf:FOLDER`` can load; atomic."""
    tmp = folder.with_name(folder.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    merge = getattr(model, "merge_and_unload", None)  # a peft model: merge the adapters into a copy
    if callable(merge):
        model = copy.deepcopy(model).merge_and_unload()
    model.save_pretrained(tmp, safe_serialization=True)
    if tokenizer is not None and hasattr(tokenizer, "save_pretrained"):
        tokenizer.save_pretrained(tmp)
    if folder.exists():
        shutil.rmtree(folder)
    tmp.rename(folder)
