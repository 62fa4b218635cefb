"""Turn per-criterion scores into one reward.

The rules, in order:

1. Criteria with ``score=None`` (judge failed, check raised, no judge configured) are
   left out and listed in ``missing``; the reward is computed from the rest.
2. Gates: a ``hard`` criterion scoring below the rubric's ``pass_threshold`` zeroes the
   reward (``gated=True``), whatever else passed.
3. Weighted mean over positive weights: ``sum(w*s) / sum(w)``.
4. Penalties: each negative-weight criterion subtracts ``|w| * s / sum(positive w)`` —
   the criterion describes a mistake and ``s`` is how present it is. With no positive
   criteria the base is 1 and penalties subtract ``|w| * s``.
5. The result is clipped to the rubric's ``clip`` range (default [0, 1]).

Zero-weight criteria are metrics: scored and logged, never rewarded. When every
rewarded criterion is missing the score is ``None`` (not 0) so callers can tell.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from agentgym.rewards.criteria import CriterionScore


@dataclass
class RubricResult:
    """A rubric's verdict on one response."""

    score: float | None
    scores: list[CriterionScore] = field(default_factory=list)
    gated: bool = False
    failed_gates: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)

    @property
    def failures(self) -> dict[str, int]:
        """How many criteria could not be scored, by status."""
        out: dict[str, int] = {}
        for s in self.scores:
            if s.score is None:
                out[s.status] = out.get(s.status, 0) + 1
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "score": self.score,
            "gated": self.gated,
            "failed_gates": list(self.failed_gates),
            "missing": list(self.missing),
            "criteria": [s.to_dict() for s in self.scores],
        }


def aggregate(
    scores: list[CriterionScore],
    *,
    pass_threshold: float = 0.5,
    clip: tuple[float, float] | None = (0.0, 1.0),
) -> RubricResult:
    """Combine criterion scores by the rules in the module docstring."""
    missing = [s.id for s in scores if s.score is None]
    scored = [s for s in scores if s.score is not None]
    failed = [s.id for s in scored if s.hard and s.score < pass_threshold]  # type: ignore[operator]
    rewarded = [s for s in scored if s.weight != 0]
    if failed:
        return RubricResult(0.0 if clip is None else max(clip[0], min(clip[1], 0.0)), scores, True, failed, missing)
    if not rewarded:
        return RubricResult(None, scores, False, [], missing)
    positive = sum(s.weight for s in rewarded if s.weight > 0)
    gained = sum(s.weight * s.score for s in rewarded if s.weight > 0)  # type: ignore[operator]
    lost = sum(-s.weight * s.score for s in rewarded if s.weight < 0)  # type: ignore[operator]
    if positive > 0:
        value = (gained - lost) / positive
    elif any(s.weight > 0 for s in scores):
        # every positive criterion is missing: penalties alone say nothing reliable
        return RubricResult(None, scores, False, [], missing)
    else:
        value = 1.0 - lost
    if clip is not None:
        value = max(clip[0], min(clip[1], value))
    return RubricResult(value, scores, False, [], missing)
