"""The async training loop: rollouts for the next step while the learner trains on this one.

Two coroutines share a queue. The *producer* generates the batch of step ``s`` (G
episodes for each of ``groups_per_step`` tasks, environments drawn by weight) as soon
as the policy version is at least ``s - max_staleness``; the *consumer* turns each
batch into advantages, runs :meth:`Learner.step` on the torch thread
(:mod:`agentgym.torch_thread`, where hf generation runs too), pushes the new
weights to the rollout policy and bumps the version. ``max_staleness=0`` is the
synchronous loop; ``1`` overlaps the rollouts of step ``s+1`` with training on ``s``
(environment work always; generation itself when it runs in other processes, e.g. vLLM).
Every trajectory records the version that produced it, and the importance ratio
against its behaviour log-probs corrects for the lag.

Weight sync. The hf backend's rollout model can be the learner's module itself
(``share_weights``: nothing to copy; a lock keeps generation out while the optimizer
writes) or a copy refreshed in place after each step. A vllm policy gets a state-dict
push. Data: the tasks of step ``s`` are a pure function of ``(seed, s)``, so the data
cursor is the step, and a resumed run sees the tasks the original would have.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import copy
import json
import logging
import random
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from agentgym.errors import UserError
from agentgym.malloc import limit_malloc_growth
from agentgym.policy.base import GenerationRequest, SamplingParams
from agentgym.rollout.context import ContextBuilder
from agentgym.rollout.engine import EpisodeSpec, RolloutConfig as EngineConfig, RolloutEngine, renderer_of
from agentgym.rollout.trajectory import Trajectory, write_jsonl
from agentgym.train import checkpoint as ckpt
from agentgym.rewards.pipeline import RewardPipeline
from agentgym.rewards.progress import advantage_metrics, assess_groups, build_assessor
from agentgym.rollout.guidance import guided_rollouts
from agentgym.train.advantages import build_samples, outcome_credit
from agentgym.train.config import EnvEntry, TrainConfig, save_config
from agentgym.train.metrics import MetricsLogger, plot_learning_curve, wilson_interval
from agentgym.torch_thread import run_on_torch_thread

log = logging.getLogger(__name__)

STATE_FILE = "trainer_state.json"
RNG_FILE = "rng.pt"


# ----------------------------------------------------------------------------- glue
class PromptContext(ContextBuilder):
    """What the model sees: an optional system prompt replacing the env's, optionally no tool schemas."""

    def __init__(self, *, system_prompt: str | None, tools: bool, **kwargs: Any):
        super().__init__(**kwargs)
        self.system_prompt = system_prompt
        self.tools = tools

    def start(self, observation, info, **kwargs):
        info = dict(info)
        if self.system_prompt is not None:
            info["system_prompt"] = self.system_prompt
        if not self.tools:
            info.pop("tools", None)
        return super().start(observation, info, **kwargs)


class LockedPolicy:
    """Wraps a policy so no generate call overlaps a weight update (shared or copied hf model)."""

    def __init__(self, policy: Any, lock: threading.Lock):
        self._policy = policy
        self._lock = lock

    def __getattr__(self, name: str) -> Any:
        return getattr(self._policy, name)

    async def generate(self, requests: Sequence[GenerationRequest]):
        await asyncio.to_thread(self._lock.acquire)
        try:
            return await self._policy.generate(requests)
        finally:
            self._lock.release()

    async def close(self) -> None:
        await self._policy.close()


def torch_model_of(policy: Any):
    """The torch module an hf-style policy generates with, or None (vllm, remote)."""
    for attr in ("model", "module"):
        model = getattr(policy, attr, None)
        if model is not None and hasattr(model, "parameters") and hasattr(model, "forward"):
            return model
    return None


def tokenizer_of(policy: Any):
    return getattr(policy, "tokenizer", None)


