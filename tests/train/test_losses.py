"""The chunked log-prob kernel matches materialised logits, values and gradients."""

import pytest
import torch

from agentgym.train.losses import chunked_logprobs, logprobs_from_logits, ppo_loss, token_weights


@pytest.mark.parametrize("chunk,temperature,with_bias", [(3, 1.0, False), (64, 0.7, True), (1, 1.3, False)])
def test_chunked_logprobs_match_reference(chunk, temperature, with_bias):
    torch.manual_seed(0)
    n, h, v = 10, 8, 37
    hidden = torch.randn(n, h, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(v, h, dtype=torch.float64, requires_grad=True)
    bias = torch.randn(v, dtype=torch.float64, requires_grad=True) if with_bias else None
    targets = torch.randint(0, v, (n,))
    upstream = torch.randn(n, dtype=torch.float64)

    logp, ent = chunked_logprobs(hidden, weight, targets, bias=bias, chunk=chunk, temperature=temperature)
    (logp.double() * upstream).sum().backward()
    grads = [hidden.grad.clone(), weight.grad.clone()] + ([bias.grad.clone()] if with_bias else [])
    for t in [hidden, weight] + ([bias] if with_bias else []):
        t.grad = None

    logits = hidden @ weight.t() + (bias if with_bias else 0)
    ref_logp, ref_ent = logprobs_from_logits(logits, targets, temperature)
    (ref_logp.double() * upstream).sum().backward()
    ref_grads = [hidden.grad, weight.grad] + ([bias.grad] if with_bias else [])

    torch.testing.assert_close(logp.double(), ref_logp.double(), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(ent.double(), ref_ent.double(), atol=1e-5, rtol=1e-5)
    for g, r in zip(grads, ref_grads):
        torch.testing.assert_close(g, r, atol=1e-5, rtol=1e-5)


def test_ppo_loss_on_policy_gradient_is_advantage_weighted():
    logp = torch.tensor([-1.0, -2.0, -0.5], requires_grad=True)
    adv = torch.tensor([1.0, -1.0, 0.5])
    w = torch.full((3,), 1 / 3)
    loss, stats = ppo_loss(logp, logp.detach(), adv, w)
    loss.backward()
    torch.testing.assert_close(logp.grad, -adv / 3)
    assert stats.clipped == 0 and stats.tokens == 3
    assert abs(stats.summary()["ratio_mean"] - 1.0) < 1e-6


def test_ppo_loss_clips_asymmetrically():
    behaviour = torch.zeros(4)
    # ratios 1.25 (inside the high clip), 1.5 (clipped for A>0), 0.7 (clipped for A<0), 0.7 with A>0 (kept)
    logp = torch.log(torch.tensor([1.25, 1.5, 0.7, 0.7])).requires_grad_()
    adv = torch.tensor([1.0, 1.0, -1.0, 1.0])
    loss, stats = ppo_loss(logp, behaviour, adv, torch.ones(4), clip_low=0.2, clip_high=0.28)
    loss.backward()
    assert stats.clipped == 2
    assert logp.grad[1] == 0 and logp.grad[2] == 0
    assert logp.grad[0] != 0 and logp.grad[3] != 0


def test_k3_kl_is_zero_at_reference_and_positive_elsewhere():
    logp = torch.tensor([-1.0, -2.0])
    _, same = ppo_loss(logp, logp, torch.zeros(2), torch.ones(2), ref_logp=logp, kl_coef=0.1)
    _, diff = ppo_loss(logp, logp, torch.zeros(2), torch.ones(2), ref_logp=logp - 0.5, kl_coef=0.1)
    assert same.kl_sum == pytest.approx(0.0)
    assert diff.kl_sum > 0


def test_token_weights():
    assert sum(l * w for l, w in zip([2, 3], token_weights([2, 3], "token_mean"))) == pytest.approx(1.0)
    w = token_weights([2, 4], "seq_mean_token_mean")
    assert w == pytest.approx([1 / 4, 1 / 8])
    assert token_weights([2, 4], "seq_sum_norm", norm_tokens=10) == pytest.approx([1 / 20, 1 / 20])
