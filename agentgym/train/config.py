"""Training configuration: typed, loaded from YAML, overridden from the command line.

A run is described by one :class:`TrainConfig`. ``load_config("configs/maze.yaml",
["trainer.lr=1e-6", "envs.0.weight=2"])`` reads the file, applies dotted overrides
(values parsed as YAML, so ``true``, ``1e-6`` and ``[1, 2]`` mean what they look like),
and validates everything at once. Every mistake, unknown key or bad value, ends in a
single :class:`~agentgym.errors.UserError` naming the key; the resolved config is saved
in the run folder so a run can always be reproduced from its own folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from agentgym.distributed.config import DistributedConfig
from agentgym.errors import UserError, yaml_error
from agentgym.guidance.config import GuidanceConfig
from agentgym.rewards.config import RewardConfig
from agentgym.rewards.progress import ProgressConfig
from agentgym.rollout.config import RolloutConfig


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class LoraConfig(_Strict):
    """LoRA adapters through peft (the ``lora`` extra); only adapters are trained."""

    r: int = Field(16, ge=1)
    alpha: int = Field(32, ge=1)
    dropout: float = Field(0.0, ge=0.0, lt=1.0)
    target_modules: list[str] | str = "all-linear"


class ModelConfig(_Strict):
    """Which policy to train and how the learner holds it.

    ``device``, ``dtype`` and ``autocast`` may be ``auto``; the run's saved ``config.yaml`` holds
    what they resolved to (:mod:`agentgym.train.precision`).
    """

    #: Anything ``agentgym.policy.load_policy`` accepts: "default" (SmolLM2-135M), a path, an HF id,
    #: or a backend-prefixed spec such as "hf:PATH" / "vllm:PATH".
    policy: str = "default"
    #: Where the learner runs: "auto" (CUDA when present), "cpu", "cuda" or "cuda:N".
    device: str = "auto"
    #: Learner weights dtype. "float32": fp32 master weights (bf16 autocast on CUDA, see ``autocast``);
    #: "bfloat16": bf16 weights trained through an fp32 master copy in the optimizer (half the weight
    #: memory; with share_weights the rollout model is that bf16 model). "auto": float32, except on
    #: CUDA when an hf rollout policy shares the learner's weights (bfloat16).
    dtype: Literal["auto", "float32", "bfloat16"] = "auto"
    #: Compute dtype for fp32 weights: "auto" = bf16 autocast on CUDA, none on the CPU.
    autocast: Literal["auto", "bfloat16", "none"] = "auto"
    gradient_checkpointing: bool = False
    lora: LoraConfig | None = None
    #: Extra keyword arguments for load_policy (e.g. device, max_batch_size; for vllm:
    #: gpu_memory_utilization, sleep_mode, weight_sync).
    policy_kwargs: dict[str, Any] = Field(default_factory=dict)


class EnvEntry(_Strict):
    """One environment of a (multi-task) run; groups are drawn in proportion to ``weight``."""

    id: str
    weight: float = Field(1.0, gt=0)
    kwargs: dict[str, Any] = Field(default_factory=dict)
    #: Label used in metric names; defaults to the id.
    name: str | None = None

    @property
    def label(self) -> str:
        return self.name or self.id


class TrainRolloutConfig(RolloutConfig):
    """The ``rollout:`` section: the engine's :class:`~agentgym.rollout.config.RolloutConfig` (every
    field settable: sampling, timeouts, ``env_concurrency``...) with training defaults, plus the
    training-only fields below (``group_size``, ``groups_per_step``, ``max_turns``)."""

    # ---- the engine's fields, with training defaults
    temperature: float = Field(1.0, gt=0, description="the learner's log-probs use it too: not greedy")
    max_tokens: int = Field(64, ge=1, description="tokens per policy turn")
    max_context_tokens: int | None = Field(2048, ge=16)
    max_concurrent_episodes: int = Field(64, ge=1)
    # ---- training only
    group_size: int = Field(8, ge=2, description="episodes per task (G)")
    groups_per_step: int = Field(4, ge=1, description="tasks per learner step")
    max_turns: int | None = Field(None, ge=1, description="overrides the env's turn limit")

    def engine_config(self, **overrides: object) -> RolloutConfig:
        """The engine's part of this section (``overrides`` replace fields, e.g. the eval temperature)."""
        engine_fields = RolloutConfig.model_fields
        values = {k: v for k, v in self.model_dump().items() if k in engine_fields}
        return RolloutConfig.model_validate({**values, **overrides})


