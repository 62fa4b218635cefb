"""Run health: a run that cannot learn says so, loudly, instead of training on nothing for hours.

Two kinds of check on every learner step:

- **fatal**: a step in which every episode failed (the env raised, the policy errored) stops the
  run with the first error, before the learner steps or a checkpoint is written
  (:func:`raise_if_all_failed`);
- **warnings** (:class:`RunHealth`): every group had zero reward variance for N consecutive steps
  (no advantage, no gradient), most actions were invalid, nearly every episode hit the turn limit,
  or a step took much longer than the median. Each is logged (``logging.warning``) when it starts,
  shown in the progress bar while it lasts, and written into the step's metrics as
  ``warn/<name>: true`` (``metrics.jsonl``).
"""

from __future__ import annotations

import logging
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from agentgym.errors import UserError
from agentgym.rollout.trajectory import Trajectory
from agentgym.train.config import HealthConfig

log = logging.getLogger(__name__)

#: A slow step must also be this many seconds over the median (short steps jitter on a shared machine).
SLOW_STEP_MIN_S = 5.0


def raise_if_all_failed(groups: Sequence[Sequence[Trajectory]], step: int, where: str = "") -> None:
    """Raise a one-line :class:`UserError` with the first error when no episode of the step finished."""
    flat = [t for g in groups for t in g]
    if not flat or any(t.status != "failed" for t in flat):
        return
    first = next((t.error for t in flat if t.error), "no error recorded")
    first = first.strip().splitlines()[-1] if first.strip() else "no error recorded"
    see = f" The episodes are in {where}." if where else ""
    raise UserError(f"step {step}: all {len(flat)} episodes failed, so the run stopped before training on them "
                    f"(no checkpoint written). The first error ({flat[0].env_id}): {first}.{see}")


def invalid_action_rate(groups: Sequence[Sequence[Trajectory]]) -> float | None:
    """Turns the env rejected (``info["invalid_action"]``) over all turns; None without turns."""
    turns = [turn for g in groups for t in g for turn in t.turns]
    if not turns:
        return None
    return sum(bool(turn.info.get("invalid_action")) for turn in turns) / len(turns)


MESSAGES = {
    "zero_variance": "every group had the same reward in all its episodes for {n} steps: zero advantage, nothing "
                     "is learned (make tasks easier, raise rollout.group_size or temperature, or add shaping)",
    "invalid_actions": "{rate:.0%} of actions were invalid: the policy is not answering in the env's format "
                       "(check the system prompt and tool schemas with `agentgym trajectories show`)",
    "truncation": "{rate:.0%} of episodes hit the turn or token limit (raise rollout.max_turns or max_tokens)",
    "slow_step": "step took {secs:.1f} s, {factor:.1f}x the median step ({median:.1f} s)",
}


@dataclass
class RunHealth:
    """Watches each step's metrics and raises warnings (see the module docstring)."""

    thresholds: HealthConfig = field(default_factory=HealthConfig)
    _zero_run: int = 0
    _step_times: list[float] = field(default_factory=list)
    _active: set[str] = field(default_factory=set)

    def observe(self, step: int, groups: Sequence[Sequence[Trajectory]], metrics: dict[str, Any]) -> list[str]:
        """Add ``actions/invalid_rate`` and ``warn/*`` flags to ``metrics``; the names of the active warnings."""
        th = self.thresholds
        found: dict[str, str] = {}
        if metrics.get("groups/zero_variance_fraction", 0.0) >= 1.0 and groups:
            self._zero_run += 1
        else:
            self._zero_run = 0
        if self._zero_run >= th.zero_variance_steps:
            found["zero_variance"] = MESSAGES["zero_variance"].format(n=self._zero_run)
        rate = invalid_action_rate(groups)
        if rate is not None:
            metrics["actions/invalid_rate"] = rate
            if rate > th.invalid_action_rate:
                found["invalid_actions"] = MESSAGES["invalid_actions"].format(rate=rate)
        truncated = metrics.get("episode/truncated")
        if truncated is not None and truncated >= th.truncation_rate:
            found["truncation"] = MESSAGES["truncation"].format(rate=truncated)
        secs = metrics.get("time/step_s")
        if secs is not None:
            if len(self._step_times) >= 3:
                median = statistics.median(self._step_times)
                if median > 0 and secs > th.slow_step_factor * median and secs - median > SLOW_STEP_MIN_S:
                    found["slow_step"] = MESSAGES["slow_step"].format(secs=secs, factor=secs / median, median=median)
            self._step_times.append(secs)
        for name, message in found.items():
            metrics[f"warn/{name}"] = True
            if name not in self._active or name == "slow_step":
                log.warning("step %d: %s", step, message)
        self._active = set(found)
        return sorted(found)
