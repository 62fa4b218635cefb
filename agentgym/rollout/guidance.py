"""Guidance injection: re-attempt tasks whose group failed, with a hint in the prompt.

GRPO learns nothing from a group whose episodes all fail: every advantage is zero. When
a group's success rate is at or below ``threshold``, :class:`GuidedRollouts` asks its
providers for guidance text and runs the task again with that text added to the first
user message (Agent-RLVR; GHPO / SEELE-style hint scaffolding). Providers
(:class:`GuidanceProvider`):

* ``env_hint`` — the environment's own ``hint()`` (maze/Sokoban: the next optimal moves;
  search: the open sub-question; SWE: failing tests and the files the fix touches).
  ``hint_state="start"`` (default) asks a fresh env reset to the same task, because the
  re-attempt starts from the reset state too: the maze's "next moves" from where a failed
  attempt ended would mislead an attempt that starts over. ``"final"`` replays the best
  failed attempt's actions and asks there, for envs whose hint describes what is still
  wrong (SWE's failing tests after the attempted patch).
* ``reference`` — a prefix of the hidden reference solution (``task.reference``) whose
  length adapts per task: longer after a guided attempt fails, shorter after it succeeds.
* ``teacher`` — a policy reads the failed attempt and the hidden reference and writes a
  plan or critique. Its text is filtered: every occurrence of a reference answer
  (SQuAD-normalised, whole words) is redacted, or the guidance dropped
  (``answer_filter``); if an occurrence survives redaction the guidance is dropped.
* ``feedback`` — the environment's error messages and final observation of the failed
  attempts.

The configuration decides how guided episodes enter the batch (``integrate``: ``add`` them
to the group, or ``replace`` the group's failed episodes), whether the guidance stays in
the trained context (``context="keep"``) or is stripped (``"strip"``), and how often
failed groups are guided over training (``schedule``).

Strip and its off-policy correction. Stripped, a guided episode is trained on the
unguided first prompt followed by exactly the sampled tokens, while its behaviour
log-probs were computed under the guided prompt. The learner's importance ratio is then
``pi_theta(a | unguided) / pi_behaviour(a | guided)``. When a scorer is available (a
torch policy), the per-token weight ``w = pi_old(a | unguided) / pi_behaviour(a | guided)``
is measured right after sampling and clipped to ``[1 / ratio_clip, ratio_clip]`` by
rewriting the stored behaviour log-prob as ``logp_unguided - clip(log w)``, so the learner's
ratio starts at the clipped weight and PPO's own clip works from there. Without a scorer
the stored guided log-probs are kept and only PPO's clip bounds the ratio.
"""

from __future__ import annotations

import asyncio
import math
import re
import string
import time
import uuid
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Literal, Protocol, Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from agentgym.core.registry import make, spec as env_spec
from agentgym.core.task import Task
from agentgym.policy.base import GenerationRequest, Policy, SamplingParams
from agentgym.rewards.verifiable import contains_answer, normalize_answer
from agentgym.rollout.context import Guidance
from agentgym.rollout.engine import EpisodeSpec, RolloutEngine
from agentgym.rollout.trajectory import Trajectory
from agentgym.torch_thread import run_on_torch_thread

ProviderName = Literal["env_hint", "reference", "teacher", "feedback"]
Scorer = Callable[[list[int]], list[float]]
"""token ids -> log-prob of each token given the ones before it (0.0 for the first)."""


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


# ----------------------------------------------------------------------------- providers
@dataclass
class FailedGroup:
    """What a provider may read about a group that failed."""

    spec: EpisodeSpec
    trajectories: list[Trajectory]
    task: Task
    env: Any  # a fresh env reset to ``task`` (its start state)
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
        env = failed.env
        if self.state == "final" and failed.best is not None:
            for turn in failed.best.turns:
                if env.done:
                    break
                await env.astep(turn.action)
        hint = env.hint()  # also after a turn-limit end: the state is where the attempt stopped
        return str(hint) if hint else None


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
                    line = _short(content.splitlines()[0] if content else "", 200)
                    if line and line not in errors:
                        errors.append(line)
        parts = []
        if errors:
            parts.append("Problems in earlier attempts:\n" + "\n".join(f"- {e}" for e in errors[: self.max_errors]))
        best = failed.best
        if best is not None:
            last = best.turns[-1]
            why = last.info.get("reason")
            final = _short(last.observation.get("content"), self.max_chars)
            parts.append(f"An earlier attempt ended{f' ({why})' if why else ''} with: {final}")
        return "\n".join(parts) if parts else None


