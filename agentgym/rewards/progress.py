"""Retrospective progress rewards (RePro-style): score every step once the episode is over.

An outcome reward says whether an episode worked, not which steps helped. After an
episode, a *progress assessor* looks at the whole trajectory and its known outcome and
gives each turn a progress score. The scoring pass (:mod:`agentgym.rewards.pipeline`)
records them in ``RewardParts.progress``; the learner turns them into turn-level credit
(:mod:`agentgym.train.credit`: normalised per group, mixed into each turn's advantage).

Assessors (all implement :class:`ProgressAssessor`):

* :class:`EnvProgressAssessor` — environment-native: the rollout engine records
  ``env.aprogress()`` (a [0, 1] measure of the state: maze shortest-path distance,
  Sokoban boxes on targets / solver distance, SWE tests passing) after reset
  (``traj.metadata["initial_progress"]``) and after each step (``turn.info["progress"]``);
  the score of turn ``t`` is the difference ``progress_after_t - progress_before_t``.
* :class:`LLMProgressAssessor` — any policy judges the whole trajectory at once and
  writes one score in [-1, 1] per step; replies are parsed leniently and a reply that
  cannot be parsed is recorded as such (``status``), never scored 0.
* :class:`FallbackAssessor` — the first assessor, then the next for trajectories the
  first could not score (e.g. env progress, else the LLM judge).
"""

from __future__ import annotations

import asyncio
import math
import re
import time
from dataclasses import dataclass
from typing import Any, Literal, Protocol, Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from agentgym.policy.base import GenerationRequest, Policy, SamplingParams
from agentgym.rewards.parsing import extract_json
from agentgym.rollout.trajectory import Trajectory


class ProgressConfig(BaseModel):
    """Retrospective progress rewards in training (the ``progress:`` section of a train config)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    enabled: bool = False
    #: "env": differences of env.aprogress(); "llm": an LLM judge; "env_or_llm": env, else the judge.
    assessor: Literal["env", "llm", "env_or_llm"] = "env"
    #: w in A_{i,t} = A_i + w * normalised progress_{i,t} (applied by the learner, agentgym.train.credit).
    weight: float = Field(0.5, ge=0)
    #: Normalised progress is clipped to [-clip, clip].
    clip: float = Field(3.0, gt=0)
    eps: float = Field(1e-6, gt=0)
    #: Judge policy spec for load_policy; None: the policy being trained judges its own episodes.
    judge_policy: str | None = None
    judge_max_tokens: int = Field(192, ge=8)
    judge_timeout_s: float = Field(300.0, gt=0)


@dataclass
class StepScores:
    """One trajectory's per-turn progress scores (``None`` where a turn could not be scored)."""

    scores: list[float | None]
    source: str = ""
    #: "ok" (every turn scored), "partial", "unavailable" (the assessor cannot tell),
    #: "unparseable", "error" or "timeout".
    status: str = "ok"
    raw: str | None = None

    @property
    def scored(self) -> int:
        return sum(s is not None for s in self.scores)


class ProgressAssessor(Protocol):
    """Scores each turn of finished trajectories, knowing their outcomes."""

    name: str

    async def assess(self, trajectories: Sequence[Trajectory]) -> list[StepScores]:
        ...


# ----------------------------------------------------------------------------- env-native
class EnvProgressAssessor:
    """Per-turn differences of ``env.progress()`` as recorded by the rollout engine."""

    name = "env"

    def score(self, traj: Trajectory) -> StepScores:
        before = traj.metadata.get("initial_progress")
        scores: list[float | None] = []
        for turn in traj.turns:
            after = turn.info.get("progress")
            scores.append(float(after) - float(before) if before is not None and after is not None else None)
            before = after
        n = sum(s is not None for s in scores)
        status = "ok" if n == len(scores) else ("partial" if n else "unavailable")
        return StepScores(scores, self.name, status)

    async def assess(self, trajectories: Sequence[Trajectory]) -> list[StepScores]:
        return [self.score(t) for t in trajectories]


# ----------------------------------------------------------------------------- LLM judge
JUDGE_SYSTEM = (
    "You review a finished episode of an agent working on a task. Knowing how it ended, you rate "
    "how much each step moved the agent toward the goal."
)
JUDGE_USER = (
    "Task given to the agent:\n<<<\n{task}\n>>>\n\n"
    "Outcome: {outcome}\n\n"
    "The agent's steps (action, then what the environment answered):\n{steps}\n\n"
    "Rate every step from -1 (moved away from the goal, or a wasted or invalid step) through 0 "
    "(no change) to 1 (clear progress toward the goal). Answer with exactly {n} lines, one per step:\n"
    "Step 1: <score>\n...\nStep {n}: <score>"
)

