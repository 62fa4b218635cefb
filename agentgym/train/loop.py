"""The async training loop: rollouts for the next step while the learner trains on this one.

Two coroutines share a queue of :class:`RolloutBatch` es (a step's groups with their metrics).
The *producer* generates the batch of step ``s`` (:mod:`~agentgym.train.sampling`) as soon as
the policy version is at least ``s - max_staleness``: rollouts through the engine, the one
scoring pass (:class:`~agentgym.rewards.pipeline.RewardPipeline`), guidance re-attempts of
failed groups scored by the same pass (:mod:`agentgym.guidance`), and, with
``guidance.context: strip``, the off-policy correction (:mod:`~agentgym.train.offpolicy`).
The *consumer* assigns credit (:mod:`~agentgym.train.advantages`, :mod:`~agentgym.train.credit`),
runs the learner step and the weight sync's torch part as one job on the torch thread
(:mod:`agentgym.torch_thread`, where hf generation runs too), awaits the sync's async part
(:mod:`~agentgym.train.weights`) and bumps the version. ``max_staleness=0`` is the synchronous
loop; ``1`` overlaps the rollouts of step ``s+1`` with training on ``s``. Every trajectory
records the version that produced it, and the importance ratio against its behaviour
log-probs corrects for the lag. After each step :mod:`~agentgym.train.health` warns about a run
that cannot learn (flat rewards, invalid actions, truncation, slow steps); a step in which every
episode failed stops the run. What the loop drives (policy, learner, sync, engine, scoring) is
built, checkpointed and closed by :class:`~agentgym.train.parts.RunParts`, the trainer's base.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agentgym.errors import UserError
from agentgym.malloc import limit_malloc_growth
from agentgym.policy.base import TrainablePolicy
from agentgym.rewards.progress import progress_metrics
from agentgym.rollout.trajectory import Trajectory, write_jsonl
from agentgym.torch_thread import run_on_torch_thread
from agentgym.train.advantages import build_samples, outcome_credit
from agentgym.train.bar import progress_bar, update_bar
from agentgym.train.config import TrainConfig
from agentgym.train.credit import progress_credit
from agentgym.train.evaluation import evaluate
from agentgym.train.health import raise_if_all_failed
from agentgym.train.metrics import MetricsLogger, plot_learning_curve, rollout_metrics
from agentgym.train.offpolicy import strip_groups
from agentgym.train.parts import RunParts
from agentgym.train.sampling import episode_specs

log = logging.getLogger(__name__)


@dataclass
class RolloutBatch:
    """One step's groups, scored, with what producing them measured."""

    step: int
    groups: list[list[Trajectory]]
    metrics: dict[str, float] = field(default_factory=dict)


@dataclass
class TrainResult:
    run_dir: Path
    final_step: int
    metrics: list[dict[str, Any]] = field(default_factory=list)
    evals: list[dict[str, Any]] = field(default_factory=list)
    wall_s: float = 0.0
    #: This process's learner rank (a run under torchrun returns on every rank; rank 0 holds the results).
    rank: int = 0


