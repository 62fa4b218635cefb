"""Shared fixtures: a tiny Llama built in code (no downloads)."""

import pytest
import torch


def tiny_llama(vocab: int = 64, hidden: int = 32, layers: int = 2, seed: int = 0, tie: bool = True):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=vocab,
        hidden_size=hidden,
        intermediate_size=hidden * 2,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        tie_word_embeddings=tie,
    )
    return LlamaForCausalLM(config).float()


def on_policy_sample(model, ids: list[int], mask: list[int], advantage: float):
    """A :class:`Sample` of ``ids`` whose behaviour log-probs are ``model``'s own (ratio 1 on every
    sampled token), with ``advantage`` on each of them."""
    import numpy as np

    from agentgym.train.advantages import Sample
    from agentgym.train.losses import logprobs_from_logits

    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits[0, :-1]
    lp, _ = logprobs_from_logits(logits, torch.tensor(ids[1:]))
    behaviour = [0.0] + [float(v) if m else 0.0 for v, m in zip(lp, mask[1:])]
    return Sample(ids, mask, behaviour, np.asarray(mask, dtype=np.float32) * advantage)


@pytest.fixture
def tiny_model():
    return tiny_llama()
