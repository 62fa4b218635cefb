"""Retrospective progress: env and LLM assessors in the scoring pass, the credit formula, and where it lands."""

from __future__ import annotations

import math

import numpy as np
import pytest

from agentgym.policy.base import Completion
from agentgym.rewards.pipeline import RewardPipeline
from agentgym.rewards.progress import EnvProgressAssessor, LLMProgressAssessor, parse_step_scores, progress_metrics
from agentgym.rollout.engine import EpisodeSpec, RolloutEngine
from agentgym.rollout.trajectory import Trajectory, Turn
from agentgym.train.advantages import build_samples, group_advantages
from agentgym.train.credit import normalise_group_progress, progress_credit

from .conftest import ScriptedText, TokenOracle


async def test_engine_records_progress_and_env_scores_are_its_differences(tiny_tokenizer):
    engine = RolloutEngine(TokenOracle(tiny_tokenizer, p=0.5, seed=3))
    (group,) = await engine.run_groups([EpisodeSpec("maze-medium/v0", seed=11)], 3)
    for traj in group:
        assert traj.metadata["initial_progress"] == 0.0
        progress = [traj.metadata["initial_progress"]] + [t.info["progress"] for t in traj.turns]
        scores = EnvProgressAssessor().score(traj)
        assert scores.status == "ok"
        assert np.allclose(scores.scores, np.diff(progress))
        if traj.success:
            assert progress[-1] == 1.0


async def test_progress_lands_on_the_right_turns_tokens(tiny_tokenizer):
    engine = RolloutEngine(TokenOracle(tiny_tokenizer, p=0.5, seed=0))
    groups = await engine.run_groups([EpisodeSpec("maze-medium/v0", seed=s) for s in (1, 2)], 4)
    await RewardPipeline(assessor=EnvProgressAssessor()).score(groups)
    samples, _ = build_samples(groups, credit=progress_credit(groups, weight=0.7))
    by_tokens = {tuple(s.token_ids): s for s in samples}
    checked = 0
    for group in groups:
        outcome = group_advantages([t.reward for t in group])
        norm = normalise_group_progress([t.rewards.progress for t in group])
        for traj, a_i, p_hat in zip(group, outcome, norm):
            adv = by_tokens[tuple(traj.token_ids)].advantages
            covered = np.zeros(len(adv), dtype=bool)
            for turn, p in zip(traj.turns, p_hat):
                span = adv[turn.start : turn.end]
                assert np.allclose(span, a_i + 0.7 * p, atol=1e-5), (turn.action, span, a_i, p)
                assert tiny_tokenizer.decode(traj.token_ids[turn.start : turn.end], skip_special_tokens=True) == turn.action
                covered[turn.start : turn.end] = True
                checked += 1
            assert np.all(adv[~covered] == 0.0)  # prompt and observation tokens carry nothing
    assert checked > 8
    metrics = progress_metrics([t for g in groups for t in g])
    assert metrics["progress/scored_fraction"] == 1.0 and metrics["progress/std"] > 0


def test_normalisation_formula():
    norm = normalise_group_progress([[0.5, 0.0], [None, -0.5]], eps=0.0, clip=10.0)
    values = np.array([0.5, 0.0, -0.5])
    z = (values - values.mean()) / values.std()
    assert np.allclose(norm[0], z[:2]) and norm[1][0] == 0.0 and math.isclose(norm[1][1], z[2])
    assert normalise_group_progress([[0.2, 0.2], [0.2]]) == [[0.0, 0.0], [0.0]]  # no spread, no signal
    assert max(abs(v) for v in normalise_group_progress([[10.0] + [0.0] * 20], clip=2.0)[0]) == 2.0


def _traj(tid: str, rewards_turns: list[float | None], reward: float = 0.0) -> Trajectory:
    turns = [Turn(action=f"a{i}", observation={"role": "user", "content": f"o{i}"},
                  info={} if p is None else {"progress": p}, start=10 * i + 5, end=10 * i + 8)
             for i, p in enumerate(rewards_turns)]
    t = Trajectory(id=tid, env_id="maze/v0", task_id="t", group_id="g", turns=turns, reward=reward,
                   messages=[{"role": "user", "content": "Reach the goal."}])
    t.metadata["initial_progress"] = 0.0
    t.token_ids = list(range(10 * len(turns) + 5))
    t.loss_mask = [1 if any(u.start <= k < u.end for u in turns) else 0 for k in range(len(t.token_ids))]
    t.logprobs = [0.0] * len(t.token_ids)
    return t


def test_all_failed_groups_get_signal_from_progress_only():
    group = [_traj("a", [0.2, 0.4]), _traj("b", [0.0, 0.0]), _traj("c", [0.1, None])]
    _, plain = build_samples([group])
    assert plain.metrics()["groups/nonzero_adv_fraction"] == 0.0
    import asyncio

    asyncio.run(RewardPipeline(assessor=EnvProgressAssessor()).score([group]))
    _, with_progress = build_samples([group], credit=progress_credit([group], weight=1.0))
    m = with_progress.metrics()
    assert m["groups/nonzero_adv_fraction"] == 1.0 and m["adv_turn/std"] > 0
    assert group[2].rewards.progress_status == "partial"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Step 1: 0.5\nStep 2: -1\nStep 3: 0", [0.5, -1.0, 0.0]),
        ('```json\n{"scores": [1, 0.25, -0.5]}\n```', [1.0, 0.25, -0.5]),
        ('[{"step": 2, "score": 0.5}, {"step": 1, "score": 3}]', [1.0, 0.5, None]),
        ("Here you go.\n**Step 1**: 1\nstep 3 = -0.2", [1.0, None, -0.2]),
        ("I cannot rate this.", [None, None, None]),
        ("", [None, None, None]),
    ],
)
def test_parse_step_scores(text, expected):
    assert parse_step_scores(text, 3) == expected


async def test_llm_assessor_sees_the_whole_trajectory_and_records_failures():
    trajs = [_traj("a", [0.1, 0.2], reward=1.0), _traj("b", [0.0]), _traj("c", [0.0, 0.0])]
    trajs[0].success = True

    def reply(request):
        user = request.messages[-1]["content"]
        if "Step 2" in user and "succeeded" in user:
            return "Step 1: 0.5\nStep 2: 1"
        if "Step 2" in user:
            return "no idea"
        return "Step 1: -0.5"

    judge = ScriptedText(fn=reply)
    results = await LLMProgressAssessor(judge).assess(trajs)
    assert [r.status for r in results] == ["ok", "ok", "unparseable"]
    assert results[0].scores == [0.5, 1.0] and results[1].scores == [-0.5] and results[2].scores == [None, None]
    prompt = judge.requests[0].messages[-1]["content"]
    assert "Reach the goal." in prompt and "Action: a1" in prompt and "Result: o1" in prompt

    class Broken(ScriptedText):
        async def generate(self, requests):
            return [[Completion(text="", finish_reason="error", error="backend down")] for _ in requests]

    results = await LLMProgressAssessor(Broken(), retries=0).assess(trajs[:1])
    assert results[0].status == "error" and results[0].scores == [None, None]
    await RewardPipeline(assessor=LLMProgressAssessor(Broken(), retries=0)).score(trajs[:1])
    metrics = progress_metrics(trajs[:1])
    assert metrics["progress/failures"] == 1 and metrics["progress/scored_fraction"] == 0.0
