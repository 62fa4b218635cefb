"""Silent non-learning made loud: a step where every episode failed stops the run; flat rewards,
invalid actions, truncation and slow steps warn (log, progress bar, metrics.jsonl)."""

import logging

import pytest

from agentgym.core import Task, TextEnv
from agentgym.errors import UserError
from agentgym.rollout.trajectory import Trajectory, Turn
from agentgym.train.config import HealthConfig, load_config
from agentgym.train.health import RunHealth, raise_if_all_failed
from agentgym.train.metrics import read_metrics


def traj(status="completed", error=None, invalid=(False,)):
    turns = [Turn(action="x", observation={}, info={"invalid_action": bad}) for bad in invalid]
    return Trajectory(id="t", env_id="e/v0", task_id="k", status=status, error=error, turns=turns)


def test_all_failed_raises_the_first_error_in_one_line():
    groups = [[traj("failed", "Traceback ...\nValueError: boom"), traj("failed", "other")]]
    with pytest.raises(UserError) as info:
        raise_if_all_failed(groups, 1, where="runs/x/trajectories/step-000001.jsonl")
    text = str(info.value)
    assert "\n" not in text and "all 2 episodes failed" in text and "ValueError: boom" in text
    assert "no checkpoint" in text
    raise_if_all_failed([[traj("failed", "x"), traj()]], 1)  # one finished: no error


def test_zero_variance_warns_after_n_consecutive_steps(caplog):
    health = RunHealth(HealthConfig(zero_variance_steps=3))
    groups = [[traj(), traj()]]
    seen = []
    with caplog.at_level(logging.WARNING, logger="agentgym"):
        for step in range(1, 5):
            metrics = {"groups/zero_variance_fraction": 1.0}
            seen.append(health.observe(step, groups, metrics))
    assert seen[:2] == [[], []] and seen[2] == ["zero_variance"] and seen[3] == ["zero_variance"]
    assert sum("zero advantage" in r.getMessage() for r in caplog.records) == 1  # logged when it starts
    metrics = {"groups/zero_variance_fraction": 0.5}
    assert health.observe(5, groups, metrics) == [] and "warn/zero_variance" not in metrics


def test_invalid_truncation_and_slow_step_warnings():
    health = RunHealth(HealthConfig(invalid_action_rate=0.5, truncation_rate=0.9, slow_step_factor=3.0))
    groups = [[traj(invalid=(True, True, False))]]
    metrics = {"episode/truncated": 1.0, "time/step_s": 1.0}
    assert health.observe(1, groups, metrics) == ["invalid_actions", "truncation"]
    assert metrics["actions/invalid_rate"] == pytest.approx(2 / 3) and metrics["warn/truncation"] is True
    for step, secs in ((2, 1.0), (3, 1.2), (4, 3.9)):
        found = health.observe(step, [[traj()]], {"time/step_s": secs})
    assert found == []  # 3.9x the median, but under 5 s more: jitter
    assert health.observe(5, [[traj()]], {"time/step_s": 10.0}) == ["slow_step"]


class BrokenEnv(TextEnv):
    """Resets fine; every step raises (an env bug)."""

    blocking = False

    def generate_task(self, index: int) -> Task:
        return Task(id=f"b{index}", inputs={})

    def setup(self, task: Task) -> str:
        return "Say anything."

    def on_text(self, text: str) -> str:
        raise RuntimeError("the env's database is gone")


class FlatEnv(BrokenEnv):
    """Every reply scores 0: no group ever has reward variance."""

    def on_text(self, text: str) -> str:
        self.finish(0.0, False)
        return "Done."


def _config(tmp_path, tiny_folder, env_id, *extra):
    import agentgym

    for name, cls in (("health-broken/v0", BrokenEnv), ("health-flat/v0", FlatEnv)):
        if name not in agentgym.registry():
            agentgym.register(name, cls)
    return load_config(None, [
        "name=h", f"run_dir={tmp_path / 'run'}", f"model.policy=hf:{tiny_folder}", f"envs=[{{id: {env_id}}}]",
        "rollout.group_size=2", "rollout.groups_per_step=2", "rollout.max_tokens=3", "logging.progress=false",
        "logging.tensorboard=false", "logging.plot=false", "checkpoint.every=1", "checkpoint.export_final=false",
        "pipeline.max_staleness=0", *extra,
    ])


@pytest.mark.slow
def test_a_step_where_every_episode_errors_stops_the_run(tmp_path, tiny_folder):
    from agentgym.train.loop import train

    cfg = _config(tmp_path, tiny_folder, "health-broken/v0", "trainer.steps=3", "pipeline.max_staleness=1")
    with pytest.raises(UserError, match="all 4 episodes failed.*the env's database is gone"):
        train(cfg)
    assert not (cfg.run_path / "checkpoints").exists() or not any((cfg.run_path / "checkpoints").iterdir())


@pytest.mark.slow
def test_a_zero_variance_run_prints_the_warning(tmp_path, tiny_folder, caplog):
    from agentgym.train.loop import train

    cfg = _config(tmp_path, tiny_folder, "health-flat/v0", "trainer.steps=3", "logging.health.zero_variance_steps=2")
    with caplog.at_level(logging.WARNING, logger="agentgym"):
        train(cfg)
    assert any("zero advantage" in r.getMessage() for r in caplog.records)
    records = [r for r in read_metrics(cfg.run_path / "metrics.jsonl") if r["kind"] == "train"]
    assert [bool(r.get("warn/zero_variance")) for r in records] == [False, True, True]
