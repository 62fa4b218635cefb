"""The learner and vLLM on CUDA (skipped with the reason where there is no GPU; tests/conftest.py).

* the learner runs on CUDA in every sync mode, with the precision the config resolves to;
* a colocated vLLM engine sleeps (frees GPU memory) and takes in-memory (CUDA IPC) weights;
* a 2-step run of the default model on the GPU; FSDP2 over 2 GPUs when there are 2.
"""

from __future__ import annotations

import asyncio
import json

import pytest
import torch

from agentgym.train.config import load_config

pytestmark = [pytest.mark.gpu]


def config(tiny_folder, *extra):
    return load_config(None, [f"model.policy=hf:{tiny_folder}", "envs=[{id: maze/v0}]", *extra])


def test_learner_on_cuda_in_every_sync_mode(tiny_folder):
    from agentgym.train.learner import Learner
    from agentgym.train.model import build_model, load_rollout_policy
    from tests.train.conftest import tiny_llama
    from tests.train.test_learner import make_samples

    cases = {
        # hf shares its bf16 module: bf16 weights with an fp32 master copy
        "shared": (config(tiny_folder), "bfloat16", "none"),
        # the learner's own copy: fp32 master weights, bf16 autocast
        "copy": (config(tiny_folder, "pipeline.share_weights=false"), "float32", "bfloat16"),
        "fp32": (config(tiny_folder, "pipeline.share_weights=false", "model.autocast=none"), "float32", "none"),
    }
    for name, (cfg, dtype, autocast) in cases.items():
        policy = load_rollout_policy(cfg)
        assert policy.model.device.type == "cuda"
        setup = build_model(cfg, policy)
        p = setup.precision
        assert p.device.startswith("cuda") and (p.dtype, p.autocast) == (dtype, autocast), name
        assert next(setup.model.parameters()).device.type == "cuda"
        learner = Learner(setup.model, cfg.trainer.model_copy(update={"lr": 1e-6}), cfg.algorithm,
                          autocast=p.autocast_dtype, master_weights=p.master_weights)
        before = {n: v.clone() for n, v in learner.trainable_state().items()}
        vocab = setup.model.config.vocab_size
        samples = make_samples(tiny_llama(vocab=vocab).float(), n=4)
        out = learner.step(samples)
        assert not out["skipped_update"] and out["grad_norm"] > 0
        after = learner.trainable_state()
        moved = sum(int((after[n] != before[n]).sum()) for n in before)
        assert moved > 0.5 * sum(v.numel() for v in before.values()), f"{name}: lr 1e-6 barely moved the weights"
        setup.sync.publish()


@pytest.mark.vllm
def test_colocated_vllm_sleeps_and_takes_ipc_weights(tiny_folder):
    from agentgym.policy import GenerationRequest, SamplingParams
    from agentgym.policy.hf import HFPolicy
    from agentgym.policy.vllm_engine import VLLMPolicy

    async def scenario():
        hf = HFPolicy(str(tiny_folder), dtype="float32")
        engine = VLLMPolicy(str(tiny_folder), dtype="float32", gpu_memory_utilization=0.3, max_model_len=512)
        try:
            assert engine.transport.name == "ipc" and engine.sleep_mode
            free_awake = torch.cuda.mem_get_info()[0]
            assert await engine.sleep()
            assert torch.cuda.mem_get_info()[0] > free_awake + 100 * 2**20  # the KV cache left the GPU
            state = {k: v.clone() for k, v in hf.model.state_dict().items()}
            state["model.norm.weight"].mul_(1.5)
            assert await engine.update_weights(state) == 1 and not engine.sleeping  # woken, loaded, woken
            await hf.update_weights(state)
            request = GenerationRequest(messages=[{"role": "user", "content": "move up"}],
                                        params=SamplingParams(temperature=1.0, max_tokens=8, seed=0))
            (completion,), = await engine.generate([request])
            prompt = hf.renderer.initial(request.messages)
            with torch.no_grad():
                logits = hf.model(torch.tensor([prompt + completion.token_ids], device=hf.device)).logits
            logp = torch.log_softmax(logits[0, len(prompt) - 1:-1].float(), -1)
            expected = logp.gather(-1, torch.tensor(completion.token_ids, device=hf.device)[:, None]).squeeze(1)
            assert torch.allclose(torch.tensor(completion.logprobs), expected.cpu(), atol=2e-3)
        finally:
            await engine.close()

    asyncio.run(scenario())


@pytest.mark.vllm
@pytest.mark.slow
def test_training_with_colocated_vllm_on_one_gpu(tmp_path, tiny_folder):
    from agentgym.train.loop import train
    from tests.train.toy_env import register

    register()
    cfg = load_config(None, [
        "name=gpu-vllm", f"run_dir={tmp_path / 'run'}", f"model.policy=vllm:{tiny_folder}",
        "model.policy_kwargs={gpu_memory_utilization: 0.3, max_model_len: 512}", "envs=[{id: letter/v0}]",
        "rollout.group_size=4", "rollout.groups_per_step=4", "rollout.max_tokens=3", "trainer.steps=2",
        "trainer.lr=0.01", "pipeline.max_staleness=0", "checkpoint.export_final=false",
        "logging.tensorboard=false", "logging.progress=false", "logging.plot=false",
    ])
    result = train(cfg)
    assert result.final_step == 2
    # on-policy at step 2 (the engine took the step-1 weights through IPC); bf16 engine vs bf16-autocast learner
    assert result.metrics[1]["behaviour_logp_abs_diff"] < 5e-2 and result.metrics[1]["policy_version"] == 2
    saved = (tmp_path / "run" / "config.yaml").read_text()
    assert "device: cuda:" in saved and "dtype: float32" in saved and "autocast: bfloat16" in saved


@pytest.mark.model
@pytest.mark.slow
def test_two_steps_of_the_default_model_on_the_gpu(tmp_path):
    from pathlib import Path

    from agentgym.train.loop import train

    cfg = load_config(Path(__file__).resolve().parents[2] / "configs" / "maze.yaml", [
        f"run_dir={tmp_path / 'run'}", "trainer.steps=2", "eval.at_start=false", "eval.at_end=false",
        "checkpoint.export_final=false", "logging.progress=false", "logging.plot=false",
    ])
    result = train(cfg)
    assert result.final_step == 2 and all(not m.get("skipped_update") for m in result.metrics)
    saved = (tmp_path / "run" / "config.yaml").read_text()
    assert "device: cuda:" in saved  # the default hf policy shares its bf16 module: fp32 master copy
    assert "dtype: bfloat16" in saved


@pytest.mark.slow
@pytest.mark.skipif(not torch.cuda.is_available() or torch.cuda.device_count() < 2, reason="needs 2 GPUs")
def test_fsdp_over_two_gpus_equals_one_process(tmp_path, tiny_folder):
    from tests.train.test_parallel import torchrun

    out = tmp_path / "out.json"
    torchrun("tests/train/parallel_check.py", str(out), str(tiny_folder))
    result = json.loads(out.read_text())
    # the sharded side computes in bf16 (FSDP's mixed precision), the reference in fp32 on the CPU
    assert result["reload_equal"] and result["keys_equal"] and result["max_diff"] < 5e-3