TEACHER_SYSTEM = (
    "You are a teacher. A student attempted a task and failed. You see the student's attempt and a "
    "reference solution the student cannot see. Write brief, concrete advice (a plan or a critique) that "
    "helps the student succeed on their own. Never reveal the reference solution or the final answer."
)
TEACHER_USER = (
    "Task:\n<<<\n{task}\n>>>\n\nThe student's failed attempt:\n{attempt}\n\n"
    "Reference solution (hidden from the student, do not quote it): {reference}\n\n"
    "Write at most four sentences of advice for the next attempt."
)


def redact_answers(text: str, answers: Sequence[str], token: str = "[redacted]") -> tuple[str, int]:
    """Replace every whole-word occurrence of a (normalised) answer in ``text``; returns (text, count)."""
    count = 0
    for answer in sorted({a for a in answers if normalize_answer(a)}, key=lambda a: -len(a)):
        target = normalize_answer(answer).split()
        words = [(normalize_answer(m.group()), m.start(), m.end()) for m in re.finditer(r"\S+", text)]
        words = [w for w in words if w[0]]
        spans = []
        i = 0
        while i + len(target) <= len(words):
            if [w[0] for w in words[i : i + len(target)]] == target:
                start, end = words[i][1], words[i + len(target) - 1][2]
                while text[start] in string.punctuation:  # keep the sentence's own punctuation
                    start += 1
                while text[end - 1] in string.punctuation:
                    end -= 1
                spans.append((start, end))
                i += len(target)
            else:
                i += 1
        for start, end in reversed(spans):
            text = text[:start] + token + text[end:]
        count += len(spans)
    return text, count


def answer_strings(task: Task, keys: Sequence[str]) -> list[str]:
    """The reference answers a teacher must not reveal (lists joined with spaces, and each string item)."""
    out: list[str] = []
    for key in keys:
        value = task.reference.get(key)
        if value is None:
            continue
        if isinstance(value, (list, tuple)):
            items = [str(v) for v in value if v is not None]
            if items and all(isinstance(v, str) and len(v.split()) > 1 for v in value):
                out.extend(items)  # a list of alternative answers
            elif items:
                out.append(" ".join(items))  # a sequence of steps: the whole sequence is the answer
        else:
            out.append(str(value))
    return [a for a in out if a.strip()]


class TeacherProvider:
    """A policy writes a plan from the failed attempt and the hidden reference; the answer is filtered."""

    kind = "plan"

    def __init__(self, policy: Policy, config: TeacherConfig | None = None, reference: ReferenceConfig | None = None):
        self.policy = policy
        self.config = config or TeacherConfig()
        self.reference = reference or ReferenceConfig(start=1.0)
        self.stats = {"requests": 0, "redacted": 0, "dropped": 0, "errors": 0}

    def prompt(self, failed: FailedGroup) -> list[dict[str, str]]:
        best = failed.best
        attempt = "(no steps)"
        if best is not None:
            attempt = "\n".join(
                f"{i}. {_short(t.action, 120)} -> {_short(t.observation.get('content'), 160)}"
                for i, t in enumerate(best.turns[:12], 1)
            )
        steps = reference_solution(failed.task, self.reference.model_copy(update={"key": None}))
        reference = " ".join(steps) if steps else "(none)"
        first = next((m for m in (best.messages if best else []) if m.get("role") == "user"), {})
        task_text = _short(first.get("content") or failed.task.inputs, 1500)
        user = TEACHER_USER.format(task=task_text, attempt=attempt, reference=_short(reference, 1500))
        return [{"role": "system", "content": TEACHER_SYSTEM}, {"role": "user", "content": user}]

    async def provide(self, failed: FailedGroup) -> str | None:
        c = self.config
        request = GenerationRequest(
            messages=self.prompt(failed), params=SamplingParams(temperature=c.temperature, max_tokens=c.max_tokens)
        )
        self.stats["requests"] += 1
        try:
            (options,) = await asyncio.wait_for(self.policy.generate([request]), c.timeout_s)
        except Exception:  # a teacher failure only means no teacher guidance for this group
            self.stats["errors"] += 1
            return None
        if not options or options[0].error:
            self.stats["errors"] += 1
            return None
        return self.filter(options[0].text, failed.task)

    def filter(self, text: str, task: Task) -> str | None:
        """Redact (or drop on) reference answers; drop if one still shows after redaction."""
        text = (text or "").strip()
        answers = answer_strings(task, self.config.answer_keys)
        if not text:
            return None
        leaked = any(contains_answer(text, a) for a in answers)
        if leaked and self.config.answer_filter == "drop":
            self.stats["dropped"] += 1
            return None
        if leaked:
            text, n = redact_answers(text, answers)
            self.stats["redacted"] += n
            if any(contains_answer(text, a) for a in answers):
                self.stats["dropped"] += 1
                return None
        return text or None


