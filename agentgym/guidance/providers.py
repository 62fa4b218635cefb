"""Guidance providers: where the text of a re-attempt comes from.

* ``env_hint`` — the environment's own ``ahint()`` (maze/Sokoban: the next optimal moves;
  search: the open sub-question; SWE: failing tests and the files the fix touches), asked of
  a fresh environment reset to the task (``hint_state="start"``), or after replaying the best
  failed attempt (``"final"``, for envs whose hint describes what is still wrong).
* ``reference`` — a prefix of the hidden reference solution whose length adapts per task.
* ``feedback`` — the environment's error messages and final observation of the failed attempts.
* ``teacher`` — a policy writes a plan (:mod:`agentgym.guidance.teacher`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from agentgym.core.protocol import AsyncEnv
from agentgym.core.task import Task
from agentgym.guidance.config import ReferenceConfig
from agentgym.rollout.engine import EpisodeSpec, RolloutEngine
from agentgym.rollout.trajectory import Trajectory


@dataclass
class FailedGroup:
    """What a provider may read about a group that failed.

    ``env`` is a fresh environment (from the engine's factory, within its limits) reset to
    ``task``: its start state. ``engine`` bounds calls to it (``engine.env_call``).
    """

    spec: EpisodeSpec
    trajectories: list[Trajectory]
    task: Task
    env: AsyncEnv
    engine: RolloutEngine
    step: int = 0

    @property
    def best(self) -> Trajectory | None:
        """The failed attempt that got furthest (final progress, then reward, then length)."""
        done = [t for t in self.trajectories if t.status != "failed" and t.turns]
        if not done:
            return None

        def key(t: Trajectory) -> tuple[float, float, int]:
            p = t.turns[-1].info.get("progress")
            return (float(p) if p is not None else -1.0, t.reward, len(t.turns))

        return max(done, key=key)


class GuidanceProvider(Protocol):
    kind: str

    async def provide(self, failed: FailedGroup) -> str | None:
        """Guidance text for a re-attempt, or None when there is none."""
        ...


class EnvHintProvider:
    """``env.hint()`` at the start state, or after replaying the best failed attempt (``final``)."""

    kind = "hint"

    def __init__(self, state: Literal["start", "final"] = "start"):
        self.state = state

    async def provide(self, failed: FailedGroup) -> str | None:
        env, engine = failed.env, failed.engine
        if self.state == "final" and failed.best is not None:
            for turn in failed.best.turns:
                result = await engine.env_call(env.astep(turn.assistant_message()), "step")
                if result.done:
                    break
        hint = await engine.hint(env)  # also after a turn-limit end: the state is where the attempt stopped
        return hint or None


def reference_solution(task: Task, config: ReferenceConfig) -> list[str] | None:
    """The hidden solution as a list of steps (list items, patch lines, or words)."""
    keys = [config.key] if config.key else config.keys
    for key in keys:
        value = task.reference.get(key)
        if value is None or value == "" or value == []:
            continue
        if isinstance(value, (list, tuple)):
            return [str(v) for v in value]
        text = str(value)
        return text.splitlines() if "\n" in text.strip() else text.split()
    return None


class ReferenceProvider:
    """A prefix of the hidden reference solution; its length adapts per task."""

    kind = "reference"

    def __init__(self, config: ReferenceConfig | None = None):
        self.config = config or ReferenceConfig()
        self.fraction: dict[str, float] = {}

    async def provide(self, failed: FailedGroup) -> str | None:
        steps = reference_solution(failed.task, self.config)
        if not steps:
            return None
        frac = self.fraction.setdefault(failed.task.id, self.config.start)
        k = min(len(steps), max(1, math.ceil(frac * len(steps))))
        joiner = "\n" if any("\n" in s or len(s) > 40 for s in steps) else ", "
        whole = "the whole solution" if k == len(steps) else f"the first {k} of {len(steps)} steps of a solution"
        return f"Here is {whole}: {joiner.join(steps[:k])}"

    def observe(self, task_id: str, guided_success: float, threshold: float) -> None:
        """After the guided re-attempt: longer prefix if it failed again, shorter if it worked."""
        c = self.config
        frac = self.fraction.get(task_id, c.start)
        frac = frac + c.step if guided_success <= threshold else frac - c.step
        self.fraction[task_id] = min(c.max, max(c.min, frac))


class FeedbackProvider:
    """The environment's error messages and the final observation of the failed attempts."""

    kind = "feedback"

    def __init__(self, max_errors: int = 4, max_chars: int = 400):
        self.max_errors = max_errors
        self.max_chars = max_chars

    async def provide(self, failed: FailedGroup) -> str | None:
        errors: list[str] = []
        for traj in failed.trajectories:
            for turn in traj.turns:
                content = str(turn.observation.get("content") or "")
                if turn.info.get("invalid_action") or content.lstrip().lower().startswith(("error", "blocked")):
                    line = shorten(content.splitlines()[0] if content else "", 200)
                    if line and line not in errors:
                        errors.append(line)
        parts = []
        if errors:
            parts.append("Problems in earlier attempts:\n" + "\n".join(f"- {e}" for e in errors[: self.max_errors]))
        best = failed.best
        if best is not None:
            last = best.turns[-1]
            why = last.info.get("reason")
            final = shorten(last.observation.get("content"), self.max_chars)
            parts.append(f"An earlier attempt ended{f' ({why})' if why else ''} with: {final}")
        return "\n".join(parts) if parts else None


def shorten(text: Any, limit: int) -> str:
    text = str(text or "").strip()
    return text if len(text) <= limit else text[:limit] + " [...]"
