"""Pipeline pieces that need no model: multi-task sampling, per-env metrics, the CLI's errors."""

import collections

import pytest

from agentgym.cli import main
from agentgym.rollout.trajectory import Trajectory
from agentgym.train.config import load_config
from agentgym.train.pipeline import Trainer, rollout_metrics


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


def test_a_shared_learner_step_empties_the_rollout_prefix_cache():
    """Generation can run between the optimizer write and the version bump; it must not reuse old keys/values."""
    import threading
    import types

    import torch

    from agentgym.policy.prefix_cache import PrefixCache

    cache = PrefixCache(max_bytes=10**6)
    cache.store([1, 2, 3], [(torch.zeros(1, 3, 2), torch.zeros(1, 3, 2))], version=0)
    trainer = Trainer.__new__(Trainer)
    trainer.sync_mode = "shared"
    trainer._weights_lock = threading.RLock()
    trainer.raw_policy = types.SimpleNamespace(prefix_cache=cache)
    trainer.learner = types.SimpleNamespace(step=lambda samples, update_lock=None: {"loss": 0.0})
    assert trainer._locked_step([]) == {"loss": 0.0}
    assert len(cache) == 0