def _short(text: Any, limit: int) -> str:
    text = str(text or "").strip()
    return text if len(text) <= limit else text[:limit] + " [...]"


# ----------------------------------------------------------------------------- strip
def strip_guidance(traj: Trajectory, scorer: Scorer | None = None, ratio_clip: float = 5.0) -> bool:
    """Put a guided episode on its unguided first prompt (see the module docstring); True if done.

    Needs token-level bookkeeping and the ``unguided_prompt_ids`` the context builder
    records; episodes whose template broke the prefix are left guided.
    """
    ids = traj.metadata.get("unguided_prompt_ids")
    if ids is None or not traj.turns or not traj.token_ids or traj.metadata.get("prefix_broken"):
        traj.metadata["guidance_stripped"] = False
        return False
    cut = traj.turns[0].start
    delta = len(ids) - cut
    traj.token_ids = list(ids) + traj.token_ids[cut:]
    traj.loss_mask = [0] * len(ids) + traj.loss_mask[cut:]
    traj.logprobs = [0.0] * len(ids) + traj.logprobs[cut:]
    for turn in traj.turns:
        turn.start += delta
        turn.end += delta
    traj.metadata["guidance_stripped"] = True
    traj.metadata["guided_prompt_tokens"] = cut
    traj.metadata.pop("unguided_prompt_ids", None)
    if scorer is not None:
        unguided = scorer(traj.token_ids)
        bound = math.log(ratio_clip)
        log_w, clipped = [], 0
        for i, m in enumerate(traj.loss_mask):
            if not m:
                continue
            lw = unguided[i] - traj.logprobs[i]
            c = min(bound, max(-bound, lw))
            clipped += c != lw
            log_w.append(lw)
            traj.logprobs[i] = unguided[i] - c
        if log_w:
            traj.metadata["guidance_log_ratio_mean"] = float(np.mean(log_w))
            traj.metadata["guidance_ratio_clipped"] = clipped / len(log_w)
    return True


def torch_scorer(model: Any, *, temperature: float = 1.0, lock: Any = None) -> Scorer:
    """A scorer from a causal LM module (the rollout policy's current weights)."""
    import contextlib

    import torch

    def score(token_ids: list[int]) -> list[float]:
        device = next(model.parameters()).device
        ids = torch.tensor([token_ids], dtype=torch.long, device=device)
        with (lock or contextlib.nullcontext()), torch.no_grad():
            logits = model(input_ids=ids).logits[0, :-1].float() / temperature
        logp = torch.log_softmax(logits, dim=-1).gather(1, ids[0, 1:, None]).squeeze(1)
        return [0.0] + logp.cpu().tolist()

    return score


# ----------------------------------------------------------------------------- the runner
@dataclass
class GuidedBatch:
    groups: list[list[Trajectory]]
    metrics: dict[str, float] = field(default_factory=dict)
    #: The groups as they were before guidance (for before/after measurements).
    unguided: list[list[Trajectory]] = field(default_factory=list)


def success_rate(group: Sequence[Trajectory]) -> float:
    return float(np.mean([t.success for t in group])) if group else 0.0


def build_providers(config: GuidanceConfig, policy: Policy | None = None) -> list[GuidanceProvider]:
    """The providers a config names; ``policy`` teaches when ``teacher.policy`` is unset."""
    out: list[GuidanceProvider] = []
    for name in config.providers:
        if name == "env_hint":
            out.append(EnvHintProvider(config.hint_state))
        elif name == "reference":
            out.append(ReferenceProvider(config.reference))
        elif name == "feedback":
            out.append(FeedbackProvider())
        elif name == "teacher":
            teacher = policy
            if config.teacher.policy:
                teacher = load_policy_spec(config.teacher.policy)
            if teacher is None:
                raise ValueError("the teacher provider needs a policy (guidance.teacher.policy or the training policy)")
            out.append(TeacherProvider(teacher, config.teacher))
    return out


