"""Group-relative advantages and how they land on tokens: the only place credit is assigned.

GRPO samples G episodes per task and scores each against its own group:
``A_i = (r_i - mean(r)) / (std(r) + eps)``; Dr. GRPO drops the division by the std
(it biases towards tasks that are nearly solved or nearly failed). ``r_i`` is the
trajectory's scored total (:attr:`~agentgym.rollout.trajectory.Trajectory.score`). A group
whose rewards are all equal carries no signal; it can be dropped (DAPO's dynamic sampling).

Credit reaches tokens in two steps so turn-level rewards can be plugged in:
a :data:`TurnCredit` maps an episode's outcome advantage to one advantage per turn
(:func:`outcome_credit`, plain GRPO; :mod:`agentgym.train.credit` adds retrospective
progress), and :func:`spread_over_tokens` places each turn's value on that turn's sampled
(mask-1) tokens. :func:`build_samples` returns the learner's samples and the statistics of
exactly those samples, which is what gets logged.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from agentgym.rollout.trajectory import Trajectory

TurnCredit = Callable[[Trajectory, float], Sequence[float]]
"""(trajectory, outcome advantage) -> one advantage per turn."""


def group_advantages(rewards: Sequence[float], estimator: str = "grpo", eps: float = 1e-6) -> np.ndarray:
    """Advantages of one group of episodes on the same task."""
    r = np.asarray(rewards, dtype=np.float64)
    if r.size == 0:
        return r
    centred = r - r.mean()
    if estimator == "dr_grpo":
        return centred
    if estimator == "grpo":
        return centred / (r.std() + eps)
    raise ValueError(f"unknown advantage estimator {estimator!r}")


def outcome_credit(traj: Trajectory, outcome_advantage: float) -> list[float]:
    """The default: every turn gets the episode's outcome advantage (plain GRPO)."""
    return [outcome_advantage] * len(traj.turns)


def turn_advantages(
    turn_rewards: Sequence[float], outcome_advantage: float, turn_weight: float = 1.0
) -> list[float]:
    """Per-turn advantages from the outcome advantage plus weighted per-turn rewards.

    ``turn_rewards`` are expected to be already normalised (e.g. progress gains scored
    against the group); ``turn_weight=0`` gives back the outcome advantage on every turn.
    """
    return [outcome_advantage + turn_weight * float(r) for r in turn_rewards]


def spread_over_tokens(traj: Trajectory, per_turn: Sequence[float]) -> np.ndarray:
    """Token-level advantages: each turn's value on its sampled tokens, 0 elsewhere.

    Mask-1 tokens outside every turn's range (should not happen with a well-formed
    trajectory) get the mean of the turn values so no sampled token is silently lost.
    """
    mask = np.asarray(traj.loss_mask, dtype=np.float32)
    out = np.zeros(len(traj.token_ids), dtype=np.float32)
    covered = np.zeros(len(traj.token_ids), dtype=bool)
    for turn, value in zip(traj.turns, per_turn):
        if turn.end > turn.start:
            out[turn.start : turn.end] = value
            covered[turn.start : turn.end] = True
    if len(per_turn) and (~covered & (mask > 0)).any():
        out[~covered] = float(np.mean(per_turn))
    return out * mask


@dataclass
class Sample:
    """One trajectory ready for the learner."""

    token_ids: list[int]
    loss_mask: list[int]
    behaviour_logprobs: list[float]
    advantages: np.ndarray
    policy_version: int = 0
    reward: float = 0.0
    group: str = ""
    #: The advantage of each turn, as placed on its tokens (turn-level credit included).
    turn_advantages: list[float] = field(default_factory=list)

    @property
    def num_sampled(self) -> int:
        return int(sum(self.loss_mask))