def load_rollout_policy(config: TrainConfig):
    """The rollout policy named by ``model.policy`` through agentgym.policy.load_policy."""
    try:
        from agentgym.policy import load_policy
    except ImportError:  # older trees: the hf backend directly
        from agentgym.policy.hf import HFPolicy

        spec = config.model.policy
        return HFPolicy(spec[3:] if spec.startswith("hf:") else spec, **config.model.policy_kwargs)
    return load_policy(config.model.policy, **config.model.policy_kwargs)


# ----------------------------------------------------------------------------- the run
@dataclass
class TrainResult:
    run_dir: Path
    final_step: int
    metrics: list[dict[str, Any]] = field(default_factory=list)
    evals: list[dict[str, Any]] = field(default_factory=list)
    wall_s: float = 0.0


class Trainer:
    """One training run (see the module docstring)."""

    def __init__(self, config: TrainConfig, *, resume: bool = False, policy: Any = None, progress: bool | None = None):
        self.config = config
        self.run_dir = config.run_path
        self.resume = resume
        self._policy_arg = policy
        self.progress = config.logging.progress if progress is None else progress
        self.ckpt_dir = self.run_dir / "checkpoints"
        self.version = 0
        self.start_step = 0
        self.elapsed_before = 0.0
        self._weights_lock = threading.Lock()

    # ----------------------------------------------------------------- setup
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
        import torch

        from agentgym.train.learner import Learner

        cfg = self.config
        if cfg.trainer.threads:
            torch.set_num_threads(cfg.trainer.threads)
        _seed_everything(cfg.seed)
        policy = self._policy_arg if self._policy_arg is not None else load_rollout_policy(cfg)
        self.raw_policy = policy
        rollout_model = torch_model_of(policy)
        self.tokenizer = tokenizer_of(policy)
        if rollout_model is None:
            model = self._load_learner_model()
            self.sync_mode = "push"
        elif cfg.pipeline.share_weights:
            model = rollout_model
            self.sync_mode = "shared"
        else:
            model = copy.deepcopy(rollout_model)
            self.sync_mode = "copy"
        self.rollout_model = rollout_model
        model = model.float() if next(model.parameters()).device.type == "cpu" else model
        if cfg.model.gradient_checkpointing and hasattr(model, "gradient_checkpointing_enable"):
            model.gradient_checkpointing_enable()
        ref_model = None
        if cfg.algorithm.kl_coef > 0:
            ref_model = copy.deepcopy(model).requires_grad_(False).eval()
        if cfg.model.lora is not None:
            model = _apply_lora(model, cfg)
        else:
            model.requires_grad_(True)
        self.model = model
        max_turns = cfg.rollout.max_turns
        norm = cfg.rollout.max_tokens * max_turns if max_turns else None
        pad_id = getattr(self.tokenizer, "pad_token_id", None) or 0
        self.learner = Learner(
            model, cfg.trainer, cfg.algorithm, ref_model=ref_model,
            temperature=cfg.rollout.temperature, norm_tokens=norm, pad_id=pad_id,
        )
        # The hf backend holds ``policy.lock`` while it generates a batch; the learner holds the
        # same lock while the optimizer writes a shared module (or while weights are copied).
        own_lock = getattr(policy, "lock", None)
        if rollout_model is not None and own_lock is not None:
            self._weights_lock = own_lock
            self.policy = policy
        elif rollout_model is not None:
            self.policy = LockedPolicy(policy, self._weights_lock)
        else:
            self.policy = policy
        sampling = SamplingParams(
            temperature=cfg.rollout.temperature, top_p=cfg.rollout.top_p, max_tokens=cfg.rollout.max_tokens
        )
        self.context = PromptContext(
            system_prompt=cfg.rollout.system_prompt, tools=cfg.rollout.tools,
            max_context_tokens=cfg.rollout.max_context_tokens,
        )
        self.engine = RolloutEngine(
            self.policy,
            EngineConfig(sampling=sampling, max_batch=cfg.rollout.max_batch,
                         max_concurrent_episodes=cfg.rollout.concurrency,
                         max_context_tokens=cfg.rollout.max_context_tokens),
            context=self.context,
            renderer=renderer_of(policy),
        )
        # Guidance and retrospective progress (agentgym.rollout.guidance, agentgym.rewards.progress).
        self.guided = guided_rollouts(
            cfg.guidance, self.policy, seed=cfg.seed, model=rollout_model, lock=self._weights_lock,
            temperature=cfg.rollout.temperature,
        ) if cfg.guidance.enabled else None
        self.assessor = build_assessor(cfg.progress, self.policy) if cfg.progress.enabled else None
        self.reward_pipeline = RewardPipeline.from_config(cfg.rewards) if cfg.rewards is not None else None
        self._guidance_metrics: dict[int, dict[str, float]] = {}

    def _load_learner_model(self):
        """For backends without a torch module (vllm): load the same weights with transformers."""
        from transformers import AutoModelForCausalLM

        path = getattr(self.raw_policy, "model_path", None) or getattr(self.raw_policy, "path", None)
        if path is None:
            raise UserError(
                f"policy {getattr(self.raw_policy, 'name', '?')!r} exposes neither a torch model nor a model path; "
                "train with an hf or vllm policy."
            )
        return AutoModelForCausalLM.from_pretrained(str(path), dtype="float32")

    # ----------------------------------------------------------------- weights
    def sync_weights(self) -> float:
        """Make the rollout policy generate with the learner's current weights; returns seconds."""
        import torch

        t = time.perf_counter()
        if self.sync_mode == "copy":
            src = dict(self.model.named_parameters())
            with self._weights_lock, torch.no_grad():
                for name, p in self.rollout_model.named_parameters():
                    p.copy_(src[name])
        if self.sync_mode in ("copy", "shared"):
            bump = getattr(self.raw_policy, "update_weights", None)
            if callable(bump):
                bump()  # no state dict: the weights are already in place; the version moves on
        elif self.sync_mode == "push":
            state = _merged_state_dict(self.model)
            update = getattr(self.raw_policy, "update_weights", None) or getattr(self.raw_policy, "load_weights", None)
            if update is None:
                raise UserError(f"policy {getattr(self.raw_policy, 'name', '?')!r} cannot receive weights.")
            result = update(state)
            if asyncio.iscoroutine(result):
                raise RuntimeError("sync_weights must be awaited for async update_weights")
        return time.perf_counter() - t

    async def _async_sync(self) -> float:
        """The weight sync for a policy that takes weights by push or sits behind a :class:`LockedPolicy`."""
        if self.sync_mode == "push":
            t = time.perf_counter()
            state = await run_on_torch_thread(_merged_state_dict, self.model)
            update = getattr(self.raw_policy, "update_weights", None) or getattr(self.raw_policy, "load_weights")
            result = update(state)
            if asyncio.iscoroutine(result):
                await result
            return time.perf_counter() - t
        # Not on the torch thread: it may wait for a generate call that holds the lock.
        return await asyncio.to_thread(self.sync_weights)

    # ----------------------------------------------------------------- data
    def episode_specs(self, step: int) -> list[EpisodeSpec]:
        """The groups of step ``step``: a pure function of (seed, step), so resumes see the same tasks."""
        cfg = self.config
        rng = np.random.default_rng([cfg.seed, 7919, step])
        weights = np.asarray([e.weight for e in cfg.envs], dtype=np.float64)
        picks = rng.choice(len(cfg.envs), size=cfg.rollout.groups_per_step, p=weights / weights.sum())
        specs = []
        for g, idx in enumerate(picks):
            entry = cfg.envs[int(idx)]
            specs.append(
                EpisodeSpec(
                    entry.id,
                    env_kwargs=_env_kwargs(entry, cfg.rollout.max_turns, "train"),
                    seed=int(rng.integers(2**31 - 1)),
                    group_id=f"s{step}-g{g}",
                    metadata={"env": entry.label, "step": step},
                )
            )
        return specs

    # ----------------------------------------------------------------- resume
    def _save(self, step: int) -> None:
        import torch

        files = self.learner.checkpoint_files()
        state = {
            "step": step,
            "policy_version": self.version,
            "elapsed_s": self.elapsed_before + (time.perf_counter() - self._t_start),
            "seed": self.config.seed,
        }
        files[STATE_FILE] = lambda p: p.write_text(json.dumps(state, indent=1), encoding="utf-8")
        rng_state = {
            "python": random.getstate(),
            "numpy": np.random.get_state(),
            "torch": torch.get_rng_state(),
        }
        if torch.cuda.is_available():
            rng_state["cuda"] = torch.cuda.get_rng_state_all()
        files[RNG_FILE] = lambda p: torch.save(rng_state, p)
        ckpt.save_checkpoint(self.ckpt_dir, step, files, keep_last=self.config.checkpoint.keep_last)

    def _restore(self, folder: Path) -> None:
        import torch

        self.learner.load_checkpoint(folder)
        state = json.loads((folder / STATE_FILE).read_text(encoding="utf-8"))
        self.start_step = int(state["step"])
        self.version = int(state["policy_version"])
        self.elapsed_before = float(state.get("elapsed_s", 0.0))
        rng = torch.load(folder / RNG_FILE, weights_only=False)
        random.setstate(rng["python"])
        np.random.set_state(rng["numpy"])
        torch.set_rng_state(rng["torch"])
        if "cuda" in rng and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(rng["cuda"])
        if self.sync_mode != "push":
            self.sync_weights()
        log.info("resumed from %s (step %d)", folder, self.start_step)

    # ----------------------------------------------------------------- evaluation
    async def evaluate(self, step: int, tag: str) -> dict[str, Any] | None:
        from agentgym.eval.runner import aevaluate

        cfg = self.config.eval
        suite = self._eval_suite()
        t = time.perf_counter()
        engine = RolloutEngine(
            self.policy,
            EngineConfig(
                sampling=SamplingParams(temperature=cfg.temperature, max_tokens=self.config.rollout.max_tokens),
                max_batch=self.config.rollout.max_batch,
                max_context_tokens=self.config.rollout.max_context_tokens,
            ),
            context=self.context,
            renderer=renderer_of(self.raw_policy),
        )
        try:
            result = await aevaluate(
                suite, self.policy, engine=engine, policy_version=self.version,
                out_dir=self.run_dir / "eval" / f"{tag}-step-{step:06d}", progress=False,
                temperature=cfg.temperature, max_tokens=self.config.rollout.max_tokens,
            )
        finally:
            await engine.aclose()
        trajs = result.trajectories
        wins = sum(t.success for t in trajs)
        lo, hi = wilson_interval(wins, len(trajs))
        record = {
            "tag": tag,
            "success_rate": wins / max(1, len(trajs)),
            "success_ci_low": lo,
            "success_ci_high": hi,
            "episodes": len(trajs),
            "reward_mean": float(np.mean([t.reward for t in trajs])) if trajs else 0.0,
            "time_s": time.perf_counter() - t,
        }
        return record

    def _eval_suite(self):
        from agentgym.eval.suite import Suite, SuiteEnv, load_suite

        cfg = self.config.eval
        if cfg.suite:
            return load_suite(cfg.suite)
        entries = cfg.envs or self.config.envs
        total_w = sum(e.weight for e in entries)
        envs = []
        for e in entries:
            kwargs = _env_kwargs(e, self.config.rollout.max_turns, None)
            envs.append(SuiteEnv(
                id=e.id, name=e.label, kwargs=kwargs, split=cfg.split,
                num_tasks=max(1, round(cfg.episodes * e.weight / total_w)), samples=1, seed=cfg.seed,
            ))
        return Suite(name=f"{self.config.name}-eval", envs=envs)

    # ----------------------------------------------------------------- main loop
    async def run(self) -> TrainResult:
        cfg = self.config
        resume_from = self._prepare_run_dir()
        await run_on_torch_thread(self._build)
        if resume_from is not None:
            await run_on_torch_thread(self._restore, resume_from)
            if self.sync_mode == "push":  # a vllm engine still holds the starting weights
                await self._async_sync()
        elif self.resume:
            log.info("no valid checkpoint in %s; starting from step 0", self.ckpt_dir)
        self._t_start = time.perf_counter()
        total = cfg.trainer.steps
        logger = MetricsLogger(
            self.run_dir, tensorboard=cfg.logging.tensorboard,
            resume_step=self.start_step if resume_from is not None else None,
        )
        result = TrainResult(self.run_dir, self.start_step)
        bar = _progress_bar(self.progress, total, self.start_step)
        version_changed = asyncio.Condition()
        queue: asyncio.Queue = asyncio.Queue(maxsize=cfg.pipeline.max_staleness + 1)

        async def produce() -> None:
            for step in range(self.start_step, total):
                async with version_changed:
                    await version_changed.wait_for(lambda: self.version >= step - cfg.pipeline.max_staleness)
                self.engine.set_policy_version(self.version)
                t = time.perf_counter()
                if self.guided is not None:
                    batch = await self.guided.run_groups(
                        self.engine, self.episode_specs(step), cfg.rollout.group_size, step=step
                    )
                    groups, self._guidance_metrics[step] = batch.groups, batch.metrics
                else:
                    groups = await self.engine.run_groups(self.episode_specs(step), cfg.rollout.group_size)
                await queue.put((step, groups, time.perf_counter() - t))

        try:
            if self.start_step == 0 and cfg.eval.at_start and resume_from is None:
                record = await self.evaluate(0, "start")
                logger.log(0, record, kind="eval")
                result.evals.append({"step": 0, **record})
            producer = asyncio.create_task(produce(), name="agentgym-rollouts")
            last = time.perf_counter()
            for step in range(self.start_step, total):
                t_wait = time.perf_counter()
                getter = asyncio.create_task(queue.get())
                done, _ = await asyncio.wait({getter, producer}, return_when=asyncio.FIRST_COMPLETED)
                if getter not in done:
                    getter.cancel()
                    producer.result()  # raises the producer's error
                    raise RuntimeError("the rollout producer stopped early")
                batch_step, groups, gen_s = getter.result()
                assert batch_step == step
                wait_s = time.perf_counter() - t_wait
                metrics = await self._train_step(step, groups, gen_s, wait_s)
                async with version_changed:
                    version_changed.notify_all()
                now = time.perf_counter()
                metrics["time/step_s"] = now - last
                last = now
                done_step = step + 1
                if cfg.eval.every and done_step % cfg.eval.every == 0 and done_step != total:
                    record = await self.evaluate(done_step, "periodic")
                    logger.log(done_step, record, kind="eval")
                    result.evals.append({"step": done_step, **record})
                logger.log(done_step, metrics)
                result.metrics.append({"step": done_step, **metrics})
                if done_step % cfg.checkpoint.every == 0 or done_step == total:
                    await run_on_torch_thread(self._save, done_step)
                result.final_step = done_step
                _update_bar(bar, metrics)
            await producer
            if cfg.eval.at_end:
                record = await self.evaluate(total, "end")
                logger.log(total, record, kind="eval")
                result.evals.append({"step": total, **record})
            if cfg.checkpoint.export_final:
                await run_on_torch_thread(self.export, self.run_dir / "final")
        finally:
            if "producer" in locals() and not producer.done():
                producer.cancel()
                try:
                    await producer
                except (asyncio.CancelledError, Exception):
                    pass
            if bar is not None:
                bar.close()
            logger.close()
            await self.engine.aclose()
            if self.reward_pipeline is not None:
                await self.reward_pipeline.close()
            if self._policy_arg is None:  # loaded here: shut it down (a vllm engine's processes)
                close = getattr(getattr(self, "raw_policy", None), "close", None)
                if close is not None:
                    await close()
        result.wall_s = self.elapsed_before + time.perf_counter() - self._t_start
        if cfg.logging.plot:
            await asyncio.to_thread(plot_learning_curve, self.run_dir)
        summary = {
            "final_step": result.final_step,
            "wall_s": result.wall_s,
            "evals": [e for e in result.evals],
        }
        (self.run_dir / "summary.json").write_text(json.dumps(summary, indent=1), encoding="utf-8")
        return result

    async def _train_step(self, step: int, groups: list[list[Trajectory]], gen_s: float, wait_s: float):
        cfg = self.config
        rubric_metrics: dict[str, float] = {}
        if self.reward_pipeline is not None:  # rubric scores join the env reward before advantages
            flat = [t for g in groups for t in g]
            for traj, reward in zip(flat, await self.reward_pipeline.score_trajectories(flat)):
                traj.reward = reward
            rubric_metrics = self.reward_pipeline.metrics()
        if cfg.logging.save_trajectories:
            path = self.run_dir / "trajectories" / f"step-{step + 1:06d}.jsonl"
            flat = [t for g in groups for t in g]
            await asyncio.to_thread(write_jsonl, flat, path, False)
        credit, extra = outcome_credit, dict(self._guidance_metrics.pop(step, {}))
        extra.update(rubric_metrics)
        if self.assessor is not None:
            progress = await assess_groups(groups, self.assessor, cfg.progress)
            credit = progress.credit
            extra.update(progress.metrics)
        extra.update(advantage_metrics(groups, credit, estimator=cfg.algorithm.estimator,
                                       eps=cfg.algorithm.advantage_eps))
        samples, stats = build_samples(
            groups, estimator=cfg.algorithm.estimator, eps=cfg.algorithm.advantage_eps,
            drop_zero_variance=cfg.algorithm.drop_zero_variance_groups, credit=credit,
        )
        metrics: dict[str, Any] = rollout_metrics(groups, self.version, cfg.envs)
        metrics.update(extra)
        metrics.update({
            "groups/dropped": stats.groups_dropped,
            "groups/zero_variance_fraction": stats.zero_variance_fraction,
            "episodes/failed": stats.failed,
            "adv/mean": stats.adv_mean,
            "adv/std": stats.adv_std,
            "adv/abs_mean": stats.adv_abs_mean,
            "time/generation_s": gen_s,
            "time/wait_s": wait_s,
        })
        gen_tokens = metrics.get("tokens/generated", 0)
        metrics["tokens/generated_per_s"] = gen_tokens / gen_s if gen_s > 0 else 0.0
        if self.sync_mode == "push" or isinstance(self.policy, LockedPolicy):  # the sync awaits, or waits on a lock
            learned = await run_on_torch_thread(self._locked_step, samples) if samples else None
            sync_s = await self._async_sync()
        else:
            learned, sync_s = await run_on_torch_thread(self._learn_and_sync, samples)
        if learned is not None:
            metrics.update(learned)
        else:  # nothing to learn from (all groups flat and dropped): the version still advances
            metrics["skipped_update"] = True
        self.version += 1
        metrics["time/sync_s"] = sync_s
        metrics["policy_version"] = self.version
        return metrics

    def _locked_step(self, samples):
        # The optimizer writes the weights in place: keep generation of a shared module out meanwhile.
        if self.sync_mode == "shared":
            return self.learner.step(samples, update_lock=self._weights_lock)
        return self.learner.step(samples)

    def _learn_and_sync(self, samples) -> tuple[dict[str, Any] | None, float]:
        """The learner step and the weight sync as one torch-thread job: no generation can run
        between them, with new weights under the old version (or the old weights' prefix cache)."""
        learned = self._locked_step(samples) if samples else None
        return learned, self.sync_weights()

    # ----------------------------------------------------------------- export
    def export(self, folder: Path) -> None:
        """Save the trained weights (+ tokenizer) as a model folder ``hf:FOLDER`` can load."""
        model = self.model
        merge = getattr(model, "merge_and_unload", None)
        if callable(merge):
            model = copy.deepcopy(model).merge_and_unload()
        tmp = folder.with_name(folder.name + ".tmp")
        if tmp.exists():
            import shutil

            shutil.rmtree(tmp)
        model.save_pretrained(tmp, safe_serialization=True)
        if self.tokenizer is not None and hasattr(self.tokenizer, "save_pretrained"):
            self.tokenizer.save_pretrained(tmp)
        if folder.exists():
            import shutil

            shutil.rmtree(folder)
        tmp.rename(folder)


