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


@pytest.fixture
def tiny_model():
    return tiny_llama()