class AlgorithmConfig(_Strict):
    """The GRPO family: advantages, clipped objective, KL, loss aggregation."""

    #: "grpo": (r - mean) / std per group, loss averaged over tokens;
    #: "dr_grpo": r - mean (no std), token sums divided by a constant (no length normalisation).
    estimator: Literal["grpo", "dr_grpo"] = "grpo"
    #: Drop groups whose rewards are all equal (zero advantage), as DAPO's dynamic sampling.
    drop_zero_variance_groups: bool = False
    #: Asymmetric PPO clipping (clip-higher): ratio clipped to [1 - clip_low, 1 + clip_high].
    clip_low: float = Field(0.2, ge=0, lt=1)
    clip_high: float = Field(0.28, ge=0)
    #: Weight of the k3 KL estimate to a frozen reference model (0 = no reference model).
    kl_coef: float = Field(0.0, ge=0)
    #: None picks the estimator's default ("token_mean" for grpo, "seq_sum_norm" for dr_grpo).
    loss_agg: Literal["token_mean", "seq_mean_token_mean", "seq_sum_norm"] | None = None
    #: Optimizer passes over each batch (>1 makes later passes off-policy; the ratio corrects).
    epochs: int = Field(1, ge=1)
    advantage_eps: float = Field(1e-6, gt=0)

    @property
    def aggregation(self) -> str:
        if self.loss_agg:
            return self.loss_agg
        return "seq_sum_norm" if self.estimator == "dr_grpo" else "token_mean"


class TrainerConfig(_Strict):
    """Optimisation: AdamW, schedule, micro-batches, clipping."""

    steps: int = Field(100, ge=1)
    lr: float = Field(1e-5, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    betas: tuple[float, float] = (0.9, 0.999)
    adam_eps: float = Field(1e-8, gt=0)
    warmup_steps: int = Field(0, ge=0)
    schedule: Literal["constant", "cosine", "linear"] = "constant"
    max_grad_norm: float = Field(1.0, gt=0)
    #: Padded tokens per micro-batch; gradients accumulate over micro-batches of one step.
    micro_batch_tokens: int = Field(4096, ge=16)
    #: Run a prompt that several samples begin with (a GRPO group's) once per micro-batch, its
    #: continuations attending to its keys and values; off, or for models whose cache cannot be
    #: extended (sliding windows, gradient checkpointing), every sample is a row of its own.
    share_prefixes: bool = True
    #: Tokens per chunk when computing log-probs (never the full vocabulary for the whole batch).
    logprob_chunk: int = Field(512, ge=1)
    #: Torch intra-op threads for the learner (0 = torch's default).
    threads: int = Field(0, ge=0)


class PipelineConfig(_Strict):
    """Async generation/training overlap."""

    #: How many policy versions old a trajectory may be when trained on; 0 = synchronous.
    max_staleness: int = Field(1, ge=0)
    #: hf backend: the rollout policy uses the learner's module itself (True) or a copy updated in
    #: place after each step (False). Ignored by vllm, which receives a state-dict push.
    share_weights: bool = True


class CheckpointConfig(_Strict):
    every: int = Field(10, ge=1, description="steps between checkpoints")
    keep_last: int = Field(2, ge=1)
    #: Also export the final weights as a loadable model folder (run_dir/final).
    export_final: bool = True


class EvalConfig(_Strict):
    """Periodic evaluation on held-out tasks."""

    every: int = Field(0, ge=0, description="steps between evaluations (0 = only at start/end)")
    at_start: bool = False
    at_end: bool = False
    episodes: int = Field(100, ge=1)
    split: Literal["train", "test"] = "test"
    temperature: float = Field(0.0, ge=0)
    #: A suite name or YAML path; otherwise ``envs`` (or the training envs) on ``split``.
    suite: str | None = None
    #: None evaluates on the training environments.
    envs: list[EnvEntry] | None = None
    seed: int = 12345


class HealthConfig(_Strict):
    """When a run warns that it is not learning (:mod:`agentgym.train.health`)."""

    #: Consecutive steps in which every group had zero reward variance.
    zero_variance_steps: int = Field(3, ge=1)
    #: Fraction of turns the env rejected as invalid actions.
    invalid_action_rate: float = Field(0.5, ge=0, le=1)
    #: Fraction of episodes that hit the turn or token limit.
    truncation_rate: float = Field(0.95, ge=0, le=1)
    #: A step slower than this many times the median step so far (and at least 5 s over it).
    slow_step_factor: float = Field(3.0, gt=1)


class LoggingConfig(_Strict):
    tensorboard: bool = True
    progress: bool = True
    save_trajectories: bool = True
    plot: bool = True
    health: HealthConfig = Field(default_factory=HealthConfig)


class TrainConfig(_Strict):
    """Everything a training run needs; saved as ``config.yaml`` in the run folder."""

    name: str = "run"
    #: The run folder; ``{name}`` is replaced by the run name.
    run_dir: str = "runs/{name}"
    seed: int = 0
    model: ModelConfig = Field(default_factory=ModelConfig)
    envs: list[EnvEntry] = Field(min_length=1)
    rollout: TrainRolloutConfig = Field(default_factory=TrainRolloutConfig)
    algorithm: AlgorithmConfig = Field(default_factory=AlgorithmConfig)
    trainer: TrainerConfig = Field(default_factory=TrainerConfig)
    pipeline: PipelineConfig = Field(default_factory=PipelineConfig)
    checkpoint: CheckpointConfig = Field(default_factory=CheckpointConfig)
    eval: EvalConfig = Field(default_factory=EvalConfig)
    logging: LoggingConfig = Field(default_factory=LoggingConfig)
    #: Re-attempt failed groups with guidance (docs/guidance.md).
    guidance: GuidanceConfig = Field(default_factory=GuidanceConfig)
    #: Retrospective per-turn progress rewards (docs/guidance.md).
    progress: ProgressConfig = Field(default_factory=ProgressConfig)
    #: How the scoring pass combines rewards (docs/rubrics.md); the default is the env's reward alone.
    rewards: RewardConfig = Field(default_factory=RewardConfig)
    #: Where environments come from: "local" (this process's registry) or a remote factory spec.
    env_factory: str = "local"
    #: None: everything in this process; ``{backend: ray, rollout_workers: N, ...}``: rollouts on Ray
    #: actors (docs/distributed.md). The rest of the config means the same either way.
    distributed: DistributedConfig | None = None

    @model_validator(mode="after")
    def _check(self) -> "TrainConfig":
        labels = [e.label for e in self.envs]
        if len(set(labels)) != len(labels):
            raise ValueError("two environments share a label; give them distinct `name`s")
        return self

    @property
    def run_path(self) -> Path:
        return Path(self.run_dir.replace("{name}", self.name))

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False)


