"""Token log-probs without full-vocabulary logits, and the clipped GRPO objective.

A 135M model with a 49k vocabulary turns 64 x 100 tokens into 1.2 GB of fp32 logits,
plus as much again for softmax and its gradient: most of the memory of a naive GRPO
step. :func:`chunked_logprobs` takes the final hidden states of only the positions
that predict sampled tokens and runs ``lm_head -> log_softmax -> gather`` over chunks
of them, keeping one chunk of logits alive at a time; its backward recomputes each
chunk's logits instead of storing them. Peak extra memory is one chunk x vocabulary.

:func:`ppo_loss` is the token-level PPO-clipped objective against behaviour logprobs,
with asymmetric clipping (clip-higher) and an optional k3 KL to a reference policy.
Aggregation is expressed as a per-token weight computed once for the whole step
(:func:`token_weights`), so splitting a step into micro-batches changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


class _ChunkedLogProbs(torch.autograd.Function):
    """log softmax(hidden @ W.T + b)[target] / T per row, chunk by chunk; entropy as a by-product."""

    @staticmethod
    def forward(ctx, hidden, weight, bias, targets, chunk: int, temperature: float, with_entropy: bool):
        n = hidden.shape[0]
        logp = torch.empty(n, dtype=torch.float32, device=hidden.device)
        lse = torch.empty(n, dtype=torch.float32, device=hidden.device)
        entropy = torch.zeros(n, dtype=torch.float32, device=hidden.device)
        w = weight.to(hidden.dtype)
        for s in range(0, n, chunk):
            logits = _logits(hidden[s : s + chunk], w, bias, temperature)
            chunk_lse = torch.logsumexp(logits, dim=-1)
            lse[s : s + chunk] = chunk_lse
            logp[s : s + chunk] = logits.gather(1, targets[s : s + chunk, None]).squeeze(1) - chunk_lse
            if with_entropy:
                probs = torch.exp(logits - chunk_lse[:, None])
                entropy[s : s + chunk] = chunk_lse - (probs * logits).sum(-1)
            del logits
        ctx.save_for_backward(hidden, weight, bias if bias is not None else torch.empty(0), targets, lse)
        ctx.has_bias = bias is not None
        ctx.chunk, ctx.temperature = chunk, temperature
        ctx.mark_non_differentiable(entropy)
        return logp, entropy

    @staticmethod
    def backward(ctx, grad_logp, _grad_entropy):
        hidden, weight, bias, targets, lse = ctx.saved_tensors
        bias = bias if ctx.has_bias else None
        chunk, temperature = ctx.chunk, ctx.temperature
        w = weight.to(hidden.dtype)
        need_h, need_w = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        need_b = ctx.has_bias and ctx.needs_input_grad[2]
        grad_hidden = torch.empty_like(hidden) if need_h else None
        grad_weight = torch.zeros(weight.shape, dtype=torch.float32, device=weight.device) if need_w else None
        grad_bias = torch.zeros(bias.shape, dtype=torch.float32, device=bias.device) if need_b else None
        for s in range(0, hidden.shape[0], chunk):
            h = hidden[s : s + chunk]
            g_out = grad_logp[s : s + chunk].float()
            logits = _logits(h, w, bias, temperature)
            # d logp_i / d logits_ij = 1[j = target_i] - p_ij, then through the 1/T scaling.
            grad = torch.exp(logits - lse[s : s + chunk, None])
            grad.mul_(-g_out[:, None])
            grad.scatter_add_(1, targets[s : s + chunk, None], g_out[:, None])
            if temperature != 1.0:
                grad.div_(temperature)
            del logits
            if need_h:
                grad_hidden[s : s + chunk] = (grad.to(w.dtype) @ w).to(hidden.dtype)
            if need_w:
                grad_weight.addmm_(grad.t(), h.float())
            if need_b:
                grad_bias.add_(grad.sum(0))
        if grad_weight is not None:
            grad_weight = grad_weight.to(weight.dtype)
        if grad_bias is not None:
            grad_bias = grad_bias.to(bias.dtype)
        return grad_hidden, grad_weight, grad_bias, None, None, None, None


def _logits(h: torch.Tensor, w: torch.Tensor, bias: torch.Tensor | None, temperature: float) -> torch.Tensor:
    logits = (h @ w.t()).float()
    if bias is not None:
        logits = logits + bias.float()
    if temperature != 1.0:
        logits = logits / temperature
    return logits


def chunked_logprobs(
    hidden: torch.Tensor,
    weight: torch.Tensor,
    targets: torch.Tensor,
    *,
    bias: torch.Tensor | None = None,
    chunk: int = 512,
    temperature: float = 1.0,
    with_entropy: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Log-prob of ``targets`` under ``softmax((hidden @ weight.T + bias) / T)``, and entropy.

    ``hidden`` is ``[N, H]`` (only the positions that matter), ``targets`` ``[N]``.
    Differentiable in ``hidden``, ``weight`` and ``bias``; entropy is not differentiated.
    """
    if hidden.shape[0] == 0:
        empty = hidden.new_zeros(0, dtype=torch.float32)
        return empty + 0 * hidden.sum() + 0 * weight.sum(), empty.detach()
    return _ChunkedLogProbs.apply(hidden, weight, bias, targets, max(1, chunk), float(temperature), with_entropy)


