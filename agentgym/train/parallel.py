"""A data-parallel learner over several GPUs (or CPU processes): PyTorch FSDP2, rank 0 drives.

One process per rank, started by ``torchrun`` (every rank runs ``agentgym train CONFIG``) or
by the Ray driver (``distributed.learner_ranks``, :mod:`agentgym.distributed.learners`). Rank 0
is the trainer: it generates, scores and computes advantages as in a single-process run;
the other ranks only hold their shard of the model and follow its commands (:func:`follow`).

Each learner step: rank 0 fixes every sample's per-token loss weight over the whole batch
(so the loss is the single-process one), splits the samples over the ranks so that their
token counts balance (:func:`balance`), and scatters them. Each rank packs its share into
micro-batches; ranks with fewer micro-batches run zero-weight ones, because every forward
and backward of a sharded model is a collective. Gradients are reduce-scattered once per
step (not per micro-batch) and summed, not averaged (the loss is scaled by the world size),
so the update equals the single-process update on the same batch.

Precision: FSDP keeps fp32 shards (the master weights); on CUDA its mixed-precision policy
gathers them as bf16 for compute and reduces gradients in fp32, which takes the place of
autocast. Weight sync and checkpoints gather full tensors to rank 0 (a collective the other
ranks join on command), so checkpoints have the single-process layout for the weights.
The model's decoder layers (``_no_split_modules``) are each a shard unit; the root unit wraps
the model in :class:`LogprobModule`, so embeddings, final norm and a tied head stay together
and the chunked log-prob path runs inside the root's forward.
"""

from __future__ import annotations

import datetime
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from agentgym.errors import UserError
from agentgym.train.advantages import Sample
from agentgym.train.learner import Learner, split_causal_lm
from agentgym.train.losses import LossStats, chunked_logprobs, logprobs_from_logits
from agentgym.train.packing import MicroBatch

log = logging.getLogger(__name__)

#: Followers wait on the control group between steps while rank 0 generates: a long timeout.
CONTROL_TIMEOUT = datetime.timedelta(days=7)


# ----------------------------------------------------------------------------- the process group
@dataclass
class LearnerGroup:
    """This process's place in the learner's process group."""

    rank: int
    world_size: int
    device: str
    control: Any  # a gloo group for commands and Python objects

    @property
    def is_driver(self) -> bool:
        return self.rank == 0

    def scatter(self, items: list[Any] | None) -> Any:
        """Rank 0 sends ``items[r]`` to rank r; every rank returns its own."""
        import torch.distributed as dist

        out: list[Any] = [None]
        dist.scatter_object_list(out, items if self.is_driver else None, src=0, group=self.control)
        return out[0]

    def command(self, name: str, payloads: list[Any] | None = None) -> Any:
        """Rank 0: tell every rank what to do next; returns rank 0's payload."""
        payloads = payloads if payloads is not None else [None] * self.world_size
        return self.scatter([(name, p) for p in payloads])[1]

    def close(self) -> None:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()


def init_group(rank: int, world_size: int, local_rank: int = 0, init_method: str | None = None) -> LearnerGroup:
    """Join the learner's process group (NCCL on CUDA, gloo on the CPU) and open the control group."""
    import torch.distributed as dist

    cuda = torch.cuda.is_available()
    device = f"cuda:{local_rank}" if cuda else "cpu"
    if cuda:
        torch.cuda.set_device(local_rank)
    dist.init_process_group("nccl" if cuda else "gloo", rank=rank, world_size=world_size,
                            init_method=init_method or "env://", timeout=datetime.timedelta(minutes=30))
    control = dist.new_group(backend="gloo", timeout=CONTROL_TIMEOUT)
    return LearnerGroup(rank, world_size, device, control)


