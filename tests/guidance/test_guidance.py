"""Guidance injection: triggers, prompts, providers, the answer filter, strip, schedules."""

from __future__ import annotations

import math

import pytest

import agentgym
from agentgym.policy.base import Completion
from agentgym.rewards.verifiable import contains_answer
from agentgym.guidance import (
    FeedbackProvider,
    GuidanceConfig,
    GuidedRollouts,
    ReferenceConfig,
    ReferenceProvider,
    ScheduleConfig,
    TeacherConfig,
    TeacherProvider,
    build_providers,
    redact_answers,
)
from agentgym.rollout.engine import EpisodeSpec, RolloutEngine
from agentgym.train.offpolicy import strip_groups, strip_guidance

from .conftest import HintFollower, ScriptedText, TokenOracle

MAZE = "maze-medium/v0"


def guided(config: GuidanceConfig, policy=None, **kw) -> GuidedRollouts:
    return GuidedRollouts(config, build_providers(config, policy), **kw)


async def test_failing_group_triggers_guidance_and_the_reattempt_sees_it():
    student = HintFollower()
    cfg = GuidanceConfig(enabled=True, providers=["env_hint"], samples=2)
    batch = await guided(cfg).run_groups(RolloutEngine(student), [EpisodeSpec(MAZE, seed=s) for s in range(3)], 3)
    m = batch.metrics
    assert m["guidance/candidates"] == 3 and m["guidance/rate"] == 1.0 and m["guidance/guided_episodes"] == 6
    for group in batch.groups:
        plain, extra = group[:3], group[3:]
        assert len(extra) == 2 and all(t.metadata["guided"] for t in extra) and not any(t.success for t in plain)
        assert len({t.task_id for t in group}) == 1 and len({t.group_id for t in group}) == 1
        for t in extra:
            first = t.messages[0]["content"]
            assert "Guidance for this attempt:" in first and "Next moves:" in first
            assert t.metadata["guidance"]["kind"] == "hint"
    guided_prompts = [p for p in student.prompt_texts() if "Next moves:" in p]
    assert len(guided_prompts) >= 6  # every turn of every re-attempt
    assert m["guidance/guided_success"] > 0.5
    assert m["guidance/nonzero_reward_groups_before"] == 0.0 and m["guidance/nonzero_reward_groups_after"] > 0.5


async def test_replace_keeps_group_size_and_disabled_or_decayed_guidance_does_nothing():
    cfg = GuidanceConfig(enabled=True, providers=["env_hint"], integrate="replace")
    batch = await guided(cfg).run_groups(RolloutEngine(HintFollower()), [EpisodeSpec(MAZE, seed=1)], 3)
    assert len(batch.groups[0]) == 3 and all(t.metadata.get("guided") for t in batch.groups[0])
    for off in (GuidanceConfig(enabled=False), GuidanceConfig(enabled=True, schedule=ScheduleConfig(start=0.0))):
        batch = await guided(off).run_groups(RolloutEngine(HintFollower()), [EpisodeSpec(MAZE, seed=1)], 2)
        assert batch.metrics["guidance/rate"] == 0.0 and len(batch.groups[0]) == 2


class LastHintFollower(HintFollower):
    """Follows only the newest "Hint: Next moves: ..." line of the conversation (no plan memory)."""

    async def generate(self, requests):
        out = []
        for r in requests:
            self.requests.append(r)
            text = str(r.messages[-1].get("content") or "")
            hint = text.rsplit("Next moves:", 1)[1] if "Next moves:" in text else ""
            move = hint.split(",")[0].strip(" .") if hint else self.fallback
            out.append([Completion(text=move or self.fallback)])
        return out