# ----------------------------------------------------------------------------- loading
def parse_override(text: str) -> tuple[list[str], Any]:
    """``"a.b.0.c=value"`` -> (["a", "b", "0", "c"], parsed value)."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key or any(not part for part in key.split(".")):
        raise UserError(f"override {text!r} must look like key.subkey=value (e.g. trainer.lr=1e-6).")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return key.split("."), value


def apply_override(data: dict[str, Any], path: list[str], value: Any) -> None:
    """Set ``data[path]`` in place, creating dicts on the way; list items by index."""
    node: Any = data
    for i, part in enumerate(path):
        last = i == len(path) - 1
        where = ".".join(path[: i + 1])
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                raise UserError(f"override key {'.'.join(path)} has no list item {where}.")
            if last:
                node[int(part)] = value
            else:
                node = node[int(part)]
            continue
        if not isinstance(node, dict):
            raise UserError(f"override key {'.'.join(path)}: {'.'.join(path[:i])} is not a section.")
        if last:
            node[part] = value
        else:
            if node.get(part) is None:
                node[part] = {}
            node = node[part]


def config_from_dict(data: dict[str, Any], source: str = "config") -> TrainConfig:
    """Validate a plain dict, turning the first problem into one clear sentence."""
    try:
        return TrainConfig.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top level)"
        msg = first["msg"]
        if first["type"] == "extra_forbidden":
            msg = "unknown key; check the spelling against docs/train.md"
        more = f" (and {len(exc.errors()) - 1} more problems)" if len(exc.errors()) > 1 else ""
        raise UserError(f"{source}: {where}: {msg}{more}.") from exc


def load_config(path: str | Path | None, overrides: list[str] | tuple[str, ...] = ()) -> TrainConfig:
    """Read a YAML config (or start empty), apply dotted overrides, validate."""
    data: dict[str, Any] = {}
    source = "overrides"
    if path is not None:
        path = Path(path)
        source = str(path)
        if not path.exists():
            raise UserError(f"config file {path} does not exist.")
        try:
            loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise yaml_error(path, exc) from exc
        if loaded is not None and not isinstance(loaded, dict):
            raise UserError(f"{path} must hold a mapping of sections (model, envs, trainer, ...).")
        data = loaded or {}
    for text in overrides:
        keys, value = parse_override(text)
        apply_override(data, keys, value)
    return config_from_dict(data, source)


def save_config(config: TrainConfig, path: str | Path) -> None:
    """Write the resolved config (atomically) so the run can be reproduced from its folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(config.to_yaml(), encoding="utf-8")
    tmp.replace(path)
