"""Pipeline pieces that need no model: multi-task sampling, per-env metrics, the CLI's errors."""

import collections

import pytest

from agentgym.cli import main
from agentgym.rollout.trajectory import Trajectory
from agentgym.train.config import load_config
from agentgym.train.loop import Trainer
from agentgym.train.metrics import rollout_metrics


def config(tmp_path, *extra):
    return load_config(None, [
        f"run_dir={tmp_path}", "rollout.groups_per_step=400",
        "envs=[{id: maze/v0, weight: 3, name: maze}, {id: maze/v0, weight: 1, name: maze2, kwargs: {preset: easy}}]",
        *extra,
    ])


def test_multi_task_weights_and_determinism(tmp_path):
    trainer = Trainer(config(tmp_path))
    specs = trainer.episode_specs(5)
    counts = collections.Counter(s.metadata["env"] for s in specs)
    assert 0.68 < counts["maze"] / 400 < 0.82
    assert [s.seed for s in specs] == [s.seed for s in trainer.episode_specs(5)]
    assert [s.seed for s in specs] != [s.seed for s in trainer.episode_specs(6)]
    easy = next(s for s in specs if s.metadata["env"] == "maze2")
    assert easy.env_kwargs == {"preset": "easy", "split": "train"}


def test_rollout_metrics_per_env_and_staleness():
    envs = config("/tmp").envs
    def t(env, reward, version):
        return Trajectory(id="x", env_id="maze/v0", task_id="t", reward=reward, success=reward > 0,
                          policy_version=version, metadata={"env": env}, token_ids=[1, 2], loss_mask=[0, 1])
    groups = [[t("maze", 1.0, 3), t("maze", 0.0, 3)], [t("maze2", 1.0, 2), t("maze2", 1.0, 2)]]
    m = rollout_metrics(groups, 3, envs)
    assert m["reward/mean"] == 0.75 and m["env/maze/success"] == 0.5 and m["env/maze2/success"] == 1.0
    assert m["staleness/max"] == 1 and m["staleness/mean"] == 0.5 and m["tokens/generated"] == 4


def test_cli_errors_are_one_line(tmp_path, capsys):
    assert main(["train", str(tmp_path / "missing.yaml")]) == 2
    assert "does not exist" in capsys.readouterr().err
    cfg = tmp_path / "c.yaml"
    cfg.write_text("envs: [{id: maze/v0}]\n")
    assert main(["train", str(cfg), "trainer.lrr=1"]) == 2
    err = capsys.readouterr().err
    assert "trainer.lrr" in err and err.count("\n") == 1
    assert main(["train", str(cfg), "--print-config", "trainer.lr=2e-5"]) == 0
    assert "lr: 2.0e-05" in capsys.readouterr().out


def test_the_learner_step_and_the_weight_sync_are_one_job(tiny_folder):
    """No generation can run between the optimizer's write and the policy learning of it: the shared
    hf policy's version moves on and its prefix cache (old weights' keys/values) is emptied in the same
    torch-thread job; a skipped step still moves the version on."""
    import types

    import torch

    from agentgym.policy.hf import HFPolicy
    from agentgym.train.weights import SharedSync

    policy = HFPolicy(str(tiny_folder))
    policy.prefix_cache.store([1, 2, 3], [(torch.zeros(1, 3, 2), torch.zeros(1, 3, 2))], version=0)
    trainer = Trainer.__new__(Trainer)
    trainer.sync = SharedSync(policy, policy.model, policy.weights())
    steps = []
    trainer.learner = types.SimpleNamespace(
        step=lambda samples, update_lock=None: steps.append(update_lock is policy.lock) or {"loss": 0.0})
    learned, sync_s = trainer._learn_and_publish(["sample"])
    assert learned == {"loss": 0.0} and steps == [True] and sync_s >= 0
    assert policy.version == 1 and len(policy.prefix_cache) == 0
    assert trainer._learn_and_publish([])[0] is None and steps == [True] and policy.version == 2