async def test_every_turn_hints_follow_the_current_state():
    """Step-level guidance: each observation of a re-attempt carries the env's hint for that state."""
    start_only = GuidanceConfig(enabled=True, providers=["env_hint"], samples=2)
    every = GuidanceConfig(enabled=True, providers=["env_hint"], samples=2, every_turn=True)
    specs = [EpisodeSpec(MAZE, seed=s, env_kwargs={"max_turns": 12}) for s in range(3)]
    results = {}
    for name, cfg in (("start", start_only), ("every", every)):
        student = LastHintFollower()
        results[name] = (await guided(cfg).run_groups(RolloutEngine(student), specs, 2), student)
    for batch, _ in results.values():
        assert all(t.status != "failed" for g in batch.groups for t in g)
    batch, student = results["every"]
    assert results["start"][0].metrics["guidance/guided_success"] < 0.5  # one move, then lost
    assert batch.metrics["guidance/guided_success"] == 1.0
    for group in batch.groups:
        for t in group[2:]:
            assert t.metadata["guidance"]["every_turn"] is True
            shown = [turn.observation["content"] for turn in t.turns[:-1]]
            assert shown and all("Hint: Next moves:" in c for c in shown)
        for t in group[:2]:  # unguided attempts never see a hint
            assert not any("Hint:" in (turn.observation.get("content") or "") for turn in t.turns)
    with pytest.raises(ValueError, match="every_turn needs context: keep"):
        GuidanceConfig(every_turn=True, context="strip")


def test_schedules():
    lin = ScheduleConfig(kind="linear", start=1.0, end=0.2, steps=10)
    assert lin.probability(0) == 1.0 and math.isclose(lin.probability(5), 0.6) and math.isclose(lin.probability(50), 0.2)
    exp = ScheduleConfig(kind="exponential", start=1.0, end=0.0, steps=4)
    assert exp.probability(0) == 1.0 and math.isclose(exp.probability(4), 0.5) and math.isclose(exp.probability(8), 0.25)


async def test_teacher_never_leaks_the_reference_answer_into_any_student_prompt():
    # A teacher that quotes the hidden solution verbatim, in several spellings.
    def quote(request):
        text = request.messages[-1]["content"]
        solution = text.split("do not quote it): ")[1].split("\n")[0]
        return f"Just do this: {solution}. Again: {solution.upper()}! Start by moving carefully."

    teacher = ScriptedText(fn=quote)
    student = HintFollower()
    cfg = GuidanceConfig(enabled=True, providers=["teacher", "feedback"])
    rollouts = GuidedRollouts(cfg, build_providers(cfg, teacher))
    specs = [EpisodeSpec(MAZE, seed=s) for s in range(4)]
    batch = await rollouts.run_groups(RolloutEngine(student), specs, 2)
    env = agentgym.make(MAZE)
    answers = []
    for s in specs:
        env.reset(seed=s.seed)
        answers.append(" ".join(env.task.reference["path"]))
    assert batch.metrics["guidance/guided_groups"] == 4 and batch.metrics["guidance/teacher_redacted"] >= 8
    assert all("do not quote it): " + a in r.messages[-1]["content"] for a, r in zip(answers, teacher.requests))
    prompts = student.prompt_texts()
    assert any("[redacted]" in p for p in prompts)  # the guided re-attempts did get the teacher's plan
    for a in answers:
        assert not any(contains_answer(p, a) for p in prompts), a
    # drop mode: no guidance at all from a leaking teacher
    cfg_drop = GuidanceConfig(enabled=True, providers=["teacher"], teacher=TeacherConfig(answer_filter="drop"))
    batch = await GuidedRollouts(cfg_drop, build_providers(cfg_drop, ScriptedText(fn=quote))).run_groups(
        RolloutEngine(HintFollower()), specs[:1], 2
    )
    assert batch.metrics["guidance/guided_groups"] == 0 and batch.metrics["guidance/teacher_dropped"] == 1


def test_redaction_is_word_level_and_normalised():
    text, n = redact_answers("Paris is it. THE paris! Parisian food.", ["Paris"])
    assert n == 2 and "Parisian" in text and not contains_answer(text, "Paris")
    task = agentgym.Task(id="t", inputs={}, reference={"answer": "Eiffel Tower"})
    t = TeacherProvider(ScriptedText("x"))
    assert t.filter("Think of the eiffel   tower, then check.", task) == "Think of the [redacted], then check."
    assert t.filter("Look for a landmark.", task) == "Look for a landmark."


