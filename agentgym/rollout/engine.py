"""The async multi-turn rollout engine.

Many episodes run at once, over any mix of environments, with one policy. Each episode
is a coroutine: create the environment through the env factory, reset it, render the
context, ask the policy (through a :class:`BatchingPolicy`, so concurrent episodes share
forward passes; a scripted :class:`~agentgym.policy.base.ActionSource` is asked directly),
step the environment with the assistant message (content and tool calls), append its
answer, until the environment ends the episode, the context overflows, the episode times
out or something raises. A failure ends only that episode (``status="failed"``, ``error``
set); the rest of the batch goes on.

    engine = RolloutEngine(policy, RolloutConfig(max_batch=32))
    groups = await engine.run_groups([EpisodeSpec("maze/v0", task=t) for t in tasks], group_size=8)

Environments are reached only through the :class:`~agentgym.core.protocol.AsyncEnv`
protocol, created only by the engine's :class:`~agentgym.core.factory.EnvFactory`.
Concurrency is bounded per environment (``env_concurrency``, keyed by env id or family:
sandboxes are expensive), in total (``max_concurrent_episodes``), and per policy
(``policy_concurrency`` generate calls in flight); every environment call is bounded by
``step_timeout_s`` (:mod:`agentgym.rollout.envaccess`). Guidance uses the same limits through
:meth:`RolloutEngine.env_session`.
"""

from __future__ import annotations

import asyncio
import inspect
import time
import traceback
import uuid
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Iterable, Sequence

from agentgym.core.factory import EnvFactory, env_factory
from agentgym.core.protocol import OPTIONAL_HOOKS, AsyncEnv, merge_messages
from agentgym.core.task import Task
from agentgym.policy.base import ActionSource, Completion, GenerationRequest, Policy, SamplingParams
from agentgym.rollout.batching import BatchingPolicy
from agentgym.rollout.config import RolloutConfig
from agentgym.rollout.context import (
    ContextBuilder,
    ContextOverflow,
    EpisodeContext,
    Guidance,
    TokenRenderer,
    renderer_of,
)
from agentgym.rollout.envaccess import EnvAccess, deadlines_for
from agentgym.rollout.trajectory import Trajectory, Turn, jsonable

TrajectoryCallback = Callable[[Trajectory], Any]


@dataclass
class EpisodeSpec:
    """One episode to run: which environment (registered id + kwargs), which task, extras."""

    env_id: str
    task: Task | dict | None = None
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    seed: int | None = None
    group_id: str = ""
    guidance: Guidance | None = None
    sampling: SamplingParams | None = None  # None: the engine's RolloutConfig.sampling
    metadata: dict[str, Any] = field(default_factory=dict)


class PolicyFailure(RuntimeError):
    """The policy returned an error instead of a completion."""