def logprobs_from_logits(logits: torch.Tensor, targets: torch.Tensor, temperature: float = 1.0):
    """Reference implementation on materialised logits (tests, models with logit post-processing)."""
    logits = logits.float() / temperature
    logp_all = torch.log_softmax(logits, dim=-1)
    logp = logp_all.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    entropy = -(logp_all.exp() * logp_all).sum(-1)
    return logp, entropy.detach()


def token_weights(lengths: list[int], aggregation: str, norm_tokens: int | None = None) -> list[float]:
    """Per-token loss weight of each sequence so that the step's loss is ``sum(w * l)``.

    * ``token_mean``: every sampled token in the step counts the same (DAPO);
    * ``seq_mean_token_mean``: mean over each sequence, then over sequences (original GRPO);
    * ``seq_sum_norm``: token sums divided by a constant, then mean over sequences (Dr. GRPO),
      the constant being ``norm_tokens`` or the longest sequence of the step.
    """
    n_seq = max(1, sum(1 for n in lengths if n > 0))
    if aggregation == "token_mean":
        total = max(1, sum(lengths))
        return [1.0 / total for _ in lengths]
    if aggregation == "seq_mean_token_mean":
        return [1.0 / (n_seq * n) if n > 0 else 0.0 for n in lengths]
    if aggregation == "seq_sum_norm":
        norm = norm_tokens or max(lengths or [1]) or 1
        return [1.0 / (n_seq * norm) for _ in lengths]
    raise ValueError(f"unknown loss aggregation {aggregation!r}")


@dataclass
class LossStats:
    """Weighted sums over a micro-batch; divide by ``tokens`` (or use weights) to report."""

    tokens: int = 0
    clipped: float = 0.0
    ratio_sum: float = 0.0
    ratio_max: float = 0.0
    kl_sum: float = 0.0
    entropy_sum: float = 0.0
    logp_diff_abs_sum: float = 0.0

    def add(self, other: "LossStats") -> None:
        self.tokens += other.tokens
        self.clipped += other.clipped
        self.ratio_sum += other.ratio_sum
        self.ratio_max = max(self.ratio_max, other.ratio_max)
        self.kl_sum += other.kl_sum
        self.entropy_sum += other.entropy_sum
        self.logp_diff_abs_sum += other.logp_diff_abs_sum

    def summary(self) -> dict[str, float]:
        n = max(1, self.tokens)
        return {
            "clip_fraction": self.clipped / n,
            "ratio_mean": self.ratio_sum / n,
            "ratio_max": self.ratio_max,
            "kl": self.kl_sum / n,
            "entropy": self.entropy_sum / n,
            "behaviour_logp_abs_diff": self.logp_diff_abs_sum / n,
        }


def ppo_loss(
    logp: torch.Tensor,
    behaviour_logp: torch.Tensor,
    advantages: torch.Tensor,
    weights: torch.Tensor,
    *,
    clip_low: float = 0.2,
    clip_high: float = 0.28,
    ref_logp: torch.Tensor | None = None,
    kl_coef: float = 0.0,
    entropy: torch.Tensor | None = None,
) -> tuple[torch.Tensor, LossStats]:
    """Token-level PPO-clipped loss over sampled tokens (all inputs ``[N]``, mask-1 tokens only).

    The importance ratio ``exp(logp - behaviour_logp)`` corrects for trajectories
    sampled by an older policy version; clipping to ``[1 - clip_low, 1 + clip_high]``
    bounds the update, the wider upper bound letting rare good tokens rise (clip-higher).
    """
    log_ratio = (logp - behaviour_logp).clamp(-20.0, 20.0)
    ratio = torch.exp(log_ratio)
    unclipped = ratio * advantages
    clipped = ratio.clamp(1.0 - clip_low, 1.0 + clip_high) * advantages
    per_token = -torch.minimum(unclipped, clipped)
    kl = None
    if ref_logp is not None:
        delta = (ref_logp - logp).clamp(-20.0, 20.0)
        kl = torch.exp(delta) - delta - 1.0  # k3: unbiased, always >= 0
        if kl_coef:
            per_token = per_token + kl_coef * kl
    loss = (per_token * weights).sum()
    with torch.no_grad():
        was_clipped = ((ratio < 1.0 - clip_low) & (advantages < 0)) | ((ratio > 1.0 + clip_high) & (advantages > 0))
        stats = LossStats(
            tokens=int(logp.numel()),
            clipped=float(was_clipped.sum()),
            ratio_sum=float(ratio.sum()),
            ratio_max=float(ratio.max()) if ratio.numel() else 0.0,
            kl_sum=float(kl.sum()) if kl is not None else 0.0,
            entropy_sum=float(entropy.sum()) if entropy is not None else 0.0,
            logp_diff_abs_sum=float(log_ratio.abs().sum()),
        )
    return loss, stats
