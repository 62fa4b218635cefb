"""The guided-rollout runner: run groups, score them, re-attempt the failed ones with guidance.

GRPO learns nothing from a group whose episodes all fail: every advantage is zero. The
runner rolls out the groups through the engine, scores them with the one scoring pass the
learner uses (``score``), and for each group whose success rate is at or below
``threshold`` (drawn with the schedule's probability) asks the providers for guidance text
and runs the task again with it; the re-attempts are scored by the same pass and join or
replace the group (``integrate``). Provider environments come from the engine's
:meth:`~agentgym.rollout.engine.RolloutEngine.env_session`, so they respect its factory,
concurrency limits and timeouts. Stripping guidance from the trained context is the
learner's business (:mod:`agentgym.train.offpolicy`).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass, field, replace
from typing import Awaitable, Callable, Sequence

import numpy as np

from agentgym.core.task import Task
from agentgym.guidance.config import GuidanceConfig
from agentgym.guidance.providers import (
    EnvHintProvider,
    FailedGroup,
    FeedbackProvider,
    GuidanceProvider,
    ReferenceProvider,
)
from agentgym.guidance.teacher import TeacherProvider
from agentgym.policy.base import Policy
from agentgym.rollout.context import Guidance
from agentgym.rollout.engine import EpisodeSpec, RolloutEngine
from agentgym.rollout.trajectory import Trajectory

ScoreGroups = Callable[[list[list[Trajectory]]], Awaitable[object]]
"""The scoring pass: fills ``traj.rewards`` of every trajectory of the groups."""


@dataclass
class GuidedBatch:
    """One step's groups after guidance, its metrics, and the groups as they were before."""

    groups: list[list[Trajectory]]
    metrics: dict[str, float] = field(default_factory=dict)
    unguided: list[list[Trajectory]] = field(default_factory=list)


def success_rate(group: Sequence[Trajectory]) -> float:
    return float(np.mean([t.success for t in group])) if group else 0.0


def varied_fraction(groups: Sequence[Sequence[Trajectory]]) -> float:
    """Fraction of groups whose scored rewards are not all equal (their outcome advantages are non-zero)."""
    if not groups:
        return 0.0
    return float(np.mean([len({round(t.score, 9) for t in g if t.status != "failed"}) > 1 for g in groups]))


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
                from agentgym.policy import load_policy

                teacher = load_policy(config.teacher.policy)
            if teacher is None:
                raise ValueError("the teacher provider needs a policy (guidance.teacher.policy or the training policy)")
            out.append(TeacherProvider(teacher, config.teacher))
    return out


