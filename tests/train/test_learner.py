"""The learner: chunked log-probs equal the model's own, micro-batching changes nothing, state round-trips."""

import copy

import numpy as np
import pytest
import torch

from agentgym.train.config import AlgorithmConfig, TrainerConfig
from agentgym.train.learner import Learner, pack_micro_batches
from agentgym.train.losses import token_weights
from tests.train.conftest import on_policy_sample, tiny_llama


def make_samples(model, n=6, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        length = int(rng.integers(6, 20))
        ids = rng.integers(1, 64, size=length).tolist()
        mask = [0] * 3 + [int(x) for x in rng.integers(0, 2, size=length - 3)]
        mask[-1] = 1
        out.append(on_policy_sample(model, ids, mask, float(rng.normal())))
    return out


def test_chunked_path_matches_full_logits_and_ratio_is_one():
    model = tiny_llama()
    samples = make_samples(model)
    learner = Learner(model, TrainerConfig(logprob_chunk=5), AlgorithmConfig())
    weights = token_weights([s.num_sampled for s in samples], "token_mean")
    for mb in pack_micro_batches(samples, weights, 10_000):
        logp, _ = learner._logprobs(learner.parts, model, mb, with_entropy=True)
        full, _ = learner._logprobs(None, model, mb, with_entropy=True)
        torch.testing.assert_close(logp, full, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(logp.detach(), mb.behaviour, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("agg", ["token_mean", "seq_mean_token_mean", "seq_sum_norm"])
def test_micro_batching_does_not_change_the_update(agg):
    base = tiny_llama()
    samples = make_samples(base)
    results = []
    for budget in (10_000, 40):
        model = copy.deepcopy(base)
        learner = Learner(model, TrainerConfig(micro_batch_tokens=budget, lr=1e-2),
                          AlgorithmConfig(loss_agg=agg))
        metrics = learner.step(samples)
        results.append((metrics, [p.detach().clone() for p in model.parameters()]))
    (m1, p1), (m2, p2) = results
    assert m2["micro_batches"] > m1["micro_batches"] == 1
    assert m1["loss"] == pytest.approx(m2["loss"], abs=1e-5)
    assert m1["grad_norm"] == pytest.approx(m2["grad_norm"], rel=1e-4)
    for a, b in zip(p1, p2):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-3)  # Adam amplifies fp noise on near-zero grads
    assert m1["clip_fraction"] == 0 and m1["ratio_mean"] == pytest.approx(1.0, abs=1e-4)


def test_reference_kl_and_checkpoint_round_trip(tmp_path):
    model = tiny_llama()
    ref = copy.deepcopy(model).requires_grad_(False)
    samples = make_samples(model)
    learner = Learner(model, TrainerConfig(lr=1e-2), AlgorithmConfig(kl_coef=0.1), ref_model=ref)
    first = learner.step(samples)
    second = learner.step(samples)
    assert first["kl"] == pytest.approx(0.0, abs=1e-6) and second["kl"] > 0
    for name, write in learner.checkpoint_files().items():
        write(tmp_path / name)
    clone = Learner(copy.deepcopy(model), TrainerConfig(lr=1e-2), AlgorithmConfig(kl_coef=0.1), ref_model=ref)
    with torch.no_grad():
        for p in clone.model.parameters():
            p.zero_()
    clone.load_checkpoint(tmp_path)
    a, b = learner.step(samples), clone.step(samples)
    assert a["loss"] == pytest.approx(b["loss"], abs=1e-6)
    for x, y in zip(learner.model.parameters(), clone.model.parameters()):
        torch.testing.assert_close(x, y)


def test_lora_trains_only_adapters():
    pytest.importorskip("peft")
    from agentgym.train.config import TrainConfig as Run
    from agentgym.train.model import apply_lora

    base = tiny_llama()
    samples = make_samples(base)
    cfg = Run.model_validate({"envs": [{"id": "maze/v0"}], "model": {"lora": {"r": 4, "alpha": 8}}})
    model = apply_lora(copy.deepcopy(base), cfg)
    frozen = {n: p.detach().clone() for n, p in model.named_parameters() if not p.requires_grad}
    adapters = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    assert adapters and all("lora" in n for n in adapters)
    learner = Learner(model, TrainerConfig(lr=1e-2), AlgorithmConfig())
    assert learner.parts is not None  # the chunked path still applies under peft
    learner.step(samples)
    after = dict(model.named_parameters())
    assert all(torch.equal(after[n], p) for n, p in frozen.items())
    assert any(not torch.equal(after[n], p) for n, p in adapters.items())
    assert set(learner.trainable_state()) == set(adapters)


def test_a_step_runs_on_the_torch_thread_with_its_configured_thread_count():
    """Called from the main thread, the step still runs where generation runs (one OpenMP team in the
    process) and with the intra-op thread count set through ``agentgym.torch_thread.set_num_threads``."""
    import threading

    from agentgym import torch_thread

    model = tiny_llama()
    samples = make_samples(model)
    learner = Learner(model, TrainerConfig(lr=1e-2), AlgorithmConfig())
    seen = []
    model.model.register_forward_pre_hook(lambda *_: seen.append((threading.current_thread().name, torch.get_num_threads())))
    main_threads = torch.get_num_threads()
    torch_threads = torch_thread.call_on_torch_thread(torch.get_num_threads)
    try:
        torch_thread.set_num_threads(1)
        learner.step(samples)
        torch_thread.set_num_threads(2)
        learner.step(samples)
    finally:
        torch.set_num_threads(main_threads)
        torch_thread.call_on_torch_thread(torch.set_num_threads, torch_threads)
    assert seen and all(name.startswith("agentgym-torch") for name, _ in seen)
    assert {count for _, count in seen} == {1, 2}
