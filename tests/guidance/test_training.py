"""Guidance and progress inside the real training loop (tiny model, one step)."""

from __future__ import annotations

import pytest

from agentgym.train.config import load_config
from agentgym.train.loop import train


@pytest.mark.slow
def test_one_training_step_with_guidance_strip_and_progress(tmp_path, tiny_folder):
    cfg = load_config(None, [
        "name=gp", f"run_dir={tmp_path / 'run'}", "seed=3", f"model.policy=hf:{tiny_folder}",
        "envs=[{id: maze-medium/v0}]", "rollout.group_size=2", "rollout.groups_per_step=2",
        "rollout.max_tokens=4", "rollout.max_turns=2", "rollout.tools=false", "trainer.steps=1",
        "pipeline.max_staleness=0", "logging.tensorboard=false", "logging.progress=false", "logging.plot=false",
        "checkpoint.export_final=false", "guidance.enabled=true", "guidance.providers=[env_hint, feedback]",
        "guidance.context=strip", "guidance.samples=2", "progress.enabled=true", "progress.weight=0.5",
    ])
    (m,) = train(cfg).metrics
    # the random tiny model fails every group: each one is guided, stripped and ratio-corrected
    assert m["guidance/rate"] == 1.0 and m["guidance/guided_episodes"] == 4
    assert m["guidance/stripped_fraction"] == 1.0 and "guidance/log_ratio_mean" in m
    for key in ("progress/scored_fraction", "adv_turn/std", "groups/nonzero_adv_fraction", "loss"):
        assert key in m, key
    assert m["progress/scored_fraction"] == 1.0
