"""Model set-up and weight sync: which sync a policy gets, dtype, and what publish does."""

from __future__ import annotations

import pytest
import torch

from agentgym.errors import UserError
from agentgym.train.config import load_config
from agentgym.train.model import build_model, load_rollout_policy
from agentgym.train.weights import CopySync, SharedSync


def config(tiny_folder, *extra):
    return load_config(None, [f"model.policy=hf:{tiny_folder}", "envs=[{id: maze/v0}]", *extra])


def test_shared_and_copy_sync_and_dtype(tiny_folder):
    cfg = config(tiny_folder)
    policy = load_rollout_policy(cfg)
    shared = build_model(cfg, policy)
    assert isinstance(shared.sync, SharedSync) and shared.model is policy.model
    assert shared.sync.update_lock is policy.lock and shared.ref_model is None
    shared.sync.publish()
    assert policy.version == 1

    cfg = config(tiny_folder, "pipeline.share_weights=false", "algorithm.kl_coef=0.1")
    policy = load_rollout_policy(cfg)
    copied = build_model(cfg, policy)
    assert isinstance(copied.sync, CopySync) and copied.model is not policy.model
    assert copied.ref_model is not None and not any(p.requires_grad for p in copied.ref_model.parameters())
    with torch.no_grad():
        for p in copied.model.parameters():
            p.add_(1.0)
    copied.sync.publish()
    for (name, a), b in zip(copied.model.named_parameters(), policy.model.parameters()):
        torch.testing.assert_close(a, b, msg=name)
    assert policy.version == 1

    cfg = config(tiny_folder, "model.dtype=bfloat16", "pipeline.share_weights=false")
    assert next(build_model(cfg, load_rollout_policy(cfg)).model.parameters()).dtype == torch.bfloat16


@pytest.mark.parametrize("spec", ["scripted:oracle", "openai:http://127.0.0.1:9/v1#m"])
def test_untrainable_policies_are_refused(spec, tiny_folder):
    with pytest.raises(UserError, match="cannot be trained"):
        load_rollout_policy(config(tiny_folder, f"model.policy={spec}"))


def test_training_config_sets_the_engine_rollout(tiny_folder):
    cfg = config(tiny_folder, "rollout.step_timeout_s=12", "rollout.env_concurrency={swe: 3}",
                 "rollout.system_prompt=Be brief.", "rollout.tools=false", "rollout.group_size=4")
    engine = cfg.rollout.engine_config()
    assert engine.step_timeout_s == 12 and engine.env_concurrency == {"swe": 3} and not engine.tools
    assert engine.max_tokens == 64 and not hasattr(engine, "group_size")
    assert cfg.rollout.engine_config(temperature=0.0).sampling.temperature == 0.0
    with pytest.raises(UserError, match="rollout.temperature"):
        config(tiny_folder, "rollout.temperature=0")
