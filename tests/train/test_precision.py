"""fp32 master weights: a bf16 model trained at lr 1e-6 learns; pure bf16 AdamW rounds every update away.

AdamW's first update is about ``lr`` per weight. A bf16 weight of magnitude >= 2^-9 has a
rounding step >= 2^-16 (half of it ~7.6e-6), so adding 1e-6 rounds back to the same value.
"""

from __future__ import annotations

import copy

import pytest
import torch

from agentgym.errors import UserError
from agentgym.train.config import AlgorithmConfig, TrainerConfig
from agentgym.train.learner import Learner
from agentgym.train.precision import MasterWeights, resolve
from tests.train.conftest import tiny_llama
from tests.train.test_learner import make_samples

LR = 1e-6


def bf16_model() -> torch.nn.Module:
    """The tiny Llama in bf16 with every weight at least 2^-9 in magnitude (see the module docstring)."""
    model = tiny_llama(seed=3)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.sign(p) * p.abs().clamp(min=2.0**-9) + (p == 0) * 2.0**-9)
    return model.to(torch.bfloat16)


def snapshot(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in model.named_parameters()}


def one_step(model: torch.nn.Module, master_weights: bool | None) -> tuple[Learner, dict]:
    samples = make_samples(tiny_llama(seed=3), n=6, seed=1)
    learner = Learner(model, TrainerConfig(lr=LR, max_grad_norm=1e9), AlgorithmConfig(),
                      master_weights=master_weights)
    metrics = learner.step(samples)
    assert metrics["grad_norm"] > 1e-3 and not metrics["skipped_update"]  # there was something to learn
    return learner, metrics


def test_pure_bf16_adamw_loses_the_update_and_master_weights_keep_it():
    base = bf16_model()
    before = snapshot(base)

    pure = copy.deepcopy(base)
    learner, _ = one_step(pure, master_weights=False)
    assert learner.master is None
    for name, p in pure.named_parameters():
        assert torch.equal(p, before[name]), f"pure bf16 AdamW changed {name}"

    mixed = copy.deepcopy(base)
    learner, _ = one_step(mixed, master_weights=None)  # bf16 weights: the master copy is on by default
    assert learner.master is not None
    state = learner.trainable_state()
    changed = total = 0
    for name, value in state.items():
        assert value.dtype == torch.float32
        delta = (value - before[name].float()).abs()
        changed += int((delta > 0).sum())
        total += delta.numel()
        assert float(delta.max()) < 5 * LR  # an Adam step of about lr, not a rounding jump
    assert changed / total > 0.9, f"only {changed}/{total} weights moved"
    # the model still holds the rounding of the master copy
    for name, p in mixed.named_parameters():
        assert p.dtype == torch.bfloat16 and torch.equal(p, state[name].to(torch.bfloat16))


def test_master_weights_accumulate_until_the_bf16_weights_move():
    """Updates below a bf16 step add up in the master copy and then reach the model."""
    model = bf16_model()
    before = snapshot(model)
    samples = make_samples(tiny_llama(seed=3), n=6, seed=1)
    learner = Learner(model, TrainerConfig(lr=1e-4, max_grad_norm=1e9), AlgorithmConfig())
    for _ in range(8):
        learner.step(samples)
    moved = sum(int((p != before[n]).sum()) for n, p in model.named_parameters())
    assert moved > 0.2 * sum(p.numel() for p in model.parameters())


def test_fp32_weights_from_a_bf16_model_change_at_lr_1e_6():
    """The other set-up: the learner's fp32 copy of a bf16 model (model.dtype auto/float32)."""
    model = bf16_model().float()
    before = snapshot(model)
    learner, _ = one_step(model, master_weights=None)
    assert learner.master is None and learner.autocast_dtype is None  # CPU: fp32 compute
    moved = sum(int((p != before[n]).sum()) for n, p in model.named_parameters())
    assert moved > 0.9 * sum(p.numel() for p in model.parameters())


def test_master_copy_accumulates_micro_batch_gradients_in_fp32():
    model = bf16_model()
    master = MasterWeights(model.parameters())
    p = master.params[0]
    p.grad = torch.full_like(p, 1e-3)
    master.accumulate()
    p.grad = torch.full_like(p, 1e-3)
    master.accumulate()
    assert p.grad is None and master.master[0].grad.dtype == torch.float32
    torch.testing.assert_close(master.master[0].grad, torch.full_like(master.master[0], 2e-3), rtol=1e-2, atol=0)


def test_checkpoint_keeps_the_fp32_master_values(tmp_path):
    model = bf16_model()
    learner, _ = one_step(model, master_weights=None)
    for name, write in learner.checkpoint_files().items():
        write(tmp_path / name)
    fresh = Learner(bf16_model(), TrainerConfig(lr=LR), AlgorithmConfig())
    fresh.load_checkpoint(tmp_path)
    for name, value in learner.trainable_state().items():
        assert torch.equal(fresh.trainable_state()[name], value)


def test_resolve_on_this_machine():
    if torch.cuda.is_available():
        p = resolve()
        assert p.device.startswith("cuda") and p.dtype == "float32"
        assert p.autocast == ("bfloat16" if torch.cuda.is_bf16_supported() else "none")
        return
    p = resolve()
    assert (p.device, p.dtype, p.autocast, p.master_weights) == ("cpu", "float32", "none", False)
    assert "fp32 master weights, fp32 compute" in p.describe()
    shared = resolve(shared_device="cpu")
    assert shared.dtype == "float32"  # on the CPU a shared hf policy is fp32 already
    bf16 = resolve(dtype="bfloat16")
    assert bf16.master_weights and "fp32 master copy" in bf16.describe()
    with pytest.raises(UserError, match="no CUDA device"):
        resolve(device="cuda")
    with pytest.raises(UserError, match="autocast"):
        resolve(autocast="bfloat16")
    with pytest.raises(UserError, match="use auto, cpu"):
        resolve(device="tpu")