def init_from_env() -> LearnerGroup | None:
    """The group torchrun describes (``WORLD_SIZE`` > 1), or None for a single process."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return None
    return init_group(int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", "0")))


# ----------------------------------------------------------------------------- balancing
def balance(token_counts: Sequence[int], ranks: int) -> list[list[int]]:
    """Sample indices per rank, longest first onto the rank with the fewest tokens so far."""
    loads = [0] * ranks
    out: list[list[int]] = [[] for _ in range(ranks)]
    for i in sorted(range(len(token_counts)), key=lambda i: -token_counts[i]):
        r = min(range(ranks), key=lambda r: (loads[r], len(out[r]), r))
        out[r].append(i)
        loads[r] += token_counts[i]
    return out


# ----------------------------------------------------------------------------- the sharded model
class LogprobModule(nn.Module):
    """A causal LM whose forward returns the log-probs (and entropy) of the selected next tokens."""

    def __init__(self, lm: nn.Module):
        super().__init__()
        self.lm = lm

    def forward(self, input_ids, attention_mask, select, targets, *, temperature: float = 1.0, chunk: int = 512,
                with_entropy: bool = True):
        parts = split_causal_lm(self.lm)
        if parts is None:
            logits = self.lm(input_ids=input_ids, attention_mask=attention_mask).logits[:, :-1][select]
            return logprobs_from_logits(logits, targets, temperature)
        body, head = parts
        out = body(input_ids=input_ids, attention_mask=attention_mask, use_cache=False)
        hidden = (out[0] if isinstance(out, tuple) else out.last_hidden_state)[:, :-1][select]
        return chunked_logprobs(hidden, head.weight, targets, bias=head.bias, chunk=chunk, temperature=temperature,
                                with_entropy=with_entropy)


def shard(model: nn.Module, group: LearnerGroup, compute_dtype: torch.dtype | None) -> LogprobModule:
    """``fully_shard`` each decoder layer and the :class:`LogprobModule` root around ``model``."""
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

    mesh = init_device_mesh("cuda" if group.device.startswith("cuda") else "cpu", (group.world_size,))
    mp = MixedPrecisionPolicy(param_dtype=compute_dtype, reduce_dtype=torch.float32) if compute_dtype else None
    kwargs = {"mesh": mesh, **({"mp_policy": mp} if mp is not None else {})}
    units = set(getattr(model, "_no_split_modules", None) or [])
    for module in model.modules():
        if type(module).__name__ in units:
            fully_shard(module, **kwargs)
    root = LogprobModule(model)
    fully_shard(root, **kwargs)
    return root


def model_folder(policy_spec: str) -> str:
    """The model folder a policy spec names (every rank loads its learner copy from it)."""
    from agentgym.policy.default_model import ALIASES, resolve_model

    spec = policy_spec.strip()
    if spec.lower() in ALIASES:
        spec = f"hf:{spec}"
    backend, sep, rest = spec.partition(":")
    return resolve_model(rest if sep and backend in ("hf", "vllm") else spec)


def check_model_folder(policy_spec: str) -> str:
    """:func:`model_folder`, refused in one sentence when it holds no model config (before any rank starts)."""
    from transformers import AutoConfig

    folder = model_folder(policy_spec)
    try:
        AutoConfig.from_pretrained(folder)
    except (OSError, ValueError) as exc:
        raise UserError(f"model.policy={policy_spec!r}: no model at {folder!r} for the learner ranks to load ({exc}).")
    return folder


def build_sharded(config: Any, group: LearnerGroup, compute_dtype: torch.dtype | None) -> tuple[LogprobModule, Any]:
    """Every rank's learner model (fp32 from the model folder, sharded) and reference model (or None)."""
    from transformers import AutoModelForCausalLM

    if config.model.lora is not None:
        raise UserError("LoRA with a multi-rank learner is not supported yet; train LoRA on one GPU.")
    folder = check_model_folder(config.model.policy)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).to(group.device)
    if config.model.gradient_checkpointing and hasattr(model, "gradient_checkpointing_enable"):
        model.gradient_checkpointing_enable()
    ref = None
    if config.algorithm.kl_coef > 0:
        import copy

        ref = shard(copy.deepcopy(model).requires_grad_(False).eval(), group, compute_dtype)
    model.requires_grad_(True)
    return shard(model, group, compute_dtype), ref


# ----------------------------------------------------------------------------- full state on rank 0
def _options(**kwargs: Any) -> Any:
    from torch.distributed.checkpoint.state_dict import StateDictOptions

    return StateDictOptions(full_state_dict=True, cpu_offload=True, **kwargs)


def _strip(state: dict[str, Any]) -> dict[str, Any]:
    return {k.removeprefix("lm."): v for k, v in state.items()}


def gather_state(root: LogprobModule) -> dict[str, Any]:
    """The full model state dict on rank 0 (CPU tensors, HF names); empty elsewhere. A collective."""
    from torch.distributed.checkpoint.state_dict import get_model_state_dict

    return _strip(get_model_state_dict(root, options=_options()))


def full_state(group: LearnerGroup, root: LogprobModule) -> dict[str, Any]:
    """Rank 0: the learner's full weights, gathered with the followers (told to join)."""
    group.command("state")
    return gather_state(root)


