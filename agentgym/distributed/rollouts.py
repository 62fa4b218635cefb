"""The driver's side of Ray rollouts: a rollout engine whose episodes run on worker actors.

:class:`RayRolloutEngine` is a :class:`~agentgym.rollout.engine.RolloutEngine` whose
``run_episode`` sends the episode to a :class:`~agentgym.distributed.worker.RolloutWorker`
actor, so ``run_groups`` (the trainer's producer, guidance re-attempts) spreads a step's groups
over the workers, each group whole on one worker (the least busy one when its first episode
arrives), and the finished groups flow into the trainer's bounded-staleness queue as before.
What guidance providers do on the driver (``env_session``, ``env_call``, ``hint``: a reset or
a replay) stays local, through the driver's own env factory.

A worker that dies (killed, out of memory, its node gone) fails its calls in flight; the first
of them to notice starts a replacement in the same slot, gives it the current weights, and
every episode that was running there runs again on it. The run stops only after
``distributed.max_worker_restarts`` restarts.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from agentgym.distributed.worker import RolloutWorker, pack_state
from agentgym.policy.base import Policy
from agentgym.rollout.engine import EpisodeSpec, RolloutEngine, TrajectoryCallback
from agentgym.rollout.trajectory import Trajectory

log = logging.getLogger(__name__)

WORKER_PREFIX = "agentgym-rollout"


@dataclass
class _Slot:
    """One worker position: its current actor, how often it was replaced, episodes in flight."""

    index: int
    actor: Any = None
    generation: int = 0
    in_flight: int = 0
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class WorkersExhausted(RuntimeError):
    """Rollout workers died more often than ``distributed.max_worker_restarts`` allows."""


class RayRolloutEngine(RolloutEngine):
    """A rollout engine over Ray worker actors (see the module docstring)."""

    def __init__(self, policy: Policy, train_config: Any, *, factory: Any = None, engines: list[Any] | None = None):
        super().__init__(policy, train_config.rollout.engine_config(), factory=factory)
        self.train_config = train_config
        self.dist = train_config.distributed
        self.engines = engines or []
        self.slots = [_Slot(i) for i in range(self.dist.rollout_workers)]
        self.run_id = uuid.uuid4().hex[:8]
        self.restarts = 0
        self.reruns = 0
        self._weights: tuple[Any, int] | None = None  # (object ref of the packed state, its version)
        self._groups: dict[str, tuple[int, int]] = {}  # group id -> (slot, episodes in flight)

    # ----------------------------------------------------------------- workers
    async def start(self) -> None:
        """Start every worker and wait until each answers."""
        await asyncio.gather(*(self._spawn(slot) for slot in self.slots))

    async def _spawn(self, slot: _Slot) -> None:
        import ray

        actor_class = ray.remote(RolloutWorker)
        name = f"{WORKER_PREFIX}-{self.run_id}-{slot.index}-{slot.generation}"
        slot.actor = actor_class.options(
            name=name, num_cpus=self.dist.worker_cpus, num_gpus=self.dist.worker_gpus, max_concurrency=10_000,
            max_restarts=0,
        ).remote(self.train_config.model_dump(mode="json"), slot.index, self.engines or None)
        info = await slot.actor.ready.remote()
        log.info("rollout worker %s ready (pid %s)", name, info["pid"])
        if self._weights is not None:
            ref, version = self._weights
            if self.engines:
                await slot.actor.set_version.remote(version)
            else:
                await slot.actor.load_weights.remote(ref, version)

    async def _restart(self, slot: _Slot, generation: int, error: BaseException) -> None:
        """Replace the slot's dead actor, once per death (callers that saw the same death wait for it)."""
        import ray
        from ray.exceptions import ActorDiedError, ActorUnavailableError, RayActorError

        async with slot.lock:
            if slot.generation != generation:
                return  # another caller replaced it already
            self.restarts += 1
            if self.restarts > self.dist.max_worker_restarts:
                raise WorkersExhausted(f"rollout workers died {self.restarts} times (distributed.max_worker_restarts="
                                       f"{self.dist.max_worker_restarts}); last error: {error}")
            log.warning("rollout worker %d died (%s); starting a replacement", slot.index, type(error).__name__)
            while True:
                try:
                    ray.kill(slot.actor, no_restart=True)
                except Exception as exc:  # noqa: BLE001 - already gone is fine
                    log.debug("ray.kill of worker %d: %s", slot.index, exc)
                slot.generation += 1
                try:
                    await self._spawn(slot)
                    return
                except (ActorDiedError, ActorUnavailableError, RayActorError) as exc:  # the replacement died too
                    self.restarts += 1
                    if self.restarts > self.dist.max_worker_restarts:
                        raise WorkersExhausted(f"rollout worker {slot.index} does not start: {exc}") from exc

    async def _call(self, slot: _Slot, method: str, *args: Any) -> Any:
        """``actor.method(*args)`` on the slot's actor, repeated on its replacement if the actor dies."""
        from ray.exceptions import ActorDiedError, ActorUnavailableError, RayActorError

        first = True
        while True:
            actor, generation = slot.actor, slot.generation
            try:
                if not first:
                    self.reruns += method == "run_episode"
                return await getattr(actor, method).remote(*args)
            except (ActorDiedError, ActorUnavailableError, RayActorError) as exc:
                first = False
                await self._restart(slot, generation, exc)

    # ----------------------------------------------------------------- episodes
    async def run_episode(self, spec: EpisodeSpec, *, on_trajectory: TrajectoryCallback | None = None) -> Trajectory:
        """Run one episode on the worker that holds its group."""
        slot = self._slot_for(spec.group_id)
        slot.in_flight += 1
        try:
            traj = await self._call(slot, "run_episode", spec, self.policy_version)
        finally:
            slot.in_flight -= 1
            self._release(spec.group_id)
        if on_trajectory is not None:
            result = on_trajectory(traj)
            if inspect.isawaitable(result):
                await result
        return traj

    def _slot_for(self, group_id: str) -> _Slot:
        if group_id and group_id in self._groups:
            index, count = self._groups[group_id]
            self._groups[group_id] = (index, count + 1)
            return self.slots[index]
        slot = min(self.slots, key=lambda s: (s.in_flight, s.index))
        if group_id:
            self._groups[group_id] = (slot.index, 1)
        return slot

    def _release(self, group_id: str) -> None:
        if group_id in self._groups:
            index, count = self._groups[group_id]
            if count <= 1:
                del self._groups[group_id]
            else:
                self._groups[group_id] = (index, count - 1)

    # ----------------------------------------------------------------- weights
    async def push_weights(self, state: Mapping[str, Any] | None, version: int) -> None:
        """Every worker generates with ``state`` as policy ``version`` from now on (None: the engine
        actors hold it already; the workers only learn the version)."""
        import ray

        if state is None:
            self._weights = (None, version)
            await asyncio.gather(*(self._call(slot, "set_version", version) for slot in self.slots))
            return
        ref = await asyncio.to_thread(lambda: ray.put(pack_state(state)))
        self._weights = (ref, version)
        await asyncio.gather(*(self._call(slot, "load_weights", ref, version) for slot in self.slots))

    def metrics(self) -> dict[str, float]:
        """Cumulative worker restarts and re-run episodes (logged with every step)."""
        return {"distributed/worker_restarts": float(self.restarts), "distributed/rerun_episodes": float(self.reruns)}

    async def aclose(self) -> None:
        """Close and stop every worker (their policies and environments first)."""
        import ray

        await super().aclose()
        actors = [slot.actor for slot in self.slots if slot.actor is not None]
        if actors:
            try:
                await asyncio.wait_for(asyncio.gather(*(a.close.remote() for a in actors), return_exceptions=True), 60)
            except asyncio.TimeoutError:
                log.warning("rollout workers did not close within 60 s; stopping them")
        for actor in actors:
            try:
                ray.kill(actor, no_restart=True)
            except Exception as exc:  # noqa: BLE001 - already gone is fine
                log.debug("ray.kill at close: %s", exc)
        for slot in self.slots:
            slot.actor = None
