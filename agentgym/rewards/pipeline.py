"""The scoring pass: every reward part of every trajectory, computed once.

The learner (or an evaluator) calls::

    pipeline = RewardPipeline.from_config(RewardConfig(rubric_weight=1.0, env_weight=0.0,
                                                       judges={"default": {"policy": "openai:http://..."}}))
    metrics = await pipeline.score(groups)

Each trajectory gets its :class:`~agentgym.rollout.trajectory.RewardParts`: the env
``outcome``; the ``rubric`` score and per-criterion scores (details, rationales and gates in
``metadata["rubric"]``); per-turn ``progress`` scores when a progress assessor is set
(:mod:`agentgym.rewards.progress`); ``penalties``; and the ``total``,
``env_weight * outcome + rubric_weight * rubric - sum(penalties)``. A trajectory whose rubric
cannot be scored (no rubric, every criterion failed) keeps only the environment term and is
flagged, never given a silent 0 for the rubric part. Rubrics are looked up from the task the
trajectory carries. Guidance selects failed groups from these scores and the learner computes
advantages from ``total``; nothing else computes rewards. Hold one pipeline for a whole run:
it owns the judge policies and their cache.
"""

from __future__ import annotations

import time
from typing import Any, Mapping, Sequence

from agentgym.core.task import Task, load_tasks
from agentgym.errors import UserError
from agentgym.policy.base import Policy, SamplingParams
from agentgym.rewards.cache import JudgmentCache
from agentgym.rewards.config import JudgeConfig, RewardConfig, load_reward_config
from agentgym.rewards.criteria import ScoringContext
from agentgym.rewards.judge import Judge, JudgePanel, JudgeTemplate
from agentgym.rewards.progress import ProgressAssessor, ProgressConfig, assess_progress, build_assessor
from agentgym.rewards.rubric import Rubric, load_rubric_table
from agentgym.rewards.scoring import JudgeLike, score_responses
from agentgym.rollout.trajectory import RewardParts, Trajectory

__all__ = ["JudgeConfig", "RewardConfig", "RewardPipeline", "build_judge", "load_reward_config",
           "question_of", "response_of", "score_trajectories"]


def response_of(traj: Any) -> str:
    """The text a rubric scores: an env-reported final answer, else the last assistant message."""
    for turn in reversed(getattr(traj, "turns", []) or []):
        answer = (turn.info or {}).get("answer")
        if isinstance(answer, str):
            return answer
        break
    for msg in reversed(getattr(traj, "messages", []) or []):
        if msg.get("role") == "assistant" and isinstance(msg.get("content"), str):
            return msg["content"]
    turns = getattr(traj, "turns", []) or []
    return turns[-1].action if turns else ""


def question_of(task: Task | None, traj: Any) -> str:
    if task is not None:
        for key in ("question", "prompt", "instruction", "query"):
            if isinstance(task.inputs.get(key), str):
                return task.inputs[key]
    for msg in getattr(traj, "messages", []) or []:
        if msg.get("role") == "user" and isinstance(msg.get("content"), str):
            return msg["content"]
    return ""


