"""Training on the unguided context of a guided episode: strip the guidance, correct the ratio.

With ``guidance.context: strip`` a guided episode is trained on the unguided first prompt
followed by exactly the sampled tokens, while its behaviour log-probs were computed under
the guided prompt. The learner's importance ratio is then
``pi_theta(a | unguided) / pi_behaviour(a | guided)``. When a scorer is available (the
rollout policy's torch module), the per-token weight ``w = pi_old(a | unguided) /
pi_behaviour(a | guided)`` is measured right after sampling and clipped to
``[1 / ratio_clip, ratio_clip]`` by rewriting the stored behaviour log-prob as
``logp_unguided - clip(log w)``, so the learner's ratio starts at the clipped weight and
PPO's own clip works from there. Without a scorer the stored guided log-probs are kept and
only PPO's clip bounds the ratio.
"""

from __future__ import annotations

import contextlib
import math
from typing import Any, Callable, Sequence

import numpy as np

from agentgym.rollout.trajectory import Trajectory
from agentgym.torch_thread import run_on_torch_thread

Scorer = Callable[[list[int]], list[float]]
"""token ids -> log-prob of each token given the ones before it (0.0 for the first)."""


def strip_guidance(traj: Trajectory, scorer: Scorer | None = None, ratio_clip: float = 5.0) -> bool:
    """Put a guided episode on its unguided first prompt (see the module docstring); True if done.

    Needs token-level bookkeeping and the ``unguided_prompt_ids`` the context builder
    records; episodes whose template broke the prefix are left guided.
    """
    ids = traj.metadata.get("unguided_prompt_ids")
    if ids is None or not traj.turns or not traj.token_ids or traj.metadata.get("prefix_broken"):
        traj.metadata["guidance_stripped"] = False
        return False
    cut = traj.turns[0].start
    delta = len(ids) - cut
    traj.token_ids = list(ids) + traj.token_ids[cut:]
    traj.loss_mask = [0] * len(ids) + traj.loss_mask[cut:]
    traj.logprobs = [0.0] * len(ids) + traj.logprobs[cut:]
    for turn in traj.turns:
        turn.start += delta
        turn.end += delta
    traj.metadata["guidance_stripped"] = True
    traj.metadata["guided_prompt_tokens"] = cut
    traj.metadata.pop("unguided_prompt_ids", None)
    if scorer is not None:
        unguided = scorer(traj.token_ids)
        bound = math.log(ratio_clip)
        log_w, clipped = [], 0
        for i, m in enumerate(traj.loss_mask):
            if not m:
                continue
            lw = unguided[i] - traj.logprobs[i]
            c = min(bound, max(-bound, lw))
            clipped += c != lw
            log_w.append(lw)
            traj.logprobs[i] = unguided[i] - c
        if log_w:
            traj.metadata["guidance_log_ratio_mean"] = float(np.mean(log_w))
            traj.metadata["guidance_ratio_clipped"] = clipped / len(log_w)
    return True


async def strip_groups(
    groups: Sequence[Sequence[Trajectory]], scorer: Scorer | None, ratio_clip: float
) -> dict[str, float]:
    """Strip every guided, not failed episode of a batch (scoring on the torch thread); metrics."""
    guided = [t for g in groups for t in g if t.metadata.get("guided") and t.status != "failed"]
    stripped, log_ratio, clipped = 0, [], 0.0
    for t in guided:
        if scorer is not None and t.token_ids:
            stripped += await run_on_torch_thread(strip_guidance, t, scorer, ratio_clip)
        else:
            stripped += strip_guidance(t, None, ratio_clip)
        if "guidance_log_ratio_mean" in t.metadata:
            log_ratio.append(t.metadata["guidance_log_ratio_mean"])
            clipped += t.metadata["guidance_ratio_clipped"]
    metrics = {"guidance/stripped_fraction": stripped / len(guided) if guided else 0.0}
    if log_ratio:
        metrics["guidance/log_ratio_mean"] = float(np.mean(log_ratio))
        metrics["guidance/ratio_clipped_fraction"] = clipped / len(log_ratio)
    return metrics


def torch_scorer(model: Any, *, temperature: float = 1.0, lock: Any = None) -> Scorer:
    """A scorer from a causal LM module (the rollout policy's current weights)."""
    import torch

    def score(token_ids: list[int]) -> list[float]:
        device = next(model.parameters()).device
        ids = torch.tensor([token_ids], dtype=torch.long, device=device)
        with (lock or contextlib.nullcontext()), torch.no_grad():
            logits = model(input_ids=ids).logits[0, :-1].float() / temperature
        logp = torch.log_softmax(logits, dim=-1).gather(1, ids[0, 1:, None]).squeeze(1)
        return [0.0] + logp.cpu().tolist()

    return score