def load_policy_spec(spec: str) -> Policy:
    """``agentgym.policy.load_policy`` when present, else the hf backend."""
    try:
        from agentgym.policy import load_policy  # type: ignore[attr-defined]
    except ImportError:
        from agentgym.policy.hf import HFPolicy

        return HFPolicy(spec[3:] if spec.startswith("hf:") else spec)
    return load_policy(spec)


class GuidedRollouts:
    """Runs groups, re-attempts the failed ones with guidance, and merges them per the config."""

    def __init__(
        self,
        config: GuidanceConfig,
        providers: Sequence[GuidanceProvider],
        *,
        seed: int = 0,
        scorer: Scorer | None = None,
    ):
        self.config = config
        self.providers = list(providers)
        self.seed = seed
        self.scorer = scorer

    def probability(self, step: int) -> float:
        return self.config.schedule.probability(step)

    async def run_groups(
        self, engine: RolloutEngine, specs: Sequence[EpisodeSpec], group_size: int, *, step: int = 0
    ) -> GuidedBatch:
        cfg = self.config
        rng = np.random.default_rng([self.seed, 4241, step])
        specs = [s if s.seed is not None or s.task is not None else replace(s, seed=int(rng.integers(2**31 - 1)))
                 for s in specs]
        specs = [s if s.group_id else replace(s, group_id=f"g-{uuid.uuid4().hex[:10]}") for s in specs]
        groups = await engine.run_groups(list(specs), group_size)
        unguided = [list(g) for g in groups]
        metrics: dict[str, float] = {"guidance/probability": self.probability(step)}
        candidates = [i for i, g in enumerate(groups) if success_rate(g) <= cfg.threshold]
        draws = rng.random(len(groups))
        chosen = [i for i in candidates if cfg.enabled and draws[i] < self.probability(step)]
        t0 = time.perf_counter()
        texts = await asyncio.gather(*(self._guidance_for(specs[i], groups[i], step) for i in chosen))
        metrics["guidance/provide_s"] = time.perf_counter() - t0
        guided_specs, guided_idx, tasks = [], [], []
        for i, found in zip(chosen, texts):
            if found is None:
                continue
            text, kind, task = found
            n = cfg.samples or group_size
            if cfg.integrate == "replace":
                n = sum(not t.success for t in groups[i])
            guidance = Guidance(text=text, mode=cfg.mode, kind=kind, every_turn=cfg.every_turn)
            spec = specs[i]
            guided_specs.append(
                replace(spec, task=task, guidance=guidance, metadata={**spec.metadata, "guided": True})
            )
            guided_idx.append((i, n))
            tasks.append(task)
        guided_groups: list[list[Trajectory]] = []
        if guided_specs:
            # One run_groups call per distinct size keeps every re-attempt in flight at once.
            by_size: dict[int, list[int]] = {}
            for j, (_, n) in enumerate(guided_idx):
                by_size.setdefault(n, []).append(j)
            results: dict[int, list[Trajectory]] = {}
            runs = await asyncio.gather(
                *(engine.run_groups([guided_specs[j] for j in js], n) for n, js in by_size.items())
            )
            for js, run in zip(by_size.values(), runs):
                for j, group in zip(js, run):
                    results[j] = group
            guided_groups = [results[j] for j in range(len(guided_specs))]
        stripped = ratios = clipped = 0
        log_ratio: list[float] = []
        for (i, _), task, guided in zip(guided_idx, tasks, guided_groups):
            for t in guided:
                t.metadata["guided"] = True
                if cfg.context == "strip" and t.status != "failed":
                    if self.scorer is not None and t.token_ids:
                        ok = await run_on_torch_thread(strip_guidance, t, self.scorer, cfg.ratio_clip)
                    else:
                        ok = strip_guidance(t, None, cfg.ratio_clip)
                    stripped += ok
                    if "guidance_log_ratio_mean" in t.metadata:
                        ratios += 1
                        log_ratio.append(t.metadata["guidance_log_ratio_mean"])
                        clipped += t.metadata["guidance_ratio_clipped"]
            for p in self.providers:
                if isinstance(p, ReferenceProvider):
                    p.observe(task.id, success_rate(guided), cfg.threshold)
            if cfg.integrate == "add":
                groups[i] = groups[i] + guided
            else:
                groups[i] = [t for t in groups[i] if t.success] + guided
        guided_flat = [t for g in guided_groups for t in g]
        metrics.update({
            "guidance/candidates": float(len(candidates)),
            "guidance/candidate_rate": len(candidates) / len(groups) if groups else 0.0,
            "guidance/guided_groups": float(len(guided_groups)),
            "guidance/rate": len(guided_groups) / len(groups) if groups else 0.0,
            "guidance/no_text": float(len(chosen) - len(guided_groups)),
            "guidance/guided_episodes": float(len(guided_flat)),
            "guidance/guided_success": success_rate(guided_flat) if guided_flat else 0.0,
            "guidance/candidates_success_before": (
                float(np.mean([success_rate(unguided[i]) for i, _ in guided_idx])) if guided_idx else 0.0
            ),
            "guidance/unguided_success": success_rate([t for g in unguided for t in g]),
            "guidance/nonzero_reward_groups_before": _varied_fraction(unguided),
            "guidance/nonzero_reward_groups_after": _varied_fraction(groups),
        })
        if guided_flat:
            metrics["guidance/chars"] = float(np.mean([len(g.guidance.text) for g in guided_specs]))
        if cfg.context == "strip":
            metrics["guidance/stripped_fraction"] = stripped / len(guided_flat) if guided_flat else 0.0
            if ratios:
                metrics["guidance/log_ratio_mean"] = float(np.mean(log_ratio))
                metrics["guidance/ratio_clipped_fraction"] = clipped / ratios
        for p in self.providers:
            if isinstance(p, ReferenceProvider) and p.fraction:
                metrics["guidance/reference_fraction"] = float(np.mean(list(p.fraction.values())))
            if isinstance(p, TeacherProvider):
                for k, v in p.stats.items():
                    metrics[f"guidance/teacher_{k}"] = float(v)
        return GuidedBatch(groups, metrics, unguided)

    async def _guidance_for(
        self, spec: EpisodeSpec, group: list[Trajectory], step: int
    ) -> tuple[str, str, Task] | None:
        env_spec(spec.env_id)  # plugins load in this thread, not racing in a worker thread
        env = await asyncio.to_thread(make, spec.env_id, **spec.env_kwargs)
        try:
            options = {"task": spec.task} if spec.task is not None else None
            await env.areset(seed=spec.seed, options=options)
            task = env.task
            parts, kinds = [], []
            for provider in self.providers:
                failed = FailedGroup(spec, group, task, env, step)
                text = await provider.provide(failed)
                if text:
                    parts.append(text.strip())
                    kinds.append(provider.kind)
                if env.done or (getattr(provider, "state", "start") == "final"):
                    await env.areset(seed=spec.seed, options={"task": task})  # the next provider sees the start
        finally:
            try:
                env.close()
            except Exception:
                pass
        if not parts:
            return None
        text = "\n".join(parts)
        if len(text) > self.config.max_chars:
            text = text[: self.config.max_chars] + " [...]"
        header = self.config.header.strip()
        return (f"{header}\n{text}" if header else text), "+".join(kinds), task


def _varied_fraction(groups: Sequence[Sequence[Trajectory]]) -> float:
    """Fraction of groups whose rewards are not all equal (their outcome advantages are non-zero)."""
    if not groups:
        return 0.0
    return float(np.mean([len({round(t.reward, 9) for t in g if t.status != "failed"}) > 1 for g in groups]))


def guided_rollouts(
    config: GuidanceConfig,
    policy: Policy | None,
    *,
    seed: int = 0,
    model: Any = None,
    lock: Any = None,
    temperature: float = 1.0,
) -> GuidedRollouts:
    """The training loop's guidance: providers from the config; a scorer for ``strip`` when a torch model is at hand."""
    scorer = None
    if config.context == "strip" and model is not None:
        scorer = torch_scorer(model, temperature=temperature, lock=lock)
    return GuidedRollouts(config, build_providers(config, policy), seed=seed, scorer=scorer)