class RewardPipeline:
    """The scoring pass (see the module docstring): owns judges, their cache, rubric table, assessor."""

    def __init__(self, config: RewardConfig | None = None, judges: Mapping[str, JudgeLike] | None = None, *,
                 assessor: ProgressAssessor | None = None):
        self.config = config or RewardConfig()
        self.judges: dict[str, JudgeLike] = dict(judges or {})
        self.assessor = assessor
        self.rubric_table: dict[str, Rubric] = load_rubric_table(self.config.rubrics) if self.config.rubrics else {}
        self.task_table: dict[str, Task] = {t.id: t for t in load_tasks(self.config.tasks)} if self.config.tasks else {}
        self.counts: dict[str, int] = {}

    @classmethod
    def from_config(cls, config: RewardConfig | Mapping[str, Any] | None, *,
                    progress: ProgressConfig | None = None, policy: Policy | None = None) -> "RewardPipeline":
        """Build judges from their policy specs (loaded here, once) and the progress assessor, if enabled;
        ``policy`` judges progress when the progress config names no judge."""
        cfg = config if isinstance(config, RewardConfig) else RewardConfig.model_validate(config or {})
        cache = JudgmentCache(cfg.cache_path)
        judges: dict[str, JudgeLike] = {name: build_judge(jc, cache=cache, name=name) for name, jc in cfg.judges.items()}
        assessor = build_assessor(progress, policy) if progress is not None and progress.enabled else None
        return cls(cfg, judges, assessor=assessor)

    def rubric_for(self, traj: Trajectory, tasks: Mapping[str, Task] | None) -> tuple[Rubric | None, Task | None]:
        task = traj.task or (tasks or {}).get(traj.task_id) or self.task_table.get(traj.task_id)
        if traj.task_id in self.rubric_table:
            return self.rubric_table[traj.task_id], task
        if task is not None and task.rubric is not None:
            return Rubric.coerce(task.rubric), task
        return self.config.default_rubric, task

    async def score(self, batch: Sequence[Trajectory] | Sequence[Sequence[Trajectory]],
                    tasks: Mapping[str, Task] | Sequence[Task] | None = None) -> dict[str, float]:
        """Fill ``traj.rewards`` of every trajectory (a flat list or groups); returns this pass's timings.

        Statistics of what was scored come from the trajectories afterwards
        (:func:`~agentgym.rewards.progress.progress_metrics`, :meth:`metrics`).
        """
        trajs = [t for item in batch for t in (item if isinstance(item, (list, tuple)) else [item])]
        if tasks is not None and not isinstance(tasks, Mapping):
            tasks = {t.id: t for t in tasks}
        for traj in trajs:
            traj.rewards = RewardParts(outcome=float(traj.reward))
        t0 = time.perf_counter()
        await self._rubrics(trajs, tasks)
        metrics = {"time/rubric_s": time.perf_counter() - t0}
        if self.assessor is not None:
            t0 = time.perf_counter()
            await assess_progress([t for t in trajs if t.status != "failed"], self.assessor)
            metrics["time/progress_s"] = time.perf_counter() - t0
        cfg = self.config
        for traj in trajs:
            parts = traj.rewards
            assert parts is not None
            invalid = sum(bool(turn.info.get("invalid_action")) for turn in traj.turns)
            if cfg.penalties.invalid_action and invalid:
                parts.penalties["invalid_action"] = cfg.penalties.invalid_action * invalid
            if cfg.penalties.truncated and traj.status == "truncated":
                parts.penalties["truncated"] = cfg.penalties.truncated
            rubric = cfg.rubric_weight * parts.rubric if parts.rubric is not None else 0.0
            parts.total = cfg.env_weight * parts.outcome + rubric - sum(parts.penalties.values())
        return metrics

    async def _rubrics(self, trajs: Sequence[Trajectory], tasks: Mapping[str, Task] | None) -> None:
        pairs, where = [], []
        for i, traj in enumerate(trajs):
            rubric, task = self.rubric_for(traj, tasks)
            if rubric is None:
                continue
            ref = dict(task.reference) if task is not None else {}
            ctx = ScoringContext(response_of(traj), question_of(task, traj), ref, task, list(traj.messages))
            pairs.append((rubric, ctx))
            where.append(i)
        if not pairs and not self.rubric_table and self.config.default_rubric is None:
            return  # nothing to score: no rubric counts either
        by_traj = dict(zip(where, await score_responses(pairs, self.judges)))
        for i, traj in enumerate(trajs):
            result = by_traj.get(i)
            parts = traj.rewards
            assert parts is not None
            if result is None:
                traj.metadata["rubric"] = {"score": None, "status": "no rubric"}
                self._bump("no_rubric")
                continue
            traj.metadata["rubric"] = result.to_dict()
            parts.rubric = result.score
            parts.criteria = {c.id: c.score for c in result.scores}
            self._bump("scored" if result.score is not None else "unscorable")
            for status, n in result.failures.items():
                self._bump(f"criteria_{status}", n)
            if result.gated:
                self._bump("gated")

    async def score_trajectories(self, trajs: Sequence[Trajectory],
                                 tasks: Mapping[str, Task] | Sequence[Task] | None = None) -> list[float]:
        """Score ``trajs`` (see :meth:`score`) and return their totals."""
        await self.score(list(trajs), tasks)
        return [t.rewards.total for t in trajs]  # type: ignore[union-attr]

    def _bump(self, key: str, n: int = 1) -> None:
        self.counts[key] = self.counts.get(key, 0) + n

    def metrics(self) -> dict[str, float]:
        """Flat metrics for logging: trajectory counts (over the pipeline's life) and each judge's stats."""
        out: dict[str, float] = {f"rubric/{k}": float(v) for k, v in self.counts.items()}
        for name, judge in self.judges.items():
            for k, v in judge.stats.to_dict().items():
                out[f"judge/{name}/{k}"] = float(v)
        return out

    async def close(self) -> None:
        for judge in self.judges.values():
            await judge.close()


def build_judge(jc: JudgeConfig, *, cache: JudgmentCache | None = None, name: str = "default") -> JudgeLike:
    """A :class:`Judge` (or a voting :class:`JudgePanel`) from its config."""
    from agentgym.policy import load_policy  # lazy: backends import heavy modules

    template = JudgeTemplate()
    if jc.system_prompt is not None:
        template.system = jc.system_prompt
    if jc.user_template is not None:
        template.user = jc.user_template
    params = SamplingParams(temperature=jc.temperature, max_tokens=jc.max_tokens)
    specs = [jc.policy] if isinstance(jc.policy, str) else list(jc.policy)
    if not specs:
        raise UserError(f"judge {name!r} needs at least one policy.")
    judges = [
        Judge(load_policy(spec, **jc.policy_kwargs), name=f"{name}:{spec}" if len(specs) > 1 else name,
              template=template, params=params, timeout_s=jc.timeout_s, retries=jc.retries,
              batch_size=jc.batch_size, max_concurrency=jc.max_concurrency, cache=cache)
        for spec in specs
    ]
    return judges[0] if len(judges) == 1 else JudgePanel(judges, mode=jc.voting, name=name)


async def score_trajectories(
    trajs: Sequence[Trajectory],
    reward_config: RewardConfig | Mapping[str, Any] | RewardPipeline | None = None,
    *,
    tasks: Mapping[str, Task] | Sequence[Task] | None = None,
) -> list[float]:
    """One-shot convenience: score ``trajs`` with a config (judges built and closed) or a pipeline."""
    if isinstance(reward_config, RewardPipeline):
        return await reward_config.score_trajectories(trajs, tasks)
    pipeline = RewardPipeline.from_config(reward_config)
    try:
        return await pipeline.score_trajectories(trajs, tasks)
    finally:
        await pipeline.close()
