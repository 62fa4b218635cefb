"""The reward pipeline: environment reward + rubric score, for finished trajectories.

The learner (or an evaluator) calls::

    pipeline = RewardPipeline.from_config(RewardConfig(rubric_weight=1.0, env_weight=0.0,
                                                       judges={"default": {"policy": "openai:http://..."}}))
    rewards = await pipeline.score_trajectories(trajectories, tasks=tasks_by_id)

Each trajectory gets ``metadata["rubric"]`` (per-criterion scores, rationales,
gates, missing criteria) and ``metadata["reward_parts"]`` (env, rubric, combined);
the returned list is the combined reward,
``env_weight * env_reward + rubric_weight * rubric_score``. A trajectory whose rubric
cannot be scored (no rubric, every criterion failed) keeps only the environment term
and is flagged, never given a silent 0 for the rubric part. Hold one pipeline for a
whole run: it owns the judge policies and their cache.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, Mapping, Sequence

from pydantic import BaseModel, ConfigDict, Field

from agentgym.core.task import Task
from agentgym.errors import UserError
from agentgym.policy.base import SamplingParams
from agentgym.rewards.cache import JudgmentCache
from agentgym.rewards.criteria import ScoringContext
from agentgym.rewards.judge import Judge, JudgePanel, JudgeTemplate
from agentgym.rewards.rubric import Rubric, load_rubric_table
from agentgym.rewards.scoring import JudgeLike, score_responses


class JudgeConfig(BaseModel):
    """One named judge: a policy spec (or several, which then vote) and its limits."""

    model_config = ConfigDict(extra="forbid")

    #: Anything ``agentgym.policy.load_policy`` accepts; a list makes a voting panel.
    policy: str | list[str]
    policy_kwargs: dict[str, Any] = Field(default_factory=dict)
    voting: Literal["majority", "mean"] = "majority"
    max_tokens: int = Field(96, ge=1)
    temperature: float = Field(0.0, ge=0)
    timeout_s: float = Field(120.0, gt=0)
    retries: int = Field(2, ge=0)
    batch_size: int = Field(16, ge=1)
    max_concurrency: int = Field(2, ge=1)
    #: Override the judge prompt (format fields in agentgym.rewards.judge.JudgeTemplate).
    system_prompt: str | None = None
    user_template: str | None = None


class RewardConfig(BaseModel):
    """How rewards are combined and judged (the ``rewards:`` section of a training config)."""

    model_config = ConfigDict(extra="forbid")

    env_weight: float = 1.0
    rubric_weight: float = 1.0
    #: Judges by name; criteria name theirs with ``judge:`` ("default" when omitted).
    judges: dict[str, JudgeConfig] = Field(default_factory=dict)
    #: JSONL from ``agentgym rubrics build`` (task id -> rubric); wins over ``Task.rubric``.
    rubrics: str | None = None
    #: Used for tasks with no rubric of their own.
    default_rubric: Rubric | None = None
    #: Where to look tasks up by id when the caller passes none: a task JSONL file, or the id of
    #: an environment that lists its tasks in ``all_tasks`` (e.g. "qa/v0").
    tasks: str | None = None
    #: JSONL file persisting judgments across runs (None: in memory for the pipeline's life).
    cache_path: str | None = None


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


def _task_from_metadata(traj: Any) -> Task | None:
    raw = (getattr(traj, "metadata", None) or {}).get("task")
    if isinstance(raw, Task):
        return raw
    if isinstance(raw, dict):
        try:
            return Task.model_validate(raw)
        except ValueError:
            return None
    return None


def _load_task_source(source: str | None) -> list[Task]:
    if not source:
        return []
    if Path(source).suffix in (".jsonl", ".json") or Path(source).exists():
        from agentgym.core.task import load_tasks

        return load_tasks(source)
    from agentgym.core.registry import make

    env = make(source)
    tasks = getattr(env, "all_tasks", None)
    env.close()
    if not tasks:
        raise UserError(f"environment {source} does not list its tasks; give a task JSONL file as rewards.tasks.")
    return list(tasks)


class RewardPipeline:
    """Owns judges, cache and rubric table; scores batches of trajectories."""

    def __init__(self, config: RewardConfig | None = None, judges: Mapping[str, JudgeLike] | None = None):
        self.config = config or RewardConfig()
        self.judges: dict[str, JudgeLike] = dict(judges or {})
        self.rubric_table: dict[str, Rubric] = load_rubric_table(self.config.rubrics) if self.config.rubrics else {}
        self.task_table: dict[str, Task] = {t.id: t for t in _load_task_source(self.config.tasks)}
        self.counts: dict[str, int] = {}

    @classmethod
    def from_config(cls, config: RewardConfig | Mapping[str, Any] | None) -> "RewardPipeline":
        """Build judges from their policy specs (policies are loaded here, once)."""
        cfg = config if isinstance(config, RewardConfig) else RewardConfig.model_validate(config or {})
        cache = JudgmentCache(cfg.cache_path)
        judges: dict[str, JudgeLike] = {}
        for name, jc in cfg.judges.items():
            judges[name] = build_judge(jc, cache=cache, name=name)
        return cls(cfg, judges)

    def rubric_for(self, traj: Any, tasks: Mapping[str, Task] | None) -> tuple[Rubric | None, Task | None]:
        task = (tasks or {}).get(traj.task_id) or _task_from_metadata(traj) or self.task_table.get(traj.task_id)
        if traj.task_id in self.rubric_table:
            return self.rubric_table[traj.task_id], task
        if task is not None and task.rubric is not None:
            return Rubric.coerce(task.rubric), task
        return self.config.default_rubric, task

    async def score_trajectories(self, trajs: Sequence[Any], tasks: Mapping[str, Task] | Sequence[Task] | None = None,
                                 ) -> list[float]:
        """Write ``metadata["rubric"]`` on each trajectory and return the combined rewards."""
        if tasks is not None and not isinstance(tasks, Mapping):
            tasks = {t.id: t for t in tasks}
        pairs, where = [], []
        for i, traj in enumerate(trajs):
            rubric, task = self.rubric_for(traj, tasks)
            if rubric is None:
                continue
            ref = dict(task.reference) if task is not None else {}
            ctx = ScoringContext(response_of(traj), question_of(task, traj), ref, task, list(traj.messages))
            pairs.append((rubric, ctx))
            where.append(i)
        results = await score_responses(pairs, self.judges)
        by_traj = dict(zip(where, results))
        rewards = []
        cfg = self.config
        for i, traj in enumerate(trajs):
            result = by_traj.get(i)
            env_reward = float(traj.reward)
            if result is None:
                traj.metadata["rubric"] = {"score": None, "status": "no rubric"}
                self._bump("no_rubric")
                rubric_score = None
            else:
                traj.metadata["rubric"] = result.to_dict()
                rubric_score = result.score
                self._bump("scored" if rubric_score is not None else "unscorable")
                for status, n in result.failures.items():
                    self._bump(f"criteria_{status}", n)
                if result.gated:
                    self._bump("gated")
            combined = cfg.env_weight * env_reward + (cfg.rubric_weight * rubric_score if rubric_score is not None
                                                       else 0.0)
            traj.metadata["reward_parts"] = {"env": env_reward, "rubric": rubric_score, "combined": combined}
            rewards.append(combined)
        return rewards

    def _bump(self, key: str, n: int = 1) -> None:
        self.counts[key] = self.counts.get(key, 0) + n

    def metrics(self) -> dict[str, float]:
        """Flat metrics for logging: trajectory counts and each judge's stats."""
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
    trajs: Sequence[Any],
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


def load_reward_config(path: str | Path) -> RewardConfig:
    """A RewardConfig from YAML (the whole file, or its ``rewards:`` section)."""
    import yaml

    path = Path(path)
    if not path.exists():
        raise UserError(f"reward config {path} does not exist.")
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if isinstance(data, dict) and "rewards" in data:
        data = data["rewards"]
    try:
        return RewardConfig.model_validate(data)
    except ValueError as exc:
        raise UserError(f"invalid reward config in {path}: {exc}".splitlines()[0]) from exc
