"""What crosses the boundaries of a training run: the hidden reference never reaches a prompt, and
the advantage statistics that are logged are those of the samples the learner trains on."""

from __future__ import annotations

import numpy as np
import pytest

import agentgym
from agentgym import Task, TextEnv
from agentgym.rollout.trajectory import RewardParts, Trajectory, Turn
from agentgym.train.advantages import build_samples
from agentgym.train.credit import progress_credit

SECRET = "ZEBRA-SECRET-42"


class SecretEnv(TextEnv):
    """Say the hidden word; the word is only in the task's reference."""

    def generate_task(self, index: int) -> Task:
        return Task(id=f"secret-{index}", inputs={"n": index},
                    reference={"answer": SECRET, "solution": f"say {SECRET}"})

    def setup(self, task: Task) -> str:
        self.tries = 0
        return "Guess the hidden word."

    def on_text(self, text: str) -> str:
        self.tries += 1
        if SECRET in text:
            self.finish(1.0, True)
            return "Right."
        return "No, try again."

    def hint(self) -> str:
        return "It is an animal followed by a code."

    def progress(self) -> float:
        return min(1.0, self.tries / 10)


def traj(tid: str, group: str, score: float, progress: list[float | None], status: str = "completed") -> Trajectory:
    turns = [Turn(action="a", observation={"role": "user", "content": "o"}, start=4 * i + 1, end=4 * i + 3)
             for i in range(len(progress))]
    mask = [0] * (4 * len(progress) + 1)
    for t in turns:
        mask[t.start:t.end] = [1] * (t.end - t.start)
    t = Trajectory(id=tid, env_id="e", task_id=group, group_id=group, status=status, turns=turns,
                   token_ids=list(range(len(mask))), loss_mask=mask, logprobs=[0.0] * len(mask))
    t.rewards = RewardParts(outcome=score, progress=progress, progress_status="ok", total=score)
    return t


def test_logged_advantage_statistics_are_those_of_the_trained_samples():
    groups = [
        [traj("a1", "a", 1.0, [0.1, 0.5]), traj("a2", "a", 0.0, [0.0, 0.0]), traj("a3", "a", 0.0, [0.2, None])],
        [traj("b1", "b", 1.0, [0.3]), traj("b2", "b", 1.0, [0.0])],  # flat: dropped
        [traj("c1", "c", 1.0, [0.4]), traj("c2", "c", 0.0, [0.1], status="failed")],  # one left: dropped
        [traj("d1", "d", 0.5, [0.2, 0.1]), traj("d2", "d", 0.5, [0.0, 0.3])],  # flat outcome, progress varies
    ]
    credit = progress_credit(groups, weight=0.5)
    samples, stats = build_samples(groups, drop_zero_variance=True, credit=credit)
    assert {s.group for s in samples} == {"a"} and stats.groups_dropped == 3 and stats.failed == 1
    kept, kept_stats = build_samples(groups, credit=credit)  # the flat group d is trained: progress alone
    assert {s.group for s in kept} == {"a", "b", "d"}
    for trained, st in ((samples, stats), (kept, kept_stats)):
        per_turn = [float(s.advantages[turn_start]) for s in trained for turn_start in
                    (i for i in range(1, len(s.token_ids)) if s.loss_mask[i] and not s.loss_mask[i - 1])]
        m = st.metrics()
        assert m["adv_turn/mean"] == pytest.approx(np.mean(per_turn), abs=1e-6)
        assert m["adv_turn/std"] == pytest.approx(np.std(per_turn), abs=1e-6)
        nonzero = {s.group for s in trained if np.abs(s.advantages).max() > 1e-8}
        assert m["groups/nonzero_adv_fraction"] == pytest.approx(len(nonzero) / len(groups))
    assert kept_stats.metrics()["groups/nonzero_adv_fraction"] == pytest.approx(3 / 4)  # b's progress varies too


@pytest.mark.slow
def test_a_training_run_never_shows_the_reference_and_logs_what_it_trains(tmp_path, tiny_folder, monkeypatch):
    from agentgym.policy.hf import HFPolicy
    from agentgym.train import learner as learner_module
    from agentgym.train.config import load_config
    from agentgym.train.loop import train

    agentgym.register("test-secret/v0", SecretEnv, max_turns=2)

    class Recording(HFPolicy):
        prompts: list[str] = []

        async def generate(self, requests):
            for r in requests:
                text = self.tokenizer.decode(r.prompt_ids) if r.prompt_ids else ""
                self.prompts.append(text + "".join(str(m.get("content")) for m in r.messages or []))
            return await super().generate(requests)

    trained: list[list] = []
    step = learner_module.Learner.step

    def recording_step(self, samples, update_lock=None):
        trained.append(list(samples))
        return step(self, samples, update_lock=update_lock)

    monkeypatch.setattr(learner_module.Learner, "step", recording_step)
    cfg = load_config(None, [
        "name=secret", f"run_dir={tmp_path / 'run'}", "seed=0", f"model.policy=hf:{tiny_folder}",
        "envs=[{id: test-secret/v0}]", "rollout.group_size=2", "rollout.groups_per_step=2",
        "rollout.max_tokens=4", "rollout.max_turns=2", "trainer.steps=1", "pipeline.max_staleness=0",
        "guidance.enabled=true", "guidance.providers=[env_hint, feedback]", "guidance.samples=2",
        "progress.enabled=true", "eval.at_end=true", "eval.episodes=4",
        "logging.tensorboard=false", "logging.progress=false", "logging.plot=false", "checkpoint.export_final=false",
    ])
    policy = Recording(str(tiny_folder))
    (metrics,) = train(cfg, policy=policy).metrics
    assert policy.prompts and not any(SECRET in p for p in policy.prompts)
    assert metrics["guidance/guided_episodes"] == 4
    from agentgym.rollout.trajectory import read_jsonl

    trajs = list(read_jsonl(cfg.run_path / "trajectories" / "step-000001.jsonl"))
    assert all(t.task.reference["answer"] == SECRET for t in trajs)  # carried for scoring, never shown
    assert all(SECRET not in str(m.get("content")) for t in trajs for m in t.messages)
    (samples,) = trained
    per_turn = [v for s in samples for v in s.turn_advantages]
    assert metrics["adv_turn/mean"] == pytest.approx(np.mean(per_turn), abs=1e-6)
    assert metrics["episodes"] == len(trajs) == 8
