"""The parts a training run is made of, and their life: built, checkpointed, closed.

:class:`RunParts` holds the run folder, the rollout policy, the learner and its model, the
weight sync, the rollout engine, the scoring pass and guidance, and does everything to them
that is not the loop: builds them (the torch part on the torch thread), saves and restores
checkpoints, exports the final model, and closes what the run opened (a vllm engine's
processes, Ray workers, the other learner ranks). :class:`~agentgym.train.loop.Trainer` adds
the loop that drives them, so the loop reads without the set-up around it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import Any

from agentgym.core.factory import env_factory
from agentgym.errors import UserError
from agentgym.guidance.runner import GuidedRollouts, build_providers
from agentgym.policy.base import LocalWeights, TrainablePolicy
from agentgym.rewards.pipeline import RewardPipeline
from agentgym.rollout.engine import RolloutEngine
from agentgym.torch_thread import run_on_torch_thread
from agentgym.train import checkpoint as ckpt
from agentgym.train.config import TrainConfig, save_config
from agentgym.train.health import RunHealth
from agentgym.train.metrics import MetricsLogger
from agentgym.train.model import build_model, export_model, export_state, load_rollout_policy
from agentgym.train.offpolicy import torch_scorer
from agentgym.train.state import restore_state, seed_everything, state_files

log = logging.getLogger(__name__)


class RunParts:
    """What one training run holds (see the module docstring); the base of ``Trainer``."""

    _t_start: float  # when this process's part of the run started (set by the loop)

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

    # ----------------------------------------------------------------- closing
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
