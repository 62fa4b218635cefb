"""Group-relative advantages and their placement on tokens."""

import numpy as np
import pytest

from agentgym.rollout.trajectory import Trajectory, Turn
from agentgym.train.advantages import build_samples, group_advantages, spread_over_tokens, turn_advantages


def traj(reward, group="g", turns=((2, 4), (6, 8)), n=8, status="completed"):
    mask = [0] * n
    for s, e in turns:
        mask[s:e] = [1] * (e - s)
    return Trajectory(id="x", env_id="e", task_id="t", group_id=group, token_ids=list(range(n)), loss_mask=mask,
                      logprobs=[-1.0 * m for m in mask], reward=reward, status=status,
                      turns=[Turn(action="", observation={}, start=s, end=e) for s, e in turns])


def test_grpo_and_dr_grpo():
    a = group_advantages([1, 0, 0, 1])
    assert a.mean() == pytest.approx(0) and a.std() == pytest.approx(1, abs=1e-4)
    d = group_advantages([1, 0, 0, 1], "dr_grpo")
    assert list(d) == [0.5, -0.5, -0.5, 0.5]


def test_tokens_get_turn_values_only_on_mask():
    t = traj(1.0)
    out = spread_over_tokens(t, [2.0, -1.0])
    assert list(out) == [0, 0, 2, 2, 0, 0, -1, -1]
    assert turn_advantages([0.5, -0.5], 1.0, turn_weight=0.0) == [1.0, 1.0]
    assert turn_advantages([0.5, -0.5], 1.0, turn_weight=2.0) == [2.0, 0.0]


def test_build_samples_drops_zero_variance_and_failed():
    groups = [[traj(1, "a"), traj(0, "a")], [traj(1, "b"), traj(1, "b")],
              [traj(1, "c"), traj(0, "c", status="failed")]]
    samples, stats = build_samples(groups, drop_zero_variance=True)
    assert len(samples) == 2 and stats.groups_dropped == 2 and stats.failed == 1
    assert stats.zero_variance_fraction == pytest.approx(1 / 3)
    assert samples[0].advantages[2] > 0 > samples[1].advantages[2]
    kept, _ = build_samples(groups[:2])
    assert len(kept) == 4 and np.all(kept[2].advantages == 0)


def test_custom_turn_credit_hook():
    groups = [[traj(1), traj(0)]]
    samples, _ = build_samples(groups, credit=lambda t, adv: [adv, 0.0])
    assert samples[0].advantages[2] > 0 and samples[0].advantages[6] == 0