_STEP_LINE = re.compile(r"step\s*#?\s*(\d+)[\s*:=)\]]*(?:-\s+)?([-+]?\d+(?:\.\d+)?)", re.IGNORECASE)


def _clip_score(value: Any) -> float | None:
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    if not math.isfinite(x):
        return None
    return max(-1.0, min(1.0, x))


def parse_step_scores(text: str, n: int) -> list[float | None]:
    """Per-step scores (clipped to [-1, 1]) from a judge's reply; ``None`` for steps it did not score.

    Accepted: a JSON list of numbers, a JSON object with a ``scores`` list (or
    ``{"1": x, ...}``), a list of ``{"step": k, "score": x}``, or ``Step k: x`` lines (the
    last line for a step wins). Never raises on model output.
    """
    out: list[float | None] = [None] * n
    if not isinstance(text, str) or not text.strip() or n <= 0:
        return out
    obj = extract_json(text, (dict, list))
    if isinstance(obj, dict):
        if isinstance(obj.get("scores"), list):
            obj = obj["scores"]
        else:
            for key, value in obj.items():
                if str(key).strip().lower().removeprefix("step").strip().isdigit():
                    k = int(str(key).strip().lower().removeprefix("step").strip())
                    if 1 <= k <= n:
                        out[k - 1] = _clip_score(value)
            if any(s is not None for s in out):
                return out
    if isinstance(obj, list) and obj:
        if all(isinstance(v, dict) for v in obj):
            for v in obj:
                k = v.get("step")
                if isinstance(k, (int, float, str)) and str(k).strip().isdigit() and 1 <= int(k) <= n:
                    out[int(k) - 1] = _clip_score(v.get("score"))
        else:
            for i, v in enumerate(obj[:n]):
                out[i] = _clip_score(v)
        if any(s is not None for s in out):
            return out
    for m in _STEP_LINE.finditer(text):
        k = int(m.group(1))
        if 1 <= k <= n:
            out[k - 1] = _clip_score(m.group(2))
    return out


def _short(text: Any, limit: int) -> str:
    text = str(text or "").strip()
    return text if len(text) <= limit else text[:limit] + " [...]"


def _task_text(traj: Trajectory) -> str:
    first = next((m for m in traj.messages if m.get("role") in ("user", "tool")), None)
    return str(first.get("content") or "") if first else ""


class LLMProgressAssessor:
    """Any policy judges whole trajectories; one request per trajectory, all sent as one batch."""

    def __init__(
        self,
        policy: Policy,
        *,
        max_tokens: int = 192,
        timeout_s: float = 300.0,
        retries: int = 1,
        max_task_chars: int = 1500,
        max_action_chars: int = 200,
        max_observation_chars: int = 300,
        system: str = JUDGE_SYSTEM,
        user: str = JUDGE_USER,
    ):
        self.policy = policy
        self.name = f"llm:{getattr(policy, 'name', type(policy).__name__)}"
        self.params = SamplingParams(temperature=0.0, max_tokens=max_tokens)
        self.timeout_s = timeout_s
        self.retries = retries
        self.limits = (max_task_chars, max_action_chars, max_observation_chars)
        self.system, self.user = system, user
        self.stats: dict[str, float] = {"requests": 0, "failures": 0, "generate_s": 0.0}

    def prompt(self, traj: Trajectory) -> list[dict[str, str]]:
        task_chars, action_chars, obs_chars = self.limits
        steps = "\n".join(
            f"Step {i}\nAction: {_short(t.action, action_chars)}\nResult: {_short(t.observation.get('content'), obs_chars)}"
            for i, t in enumerate(traj.turns, 1)
        )
        outcome = "the agent succeeded" if traj.success else "the agent failed"
        user = self.user.format(
            task=_short(_task_text(traj), task_chars),
            outcome=f"{outcome} (total reward {traj.reward:g}).",
            steps=steps,
            n=len(traj.turns),
        )
        return [{"role": "system", "content": self.system}, {"role": "user", "content": user}]

    async def assess(self, trajectories: Sequence[Trajectory]) -> list[StepScores]:
        results: list[StepScores | None] = [None] * len(trajectories)
        todo = [i for i, t in enumerate(trajectories) if t.turns]
        for i, t in enumerate(trajectories):
            if not t.turns:
                results[i] = StepScores([], self.name, "ok")
        failure = ("error", "")
        for _attempt in range(self.retries + 1):
            if not todo:
                break
            requests = [GenerationRequest(messages=self.prompt(trajectories[i]), params=self.params) for i in todo]
            self.stats["requests"] += len(requests)
            t0 = time.perf_counter()
            try:
                completions = await asyncio.wait_for(self.policy.generate(requests), self.timeout_s)
            except asyncio.TimeoutError:
                failure = ("timeout", f"no answer within {self.timeout_s:g} s")
                continue
            except Exception as exc:  # backend trouble: retried, then recorded per trajectory
                failure = ("error", f"{type(exc).__name__}: {exc}")
                continue
            finally:
                self.stats["generate_s"] += time.perf_counter() - t0
            still = []
            for i, options in zip(todo, completions):
                c = options[0] if options else None
                if c is None or c.error or c.finish_reason == "error":
                    failure = ("error", (c.error if c else None) or "no completion")
                    still.append(i)
                    continue
                n = len(trajectories[i].turns)
                scores = parse_step_scores(c.text, n)
                k = sum(s is not None for s in scores)
                status = "ok" if k == n else ("partial" if k else "unparseable")
                results[i] = StepScores(scores, self.name, status, c.text[:2000])
            todo = still
        for i in todo:
            self.stats["failures"] += 1
            results[i] = StepScores([None] * len(trajectories[i].turns), self.name, failure[0], failure[1])
        return results  # type: ignore[return-value]