async def test_reference_prefix_adapts_and_feedback_reports_errors():
    cfg = GuidanceConfig(
        enabled=True, providers=["reference"], reference=ReferenceConfig(start=0.25, step=0.25), samples=2
    )
    rollouts = guided(cfg)
    (provider,) = rollouts.providers
    assert isinstance(provider, ReferenceProvider)
    spec = EpisodeSpec(MAZE, seed=5)
    batch = await rollouts.run_groups(RolloutEngine(HintFollower()), [spec], 2)
    text = batch.groups[0][2].metadata["guidance"]["text"]
    assert "steps of a solution" in text
    # the student ignores references: the re-attempt failed, so the next prefix is longer
    (fraction,) = provider.fraction.values()
    assert fraction == 0.5
    provider.observe(next(iter(provider.fraction)), 1.0, 0.0)
    assert provider.fraction[next(iter(provider.fraction))] == 0.25
    fb = GuidanceConfig(enabled=True, providers=["feedback"])
    batch = await guided(fb).run_groups(RolloutEngine(HintFollower()), [spec], 2)
    text = batch.groups[0][2].metadata["guidance"]["text"]
    assert "An earlier attempt ended (turn limit)" in text
    assert isinstance(build_providers(fb)[0], FeedbackProvider)


async def test_env_hint_at_final_state_replays_the_attempt():
    start = GuidanceConfig(enabled=True, providers=["env_hint"], samples=1)
    final = start.model_copy(update={"hint_state": "final"})
    spec = EpisodeSpec(MAZE, seed=2)
    a = await guided(start).run_groups(RolloutEngine(HintFollower(fallback="left")), [spec], 1)
    b = await guided(final).run_groups(RolloutEngine(HintFollower(fallback="left")), [spec], 1)
    env = agentgym.make(MAZE)
    env.reset(seed=2)
    assert env.hint() in a.groups[0][1].metadata["guidance"]["text"]
    for turn in a.groups[0][0].turns:
        if not env.done:
            env.step(turn.assistant_message())
    assert env.hint() in b.groups[0][1].metadata["guidance"]["text"]


async def test_strip_trains_on_the_unguided_prompt_with_a_clipped_ratio(tiny_tokenizer):
    policy = TokenOracle(tiny_tokenizer, p=1.0)
    cfg = GuidanceConfig(enabled=True, providers=["env_hint"], context="strip", samples=1, ratio_clip=2.0)

    def scorer(ids):  # log pi(a|unguided): -0.1 on even positions, -3.0 on odd ones
        return [-0.1 if i % 2 == 0 else -3.0 for i in range(len(ids))]

    keep = await guided(cfg.model_copy(update={"context": "keep"})).run_groups(
        RolloutEngine(TokenOracle(tiny_tokenizer, p=0.0, seed=1)), [EpisodeSpec(MAZE, seed=3)], 1
    )
    batch = await GuidedRollouts(cfg, build_providers(cfg)).run_groups(
        RolloutEngine(TokenOracle(tiny_tokenizer, p=0.0, seed=1)), [EpisodeSpec(MAZE, seed=3)], 1
    )
    metrics = await strip_groups(batch.groups, scorer, cfg.ratio_clip)  # the learner's part
    kept, stripped = keep.groups[0][1], batch.groups[0][1]
    assert "Guidance for this attempt" in tiny_tokenizer.decode(kept.token_ids)
    assert stripped.metadata["guidance_stripped"] and "Guidance" not in tiny_tokenizer.decode(stripped.token_ids)
    plain = batch.groups[0][0]  # the unguided attempt of the same task starts with the same prompt
    assert stripped.token_ids[: stripped.turns[0].start] == plain.token_ids[: plain.turns[0].start]
    assert len(stripped.token_ids) == len(stripped.loss_mask) == len(stripped.logprobs)
    for turn in stripped.turns:
        ids = stripped.token_ids[turn.start : turn.end]
        assert tiny_tokenizer.decode(ids, skip_special_tokens=True) == turn.action
        assert all(stripped.loss_mask[turn.start : turn.end])
    # behaviour logprobs were -0.5 (guided); the ratio to the unguided scorer is clipped to [1/2, 2]
    bound = math.log(2.0)
    for i, m in enumerate(stripped.loss_mask):
        if m:
            u = scorer(stripped.token_ids)[i]
            log_ratio = u - stripped.logprobs[i]
            assert -bound - 1e-9 <= log_ratio <= bound + 1e-9
            assert math.isclose(log_ratio, max(-bound, min(bound, u + 0.5)))
    assert metrics["guidance/stripped_fraction"] == 1.0 and metrics["guidance/ratio_clipped_fraction"] > 0


def test_strip_leaves_text_only_episodes_alone():
    from agentgym.rollout.trajectory import Trajectory

    t = Trajectory(id="x", env_id="e", task_id="t")
    assert strip_guidance(t) is False and t.metadata["guidance_stripped"] is False
