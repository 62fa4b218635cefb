"""Ray on GPUs (skipped with the reason where there are fewer than 2): the learner on the driver's GPU,
a vLLM engine actor on another, weights broadcast over NCCL after every step."""

from __future__ import annotations

import pytest
import torch

from agentgym.train.config import load_config
from agentgym.train.loop import train
from tests.distributed.envs import register
from tests.distributed.test_ray_training import overrides

pytestmark = [pytest.mark.gpu, pytest.mark.vllm, pytest.mark.slow,
              pytest.mark.skipif(not torch.cuda.is_available() or torch.cuda.device_count() < 2,
                                 reason="needs 2 GPUs (the learner's and the engine's)")]


def test_engine_actor_on_its_own_gpu_follows_the_learner_over_nccl(ray_cluster, tmp_path, tiny_folder):
    register()
    cfg = load_config(None, overrides(
        tmp_path / "run", tiny_folder, f"model.policy=vllm:{tiny_folder}",
        "model.policy_kwargs={max_model_len: 512, gpu_memory_utilization: 0.3}",
        "distributed={rollout_workers: 1, engines: 1, worker_setup: ['tests.distributed.envs:register']}",
    ))
    result = train(cfg)
    assert result.final_step == 2 and result.metrics[1]["episodes/failed"] == 0
    assert result.metrics[1]["behaviour_logp_abs_diff"] < 5e-2  # bf16 engine, on-policy after the broadcast