# ----------------------------------------------------------------------------- the learner
class ParallelLearner(Learner):
    """A :class:`Learner` over a sharded model; rank 0's calls become commands the others follow."""

    def __init__(self, root: LogprobModule, trainer: Any, algorithm: Any, *, group: LearnerGroup,
                 ref_root: LogprobModule | None = None, **kwargs: Any):
        kwargs.pop("autocast", None)
        kwargs.pop("master_weights", None)
        super().__init__(root.lm, trainer, algorithm, ref_model=ref_root.lm if ref_root is not None else None,
                         autocast=None, master_weights=False, **kwargs)
        self.root = root
        self.ref_root = ref_root
        self.group = group
        self.loss_scale = group.world_size  # FSDP averages over ranks; our weights already normalise

    # ---- rank 0's API (each call is a command the followers execute too)
    def step(self, samples: Sequence[Sample], update_lock: Any = None) -> dict[str, Any]:
        from agentgym.train.losses import token_weights

        lengths = [s.num_sampled for s in samples]
        weights = token_weights(lengths, self.algorithm.aggregation, self.norm_tokens)
        shares = balance([len(s.token_ids) for s in samples], self.group.world_size)
        payloads = [([samples[i] for i in idx], [weights[i] for i in idx]) for idx in shares]
        mine = self.group.command("step", payloads)
        return self.step_weighted(*mine, update_lock)

    def full_state(self) -> dict[str, Any]:
        """The learner's full weights on rank 0 (for the weight sync)."""
        return full_state(self.group, self.root)

    def trainable_state(self) -> dict[str, torch.Tensor]:
        return self.full_state()

    def checkpoint_files(self) -> dict[str, Any]:
        from safetensors.torch import save_file

        self.group.command("checkpoint")
        model, optim = self._gather_checkpoint()
        scheduler, steps = self.scheduler.state_dict(), self.steps_done
        return {
            "model.safetensors": lambda path: save_file({k: v.contiguous() for k, v in model.items()}, str(path)),
            "optimizer.pt": lambda path: torch.save(
                {"optimizer_fqn": optim, "scheduler": scheduler, "steps_done": steps}, path),
        }

    def load_checkpoint(self, folder: str | Path) -> None:
        from safetensors.torch import load_file

        folder = Path(folder)
        state = torch.load(folder / "optimizer.pt", map_location="cpu", weights_only=True)
        if "optimizer_fqn" not in state:
            raise UserError(f"{folder} was written by a single-process learner; resume it with one process "
                            "(a multi-rank learner resumes only its own checkpoints).")
        self.group.command("load")
        model = {f"lm.{k}": v for k, v in load_file(str(folder / "model.safetensors")).items()}
        self._load(model, state["optimizer_fqn"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.steps_done = int(state.get("steps_done", 0))
        self.group.command("schedule", [(self.scheduler.state_dict(), self.steps_done)] * self.group.world_size)

    def stop(self) -> None:
        """Release the followers (they leave their loop and the group)."""
        self.group.command("stop")

    # ---- collectives every rank runs
    def _gather_checkpoint(self) -> tuple[dict[str, Any], dict[str, Any]]:
        from torch.distributed.checkpoint.state_dict import get_state_dict

        model, optim = get_state_dict(self.root, self.optimizer, options=_options())
        return _strip(model), optim

    def _load(self, model: dict[str, Any], optim: dict[str, Any]) -> None:
        """Rank 0's full state broadcast into every rank's shards (the others pass empty dicts). Model and
        optimizer separately: ``set_state_dict`` skips the model on ranks whose model dict is empty."""
        from torch.distributed.checkpoint.state_dict import set_model_state_dict, set_optimizer_state_dict

        options = _options(broadcast_from_rank0=True)
        set_model_state_dict(self.root, model, options=options)
        set_optimizer_state_dict(self.root, self.optimizer, optim, options=options)

    # ---- the hooks of Learner.step_weighted
    def _shares_prefixes(self) -> bool:
        """Never: the sharded root module runs whole rows (a prompt is computed once per sample)."""
        return False

    def _logprobs(self, parts, model: nn.Module, mb: MicroBatch, with_entropy: bool):
        root = self.ref_root if model is self.ref_model else self.root
        return root(mb.input_ids.to(self.device), mb.attention_mask.to(self.device), mb.select.to(self.device),
                    mb.targets.to(self.device), temperature=self.temperature, chunk=self.trainer.logprob_chunk,
                    with_entropy=with_entropy)

    def _align(self, batches: list[MicroBatch]) -> list[MicroBatch]:
        import torch.distributed as dist

        count = torch.tensor([len(batches)], device=self.device)
        dist.all_reduce(count, op=dist.ReduceOp.MAX)
        return batches + [_idle_batch(self.pad_id) for _ in range(int(count) - len(batches))]

    def _gradient_sync(self, last: bool) -> None:
        self.root.set_requires_gradient_sync(last)

    def _clip(self) -> float:
        norm = torch.nn.utils.clip_grad_norm_(self._optimized(), self.trainer.max_grad_norm)
        full = getattr(norm, "full_tensor", None)
        return float(full() if callable(full) else norm)

    def _reduce(self, loss: float, trained: int, padded: int, stats: LossStats) -> tuple[float, int, int, LossStats]:
        import torch.distributed as dist

        sums = torch.tensor([loss, trained, padded, stats.tokens, stats.clipped, stats.ratio_sum, stats.kl_sum,
                             stats.entropy_sum, stats.logp_diff_abs_sum], dtype=torch.float64, device=self.device)
        top = torch.tensor([stats.ratio_max], dtype=torch.float64, device=self.device)
        dist.all_reduce(sums)
        dist.all_reduce(top, op=dist.ReduceOp.MAX)
        s = sums.tolist()
        total = LossStats(tokens=int(s[3]), clipped=s[4], ratio_sum=s[5], ratio_max=float(top[0]), kl_sum=s[6],
                          entropy_sum=s[7], logp_diff_abs_sum=s[8])
        return s[0], int(s[1]), int(s[2]), total


def _idle_batch(pad_id: int) -> MicroBatch:
    """A two-token micro-batch with zero weight: runs the collectives, changes no gradient."""
    zero = torch.zeros(1)
    return MicroBatch(
        input_ids=torch.full((1, 2), pad_id, dtype=torch.long), attention_mask=torch.ones((1, 2), dtype=torch.long),
        select=torch.tensor([[True]]), targets=torch.tensor([pad_id]), behaviour=zero, advantages=zero, weights=zero,
        padded_tokens=0,
    )


def make_learner(config: Any, group: LearnerGroup, root: LogprobModule, ref_root: LogprobModule | None,
                 pad_id: int) -> ParallelLearner:
    """The learner every rank builds identically (rank 0 in the trainer, the others in :func:`follow`)."""
    max_turns = config.rollout.max_turns
    return ParallelLearner(root, config.trainer, config.algorithm, group=group, ref_root=ref_root,
                           temperature=config.rollout.temperature,
                           norm_tokens=config.rollout.max_tokens * max_turns if max_turns else None, pad_id=pad_id)


def compute_dtype(group: LearnerGroup, config: Any) -> torch.dtype | None:
    """bf16 compute on CUDA (unless ``model.autocast: none``); the shards stay fp32."""
    if config.model.dtype == "bfloat16":
        raise UserError("model.dtype=bfloat16 with a multi-rank learner: FSDP keeps fp32 shards (the master weights) "
                        "and computes in bf16 on CUDA; use model.dtype=auto or float32.")
    on_cuda = group.device.startswith("cuda")
    return torch.bfloat16 if on_cuda and config.model.autocast != "none" and torch.cuda.is_bf16_supported() else None


def follow(config: Any, group: LearnerGroup, pad_id: int) -> None:
    """A non-zero rank: build the same sharded learner, then do what rank 0 says until it says stop."""
    from agentgym.train.state import seed_everything

    seed_everything(config.seed)
    root, ref_root = build_sharded(config, group, compute_dtype(group, config))
    learner = make_learner(config, group, root, ref_root, pad_id)
    log.info("learner rank %d/%d on %s ready", group.rank, group.world_size, group.device)
    while True:
        name, payload = group.scatter(None)
        if name == "step":
            learner.step_weighted(*payload)
        elif name == "state":
            gather_state(root)
        elif name == "checkpoint":
            learner._gather_checkpoint()
        elif name == "load":
            learner._load({}, {})
        elif name == "schedule":
            learner.scheduler.load_state_dict(payload[0])
            learner.steps_done = payload[1]
        elif name == "stop":
            break
        else:
            raise RuntimeError(f"unknown learner command {name!r}")


def run_follower(config: Any, group: LearnerGroup) -> None:
    """A non-zero rank's whole life: :func:`follow`, then leave the group."""
    from agentgym.policy.hf import load_tokenizer

    pad_id = getattr(load_tokenizer(model_folder(config.model.policy)), "pad_token_id", None) or 0
    try:
        follow(config, group, pad_id)
    finally:
        group.close()
