"""What the trainer holds in a run with ``distributed: {backend: ray, ...}``.

:func:`open_distributed` prepares the driver, :meth:`RayDriver.connect` joins or starts the
cluster; the trainer then takes its rollout
engine from :meth:`RayDriver.rollout_engine` (episodes on worker actors), wraps its weight
sync with :meth:`RayDriver.start` (workers, and vLLM engine actors when configured, follow
the learner) and calls :meth:`RayDriver.close` at the end, which stops the actors and a
cluster this run started. Everything else in the trainer is unchanged: the same YAML runs
with ``distributed: null`` in one process.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from agentgym.distributed.cluster import Cluster, connect
from agentgym.distributed.rollouts import RayRolloutEngine
from agentgym.distributed.sync import WorkerSync
from agentgym.distributed.worker import call_setup
from agentgym.errors import UserError

log = logging.getLogger(__name__)


class RayDriver:
    """The cluster, the rollout workers and the engine actors of one run."""

    def __init__(self, config: Any):
        self.config = config
        self.dist = config.distributed
        self.cluster: Cluster | None = None
        self.engine: RayRolloutEngine | None = None
        self.engines: Any = None
        self.learner_actors: list[Any] = []

    def prepare(self) -> None:
        """Run ``worker_setup`` here too, so the run's env ids validate on the driver before anything starts."""
        try:
            call_setup(self.dist.worker_setup)
        except (ImportError, AttributeError, ValueError) as exc:
            raise UserError(f"distributed.worker_setup: {exc}; give importable 'module:function' names.") from exc

    def connect(self) -> None:
        """Join or start the cluster (:meth:`close` stops one started here)."""
        self.cluster = connect(self.dist)

    def rollout_engine(self, policy: Any, factory: Any) -> RayRolloutEngine:
        """The trainer's rollout engine: episodes run on the workers."""
        self.engine = RayRolloutEngine(policy, self.config, factory=factory)
        return self.engine

    async def start_engines(self) -> Any:
        """Start the vLLM engine actors (``distributed.engines``); the driver's policy is their client.
        None when the workers generate with their own copies."""
        if not self.dist.engines:
            return None
        from agentgym.distributed.engines import EngineGroup

        self.engines = EngineGroup(self.config)
        await self.engines.start()
        return self.engines.client()

    async def start(self, sync: Any) -> WorkerSync:
        """Start the workers; the sync that keeps them (and the engines) current."""
        assert self.engine is not None
        if self.engines is not None:
            self.engine.engines = self.engines.handles
        await self.engine.start()
        log.info("ray: %d rollout workers%s", self.dist.rollout_workers,
                 f", {self.dist.engines} vLLM engine actors" if self.dist.engines else "")
        return WorkerSync(sync, self.engine, self.engines)

    async def start_learners(self) -> Any:
        """Start learner ranks 1..N-1 as actors; this process joins as rank 0 (its LearnerGroup)."""
        from agentgym.distributed.learners import start_learner_ranks
        from agentgym.train.parallel import check_model_folder

        check_model_folder(self.config.model.policy)  # a wrong model fails here, not in every rank
        group, self.learner_actors, self._learner_runs = await start_learner_ranks(self.config)
        log.info("ray: learner of %d ranks (this process is rank 0)", group.world_size)
        return group

    def learners_alive(self) -> bool:
        """False once a learner rank's actor has ended (failed): rank 0 must not wait on it."""
        import ray

        if not self.learner_actors:
            return True
        done, _ = ray.wait(list(self._learner_runs), num_returns=len(self._learner_runs), timeout=0)
        return not done

    def metrics(self) -> dict[str, float]:
        return self.engine.metrics() if self.engine is not None else {}

    async def close(self) -> None:
        """Stop the engine actors and, if this run started it, the cluster (the trainer closes the workers
        with its rollout engine)."""
        import ray

        try:
            if self.learner_actors:  # released by rank 0's stop; give them a moment to leave the group
                await asyncio.wait([asyncio.ensure_future(asyncio.wrap_future(r.future())) for r in self._learner_runs],
                                   timeout=30)
                for actor in self.learner_actors:
                    ray.kill(actor, no_restart=True)
            if self.engines is not None:
                await self.engines.close()
        finally:
            if self.cluster is not None:
                self.cluster.shutdown()


def open_distributed(config: Any) -> RayDriver | None:
    """A prepared :class:`RayDriver` for ``config.distributed`` (not connected yet), or None when it is null."""
    if config.distributed is None:
        return None
    driver = RayDriver(config)
    driver.prepare()
    return driver
