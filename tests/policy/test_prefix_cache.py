"""The hf backend's prefix cache: later turns reuse earlier keys/values and sample exactly the same."""

from __future__ import annotations

import pytest
import torch

from agentgym.policy.base import GenerationRequest, SamplingParams
from agentgym.policy.hf import HFPolicy
from agentgym.policy.prefix_cache import PrefixCache

OPENINGS = ["move up", "you are at row 1 column 2", "the wall is north, the goal is far to the east"]


def tokens_of(policy: HFPolicy, text: str) -> list[int]:
    return policy.tokenizer(text, add_special_tokens=False)["input_ids"]


async def converse(policy: HFPolicy, turns: int, n: int = 1, temperature: float = 0.0) -> list[list]:
    """Three conversations side by side for ``turns`` turns; returns every turn's completions."""
    prompts = [policy.renderer.initial([{"role": "user", "content": text}]) for text in OPENINGS]
    history = []
    for turn in range(turns):
        params = SamplingParams(temperature=temperature, max_tokens=6, n=n, seed=turn)
        results = await policy.generate([GenerationRequest(prompt_ids=p, params=params) for p in prompts])
        history.append(results)
        observation = tokens_of(policy, f" the tool says step {turn} went fine")
        prompts = [p + results[i][0].token_ids + observation for i, p in enumerate(prompts)]
    return history


@pytest.fixture()
def pair(tiny_model):
    """The same weights with and without a prefix cache."""
    cached = HFPolicy(tiny_model)
    plain = HFPolicy(cached.model, cached.tokenizer, prefix_cache_gb=0)
    return cached, plain


@pytest.mark.parametrize("n, temperature", [(1, 0.0), (2, 1.0)])
async def test_later_turns_hit_the_cache_and_sample_the_same(pair, n, temperature):
    cached, plain = pair
    with_cache = await converse(cached, turns=4, n=n, temperature=temperature)
    without = await converse(plain, turns=4, n=n, temperature=temperature)
    assert plain.prefix_cache is None
    # turn 1 misses for all three conversations; each later turn reuses the previous one
    assert cached.prefix_cache.hits == 3 * n * 3
    assert cached.prefix_cache.reused_tokens > 0
    for turn_a, turn_b in zip(with_cache, without):
        for request_a, request_b in zip(turn_a, turn_b):
            for a, b in zip(request_a, request_b):
                assert a.token_ids == b.token_ids
                assert a.logprobs == pytest.approx(b.logprobs, abs=1e-4)


async def test_a_batch_mixes_cached_and_new_prompts(pair):
    cached, plain = pair
    first = await converse(cached, turns=1)
    prompt = cached.renderer.initial([{"role": "user", "content": OPENINGS[0]}])
    follow_up = prompt + first[0][0][0].token_ids + tokens_of(cached, " ok, and now?")
    fresh = cached.renderer.initial([{"role": "user", "content": "a brand new episode starts here"}])
    params = SamplingParams(temperature=0, max_tokens=8)
    requests = [GenerationRequest(prompt_ids=p, params=params) for p in (fresh, follow_up)]
    hits_before = cached.prefix_cache.hits
    got = await cached.generate(requests)
    assert cached.prefix_cache.hits == hits_before + 1
    expected = await plain.generate(requests)
    for (a,), (b,) in zip(got, expected):
        assert a.token_ids == b.token_ids
        assert a.logprobs == pytest.approx(b.logprobs, abs=1e-4)


async def test_a_weight_update_drops_the_cache(pair):
    cached, _ = pair
    await converse(cached, turns=1)
    assert len(cached.prefix_cache) == 3
    await cached.update_weights()
    assert len(cached.prefix_cache) == 0
    await converse(cached, turns=2)
    assert cached.prefix_cache.hits == 3  # only the second turn of the new run


def kv(tokens: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    return [(torch.zeros(2, tokens, 4), torch.zeros(2, tokens, 4))]


def test_lookup_takes_the_longest_proper_prefix_of_the_same_version():
    cache = PrefixCache(max_bytes=10**6)
    cache.store([1, 2], kv(2), version=0)
    cache.store([1, 2, 3, 4], kv(4), version=0)
    cache.store([1, 2, 3], kv(3), version=1)
    assert cache.lookup([1, 2, 3, 4, 5], version=0).ids == [1, 2, 3, 4]
    assert cache.lookup([1, 2, 3, 4], version=0).ids == [1, 2]  # one token must stay new
    assert cache.lookup([1, 2, 3, 9], version=1).ids == [1, 2, 3]
    assert cache.lookup([1, 9, 3, 4, 5], version=0) is None
    assert cache.lookup([7, 2, 3, 4, 5], version=0) is None


def test_least_recently_used_entries_go_first():
    one = 2 * 2 * 3 * 4 * 4  # bytes of kv(3)
    cache = PrefixCache(max_bytes=2 * one)
    cache.store([1, 2, 3], kv(3), version=0)
    cache.store([4, 5, 6], kv(3), version=0)
    assert cache.lookup([1, 2, 3, 0], version=0) is not None  # [1, 2, 3] is now the most recent
    cache.store([7, 8, 9], kv(3), version=0)
    assert len(cache) == 2 and cache.nbytes == 2 * one
    assert cache.lookup([4, 5, 6, 0], version=0) is None
    assert cache.lookup([1, 2, 3, 0], version=0) is not None
    entry = cache.lookup([7, 8, 9, 0], version=0)
    cache.discard(entry)
    assert cache.lookup([7, 8, 9, 0], version=0) is None and len(cache) == 1
    capped = PrefixCache(max_bytes=10**6, max_entries=1)
    capped.store([1], kv(1), version=0)
    capped.store([2], kv(1), version=0)
    assert len(capped) == 1 and capped.lookup([2, 0], version=0) is not None
