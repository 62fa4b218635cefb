"""Prefix sharing: a group's prompt runs once per micro-batch, and the update is the one separate rows give."""

import copy

import numpy as np
import pytest
import torch

from agentgym.train.advantages import Sample
from agentgym.train.config import AlgorithmConfig, TrainerConfig
from agentgym.train.learner import Learner, prefix_cache_shareable
from agentgym.train.losses import token_weights
from agentgym.train.packing import MIN_SHARED_PREFIX, pack_micro_batches, shared_prefix_length
from tests.train.conftest import on_policy_sample, tiny_llama


def grouped_samples(model, groups=3, size=4, seed=0, multi_turn=True):
    """``groups`` prompts of different lengths, ``size`` continuations each (a later observation with
    mask 0 when ``multi_turn``), plus one sample whose prompt nobody shares."""
    rng = np.random.default_rng(seed)
    out = []
    prompts = [rng.integers(1, 64, size=int(rng.integers(6, 14))).tolist() for _ in range(groups + 1)]
    for g, prompt in enumerate(prompts):
        for _ in range(size if g < groups else 1):
            reply = rng.integers(1, 64, size=int(rng.integers(2, 9))).tolist()
            ids, mask = prompt + reply, [0] * len(prompt) + [1] * len(reply)
            if multi_turn:
                observation = rng.integers(1, 64, size=3).tolist()
                second = rng.integers(1, 64, size=int(rng.integers(1, 5))).tolist()
                ids += observation + second
                mask += [0] * 3 + [1] * len(second)
            out.append(on_policy_sample(model, ids, mask, float(rng.normal())))
    return out


def test_groups_share_their_prompt_and_every_sampled_token_is_trained_once():
    samples = grouped_samples(tiny_llama())
    weights = token_weights([s.num_sampled for s in samples], "token_mean")
    plain = pack_micro_batches(samples, weights, 10_000)
    shared = pack_micro_batches(samples, weights, 10_000, share_prefixes=True)
    assert [mb.prefix_ids is None for mb in plain] == [True]
    with_prefix = [mb for mb in shared if mb.prefix_ids is not None]
    assert len(with_prefix) == 3 and all(mb.input_ids.shape[0] == 4 for mb in with_prefix)
    assert [mb.input_ids.shape[0] for mb in shared if mb.prefix_ids is None] == [1]  # the unshared prompt
    assert sum(len(mb.targets) for mb in shared) == sum(s.num_sampled for s in samples) == len(plain[0].targets)
    assert sum(mb.padded_tokens for mb in shared) < plain[0].padded_tokens
    # each group's prompt but its last token, which opens every continuation
    assert sorted(mb.prefix_ids.shape[1] for mb in with_prefix) == sorted(
        {shared_prefix_length(s) for s in samples[:12]})
    assert all(mb.prefix_ids.shape[1] >= MIN_SHARED_PREFIX for mb in with_prefix)


def test_a_short_or_unshared_prompt_stays_a_plain_row():
    base = Sample([5, 6, 7, 8], [0, 0, 1, 1], [0.0] * 4, np.ones(4, dtype=np.float32))
    assert shared_prefix_length(base) == 1
    batches = pack_micro_batches([base, copy.deepcopy(base)], [1.0, 1.0], 10_000, share_prefixes=True)
    assert [mb.prefix_ids for mb in batches] == [None]


def test_a_group_larger_than_the_budget_is_split_with_the_prompt_in_each_part():
    samples = grouped_samples(tiny_llama(), groups=1, size=8, multi_turn=False)[:8]
    batches = pack_micro_batches(samples, [1.0] * 8, 40, share_prefixes=True)
    assert len(batches) > 1 and all(mb.prefix_ids is not None for mb in batches)
    assert all(mb.padded_tokens <= 40 or mb.input_ids.shape[0] == 1 for mb in batches)
    assert sum(mb.input_ids.shape[0] for mb in batches) == 8


def shared_and_plain_logprobs(learner, samples):
    """Per sampled token, in sample order, through shared-prefix and through plain micro-batches."""
    weights = [float(i) for i in range(len(samples))]  # tags each token with its sample
    out = []
    for share in (True, False):
        tagged = []
        for mb in pack_micro_batches(samples, weights, 10_000, share_prefixes=share):
            logp, _ = learner._logprobs(learner.parts, learner.model, mb, with_entropy=False)
            tagged += sorted(zip(mb.weights.tolist(), range(len(logp)), logp.tolist()))
        out.append([lp for _, _, lp in sorted(tagged, key=lambda t: (t[0], t[1]))])
    return out


def test_shared_prefix_log_probs_equal_separate_rows_and_the_behaviour_policy():
    model = tiny_llama()
    samples = grouped_samples(model)
    learner = Learner(model, TrainerConfig(), AlgorithmConfig())
    assert prefix_cache_shareable(learner.parts[0])
    shared, plain = shared_and_plain_logprobs(learner, samples)
    np.testing.assert_allclose(shared, plain, atol=1e-5)
    behaviour = [b for s in samples for b, m in zip(s.behaviour_logprobs, s.loss_mask) if m]
    np.testing.assert_allclose(shared, behaviour, atol=1e-5)


@pytest.mark.parametrize("budget", [10_000, 48])
def test_the_update_with_shared_prefixes_is_the_update_without(budget):
    base = tiny_llama()
    samples = grouped_samples(base)
    results = []
    for share in (True, False):
        model = copy.deepcopy(base)
        learner = Learner(model, TrainerConfig(micro_batch_tokens=budget, lr=1e-2, share_prefixes=share),
                          AlgorithmConfig(kl_coef=0.05), ref_model=copy.deepcopy(base).requires_grad_(False))
        first = learner.step(samples)
        second = learner.step(samples)
        results.append((first, second, [p.detach().clone() for p in model.parameters()]))
    (s1, s2, sp), (p1, p2, pp) = results
    assert s1["tokens/padded"] < p1["tokens/padded"]
    for a, b in ((s1, p1), (s2, p2)):
        assert a["loss"] == pytest.approx(b["loss"], abs=1e-5)
        assert a["grad_norm"] == pytest.approx(b["grad_norm"], rel=1e-4)
        assert a["kl"] == pytest.approx(b["kl"], abs=1e-6)
    for a, b in zip(sp, pp):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-3)


def test_gradient_checkpointing_turns_sharing_off_and_the_step_still_trains():
    model = tiny_llama()
    model.gradient_checkpointing_enable()
    samples = grouped_samples(model)
    learner = Learner(model, TrainerConfig(lr=1e-2), AlgorithmConfig())
    metrics = learner.step(samples)
    assert learner._shares_prefixes() is False
    plain = pack_micro_batches(samples, [1.0] * len(samples), TrainerConfig().micro_batch_tokens)
    assert metrics["tokens/padded"] == sum(mb.padded_tokens for mb in plain)
