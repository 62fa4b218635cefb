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
episode failed stops the run.
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

from agentgym.core.factory import env_factory
from agentgym.errors import UserError
from agentgym.guidance.runner import GuidedRollouts, build_providers
from agentgym.malloc import limit_malloc_growth
from agentgym.policy.base import LocalWeights, TrainablePolicy
from agentgym.rewards.pipeline import RewardPipeline
from agentgym.rewards.progress import progress_metrics
from agentgym.rollout.engine import RolloutEngine
from agentgym.rollout.trajectory import Trajectory, write_jsonl
from agentgym.torch_thread import run_on_torch_thread
from agentgym.train import checkpoint as ckpt
from agentgym.train.advantages import build_samples, outcome_credit
from agentgym.train.bar import progress_bar, update_bar
from agentgym.train.config import TrainConfig, save_config
from agentgym.train.credit import progress_credit
from agentgym.train.evaluation import evaluate
from agentgym.train.health import RunHealth, raise_if_all_failed
from agentgym.train.metrics import MetricsLogger, plot_learning_curve, rollout_metrics
from agentgym.train.model import build_model, export_model, export_state, load_rollout_policy
from agentgym.train.offpolicy import strip_groups, torch_scorer
from agentgym.train.sampling import episode_specs
from agentgym.train.state import restore_state, seed_everything, state_files

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