# ----------------------------------------------------------------------------- helpers
def rollout_metrics(groups: list[list[Trajectory]], version: int, envs: list[EnvEntry]) -> dict[str, Any]:
    """Reward, success, lengths and staleness of one step's episodes (overall and per env)."""
    flat = [t for g in groups for t in g]
    out: dict[str, Any] = {}
    if not flat:
        return out
    rewards = np.asarray([t.reward for t in flat], dtype=np.float64)
    out["reward/mean"] = float(rewards.mean())
    out["reward/std"] = float(rewards.std())
    out["success/mean"] = float(np.mean([t.success for t in flat]))
    out["episodes"] = len(flat)
    out["episode/turns"] = float(np.mean([t.num_turns for t in flat]))
    out["episode/truncated"] = float(np.mean([t.status == "truncated" for t in flat]))
    out["tokens/generated"] = int(sum(t.num_sampled_tokens for t in flat))
    out["tokens/per_episode"] = float(np.mean([len(t.token_ids) for t in flat]))
    staleness = [version - t.policy_version for t in flat]
    out["staleness/mean"] = float(np.mean(staleness))
    out["staleness/max"] = int(max(staleness))
    if len(envs) > 1:
        for entry in envs:
            mine = [t for t in flat if t.metadata.get("env") == entry.label]
            if mine:
                out[f"env/{entry.label}/reward"] = float(np.mean([t.reward for t in mine]))
                out[f"env/{entry.label}/success"] = float(np.mean([t.success for t in mine]))
                out[f"env/{entry.label}/episodes"] = len(mine)
    return out


