"""Config: YAML + dotted overrides, one-sentence errors, round trip."""

import pytest

from agentgym.errors import UserError
from agentgym.train.config import load_config, save_config

BASE = """
name: t
envs:
  - id: maze/v0
    kwargs: {preset: easy}
trainer:
  lr: 1.0e-5
"""


def write(tmp_path, text=BASE):
    p = tmp_path / "c.yaml"
    p.write_text(text)
    return p


def test_overrides_apply_with_yaml_types(tmp_path):
    cfg = load_config(write(tmp_path), ["trainer.lr=1e-6", "envs.0.kwargs.obs_mode=description",
                                        "pipeline.max_staleness=0", "logging.tensorboard=false"])
    assert cfg.trainer.lr == 1e-6
    assert cfg.envs[0].kwargs == {"preset": "easy", "obs_mode": "description"}
    assert cfg.pipeline.max_staleness == 0 and cfg.logging.tensorboard is False


@pytest.mark.parametrize("override,needle", [
    (["trainer.lrr=1"], "trainer.lrr"),
    (["trainer.lr=-1"], "trainer.lr"),
    (["envs.3.weight=2"], "envs.3"),
    (["algorithm.estimator=ppo"], "algorithm.estimator"),
    (["nonsense"], "key.subkey=value"),
])
def test_errors_are_one_sentence_user_errors(tmp_path, override, needle):
    with pytest.raises(UserError) as info:
        load_config(write(tmp_path), override)
    msg = str(info.value)
    assert needle in msg and "\n" not in msg


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        load_config(tmp_path / "nope.yaml")
    with pytest.raises(UserError, match="not valid YAML"):
        load_config(write(tmp_path, "a: [1,"))
    with pytest.raises(UserError, match="envs"):
        load_config(write(tmp_path, "name: x\n"))


def test_round_trip(tmp_path):
    cfg = load_config(write(tmp_path), ["algorithm.estimator=dr_grpo"])
    save_config(cfg, tmp_path / "run" / "config.yaml")
    again = load_config(tmp_path / "run" / "config.yaml")
    assert again == cfg
    assert again.algorithm.aggregation == "seq_sum_norm"
    assert cfg.run_path.name == "t"


@pytest.mark.parametrize("name", ["maze", "multitask", "maze-lora"])
def test_shipped_configs_validate(name):
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "configs" / f"{name}.yaml"
    cfg = load_config(path)
    assert cfg.envs and cfg.trainer.steps > 0
