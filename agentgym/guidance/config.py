"""The ``guidance:`` section of a training config: when failed groups are re-attempted, with what.

See :mod:`agentgym.guidance` for what each setting does.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

ProviderName = Literal["env_hint", "reference", "teacher", "feedback"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class ScheduleConfig(_Strict):
    """Probability of guiding a failed group at learner step ``s``.

    ``constant``: ``start``; ``linear``: from ``start`` to ``end`` over ``steps`` steps, then
    ``end``; ``exponential``: ``end + (start - end) * 0.5 ** (s / steps)`` (``steps`` = half-life).
    """

    kind: Literal["constant", "linear", "exponential"] = "constant"
    start: float = Field(1.0, ge=0, le=1)
    end: float = Field(0.0, ge=0, le=1)
    steps: int = Field(100, ge=1)

    def probability(self, step: int) -> float:
        if self.kind == "constant":
            return self.start
        if self.kind == "linear":
            frac = min(1.0, max(0, step) / self.steps)
            return self.start + (self.end - self.start) * frac
        return self.end + (self.start - self.end) * 0.5 ** (max(0, step) / self.steps)


class ReferenceConfig(_Strict):
    """The reference-prefix provider: which reference field, how long a prefix, how it adapts."""

    #: ``task.reference`` key holding the solution; None: the first of ``keys`` present.
    key: str | None = None
    keys: list[str] = Field(default_factory=lambda: ["solution", "path", "moves", "plan", "patch", "answer"])
    #: Fraction of the solution shown at first, then +/- ``step`` after failed/successful guided attempts.
    start: float = Field(0.25, ge=0, le=1)
    step: float = Field(0.25, gt=0, le=1)
    min: float = Field(0.0, ge=0, le=1)
    max: float = Field(1.0, ge=0, le=1)


class TeacherConfig(_Strict):
    """The teacher provider: which policy writes plans, and how the answer filter acts."""

    #: A spec for load_policy; None: the policy being trained teaches (its teacher prompts, which
    #: contain the reference, never enter a trained context).
    policy: str | None = None
    max_tokens: int = Field(160, ge=8)
    temperature: float = Field(0.0, ge=0)
    timeout_s: float = Field(300.0, gt=0)
    #: Reference fields that count as "the answer" the teacher must not reveal.
    answer_keys: list[str] = Field(default_factory=lambda: ["answer", "answers", "solution", "path", "patch"])
    answer_filter: Literal["redact", "drop"] = "redact"


class GuidanceConfig(_Strict):
    """Guidance injection in training (the ``guidance:`` section of a train config)."""

    enabled: bool = False
    #: Providers in order; their texts are joined into one guidance message.
    providers: list[ProviderName] = Field(default_factory=lambda: ["env_hint"])
    #: A group is guided when its success rate is at or below this.
    threshold: float = Field(0.0, ge=0, le=1)
    #: "add": guided episodes join their group; "replace": they replace the group's failed episodes.
    integrate: Literal["add", "replace"] = "add"
    #: Guided episodes per guided group with integrate="add" (None: the group size).
    samples: int | None = Field(None, ge=1)
    #: "keep": train on the guided context; "strip": on the unguided one, with the clipped ratio.
    context: Literal["keep", "strip"] = "keep"
    ratio_clip: float = Field(5.0, ge=1)
    schedule: ScheduleConfig = Field(default_factory=ScheduleConfig)
    hint_state: Literal["start", "final"] = "start"
    #: Also show the env's current hint() after every turn of a guided re-attempt (needs
    #: context="keep": per-turn hints sit inside the trained context and cannot be stripped).
    every_turn: bool = False
    #: Where the text goes (see agentgym.rollout.context.Guidance).
    mode: Literal["append", "prepend", "message"] = "append"
    header: str = "Guidance for this attempt:"
    max_chars: int = Field(1500, ge=16)
    reference: ReferenceConfig = Field(default_factory=ReferenceConfig)
    teacher: TeacherConfig = Field(default_factory=TeacherConfig)

    @model_validator(mode="after")
    def _every_turn_is_kept(self) -> "GuidanceConfig":
        if self.every_turn and self.context == "strip":
            raise ValueError("every_turn needs context: keep (per-turn hints cannot be stripped from the trained context)")
        return self