def _env_kwargs(entry: EnvEntry, max_turns: int | None, split: str | None) -> dict[str, Any]:
    kwargs = dict(entry.kwargs)
    if split is not None:
        kwargs.setdefault("split", split)
    if max_turns is not None:
        kwargs.setdefault("max_turns", max_turns)
    return kwargs


def _seed_everything(seed: int) -> None:
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _merged_state_dict(model) -> dict[str, Any]:
    """Full weights for a push (LoRA merged into a copy)."""
    merge = getattr(model, "merge_and_unload", None)
    if callable(merge):
        model = copy.deepcopy(model).merge_and_unload()
    return {k: v.detach() for k, v in model.state_dict().items()}


def _apply_lora(model, cfg: TrainConfig):
    from agentgym.errors import require

    peft = require("peft", "lora", "LoRA training")
    lora = cfg.model.lora
    peft_config = peft.LoraConfig(
        r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout,
        target_modules=lora.target_modules, task_type="CAUSAL_LM",
    )
    return peft.get_peft_model(model, peft_config)


def _progress_bar(enabled: bool, total: int, initial: int):
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, desc="train", unit="step", file=sys.stderr, dynamic_ncols=True)


def _update_bar(bar, metrics: dict[str, Any]) -> None:
    if bar is None:
        return
    bar.update(1)
    shown = {
        "reward": metrics.get("reward/mean"),
        "succ": metrics.get("success/mean"),
        "loss": metrics.get("loss"),
        "kl": metrics.get("kl"),
        "clip": metrics.get("clip_fraction"),
        "gen_s": metrics.get("time/generation_s"),
        "train_s": metrics.get("time/train_s"),
        "stale": metrics.get("staleness/mean"),
    }
    bar.set_postfix({k: f"{v:.3g}" for k, v in shown.items() if isinstance(v, (int, float))}, refresh=False)


def train(config: TrainConfig, *, resume: bool = False, policy: Any = None, progress: bool | None = None) -> TrainResult:
    """Run training to completion (synchronous entry point for the CLI and scripts)."""
    limit_malloc_growth()

    async def main() -> TrainResult:
        asyncio.get_running_loop().set_default_executor(concurrent.futures.ThreadPoolExecutor(max_workers=32))
        return await Trainer(config, resume=resume, policy=policy, progress=progress).run()

    return asyncio.run(main())
