"""Turn-level credit from retrospective progress: ``A_{i,t} = A_i + w * p^_{i,t}``.

The scoring pass records each turn's raw progress score in ``traj.rewards.progress``
(:mod:`agentgym.rewards.progress`). For a group of G episodes on one task:

    A_i        = group-normalised outcome advantage of episode i (GRPO / Dr. GRPO)
    p_{i,t}    = raw progress score of turn t of episode i (None when unscored)
    p^_{i,t}   = clip((p_{i,t} - mean_g) / (std_g + eps), -c, c)
                 mean_g, std_g over all scored turns of all episodes in the group;
                 p^ = 0 for unscored turns, and for every turn when std_g < eps
    A_{i,t}    = A_i + w * p^_{i,t}       on every sampled token of turn t

With ``w = 0`` this is plain GRPO. A group whose outcomes are all equal (A_i = 0) still
carries signal through its progress term, which is why progress rewards rescue groups
that all fail.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from agentgym.rollout.trajectory import Trajectory
from agentgym.train.advantages import outcome_credit, turn_advantages


def normalise_group_progress(
    scores: Sequence[Sequence[float | None]], *, eps: float = 1e-6, clip: float = 3.0
) -> list[list[float]]:
    """p^_{i,t}: progress normalised across all scored turns of one group (see the module docstring)."""
    values = [s for traj in scores for s in traj if s is not None]
    if len(values) < 2:
        return [[0.0] * len(traj) for traj in scores]
    mean, std = float(np.mean(values)), float(np.std(values))
    if std < eps:
        return [[0.0] * len(traj) for traj in scores]
    return [
        [0.0 if s is None else max(-clip, min(clip, (s - mean) / (std + eps))) for s in traj] for traj in scores
    ]


@dataclass
class ProgressCredit:
    """A :data:`~agentgym.train.advantages.TurnCredit`: A_{i,t} = A_i + w * p^_{i,t}."""

    normalised: dict[str, list[float]]
    weight: float

    def __call__(self, traj: Trajectory, outcome_advantage: float) -> list[float]:
        per_turn = self.normalised.get(traj.id)
        if per_turn is None or len(per_turn) != len(traj.turns):
            return outcome_credit(traj, outcome_advantage)
        return turn_advantages(per_turn, outcome_advantage, self.weight)


def progress_credit(
    groups: Sequence[Sequence[Trajectory]], *, weight: float, eps: float = 1e-6, clip: float = 3.0
) -> ProgressCredit:
    """The credit of a scored batch: each group's progress scores normalised across the group."""
    normalised: dict[str, list[float]] = {}
    for group in groups:
        members = [t for t in group if t.status != "failed" and t.rewards is not None and t.rewards.progress]
        norm = normalise_group_progress([t.rewards.progress for t in members], eps=eps, clip=clip)  # type: ignore[union-attr]
        normalised.update((t.id, values) for t, values in zip(members, norm))
    return ProgressCredit(normalised, weight)
