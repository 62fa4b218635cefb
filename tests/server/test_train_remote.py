"""Training with its environments on an env server: the trainer's env_factory is remote:."""

from __future__ import annotations

import pytest

from agentgym.train.config import load_config
from agentgym.train.loop import train

from .servers import metrics, start_serve_envs

pytestmark = pytest.mark.slow


def test_training_steps_with_remote_envs_guidance_and_progress(tmp_path, tiny_folder):
    server, url = start_serve_envs("--env", "maze/v0", log=tmp_path / "server.log")
    try:
        cfg = load_config(None, [
            "name=remote", f"run_dir={tmp_path / 'run'}", "seed=1", f"model.policy=hf:{tiny_folder}",
            "envs=[{id: maze/v0, kwargs: {preset: easy, obs_mode: description}}]", f"env_factory=remote:{url}",
            "rollout.group_size=4", "rollout.groups_per_step=2", "rollout.max_tokens=4", "rollout.max_turns=3",
            "rollout.tools=false", "trainer.steps=2", "logging.progress=false", "logging.tensorboard=false",
            "guidance.enabled=true", "guidance.every_turn=true", "progress.enabled=true",
            "eval.at_end=true", "eval.episodes=4",
        ])
        result = train(cfg)
        assert result.final_step == 2 and len(result.metrics) == 2, result.metrics
        assert sum(m["guidance/guided_episodes"] for m in result.metrics) > 0  # hints came over the wire
        assert all(m["progress/scored_fraction"] == 1.0 for m in result.metrics)  # progress came with every step
        assert result.evals and result.evals[-1]["episodes"] == 4
        served = metrics(url)
        assert served["messages"]["step"] > 0 and served["sessions_open"] == 0 and served["errors_total"] == 0
    finally:
        server.terminate()
        server.wait(30)