class Trainer:
    """One training run (see the module docstring)."""

    def __init__(self, config: TrainConfig, *, resume: bool = False, policy: TrainablePolicy | None = None,
                 progress: bool | None = None, group: Any = None):
        """``group``: this process is rank 0 of a multi-rank learner (:mod:`agentgym.train.parallel`)."""
        self.config = config.model_copy(deep=True)  # the run fills in what its autos resolved to
        self.group = group
        self.learner: Any = None
        self.run_dir = config.run_path
        self.resume = resume
        self._policy_arg = policy
        self.progress = config.logging.progress if progress is None else progress
        self.ckpt_dir = self.run_dir / "checkpoints"
        self.version = 0
        self.start_step = 0
        self.elapsed_before = 0.0
        self.policy: TrainablePolicy | None = None
        self.engine: RolloutEngine | None = None
        self.scoring: RewardPipeline | None = None
        self.factory = env_factory(config.env_factory)
        self.distributed: Any = None  # agentgym.distributed.driver.RayDriver in a Ray run
        self._engine_client: Any = None
        self.health = RunHealth(config.logging.health)

    # ----------------------------------------------------------------- set-up
    def _prepare_run_dir(self) -> Path | None:
        existing = ckpt.list_checkpoints(self.ckpt_dir)
        if existing and not self.resume:
            raise UserError(
                f"run folder {self.run_dir} already has checkpoints; pass --resume to continue it, "
                "or set another name= or run_dir=."
            )
        self.run_dir.mkdir(parents=True, exist_ok=True)
        save_config(self.config, self.run_dir / "config.yaml")
        return ckpt.latest_valid(self.ckpt_dir) if self.resume else None

    def _build(self) -> None:
        """Everything torch: the policy, the learner's model, the learner (on the torch thread)."""
        import torch

        from agentgym.train.learner import Learner

        cfg = self.config
        if cfg.trainer.threads:
            torch.set_num_threads(cfg.trainer.threads)
        seed_everything(cfg.seed)
        sharded = None
        if self.group is not None:  # every rank builds its shard first, in the same order
            from agentgym.train.parallel import build_sharded, compute_dtype

            compute = compute_dtype(self.group, cfg)
            sharded = (*build_sharded(cfg, self.group, compute), compute)
        # the rollout policy: given, the client of Ray's vLLM engine actors (the driver generates there too), or loaded
        self.policy = self._policy_arg or self._engine_client or load_rollout_policy(cfg)
        setup = build_model(cfg, self.policy, group=self.group, sharded=sharded)
        self.model, self.sync = setup.model, setup.sync
        max_turns = cfg.rollout.max_turns
        precision = setup.precision
        pad_id = getattr(self.policy.tokenizer, "pad_token_id", None) or 0
        if self.group is not None:
            from agentgym.train.parallel import make_learner

            self.learner = make_learner(cfg, self.group, setup.model, setup.ref_model, pad_id)
            cfg.pipeline.share_weights = False  # rank 0's rollout policy keeps its own copy
        else:
            self.learner = Learner(
                setup.model, cfg.trainer, cfg.algorithm, ref_model=setup.ref_model,
                temperature=cfg.rollout.temperature,
                norm_tokens=cfg.rollout.max_tokens * max_turns if max_turns else None,
                pad_id=pad_id, autocast=precision.autocast_dtype, master_weights=precision.master_weights,
            )
        # the run's saved config states what the autos resolved to
        cfg.model.device, cfg.model.dtype, cfg.model.autocast = precision.device, precision.dtype, precision.autocast
        save_config(cfg, self.run_dir / "config.yaml")
        ranks = f" x {self.group.world_size} ranks (FSDP2)" if self.group is not None else ""
        log.info("learner: %s%s; weight sync: %s", precision.describe(), ranks, self.sync.mode)

    def _wire(self) -> None:
        """The engine, the scoring pass, guidance and the strip scorer around the policy."""
        cfg = self.config
        if self.distributed is not None:  # episodes run on Ray workers
            self.engine = self.distributed.rollout_engine(self.policy, self.factory)
        else:
            self.engine = RolloutEngine(self.policy, cfg.rollout.engine_config(), factory=self.factory)
        self.scoring = RewardPipeline.from_config(cfg.rewards, progress=cfg.progress, policy=self.policy)
        self.guided = (GuidedRollouts(cfg.guidance, build_providers(cfg.guidance, self.policy), seed=cfg.seed)
                       if cfg.guidance.enabled else None)
        weights = self.policy.weights()
        self.strip_scorer = None
        if cfg.guidance.enabled and cfg.guidance.context == "strip" and isinstance(weights, LocalWeights):
            self.strip_scorer = torch_scorer(weights.module, temperature=cfg.rollout.temperature, lock=weights.lock)

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
        learned = self.learner.step(samples, update_lock=self.sync.update_lock) if samples else None
        t = time.perf_counter()
        self.sync.publish()
        return learned, time.perf_counter() - t

    def _export(self, folder: Path) -> None:
        if self.group is not None:  # gather the shards, save through a CPU copy
            from agentgym.train.parallel import model_folder

            export_state(model_folder(self.config.model.policy), self.learner.full_state(), self.policy.tokenizer,
                         folder)
        else:
            export_model(self.model, self.policy.tokenizer, folder)

    # ----------------------------------------------------------------- checkpoints
    def _save(self, step: int) -> None:
        files = self.learner.checkpoint_files()
        files.update(state_files({
            "step": step,
            "policy_version": self.version,
            "elapsed_s": self.elapsed_before + (time.perf_counter() - self._t_start),
            "seed": self.config.seed,
        }))
        ckpt.save_checkpoint(self.ckpt_dir, step, files, keep_last=self.config.checkpoint.keep_last)

    def _restore(self, folder: Path) -> None:
        self.learner.load_checkpoint(folder)
        state = restore_state(folder)
        self.start_step = int(state["step"])
        self.version = int(state["policy_version"])
        self.elapsed_before = float(state.get("elapsed_s", 0.0))
        self.sync.publish()  # the rollout policy still holds the starting weights
        log.info("resumed from %s (step %d)", folder, self.start_step)

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

    async def _shutdown(self, producer: asyncio.Task | None, bar: Any, logger: MetricsLogger | None) -> None:
        """Stop the producer, close what this run opened (a vllm engine's processes included)."""
        if producer is not None and not producer.done():
            producer.cancel()
            try:
                await producer
            except (asyncio.CancelledError, Exception):
                pass
        if bar is not None:
            bar.close()
        if logger is not None:
            logger.close()
        if self.engine is not None:
            await self.engine.aclose()
        if self.scoring is not None:
            await self.scoring.close()
        await self.factory.aclose()
        if self._policy_arg is None and self.policy is not None:
            await self.policy.close()
        if self.group is not None:
            await run_on_torch_thread(self._release_ranks)
        if self.distributed is not None:
            await self.distributed.close()

    def _release_ranks(self) -> None:
        """Tell the other learner ranks to leave (they wait for rank 0's commands), then leave the group.

        Ray-launched ranks that already ended (failed) are not waited for; their actors are stopped with
        the cluster's other actors. (Under torchrun, a rank that fails ends every rank.)
        """
        try:
            if self.distributed is None or self.distributed.learners_alive():
                self.group.command("stop")
        finally:
            self.group.close()


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
