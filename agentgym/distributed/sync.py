"""Weight sync to rollout workers: the trainer's own sync, then the same weights to every worker.

The driver keeps its local sync (its policy evaluates and, for ``guidance.context: strip``,
scores); :class:`WorkerSync` wraps it: ``publish`` also takes the learner's full state dict on
the torch thread, ``apublish(version)`` pushes it to the workers. When vLLM engine actors
generate for everyone, the driver's policy is their client, so the local sync already pushed
to the engines; the engines and the workers are then told the version.
"""

from __future__ import annotations

from typing import Any

from agentgym.distributed.rollouts import RayRolloutEngine
from agentgym.train.weights import WeightSync


class WorkerSync(WeightSync):
    """``local``'s sync, then the rollout workers' (see the module docstring)."""

    def __init__(self, local: WeightSync, rollouts: RayRolloutEngine, engines: Any = None):
        super().__init__(local.policy, local.learner_model)
        self.local = local
        self.rollouts = rollouts
        self.engines = engines
        self.mode = f"{local.mode}+ray-workers"
        self.update_lock = local.update_lock
        self._state: dict[str, Any] | None = None

    async def before_step(self) -> None:
        await self.local.before_step()

    def publish(self) -> None:
        self.local.publish()
        if self.engines is None:
            self._state = self.local.learner_state()

    async def apublish(self, version: int | None = None) -> None:
        await self.local.apublish(version)
        state, self._state = self._state, None
        if version is None:
            return
        if self.engines is not None:
            await self.engines.set_version(version)
            await self.rollouts.push_weights(None, version)
        elif state is not None:
            await self.rollouts.push_weights(state, version)