class Trainer(RunParts):
    """One training run (see the module docstring): the loop over the parts of
    :class:`~agentgym.train.parts.RunParts` (built, checkpointed and closed there)."""

    def episode_specs(self, step: int):
        """The groups of step ``step`` (:func:`agentgym.train.sampling.episode_specs`)."""
        return episode_specs(self.config, step)

    # ----------------------------------------------------------------- one batch
    async def produce(self, step: int) -> RolloutBatch:
        """Roll out, score, guide and (strip) the groups of ``step``."""
        cfg = self.config
        self.engine.set_policy_version(self.version)
        specs = episode_specs(cfg, step)
        score_s = 0.0

        async def score(groups: list[list[Trajectory]]) -> None:
            nonlocal score_s
            t0 = time.perf_counter()
            await self.scoring.score(groups)
            score_s += time.perf_counter() - t0

        t = time.perf_counter()
        metrics: dict[str, float] = {}
        if self.guided is not None:
            guided = await self.guided.run_groups(self.engine, specs, cfg.rollout.group_size, step=step, score=score)
            groups, metrics = guided.groups, dict(guided.metrics)
            if cfg.guidance.context == "strip":
                metrics.update(await strip_groups(groups, self.strip_scorer, cfg.guidance.ratio_clip))
        else:
            groups = await self.engine.run_groups(specs, cfg.rollout.group_size)
            await score(groups)
        metrics["time/generation_s"] = time.perf_counter() - t - score_s
        metrics["time/score_s"] = score_s
        return RolloutBatch(step, groups, metrics)

    async def train_step(self, batch: RolloutBatch, wait_s: float) -> dict[str, Any]:
        """Credit, the learner step and the weight sync for one batch; its metrics."""
        cfg = self.config
        groups = batch.groups
        flat = [t for g in groups for t in g]
        path = None
        if cfg.logging.save_trajectories:
            path = self.run_dir / "trajectories" / f"step-{batch.step + 1:06d}.jsonl"
            await asyncio.to_thread(write_jsonl, flat, path, False)
        raise_if_all_failed(groups, batch.step + 1, where=str(path or ""))
        credit = outcome_credit
        if cfg.progress.enabled:
            credit = progress_credit(groups, weight=cfg.progress.weight, eps=cfg.progress.eps, clip=cfg.progress.clip)
        samples, stats = build_samples(
            groups, estimator=cfg.algorithm.estimator, eps=cfg.algorithm.advantage_eps,
            drop_zero_variance=cfg.algorithm.drop_zero_variance_groups, credit=credit,
        )
        metrics: dict[str, Any] = rollout_metrics(groups, self.version, cfg.envs)
        metrics.update(batch.metrics)
        metrics.update(progress_metrics(flat))
        metrics.update(self.scoring.metrics())
        metrics.update(stats.metrics())
        if self.distributed is not None:
            metrics.update(self.distributed.metrics())
        gen_s = batch.metrics.get("time/generation_s", 0.0)
        metrics["time/wait_s"] = wait_s
        metrics["tokens/generated_per_s"] = metrics.get("tokens/generated", 0) / gen_s if gen_s > 0 else 0.0
        await self.sync.before_step()
        learned, sync_s = await run_on_torch_thread(self._learn_and_publish, samples)
        t = time.perf_counter()
        await self.sync.apublish(self.version + 1)
        sync_s += time.perf_counter() - t
        if learned is not None:
            metrics.update(learned)
        else:  # nothing to learn from (all groups flat and dropped): the version still advances
            metrics["skipped_update"] = True
        self.version += 1
        metrics["time/sync_s"] = sync_s
        metrics["policy_version"] = self.version
        return metrics

    def _learn_and_publish(self, samples) -> tuple[dict[str, Any] | None, float]:
        """The learner step and the sync's torch part as one torch-thread job: no generation runs
        between the optimizer's write and the policy learning of it."""
        self.sync.prepare()
        learned = self.learner.step(samples, update_lock=self.sync.update_lock) if samples else None
        t = time.perf_counter()
        self.sync.publish()
        return learned, time.perf_counter() - t


    # ----------------------------------------------------------------- the run
    async def _evaluate(self, step: int, tag: str, logger: MetricsLogger, result: TrainResult) -> None:
        assert self.policy is not None
        record = await evaluate(self.config, self.policy, self.factory, run_dir=self.run_dir, step=step, tag=tag,
                                version=self.version)
        logger.log(step, record, kind="eval")
        result.evals.append({"step": step, **record})

    async def run(self) -> TrainResult:
        cfg = self.config
        if cfg.distributed is not None:
            from agentgym.distributed.driver import open_distributed

            self.distributed = open_distributed(cfg)  # runs worker_setup here too, so env ids validate
        for entry in [*cfg.envs, *(cfg.eval.envs or [])]:  # a wrong id or argument fails now, before any model
            await asyncio.to_thread(self.factory.validate, entry.id, entry.kwargs)  # remote: an HTTP call
        resume_from = self._prepare_run_dir()
        self._t_start = time.perf_counter()
        total = cfg.trainer.steps
        result = TrainResult(self.run_dir, self.start_step)
        version_changed = asyncio.Condition()
        queue: asyncio.Queue[RolloutBatch] = asyncio.Queue(maxsize=cfg.pipeline.max_staleness + 1)

        async def producer_loop() -> None:
            for step in range(self.start_step, total):
                async with version_changed:
                    await version_changed.wait_for(lambda: self.version >= step - cfg.pipeline.max_staleness)
                await queue.put(await self.produce(step))

        producer: asyncio.Task | None = None
        bar = logger = None
        try:
            if self.distributed is not None:
                self.distributed.connect()  # joins or starts the Ray cluster (stopped in _shutdown if started)
                if cfg.distributed.learner_ranks > 1:
                    if self.group is not None:
                        raise UserError("this run is under torchrun and sets distributed.learner_ranks: start the "
                                        "learner ranks one way, not both.")
                    self.group = await self.distributed.start_learners()
                self._engine_client = await self.distributed.start_engines()  # None without engine actors
            await run_on_torch_thread(self._build)
            self._wire()
            if self.distributed is not None:
                self.sync = await self.distributed.start(self.sync)
            if resume_from is not None:
                await run_on_torch_thread(self._restore, resume_from)
                await self.sync.apublish(self.version)
            elif self.resume:
                log.info("no valid checkpoint in %s; starting from step 0", self.ckpt_dir)
            self._t_start = time.perf_counter()
            result.final_step = self.start_step
            logger = MetricsLogger(self.run_dir, tensorboard=cfg.logging.tensorboard,
                                   resume_step=self.start_step if resume_from is not None else None)
            bar = progress_bar(self.progress, total, self.start_step)
            if self.start_step == 0 and cfg.eval.at_start and resume_from is None:
                await self._evaluate(0, "start", logger, result)
            producer = asyncio.create_task(producer_loop(), name="agentgym-rollouts")
            last = time.perf_counter()
            for step in range(self.start_step, total):
                t_wait = time.perf_counter()
                getter = asyncio.create_task(queue.get())
                done, _ = await asyncio.wait({getter, producer}, return_when=asyncio.FIRST_COMPLETED)
                if getter not in done:
                    getter.cancel()
                    producer.result()  # raises the producer's error
                    raise RuntimeError("the rollout producer stopped early")
                batch = getter.result()
                assert batch.step == step
                metrics = await self.train_step(batch, time.perf_counter() - t_wait)
                async with version_changed:
                    version_changed.notify_all()
                now = time.perf_counter()
                metrics["time/step_s"] = now - last
                last = now
                done_step = step + 1
                self.health.observe(done_step, batch.groups, metrics)
                if cfg.eval.every and done_step % cfg.eval.every == 0 and done_step != total:
                    await self._evaluate(done_step, "periodic", logger, result)
                logger.log(done_step, metrics)
                result.metrics.append({"step": done_step, **metrics})
                if done_step % cfg.checkpoint.every == 0 or done_step == total:
                    await run_on_torch_thread(self._save, done_step)
                result.final_step = done_step
                update_bar(bar, metrics)
            await producer
            if cfg.eval.at_end:
                await self._evaluate(total, "end", logger, result)
            if cfg.checkpoint.export_final:
                await run_on_torch_thread(self._export, self.run_dir / "final")
        finally:
            await self._shutdown(producer, bar, logger)
        result.wall_s = self.elapsed_before + time.perf_counter() - self._t_start
        if cfg.logging.plot:
            await asyncio.to_thread(plot_learning_curve, self.run_dir)
        summary = {"final_step": result.final_step, "wall_s": result.wall_s, "evals": list(result.evals)}
        (self.run_dir / "summary.json").write_text(json.dumps(summary, indent=1), encoding="utf-8")
        return result



def train(config: TrainConfig, *, resume: bool = False, policy: TrainablePolicy | None = None,
          progress: bool | None = None) -> TrainResult:
    """Run training to completion (synchronous entry point for the CLI and scripts).

    Under ``torchrun --nproc-per-node N`` every rank calls this: rank 0 trains (its learner is
    sharded over the N ranks) and the others follow its learner steps (:mod:`agentgym.train.parallel`).
    """
    limit_malloc_growth()
    from agentgym.train.parallel import init_from_env, run_follower

    group = init_from_env()
    if group is not None and not group.is_driver:
        t = time.perf_counter()
        run_follower(config, group)
        return TrainResult(config.run_path, 0, wall_s=time.perf_counter() - t, rank=group.rank)

    async def main() -> TrainResult:
        asyncio.get_running_loop().set_default_executor(concurrent.futures.ThreadPoolExecutor(max_workers=32))
        return await Trainer(config, resume=resume, policy=policy, progress=progress, group=group).run()

    return asyncio.run(main())
