"""Long-running checks: RSS stays flat over 500 episode starts; the eval suites score the oracle 1.0."""

from __future__ import annotations

import gc
import os
import statistics

import pytest

import agentgym

pytestmark = [pytest.mark.alfworld, pytest.mark.slow]


def _rss_mb() -> float:
    with open(f"/proc/{os.getpid()}/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="reads RSS from /proc")
def test_500_resets_keep_rss_flat():
    """As the rollout engine does: a new env per episode, reset, one step, close (engines pooled)."""
    def episode(seed: int) -> None:
        env = agentgym.make("alfworld/v0")
        env.reset(seed=seed)
        env.step(env.valid_actions()[0])
        env.close()

    for seed in range(60):  # warm-up: every train game prepared, the pool filled
        episode(seed)
    gc.collect()
    samples = []
    for seed in range(60, 560):
        episode(seed)
        if seed % 50 == 0:
            gc.collect()
            samples.append(_rss_mb())
    base = statistics.median(samples[:2])
    assert max(samples) <= base * 1.10, f"RSS grew from {base:.0f} MB to {max(samples):.0f} MB: {samples}"


def test_eval_suite_scores_the_oracle_one(tmp_path):
    """(alfworld_seen's games are all won by the expert in test_env as well.)"""
    from agentgym.eval.runner import evaluate

    suite = "alfworld_unseen"
    result = evaluate(suite, "scripted:oracle", out_dir=tmp_path, progress=False)
    assert result.success_rate == 1.0
    assert len(result.trajectories) == 18 and len({t.task_id for t in result.trajectories}) == 18
    assert all(t.task_id.startswith("valid_unseen/") for t in result.trajectories)
    assert set(result.results["envs"]) == {
        f"unseen-{t}" for t in ("pick_and_place", "examine_in_light", "clean", "heat", "cool", "pick_two")}
