"""A few GRPO steps on qa/v0 (rubric rewards) with the tiny test model, then the recorded
trajectories re-scored by the reward pipeline with a judge.

The environment's reward *is* its rubric score over the deterministic criteria; the second
test puts the reward pipeline into the training loop through the config's `rewards:` section.
"""

import pytest

from agentgym.rewards import Judge, RewardConfig, RewardPipeline
from agentgym.rollout.trajectory import read_jsonl
from tests.rewards.helpers import FakePolicy


def qa_config(tmp_path, tiny_folder, *extra):
    """Two groups of two one-turn qa/v0 episodes per step with the tiny model; ``extra`` overrides."""
    from agentgym.train.config import load_config

    return load_config(None, [
        f"run_dir={tmp_path / 'run'}", f"model.policy=hf:{tiny_folder}",
        "envs=[{id: qa/v0}]", "rollout.group_size=2", "rollout.groups_per_step=2", "rollout.max_tokens=8",
        "rollout.max_turns=1", "rollout.tools=false", "checkpoint.every=100",
        "checkpoint.export_final=false", "logging.progress=false", "logging.tensorboard=false",
        "logging.plot=false", *extra,
    ])


@pytest.mark.slow
async def test_grpo_steps_on_qa_with_rubric_rewards(tmp_path, tiny_folder):
    import asyncio

    from agentgym.train.loop import train

    cfg = qa_config(tmp_path, tiny_folder, "name=qa-tiny", "seed=0", "trainer.steps=2")
    result = await asyncio.to_thread(train, cfg)
    assert result.final_step == 2 and len(result.metrics) == 2
    files = sorted((cfg.run_path / "trajectories").glob("*.jsonl"))
    trajs = [t for f in files for t in read_jsonl(f)]
    assert len(trajs) == 8
    for t in trajs:
        if t.status == "completed" and t.turns and "rubric" in t.turns[-1].info:
            assert t.reward == pytest.approx(t.turns[-1].info["rubric"]["score"] or 0.0)
    assert any("rubric" in t.turns[-1].info for t in trajs if t.turns)

    judge = Judge(FakePolicy("Rationale: judged\nScore: 1"))
    # the trajectories carry their tasks (rubrics and hidden references): no task source needed
    assert all(t.task is not None and t.task.rubric for t in trajs)
    pipeline = RewardPipeline(RewardConfig(env_weight=0.0, rubric_weight=1.0), judges={"default": judge})
    rewards = await pipeline.score_trajectories(trajs)
    assert len(rewards) == 8 and all(0.0 <= r <= 1.0 for r in rewards)
    judged = [c for t in trajs for c in t.metadata["rubric"]["criteria"] if c["kind"] == "judged"]
    assert judged and all(c["status"] == "ok" for c in judged)


@pytest.mark.slow
async def test_training_config_rewards_section_scores_rubrics_in_the_loop(tmp_path, tiny_folder):
    """With `rewards:` in the config the learner itself calls the reward pipeline each step."""
    import asyncio

    from agentgym.train.loop import train

    cfg = qa_config(tmp_path, tiny_folder, "name=qa-rubric", "seed=1", "trainer.steps=1",
                    "rewards={env_weight: 0.0, rubric_weight: 1.0}")
    result = await asyncio.to_thread(train, cfg)
    assert result.final_step == 1
    assert result.metrics[0].get("rubric/scored", 0) + result.metrics[0].get("rubric/unscorable", 0) == 4
    trajs = [t for f in sorted((cfg.run_path / "trajectories").glob("*.jsonl")) for t in read_jsonl(f)]
    assert len(trajs) == 4
    for t in trajs:
        assert t.rewards.total == pytest.approx(t.rewards.rubric or 0.0) and "criteria" in t.metadata["rubric"]