class FallbackAssessor:
    """Each trajectory scored by the first assessor that can score it fully."""

    def __init__(self, assessors: Sequence[ProgressAssessor]):
        self.assessors = list(assessors)
        self.name = "+".join(a.name for a in self.assessors)

    async def assess(self, trajectories: Sequence[Trajectory]) -> list[StepScores]:
        results = await self.assessors[0].assess(trajectories)
        for assessor in self.assessors[1:]:
            todo = [i for i, r in enumerate(results) if r.status != "ok"]
            if not todo:
                break
            again = await assessor.assess([trajectories[i] for i in todo])
            for i, r in zip(todo, again):
                if r.scored > results[i].scored:
                    results[i] = r
        return results


def build_assessor(config: ProgressConfig, policy: Policy | None = None) -> ProgressAssessor:
    """The assessor a config names; ``policy`` judges when ``judge_policy`` is not set."""
    env = EnvProgressAssessor()
    if config.assessor == "env":
        return env
    judge_policy = policy
    if config.judge_policy:
        from agentgym.policy import load_policy  # type: ignore[attr-defined]

        judge_policy = load_policy(config.judge_policy)
    if judge_policy is None:
        raise ValueError("the llm progress assessor needs a policy (progress.judge_policy or the training policy)")
    llm = LLMProgressAssessor(judge_policy, max_tokens=config.judge_max_tokens, timeout_s=config.judge_timeout_s)
    return llm if config.assessor == "llm" else FallbackAssessor([env, llm])


# ----------------------------------------------------------------------------- the pass
async def assess_progress(trajectories: Sequence[Trajectory], assessor: ProgressAssessor) -> None:
    """Score every turn of ``trajectories`` (whose ``rewards`` exist) into ``rewards.progress``."""
    results = await assessor.assess(list(trajectories))
    for traj, result in zip(trajectories, results):
        assert traj.rewards is not None, "assess_progress runs inside the scoring pass"
        traj.rewards.progress = list(result.scores)
        traj.rewards.progress_status = result.status


def progress_metrics(trajectories: Sequence[Trajectory]) -> dict[str, float]:
    """Statistics of the progress scores the scoring pass recorded (nothing when none were)."""
    parts = [t.rewards for t in trajectories if t.rewards is not None and t.rewards.progress_status]
    if not parts:
        return {}
    raw = [s for p in parts for s in p.progress if s is not None]
    turns = sum(len(p.progress) for p in parts)
    metrics: dict[str, float] = {
        "progress/turns": float(turns),
        "progress/scored_fraction": len(raw) / turns if turns else 0.0,
        "progress/failures": float(sum(p.progress_status in ("unparseable", "error", "timeout") for p in parts)),
    }
    if raw:
        a = np.asarray(raw)
        metrics.update({
            "progress/mean": float(a.mean()), "progress/std": float(a.std()),
            "progress/min": float(a.min()), "progress/max": float(a.max()),
            "progress/positive_fraction": float((a > 0).mean()),
        })
    return metrics