class GuidedRollouts:
    """Runs groups, re-attempts the failed ones with guidance, and merges them per the config."""

    def __init__(self, config: GuidanceConfig, providers: Sequence[GuidanceProvider], *, seed: int = 0):
        self.config = config
        self.providers = list(providers)
        self.seed = seed

    def probability(self, step: int) -> float:
        return self.config.schedule.probability(step)

    async def run_groups(
        self,
        engine: RolloutEngine,
        specs: Sequence[EpisodeSpec],
        group_size: int,
        *,
        step: int = 0,
        score: ScoreGroups | None = None,
    ) -> GuidedBatch:
        """Roll out, score, guide the failed groups, score the re-attempts; see the module docstring."""
        cfg = self.config
        rng = np.random.default_rng([self.seed, 4241, step])
        specs = [s if s.seed is not None or s.task is not None else replace(s, seed=int(rng.integers(2**31 - 1)))
                 for s in specs]
        specs = [s if s.group_id else replace(s, group_id=f"g-{uuid.uuid4().hex[:10]}") for s in specs]
        groups = await engine.run_groups(list(specs), group_size)
        if score is not None:
            await score(groups)
        unguided = [list(g) for g in groups]
        metrics: dict[str, float] = {"guidance/probability": self.probability(step)}
        candidates = [i for i, g in enumerate(groups) if success_rate(g) <= cfg.threshold]
        draws = rng.random(len(groups))
        chosen = [i for i in candidates if cfg.enabled and draws[i] < self.probability(step)]
        t0 = time.perf_counter()
        texts = await asyncio.gather(*(self._guidance_for(engine, specs[i], groups[i], step) for i in chosen))
        metrics["guidance/provide_s"] = time.perf_counter() - t0
        guided_specs, guided_idx = [], []
        for i, found in zip(chosen, texts):
            if found is None:
                continue
            text, kind, task = found
            n = cfg.samples or group_size
            if cfg.integrate == "replace":
                n = sum(not t.success for t in groups[i])
            guidance = Guidance(text=text, mode=cfg.mode, kind=kind, every_turn=cfg.every_turn)
            guided_specs.append(replace(specs[i], task=task, guidance=guidance,
                                        metadata={**specs[i].metadata, "guided": True}))
            guided_idx.append((i, n, task))
        guided_groups = await self._reattempt(engine, guided_specs, [n for _, n, _ in guided_idx])
        if score is not None and guided_groups:
            await score(guided_groups)
        for (i, _, task), guided in zip(guided_idx, guided_groups):
            for t in guided:
                t.metadata["guided"] = True
            for p in self.providers:
                if isinstance(p, ReferenceProvider):
                    p.observe(task.id, success_rate(guided), cfg.threshold)
            if cfg.integrate == "add":
                groups[i] = groups[i] + guided
            else:
                groups[i] = [t for t in groups[i] if t.success] + guided
        metrics.update(self._metrics(groups, unguided, candidates, chosen, guided_idx, guided_groups, guided_specs))
        return GuidedBatch(groups, metrics, unguided)

    async def _reattempt(self, engine: RolloutEngine, specs: list[EpisodeSpec], sizes: list[int]) -> list[list[Trajectory]]:
        """The guided groups, every re-attempt in flight at once (one run_groups call per group size)."""
        by_size: dict[int, list[int]] = {}
        for j, n in enumerate(sizes):
            by_size.setdefault(n, []).append(j)
        runs = await asyncio.gather(*(engine.run_groups([specs[j] for j in js], n) for n, js in by_size.items()))
        results: dict[int, list[Trajectory]] = {}
        for js, run in zip(by_size.values(), runs):
            results.update(zip(js, run))
        return [results[j] for j in range(len(specs))]

    def _metrics(self, groups, unguided, candidates, chosen, guided_idx, guided_groups, guided_specs) -> dict[str, float]:
        guided_flat = [t for g in guided_groups for t in g]
        metrics = {
            "guidance/candidates": float(len(candidates)),
            "guidance/candidate_rate": len(candidates) / len(groups) if groups else 0.0,
            "guidance/guided_groups": float(len(guided_groups)),
            "guidance/rate": len(guided_groups) / len(groups) if groups else 0.0,
            "guidance/no_text": float(len(chosen) - len(guided_groups)),
            "guidance/guided_episodes": float(len(guided_flat)),
            "guidance/guided_success": success_rate(guided_flat) if guided_flat else 0.0,
            "guidance/candidates_success_before": (
                float(np.mean([success_rate(unguided[i]) for i, _, _ in guided_idx])) if guided_idx else 0.0
            ),
            "guidance/unguided_success": success_rate([t for g in unguided for t in g]),
            "guidance/nonzero_reward_groups_before": varied_fraction(unguided),
            "guidance/nonzero_reward_groups_after": varied_fraction(groups),
        }
        if guided_flat:
            metrics["guidance/chars"] = float(np.mean([len(s.guidance.text) for s in guided_specs]))
        for p in self.providers:
            if isinstance(p, ReferenceProvider) and p.fraction:
                metrics["guidance/reference_fraction"] = float(np.mean(list(p.fraction.values())))
            if isinstance(p, TeacherProvider):
                for k, v in p.stats.items():
                    metrics[f"guidance/teacher_{k}"] = float(v)
        return metrics

    async def _guidance_for(
        self, engine: RolloutEngine, spec: EpisodeSpec, group: list[Trajectory], step: int
    ) -> tuple[str, str, Task] | None:
        task = next((t.task for t in group if t.task is not None), None)
        options = {"task": task if task is not None else spec.task} if (task or spec.task) is not None else None
        parts, kinds = [], []
        async with engine.env_session(spec.env_id, spec.env_kwargs) as env:
            _, info = await engine.env_call(env.areset(seed=spec.seed, options=options), "reset")
            if task is None:
                reported = info.get("task")
                task = reported if isinstance(reported, Task) else (
                    Task.model_validate(reported) if isinstance(reported, dict) else Task(id=str(info.get("task_id", ""))))
            moved = False
            for provider in self.providers:
                if moved:  # the previous provider replayed an attempt: the next one sees the start again
                    await engine.env_call(env.areset(seed=spec.seed, options={"task": task}), "reset")
                text = await provider.provide(FailedGroup(spec, group, task, env, engine, step))
                moved = isinstance(provider, EnvHintProvider) and provider.state == "final"
                if text:
                    parts.append(text.strip())
                    kinds.append(provider.kind)
        if not parts:
            return None
        text = "\n".join(parts)
        if len(text) > self.config.max_chars:
            text = text[: self.config.max_chars] + " [...]"
        header = self.config.header.strip()
        return (f"{header}\n{text}" if header else text), "+".join(kinds), task
