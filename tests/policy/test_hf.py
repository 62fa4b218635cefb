"""The hf backend on the tiny model: exact logprobs, batching, seeds, stops, weight updates."""

from __future__ import annotations

import asyncio

import pytest
import torch

from agentgym.policy.base import Completion, GenerationRequest, SamplingParams
from agentgym.policy.hf import HFPolicy

PROMPTS = ["move up", "you are at row 1 column 2", "the wall is north", "search query answer", "hi"]


def chat(text: str, **params) -> GenerationRequest:
    return GenerationRequest(messages=[{"role": "user", "content": text}], params=SamplingParams(**params))


def recompute(policy: HFPolicy, prompt: list[int], completion: Completion, temperature: float) -> torch.Tensor:
    ids = torch.tensor([prompt + completion.token_ids])
    with torch.no_grad():
        logits = policy.model(ids).logits[0, len(prompt) - 1: -1].float()
    logp = torch.log_softmax(logits / (temperature or 1.0), dim=-1)
    return logp.gather(-1, torch.tensor(completion.token_ids)[:, None]).squeeze(1)


async def test_greedy_matches_transformers_generate(tiny_policy):
    requests = [chat(p, temperature=0, max_tokens=12) for p in PROMPTS]
    results = await tiny_policy.generate(requests)
    for request, (completion,) in zip(requests, results):
        prompt = tiny_policy.renderer.initial(request.messages)
        expected = tiny_policy.model.generate(
            torch.tensor([prompt]), max_new_tokens=12, do_sample=False, pad_token_id=tiny_policy.pad_id
        )[0, len(prompt):].tolist()
        assert completion.token_ids == expected[: len(completion.token_ids)]
        assert len(completion.logprobs) == len(completion.token_ids)
        assert completion.finish_reason in ("stop", "length")
        assert torch.allclose(recompute(tiny_policy, prompt, completion, 0), torch.tensor(completion.logprobs), atol=1e-4)


@pytest.mark.parametrize("temperature", [0.7, 1.0, 1.5])
async def test_sampled_logprobs_are_under_temperature_scaled_distribution(tiny_policy, temperature):
    request = chat("move left", temperature=temperature, top_p=0.9, max_tokens=16, n=3, seed=1)
    prompt = tiny_policy.renderer.initial(request.messages)
    (completions,) = await tiny_policy.generate([request])
    assert len(completions) == 3
    for completion in completions:
        got = torch.tensor(completion.logprobs)
        assert torch.allclose(recompute(tiny_policy, prompt, completion, temperature), got, atol=1e-4)


async def test_batched_equals_one_at_a_time(tiny_policy):
    requests = [chat(p, temperature=0, max_tokens=10) for p in PROMPTS]
    together = await tiny_policy.generate(requests)
    alone = [(await tiny_policy.generate([r]))[0] for r in requests]
    for a, b in zip(together, alone):
        assert a[0].token_ids == b[0].token_ids
        assert a[0].logprobs == pytest.approx(b[0].logprobs, abs=1e-4)


async def test_concurrent_callers_share_batches_and_seeds_reproduce(tiny_policy):
    requests = [chat(p, temperature=1.0, max_tokens=8, seed=7) for p in PROMPTS]
    first = await asyncio.gather(*(tiny_policy.generate([r]) for r in requests))
    second = await tiny_policy.generate(requests)
    assert [f[0][0].token_ids for f in first] == [s[0].token_ids for s in second]


async def test_token_ids_in_and_stop_strings(tiny_policy):
    prompt = tiny_policy.renderer.initial([{"role": "user", "content": "go"}])
    params = dict(temperature=1.0, max_tokens=20, seed=1)
    (free,) = await tiny_policy.generate([GenerationRequest(prompt_ids=prompt, params=SamplingParams(**params))])
    text = free[0].text
    stop = next(text[i: i + 3] for i in range(len(text) // 3, len(text) - 3)
                if "\ufffd" not in text[i: i + 3] and text[i: i + 3].strip())
    (cut,) = await tiny_policy.generate([GenerationRequest(prompt_ids=prompt, params=SamplingParams(
        stop=[stop], **params))])
    assert cut[0].finish_reason == "stop"
    assert stop not in cut[0].text and text.startswith(cut[0].text)
    assert cut[0].token_ids == free[0].token_ids[: len(cut[0].token_ids)]
    assert len(cut[0].token_ids) < len(free[0].token_ids)


async def test_max_tokens_and_version(tiny_model):
    policy = HFPolicy(tiny_model)
    (out,) = await policy.generate([chat("hi", temperature=1.0, max_tokens=3, seed=0)])
    assert len(out[0].token_ids) <= 3 and out[0].version == 0
    state = {k: v.clone() for k, v in policy.model.state_dict().items()}
    before = (await policy.generate([chat("hi", temperature=0, max_tokens=5)]))[0][0]
    with torch.no_grad():
        state["model.norm.weight"].mul_(-3.0)
    assert await policy.update_weights(state) == 1
    after = (await policy.generate([chat("hi", temperature=0, max_tokens=5)]))[0][0]
    assert after.version == 1
    assert after.logprobs != pytest.approx(before.logprobs, abs=1e-3)


def test_policy_protocol(tiny_policy):
    from agentgym.policy.base import Policy

    assert isinstance(tiny_policy, Policy)
    assert tiny_policy.generate_sync([chat("hi", temperature=0, max_tokens=2)])[0][0].token_ids


def test_sampler_draws_each_token_at_its_probability_and_never_a_cut_one():
    from agentgym.policy.hf import sample

    probs = torch.tensor([0.5, 0.0, 0.3, 0.15, 0.05])
    logits = probs.clamp(min=1e-30).log().expand(4000, -1)
    generator = torch.Generator().manual_seed(0)
    rows = torch.ones(4000)
    chosen, logp = sample(logits, rows, rows, [generator] * 4000)
    counts = torch.bincount(chosen, minlength=5).double() / 4000
    assert counts[1] == 0
    assert torch.allclose(counts, probs.double(), atol=0.025)  # ~3 standard errors at the 0.5 entry
    torch.testing.assert_close(logp, probs.log()[chosen])
    cut, _ = sample(logits[:500], rows[:500], torch.full((500,), 0.7), [generator] * 500)
    assert set(cut.tolist()) == {0, 2}  # top-p 0.7 keeps the smallest set reaching 0.7 mass
    seeded = [torch.Generator().manual_seed(7) for _ in range(2)]
    first, _ = sample(logits[:1], rows[:1], rows[:1], seeded[:1])
    again, _ = sample(logits[:3], rows[:3], rows[:3], [seeded[1], generator, generator])
    assert first[0] == again[0]  # a seeded row draws the same token whatever shares its batch
