"""The ``rewards:`` section of a training config: how the one scoring pass combines reward parts.

``total = env_weight * outcome + rubric_weight * rubric - penalties``, the rubric term only
when it could be scored; judges are named policies; rubrics come from the task, a rubric
table or a default; penalties deduct for invalid actions and truncated episodes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from agentgym.errors import UserError
from agentgym.rewards.rubric import Rubric


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


class PenaltyConfig(BaseModel):
    """Deductions from the total (0: none), recorded by name in ``RewardParts.penalties``."""

    model_config = ConfigDict(extra="forbid")

    #: Per reply the environment rejected as invalid.
    invalid_action: float = Field(0.0, ge=0)
    #: Once, when the episode ended truncated (turn limit, context overflow) rather than finished.
    truncated: float = Field(0.0, ge=0)


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
    #: A task JSONL file to look tasks up by id, for trajectories that do not carry their task
    #: (written by older versions); trajectories from the engine carry it.
    tasks: str | None = None
    #: JSONL file persisting judgments across runs (None: in memory for the pipeline's life).
    cache_path: str | None = None
    penalties: PenaltyConfig = Field(default_factory=PenaltyConfig)

    @field_validator("tasks")
    @classmethod
    def _tasks_is_a_file(cls, value: str | None) -> str | None:
        if value is not None and Path(value).suffix not in (".jsonl", ".json") and not Path(value).exists():
            raise ValueError(f"tasks must be a task JSONL file, not {value!r} (trajectories carry their own "
                             "task; an environment id is not needed)")
        return value


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
