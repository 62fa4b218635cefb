"""Micro-batches for the learner: samples packed by a padded-token budget, shared prompts computed once.

A GRPO group's samples all begin with the same prompt (the task's first observation), and
on short agent turns that prompt is often half of every sample's tokens. Run as separate
rows, the prompt's forward and backward are paid once per sample. With prefix sharing a
micro-batch holds one prompt (``prefix_ids``, run once) and the continuations of several of
its samples (``input_ids``), which attend to the prompt's keys and values; the gradient that
reaches the prompt is the sum over its continuations, exactly what separate rows would give.

The shared prefix stops one token before a sample's first sampled token, so every position
whose next token was sampled lies in the continuation part (the prompt's last token opens
every continuation). Samples whose prompt no other sample shares are packed as plain rows.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from agentgym.train.advantages import Sample

#: The shortest prefix worth a forward pass of its own.
MIN_SHARED_PREFIX = 4


@dataclass
class MicroBatch:
    input_ids: torch.Tensor  # [B, L]: whole samples, or continuations of ``prefix_ids``
    attention_mask: torch.Tensor  # [B, L]
    select: torch.Tensor  # [B, L-1] bool: positions whose next token was sampled
    targets: torch.Tensor  # [N]
    behaviour: torch.Tensor  # [N]
    advantages: torch.Tensor  # [N]
    weights: torch.Tensor  # [N]
    padded_tokens: int  # tokens the model runs on (the shared prefix counted once)
    prefix_ids: torch.Tensor | None = None  # [1, P]: the prompt every row continues


def shared_prefix_length(sample: Sample) -> int:
    """How many leading tokens of ``sample`` may be shared: up to one before its first sampled token."""
    first = next((i for i, m in enumerate(sample.loss_mask) if m), len(sample.token_ids))
    return max(0, first - 1)


def pack_micro_batches(
    samples: Sequence[Sample], weights: Sequence[float], token_budget: int, pad_id: int = 0,
    *, share_prefixes: bool = False,
) -> list[MicroBatch]:
    """Micro-batches of at most ``token_budget`` padded tokens each (one row at least).

    With ``share_prefixes``, samples that begin with the same prompt (at least
    :data:`MIN_SHARED_PREFIX` tokens, two samples or more) go into micro-batches of their own
    that run the prompt once; the rest are sorted by length and packed greedily so that
    rows x longest row stays within the budget.
    """
    plain = list(range(len(samples)))
    batches: list[MicroBatch] = []
    if share_prefixes:
        by_prompt: dict[tuple[int, ...], list[int]] = defaultdict(list)
        for i, s in enumerate(samples):
            length = shared_prefix_length(s)
            if length >= MIN_SHARED_PREFIX:
                by_prompt[tuple(s.token_ids[:length])].append(i)
        shared = {i for members in by_prompt.values() if len(members) > 1 for i in members}
        plain = [i for i in plain if i not in shared]
        for prompt, members in by_prompt.items():
            if len(members) < 2:
                continue
            lengths = {i: len(samples[i].token_ids) - len(prompt) for i in members}
            for rows in _pack(sorted(members, key=lengths.get), lengths.get, token_budget, overhead=len(prompt)):
                batches.append(_collate([samples[i] for i in rows], [weights[i] for i in rows], pad_id,
                                        prefix=list(prompt)))
    by_length = sorted(plain, key=lambda i: len(samples[i].token_ids))
    for rows in _pack(by_length, lambda i: len(samples[i].token_ids), token_budget):
        batches.append(_collate([samples[i] for i in rows], [weights[i] for i in rows], pad_id))
    return batches


def _pack(order: list[int], length_of, budget: int, overhead: int = 0) -> list[list[int]]:
    """Consecutive runs of ``order`` (sorted by length) with overhead + rows x longest <= budget."""
    runs: list[list[int]] = []
    current: list[int] = []
    for i in order:
        if current and overhead + (len(current) + 1) * length_of(i) > budget:
            runs.append(current)
            current = []
        current.append(i)
    if current:
        runs.append(current)
    return runs


def _collate(samples: list[Sample], weights: list[float], pad_id: int, prefix: list[int] | None = None) -> MicroBatch:
    """Right-padded rows of ``samples`` (their tokens after ``prefix`` when one is given)."""
    skip = len(prefix) if prefix else 0
    length = max(len(s.token_ids) - skip for s in samples)
    b = len(samples)
    ids = torch.full((b, length), pad_id, dtype=torch.long)
    attn = torch.zeros((b, length), dtype=torch.long)
    mask = torch.zeros((b, length), dtype=torch.bool)
    behaviour = torch.zeros((b, length), dtype=torch.float32)
    adv = torch.zeros((b, length), dtype=torch.float32)
    w = torch.zeros((b, length), dtype=torch.float32)
    for row, (s, weight) in enumerate(zip(samples, weights)):
        n = len(s.token_ids) - skip
        ids[row, :n] = torch.tensor(s.token_ids[skip:], dtype=torch.long)
        attn[row, :n] = 1
        mask[row, :n] = torch.tensor(s.loss_mask[skip:], dtype=torch.bool)
        behaviour[row, :n] = torch.tensor(s.behaviour_logprobs[skip:len(s.token_ids)], dtype=torch.float32)
        adv[row, :n] = torch.as_tensor(s.advantages[skip:len(s.token_ids)], dtype=torch.float32)
        w[row, :n] = weight
    mask[:, 0] = False  # the first token has no prediction here (a prefix's last token opens the row)
    select = mask[:, 1:]
    return MicroBatch(
        input_ids=ids,
        attention_mask=attn,
        select=select,
        targets=ids[:, 1:][select],
        behaviour=behaviour[:, 1:][select],
        advantages=adv[:, 1:][select],
        weights=w[:, 1:][select],
        padded_tokens=b * length + skip,
        prefix_ids=torch.tensor([prefix], dtype=torch.long) if prefix else None,
    )