@dataclass
class SampleStats:
    """What :func:`build_samples` kept and the advantages it placed: the figures that are logged."""

    groups: int = 0
    groups_dropped: int = 0
    trajectories: int = 0
    failed: int = 0
    adv_mean: float = 0.0
    adv_std: float = 0.0
    adv_abs_mean: float = 0.0
    zero_variance_fraction: float = 0.0
    #: Groups with at least one non-zero advantage on a trained token, over all groups.
    nonzero_adv_fraction: float = 0.0
    turn_adv: list[float] = field(default_factory=list)

    def metrics(self, tol: float = 1e-8) -> dict[str, float]:
        """The statistics as flat metrics (``adv/*`` per episode, ``adv_turn/*`` per trained turn)."""
        out = {
            "groups/dropped": float(self.groups_dropped),
            "groups/zero_variance_fraction": self.zero_variance_fraction,
            "groups/nonzero_adv_fraction": self.nonzero_adv_fraction,
            "episodes/failed": float(self.failed),
            "adv/mean": self.adv_mean, "adv/std": self.adv_std, "adv/abs_mean": self.adv_abs_mean,
        }
        if self.turn_adv:
            a = np.asarray(self.turn_adv)
            out.update({
                "adv_turn/mean": float(a.mean()), "adv_turn/std": float(a.std()),
                "adv_turn/abs_mean": float(np.abs(a).mean()),
                "adv_turn/min": float(a.min()), "adv_turn/max": float(a.max()),
                "adv_turn/nonzero_fraction": float((np.abs(a) > tol).mean()),
            })
        return out


def build_samples(
    groups: Sequence[Sequence[Trajectory]],
    *,
    estimator: str = "grpo",
    eps: float = 1e-6,
    drop_zero_variance: bool = False,
    credit: TurnCredit = outcome_credit,
    tol: float = 1e-8,
) -> tuple[list[Sample], SampleStats]:
    """Score each group, map credit to tokens, and return learner samples + their statistics.

    Failed episodes (engine errors) and episodes without sampled tokens are left out of their
    group; groups left with fewer than two episodes are dropped.
    """
    samples: list[Sample] = []
    stats = SampleStats(groups=len(groups))
    episode_advs: list[float] = []
    zero_var = nonzero_groups = 0
    for group in groups:
        good = [t for t in group if t.status != "failed" and sum(t.loss_mask) > 0]
        stats.failed += sum(t.status == "failed" for t in group)
        if len(good) < 2:
            stats.groups_dropped += 1
            continue
        rewards = [t.score for t in good]
        flat = float(np.ptp(rewards)) == 0.0
        zero_var += flat
        if flat and drop_zero_variance:
            stats.groups_dropped += 1
            continue
        advs = group_advantages(rewards, estimator, eps)
        any_nonzero = False
        for traj, adv in zip(good, advs):
            per_turn = list(credit(traj, float(adv))) if traj.turns else []
            if traj.turns:
                token_adv = spread_over_tokens(traj, per_turn)
            else:  # no turn records: outcome advantage on every sampled token
                token_adv = np.asarray(traj.loss_mask, dtype=np.float32) * float(adv)
            any_nonzero |= bool((np.abs(token_adv) > tol).any())
            samples.append(
                Sample(
                    token_ids=list(traj.token_ids),
                    loss_mask=list(traj.loss_mask),
                    behaviour_logprobs=list(traj.logprobs),
                    advantages=token_adv,
                    policy_version=traj.policy_version,
                    reward=traj.score,
                    group=traj.group_id,
                    turn_advantages=[float(v) for v in per_turn],
                )
            )
            episode_advs.append(float(adv))
            stats.turn_adv.extend(float(v) for v in per_turn)
        nonzero_groups += any_nonzero
    stats.trajectories = len(samples)
    stats.zero_variance_fraction = zero_var / max(1, len(groups))
    stats.nonzero_adv_fraction = nonzero_groups / max(1, len(groups))
    if episode_advs:
        a = np.asarray(episode_advs)
        stats.adv_mean, stats.adv_std, stats.adv_abs_mean = float(a.mean()), float(a.std()), float(np.abs(a).mean())
    return samples, stats