class RolloutEngine(EnvAccess):
    """Runs episodes concurrently with one policy; see the module docstring."""

    def __init__(
        self,
        policy: Policy | ActionSource,
        config: RolloutConfig | None = None,
        *,
        factory: EnvFactory | str | None = None,
        context: ContextBuilder | None = None,
        renderer: TokenRenderer | None = None,
        policy_version: int = 0,
    ):
        self.config = config or RolloutConfig()
        self.policy = policy
        self.factory = env_factory(factory)
        self.actor: ActionSource | None = policy if isinstance(policy, ActionSource) else None
        self.batcher = BatchingPolicy(
            policy,
            max_batch=self.config.max_batch,
            max_wait_s=self.config.batch_wait_s,
            max_concurrency=self.config.policy_concurrency,
        )
        self.context = context or self.config.context_builder()
        if self.config.token_level is False:
            renderer = None
        elif renderer is None:
            renderer = renderer_of(policy)
            if renderer is None and self.config.token_level:
                raise ValueError(f"token_level=True but policy {getattr(policy, 'name', policy)!r} has no chat renderer")
        self.renderer = renderer
        self.policy_version = policy_version
        #: Turns finished so far by all episodes (progress bars read it while episodes run).
        self.turns_done = 0
        self._episode_slots: asyncio.Semaphore | None = None
        self._env_slots: dict[str, asyncio.Semaphore] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._deadlines = deadlines_for(self.config)

    # ----------------------------------------------------------------- public API
    def set_policy_version(self, version: int) -> None:
        """Recorded in every trajectory (and turn) generated from now on."""
        self.policy_version = int(version)

    async def run(
        self, specs: Iterable[EpisodeSpec], *, on_trajectory: TrajectoryCallback | None = None
    ) -> list[Trajectory]:
        """Run all episodes concurrently; trajectories come back in the order of ``specs``."""
        specs = list(specs)
        return list(await asyncio.gather(*(self.run_episode(s, on_trajectory=on_trajectory) for s in specs)))

    async def run_groups(
        self,
        items: Sequence[EpisodeSpec | Task | str],
        group_size: int,
        *,
        env_id: str | None = None,
        env_kwargs: dict[str, Any] | None = None,
        seed: int | None = None,
        guidance: Guidance | None = None,
        on_trajectory: TrajectoryCallback | None = None,
    ) -> list[list[Trajectory]]:
        """``group_size`` episodes of each item's task (the groups of GRPO).

        An item is an :class:`EpisodeSpec`, a :class:`Task` (with ``env_id``), or an env id
        (a task drawn from its generator; every episode of the group gets the same reset
        seed, hence the same task).
        """
        if group_size < 1:
            raise ValueError("group_size must be at least 1")
        base_seed = seed if seed is not None else int.from_bytes(uuid.uuid4().bytes[:4], "little")
        specs: list[EpisodeSpec] = []
        for i, item in enumerate(items):
            base = self._as_spec(item, env_id, env_kwargs, base_seed + i)
            group_id = base.group_id or f"g-{uuid.uuid4().hex[:10]}"
            for sample in range(group_size):
                specs.append(
                    replace(
                        base,
                        group_id=group_id,
                        guidance=base.guidance or guidance,
                        metadata={**base.metadata, "sample": sample},
                    )
                )
        flat = await self.run(specs, on_trajectory=on_trajectory)
        return [flat[i : i + group_size] for i in range(0, len(flat), group_size)]

    async def run_episode(
        self, spec: EpisodeSpec, *, on_trajectory: TrajectoryCallback | None = None
    ) -> Trajectory:
        """Run one episode; never raises for environment or policy trouble (see ``status``)."""
        self._bind_loop()
        traj = Trajectory(
            id=uuid.uuid4().hex,
            env_id=spec.env_id,
            task_id=_task_id(spec.task),
            group_id=spec.group_id,
            policy_version=self.policy_version,
            metadata=dict(spec.metadata),
        )
        assert self._episode_slots is not None
        async with self._episode_slots:
            start = time.perf_counter()
            try:
                body = self._episode(spec, traj)
                if self.config.episode_timeout_s is not None:
                    await asyncio.wait_for(body, self.config.episode_timeout_s)
                else:
                    await body
            except asyncio.TimeoutError:
                traj.status, traj.success = "failed", False
                traj.error = f"episode timed out after {self.config.episode_timeout_s} s"
            except Exception as exc:  # an env or policy bug ends this episode only
                traj.status, traj.success = "failed", False
                traj.error = f"{type(exc).__name__}: {exc}"
                traj.metadata["traceback"] = traceback.format_exc(limit=8)
            finally:
                traj.timings["wall_s"] = time.perf_counter() - start
        if on_trajectory is not None:
            result = on_trajectory(traj)
            if inspect.isawaitable(result):
                await result
        return traj

    async def aclose(self) -> None:
        """Stop the batching queue (the policy itself is left open)."""
        await self.batcher.aclose()

    # ----------------------------------------------------------------- internals
    async def _episode(self, spec: EpisodeSpec, traj: Trajectory) -> None:
        gen_s = env_s = 0.0
        t0 = time.perf_counter()
        async with self.env_session(spec.env_id, spec.env_kwargs) as env:
            options = {"task": spec.task} if spec.task is not None else None
            obs, info = await self.env_call(env.areset(seed=spec.seed, options=options), "reset")
            traj.task_id = str(info.get("task_id", traj.task_id))
            traj.task = _task_of(info.get("task"), spec.task)
            hooks = set(info.get("hooks", OPTIONAL_HOOKS))  # the optional hooks this env answers
            last_progress = await self._progress(env) if "progress" in hooks else None  # progress rewards read these
            env_s += time.perf_counter() - t0
            traj.timings["reset_s"] = env_s
            if last_progress is not None:
                traj.metadata["initial_progress"] = last_progress
            ctx: EpisodeContext | None = None
            try:
                try:
                    ctx = self.context.start(obs, info, renderer=self.renderer, guidance=spec.guidance)
                except ContextOverflow as exc:
                    traj.messages = self.context.opening_messages(obs, info)
                    traj.status, traj.metadata["truncation"] = "truncated", str(exc)
                    return
                traj.metadata.update(ctx.metadata)
                traj.metadata["token_level"] = ctx.token_level
                traj.messages = ctx.messages
                params = replace(spec.sampling or self.config.sampling, n=1)
                while True:
                    version = self.policy_version
                    t = time.perf_counter()
                    completion = await self._complete(env, ctx.request(params))
                    turn_gen = time.perf_counter() - t
                    gen_s += turn_gen
                    _check_completion(completion)
                    if completion.version is not None:
                        version = int(completion.version)
                    start = len(ctx.token_ids)
                    message = ctx.add_completion(completion)
                    end = len(ctx.token_ids)
                    t = time.perf_counter()
                    result = await self.env_call(env.astep(message), "step")
                    answer = result.messages
                    if spec.guidance is not None and spec.guidance.every_turn and not result.done and "hint" in hooks:
                        answer = spec.guidance.with_turn_hint(answer, await self.hint(env))
                    turn_info = jsonable(result.info)
                    progress = await self._progress(env) if "progress" in hooks else None
                    if progress is not None:
                        turn_info["progress"] = progress
                    turn_env = time.perf_counter() - t
                    env_s += turn_env
                    traj.turns.append(
                        Turn(
                            action=completion.text,
                            observation=merge_messages(answer),
                            reward=float(result.reward),
                            info=turn_info,
                            start=start,
                            end=end,
                            finish_reason=completion.finish_reason,
                            generation_s=turn_gen,
                            env_s=turn_env,
                            num_tokens=len(completion.token_ids),
                            policy_version=version,
                            tool_calls=list(message.get("tool_calls") or []),
                        )
                    )
                    traj.reward += float(result.reward)
                    self.turns_done += 1
                    if result.done:
                        ctx.add_final_observation(answer)
                        traj.status = "completed" if result.terminated else "truncated"
                        traj.success = bool(result.info.get("success", False))
                        if result.truncated:
                            traj.metadata["truncation"] = str(result.info.get("reason", "environment truncated"))
                        return
                    try:
                        ctx.add_observation(answer)
                    except ContextOverflow as exc:
                        traj.status, traj.success = "truncated", False
                        traj.metadata["truncation"] = str(exc)
                        return
            finally:
                if ctx is not None:
                    traj.token_ids, traj.loss_mask, traj.logprobs = ctx.token_ids, ctx.loss_mask, ctx.logprobs
                    traj.metadata.update(ctx.metadata)
                traj.timings["generation_s"] = gen_s
                traj.timings["env_s"] = env_s

    async def _complete(self, env: AsyncEnv, request: GenerationRequest) -> Completion:
        """The policy's reply: a scripted action source asks the env, a policy generates (batched)."""
        if self.actor is not None:
            return await self.actor.act(env, request)
        return (await self.batcher.generate_one(request))[0]

    @staticmethod
    def _as_spec(
        item: EpisodeSpec | Task | str, env_id: str | None, env_kwargs: dict[str, Any] | None, seed: int
    ) -> EpisodeSpec:
        if isinstance(item, EpisodeSpec):
            return item if item.seed is not None or item.task is not None else replace(item, seed=seed)
        if env_id is None and not isinstance(item, str):
            raise ValueError("pass env_id= when run_groups gets tasks")
        if isinstance(item, str):
            return EpisodeSpec(item, env_kwargs=dict(env_kwargs or {}), seed=seed)
        return EpisodeSpec(env_id, task=item, env_kwargs=dict(env_kwargs or {}), seed=seed)


def _check_completion(completion: Completion) -> None:
    if completion.error or completion.finish_reason == "error":
        raise PolicyFailure(f"policy error: {completion.error or 'unknown'}")


def _task_id(task: Task | dict | None) -> str:
    if task is None:
        return ""
    return str(task.id if isinstance(task, Task) else task.get("id", ""))


def _task_of(reported: Any, given: Task | dict | None) -> Task | None:
    """The episode's task: what the env reports playing (a remote env sends a dict), else the spec's."""
    for candidate in (reported, given):
        if isinstance(candidate, Task):
            return candidate
        if isinstance(candidate, dict):
            try:
                return Task.model_validate(candidate)
            except ValueError:
                continue
    return None
