"""A tiny Llama model and tokenizer built in code, for tests: no download, ready in about a second.

The tokenizer is a byte-level BPE trained on a few hundred strings (maze and tool words, chat
markers), so any text encodes without unknown tokens; the chat template is ChatML with tools.
The weights are random (seeded): the model's text is gibberish, but every code path
(generation, logprobs, weight updates, vLLM loading) runs on it exactly as on a real model.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

CHAT_TEMPLATE = (
    "{%- if tools %}"
    "{{- '<|im_start|>system\\n' }}"
    "{%- if messages[0]['role'] == 'system' %}{{- messages[0]['content'] + '\\n\\n' }}{%- endif %}"
    "{{- '# Tools\\n<tools>' }}"
    "{%- for tool in tools %}{{- '\\n' + (tool | tojson) }}{%- endfor %}"
    "{{- '\\n</tools>\\nCall a tool with <tool_call>{\"name\": ..., \"arguments\": ...}</tool_call>'"
    " + '<|im_end|>\\n' }}"
    "{%- elif messages[0]['role'] == 'system' %}"
    "{{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}"
    "{%- endif %}"
    "{%- for message in messages %}"
    "{%- if not (loop.first and message['role'] == 'system') %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + (message['content'] or '') }}"
    "{%- for call in message.get('tool_calls') or [] %}"
    "{{- '\\n<tool_call>' + ((call.function if call.function is defined else call) | tojson) + '</tool_call>' }}"
    "{%- endfor %}"
    "{{- '<|im_end|>\\n' }}"
    "{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)

SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]

_WORDS = (
    "maze wall floor goal start agent player move up down left right north south east west wait "
    "look go step reached blocked invalid action you are at the position row column grid cell "
    "open door key box push pull search query result document answer question tool call function "
    "arguments name content user assistant system observation reward done episode turn think plan "
    "hint feedback retry success failure error true false yes no none null the a an of to in on "
    "is it this that with for and or not can cannot should will"
).split()


def _corpus() -> list[str]:
    import random

    rng = random.Random(0)
    lines = [
        "<|im_start|>system\nYou are an agent in a maze.<|im_end|>\n",
        '<tool_call>{"name": "move", "arguments": {"direction": "up"}}</tool_call>',
        "#.#.#\n#S..#\n#..G#\n#####",
    ]
    for _ in range(400):
        words = rng.choices(_WORDS, k=rng.randint(3, 12))
        lines.append(" ".join(words) + rng.choice([".", "?", "!", "\n", ": 1 2 3", " (0, 1)"]))
    return lines


def build_tokenizer():
    """A PreTrainedTokenizerFast (byte-level BPE, ~600 tokens) with the ChatML template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=640,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_corpus(), trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<|im_start|>",
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        unk_token="<|endoftext|>",
    )
    fast.chat_template = CHAT_TEMPLATE
    return fast


def make_tiny_model(path: str | os.PathLike | None = None, seed: int = 0) -> Path:
    """Build and save a tiny Llama model + tokenizer at ``path`` (a fresh temp folder if None).

    Returns the folder, loadable by ``hf:FOLDER`` and ``vllm:FOLDER``. Head size 64 (vLLM's
    CPU attention supports it), 2 layers, hidden size 128: about 0.4 M parameters.
    """
    import torch
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    folder = Path(path) if path is not None else Path(tempfile.mkdtemp(prefix="agentgym-tiny-"))
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tokenizer()
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=128,
        intermediate_size=256,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        head_dim=64,
        max_position_embeddings=4096,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        dtype="float32",
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    model.generation_config = GenerationConfig(
        bos_token_id=config.bos_token_id, eos_token_id=config.eos_token_id, pad_token_id=config.pad_token_id
    )
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    return folder
