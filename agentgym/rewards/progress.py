"""Retrospective progress rewards (RePro-style): score every step once the episode is over.

An outcome reward says whether an episode worked, not which steps helped. After an
episode, a *progress assessor* looks at the whole trajectory and its known outcome and
gives each turn a progress score; the scores become turn-level rewards that are mixed
into the group-relative advantage of that turn's tokens.

Assessors (all implement :class:`ProgressAssessor`):

* :class:`EnvProgressAssessor` — environment-native: the rollout engine records
  ``env.progress()`` (a [0, 1] measure of the state: maze shortest-path distance,
  Sokoban boxes on targets / solver distance, SWE tests passing) after reset
  (``traj.metadata["initial_progress"]``) and after each step (``turn.info["progress"]``);
  the score of turn ``t`` is the difference ``progress_after_t - progress_before_t``.
* :class:`LLMProgressAssessor` — any policy judges the whole trajectory at once and
  writes one score in [-1, 1] per step; replies are parsed leniently and a reply that
  cannot be parsed is recorded as such (``status``), never scored 0.
* :class:`FallbackAssessor` — the first assessor, then the next for trajectories the
  first could not score (e.g. env progress, else the LLM judge).

The formula (``progress_turn_advantages``), for a group of G episodes on one task:

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

import asyncio
import math
import re
import time
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from agentgym.policy.base import GenerationRequest, Policy, SamplingParams
from agentgym.rewards.parsing import extract_json
from agentgym.rollout.trajectory import Trajectory
from agentgym.train.advantages import TurnCredit, group_advantages, outcome_credit, turn_advantages


class ProgressConfig(BaseModel):
    """Retrospective progress rewards in training (the ``progress:`` section of a train config)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    enabled: bool = False
    #: "env": differences of env.progress(); "llm": an LLM judge; "env_or_llm": env, else the judge.
    assessor: Literal["env", "llm", "env_or_llm"] = "env"
    #: w in A_{i,t} = A_i + w * normalised progress_{i,t}.
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


# ----------------------------------------------------------------------------- the formula
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


def _outcome_advantages(group: Sequence[Trajectory], estimator: str, eps: float) -> dict[str, float]:
    good = [t for t in group if t.status != "failed"]
    if len(good) < 2:
        return {}
    advs = group_advantages([t.reward for t in good], estimator, eps)
    return {t.id: float(a) for t, a in zip(good, advs)}


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


@dataclass
class ProgressResult:
    """What one batch's assessment produced: the credit function, raw scores, metrics."""

    credit: TurnCredit
    scores: dict[str, StepScores] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)


async def assess_groups(
    groups: Sequence[Sequence[Trajectory]], assessor: ProgressAssessor, config: ProgressConfig
) -> ProgressResult:
    """Score every turn of a batch, normalise per group, and build the turn credit."""
    flat = [t for g in groups for t in g if t.status != "failed"]
    t0 = time.perf_counter()
    results = await assessor.assess(flat)
    by_id = {t.id: r for t, r in zip(flat, results)}
    normalised: dict[str, list[float]] = {}
    for group in groups:
        members = [t for t in group if t.id in by_id]
        norm = normalise_group_progress([by_id[t.id].scores for t in members], eps=config.eps, clip=config.clip)
        for t, values in zip(members, norm):
            normalised[t.id] = values
    raw = [s for r in results for s in r.scores if s is not None]
    turns = sum(len(r.scores) for r in results)
    metrics: dict[str, float] = {
        "progress/turns": float(turns),
        "progress/scored_fraction": len(raw) / turns if turns else 0.0,
        "progress/failures": float(sum(r.status in ("unparseable", "error", "timeout") for r in results)),
        "progress/assess_s": time.perf_counter() - t0,
    }
    if raw:
        a = np.asarray(raw)
        metrics.update({
            "progress/mean": float(a.mean()), "progress/std": float(a.std()),
            "progress/min": float(a.min()), "progress/max": float(a.max()),
            "progress/positive_fraction": float((a > 0).mean()),
        })
    return ProgressResult(ProgressCredit(normalised, config.weight), by_id, metrics)


def advantage_metrics(
    groups: Sequence[Sequence[Trajectory]],
    credit: TurnCredit = outcome_credit,
    *,
    estimator: str = "grpo",
    eps: float = 1e-6,
    tol: float = 1e-8,
) -> dict[str, float]:
    """Per-turn advantage statistics and the fraction of groups with any non-zero advantage."""
    per_turn: list[float] = []
    nonzero = 0
    for group in groups:
        outcome = _outcome_advantages(group, estimator, eps)
        values = [v for t in group if t.id in outcome for v in credit(t, outcome[t.id])]
        per_turn.extend(values)
        nonzero += any(abs(v) > tol for v in values)
    out = {"groups/nonzero_adv_fraction": nonzero / len(groups) if groups else 0.0}
    if per_turn:
        a = np.asarray(per_turn)
        out.update({
            "adv_turn/mean": float(a.mean()), "adv_turn/std": float(a.std()),
            "adv_turn/abs_mean": float(np.abs(a).mean()),
            "adv_turn/min": float(a.min()), "adv_turn/max": float(a.max()),
            "adv_turn/nonzero_fraction": float((np.abs(a) > tol).mean()),
        })
    return out
