"""The ``hf`` backend: transformers generation on CPU or CUDA, batched, with exact logprobs.

Concurrent ``generate`` calls (many episodes in flight) are gathered into one batch, run on the
process's torch thread (:mod:`agentgym.torch_thread`, fed by :mod:`agentgym.policy.rowqueue`): prompts
are left-padded, run with a KV cache, and finished rows are dropped from the batch as they end.
The keys and values of each finished sequence are kept (:mod:`agentgym.policy.prefix_cache`,
``prefix_cache_gb``), so the next turn of a multi-turn episode prefills only its new tokens.

Logprobs: ``Completion.logprobs[i]`` is ``log softmax(logits / T)[token_i]`` over the full
vocabulary, with ``T = params.temperature`` (``T = 1`` when greedy, ``temperature=0``); top-p
changes which tokens can be sampled, not the recorded logprob. A learner that computes
``log_softmax(model(ids).logits / T)`` on the same ids gets the same numbers.

The learner can share the model: :meth:`HFPolicy.weights` hands over the ``nn.Module``, the
lock every generation holds, and ``commit`` (the weights changed in place: the version moves on
and the prefix cache of the old weights is dropped). ``await update_weights(state_dict)`` loads
a state dict instead. Every completion records the version that produced it.
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from agentgym.errors import UserError, require
from agentgym.policy.base import Completion, GenerationRequest, LocalWeights
from agentgym.policy.chat import ChatRenderer
from agentgym.policy.prefix_cache import PrefixCache, PrefixEntry
from agentgym.policy.rowqueue import RowQueue
from agentgym.torch_thread import call_on_torch_thread, run_on_torch_thread


@dataclass
class _Row:
    """One sequence to sample (a request expanded by ``n``)."""

    prompt: list[int]
    temperature: float
    top_p: float
    max_tokens: int
    stop: list[str]
    seed: int | None


def pick_device_and_dtype(device: str | None = None, dtype: str | None = None) -> tuple[str, Any]:
    """CUDA with bf16 (fp16 without bf16 support) when available, else CPU with fp32."""
    torch = require("torch", "hf", "the hf policy backend")
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if dtype is None or dtype == "auto":
        if device.startswith("cuda"):
            return device, torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return device, torch.float32
    return device, getattr(torch, dtype) if isinstance(dtype, str) else dtype


def load_tokenizer(path: str) -> Any:
    transformers = require("transformers", "hf", "loading a tokenizer")
    try:
        return transformers.AutoTokenizer.from_pretrained(path)
    except OSError as exc:
        raise UserError(f"cannot load a tokenizer from {path!r}: give a model folder or a Hugging Face id ({exc}).")


def eos_ids(tokenizer: Any, generation_config: Any = None) -> set[int]:
    """Token ids that end a turn: the tokenizer's eos and the generation config's."""
    ids = set()
    if tokenizer.eos_token_id is not None:
        ids.add(int(tokenizer.eos_token_id))
    configured = getattr(generation_config, "eos_token_id", None)
    if configured is not None:
        ids.update(int(i) for i in ([configured] if isinstance(configured, int) else configured))
    return ids


def truncate_at_stop(text: str, stop: Sequence[str]) -> tuple[str, bool]:
    """``text`` cut before the first stop string, and whether one was found."""
    cut = min((i for i in (text.find(s) for s in stop if s) if i >= 0), default=-1)
    return (text[:cut], True) if cut >= 0 else (text, False)


class HFPolicy:
    """A transformers causal LM as a :class:`~agentgym.policy.base.Policy`."""

    def __init__(
        self,
        model: Any,
        tokenizer: Any = None,
        *,
        device: str | None = None,
        dtype: str | None = None,
        max_batch_size: int = 64,
        prefix_cache_gb: float = 1.0,
        name: str | None = None,
    ):
        torch = require("torch", "hf", "the hf policy backend")
        transformers = require("transformers", "hf", "the hf policy backend")
        if isinstance(model, str):
            from agentgym.policy.default_model import resolve_model

            path = resolve_model(model)
            device, torch_dtype = pick_device_and_dtype(device, dtype)
            try:  # on the torch thread: a dtype cast or copy here would give the caller an OpenMP team
                module = call_on_torch_thread(_load_model, transformers, path, torch_dtype, device)
            except OSError as exc:
                raise UserError(f"cannot load model {model!r}: give a model folder or a Hugging Face id ({exc}).")
            self.model = module
            self.tokenizer = tokenizer or load_tokenizer(path)
            self.name = name or f"hf:{model}"
        else:
            if tokenizer is None:
                raise ValueError("HFPolicy(model=nn.Module) needs its tokenizer too")
            self.model, self.tokenizer = model, tokenizer
            self.name = name or f"hf:{getattr(model, 'name_or_path', type(model).__name__)}"
        self.device = next(self.model.parameters()).device
        self.renderer = ChatRenderer(self.tokenizer)
        self.version = 0
        self.lock = threading.RLock()
        self.eos = eos_ids(self.tokenizer, getattr(self.model, "generation_config", None))
        pad = self.tokenizer.pad_token_id
        self.pad_id = int(pad if pad is not None else next(iter(self.eos), 0))
        # Keys/values of finished turns, so the next turn of an episode prefills only its new tokens.
        self.prefix_cache = PrefixCache(int(prefix_cache_gb * 2**30)) if prefix_cache_gb > 0 else None
        self._generator = torch.Generator(device="cpu")
        self._generator.seed()
        # looked up per batch, so a wrapped generate_rows (tests, tracing) sees every batch
        self._queue: RowQueue[_Row] = RowQueue(lambda rows: self.generate_rows(rows), max_batch_size)

    @property
    def max_batch_size(self) -> int:
        """The most rows one forward pass takes."""
        return self._queue.max_batch

    @max_batch_size.setter
    def max_batch_size(self, value: int) -> None:
        self._queue.max_batch = int(value)

    # -- weights ---------------------------------------------------------------------------

    def weights(self) -> LocalWeights:
        """The module this policy generates with, its lock, and how to say it changed in place."""
        return LocalWeights(self.model, self.lock, self.commit_weights, self.drop_caches)

    async def update_weights(self, state_dict: Mapping[str, Any] | None = None) -> int:
        """Load ``state_dict`` (if given) into the model on the torch thread; returns the new version.

        It waits for the batch being generated. Without a state dict it only moves the version on:
        the learner changed the shared model in place.
        """
        return await run_on_torch_thread(self._load_weights, state_dict)

    def _load_weights(self, state_dict: Mapping[str, Any] | None) -> int:
        with self.lock:
            if state_dict is not None:
                self.model.load_state_dict(state_dict, strict=False)
            return self.commit_weights()

    def commit_weights(self) -> int:
        """The weights changed in place: bump and return :attr:`version`, drop the old weights' cache."""
        with self.lock:
            self.version += 1
            self.drop_caches()  # keys and values of the old weights
            return self.version

    def drop_caches(self) -> None:
        """Free the prefix cache now (its entries hold keys and values of the current weights)."""
        with self.lock:
            if self.prefix_cache is not None:
                self.prefix_cache.clear()

    # -- generation ------------------------------------------------------------------------

    def _rows(self, request: GenerationRequest) -> list[_Row]:
        prompt = self.renderer.prompt_of(request)
        if not prompt:
            raise ValueError("empty prompt")
        p = request.params
        return [
            _Row(prompt, float(p.temperature), float(p.top_p), int(p.max_tokens), list(p.stop or []),
                 None if p.seed is None else p.seed + i)
            for i in range(max(1, p.n))
        ]

    async def generate(self, requests: Sequence[GenerationRequest]) -> list[list[Completion]]:
        """Completions for ``requests``; concurrent calls share forward passes (``max_batch_size`` rows)."""
        return await self._submit(requests, alone=False)

    def start_generate(self, requests: Sequence[GenerationRequest]) -> asyncio.Future:
        """``requests`` as a batch of their own, handed to the torch thread now: a future (on the
        running loop) of their completions. The rollout engine's batching queue, which sizes its
        batches itself, calls it from the callback that forms a batch; the torch thread runs such
        batches one after another, so one can wait there while another runs."""
        return self._submit(requests, alone=True)

    def _submit(self, requests: Sequence[GenerationRequest], alone: bool) -> asyncio.Future:
        rows_per_request = [self._rows(r) for r in requests]
        sizes = [len(rows) for rows in rows_per_request]

        def per_request(flat: list[Completion]) -> list[list[Completion]]:
            out, at = [], 0
            for size in sizes:
                out.append(flat[at: at + size])
                at += size
            return out

        rows = [row for rows in rows_per_request for row in rows]
        return self._queue.submit(rows, per_request, alone=alone)

    def generate_sync(self, requests: Sequence[GenerationRequest]) -> list[list[Completion]]:
        """The blocking form of :meth:`generate` (all requests in one batch)."""
        rows_per_request = [self._rows(r) for r in requests]
        flat = self.generate_rows([row for rows in rows_per_request for row in rows])
        out, at = [], 0
        for rows in rows_per_request:
            out.append(flat[at: at + len(rows)])
            at += len(rows)
        return out

    def generate_rows(self, rows: list[_Row]) -> list[Completion]:
        """Sample ``rows`` as one batch, on the torch thread whichever thread calls (:mod:`agentgym.torch_thread`)."""
        return call_on_torch_thread(self._generate_rows, rows)

    def _generate_rows(self, rows: list[_Row]) -> list[Completion]:
        import torch

        with self.lock, torch.inference_mode():
            was_training = self.model.training
            self.model.eval()
            try:
                return self._generate(rows)
            finally:
                self.model.train(was_training)

    def _generate(self, rows: list[_Row]) -> list[Completion]:
        import torch

        dev = self.device
        count = len(rows)
        cache = self.prefix_cache
        hits = [cache.lookup(r.prompt, self.version) if cache is not None else None for r in rows]
        past = [len(h.ids) if h is not None else 0 for h in hits]
        past_width = max(past)
        # Each row: [padding | cached tokens | padding | new tokens]; the mask hides both paddings.
        width = max(len(r.prompt) - p for r, p in zip(rows, past))
        input_ids = torch.full((count, width), self.pad_id, dtype=torch.long)
        attention = torch.zeros((count, past_width + width), dtype=torch.long)
        for i, (row, p) in enumerate(zip(rows, past)):
            fresh = row.prompt[p:]
            input_ids[i, width - len(fresh):] = torch.tensor(fresh)
            attention[i, past_width + width - len(fresh):] = 1
            attention[i, past_width - p: past_width] = 1
        input_ids, attention = input_ids.to(dev), attention.to(dev)
        positions = (attention.cumsum(-1) - 1).clamp(min=0)[:, past_width:]
        past_kv = self._past(hits, past_width) if past_width else None
        temperature = torch.tensor([r.temperature for r in rows], dtype=torch.float32, device=dev)
        top_p = torch.tensor([r.top_p for r in rows], dtype=torch.float32, device=dev)
        generators = []
        for row in rows:
            if row.seed is None:
                generators.append(self._generator)
            else:
                g = torch.Generator(device="cpu")
                g.manual_seed(row.seed)
                generators.append(g)

        tokens: list[list[int]] = [[] for _ in rows]
        logprobs: list[list[float]] = [[] for _ in rows]
        finish: list[str | None] = [None] * count
        texts: list[str | None] = [None] * count
        active = list(range(count))  # row index of each line of the running batch

        out = self.model(input_ids=input_ids, attention_mask=attention, position_ids=positions,
                         past_key_values=past_kv, use_cache=True, logits_to_keep=1)
        kv = out.past_key_values
        if cache is not None and not _plain_dynamic(kv):
            cache = self.prefix_cache = None  # sliding windows, recurrent state...: not cacheable per row
        while True:
            logits = out.logits[:, -1, :].float()
            chosen, chosen_logprobs = sample(logits, temperature, top_p, [generators[i] for i in active])
            keep: list[int] = []
            for line, i in enumerate(active):
                token = int(chosen[line])
                tokens[i].append(token)
                logprobs[i].append(float(chosen_logprobs[line]))
                row = rows[i]
                if token in self.eos:
                    finish[i] = "stop"
                elif row.stop:
                    text, hit = truncate_at_stop(self.tokenizer.decode(tokens[i], skip_special_tokens=True), row.stop)
                    if hit:
                        finish[i], texts[i] = "stop", text
                if finish[i] is None and len(tokens[i]) >= row.max_tokens:
                    finish[i] = "length"
                if finish[i] is None:
                    keep.append(line)
                elif cache is not None:  # everything fed so far: the prompt and all but the last token
                    self._remember(cache, kv, line, attention[line], row.prompt + tokens[i][:-1])
            if not keep:
                break
            if len(keep) < len(active):
                index = torch.tensor(keep, device=dev)
                kv.reorder_cache(index)
                attention, positions, chosen = attention[index], positions[index], chosen[index]
                temperature, top_p = temperature[index], top_p[index]
                active = [active[line] for line in keep]
            attention = torch.cat([attention, attention.new_ones((len(active), 1))], dim=1)
            positions = positions[:, -1:] + 1
            out = self.model(input_ids=chosen.view(-1, 1).to(dev), attention_mask=attention,
                             position_ids=positions, past_key_values=kv, use_cache=True)
        if cache is not None:
            for hit in hits:  # their sequences moved on; the longer entries just stored replace them
                if hit is not None:
                    cache.discard(hit)
        return [
            Completion(
                text=texts[i] if texts[i] is not None else self.tokenizer.decode(tokens[i], skip_special_tokens=True),
                token_ids=tokens[i],
                logprobs=logprobs[i],
                finish_reason=finish[i] or "length",
                version=self.version,
            )
            for i in range(count)
        ]

    def _past(self, hits: list[PrefixEntry | None], width: int) -> Any:
        """A batch cache of ``width`` positions: each hit's keys/values right-aligned, zeros elsewhere."""
        from transformers import DynamicCache

        sample = next(h for h in hits if h is not None)
        layers = []
        for layer, (k0, v0) in enumerate(sample.layers):
            keys = k0.new_zeros((len(hits), k0.shape[0], width, k0.shape[-1]))
            values = v0.new_zeros((len(hits), v0.shape[0], width, v0.shape[-1]))
            for i, hit in enumerate(hits):
                if hit is not None:
                    k, v = hit.layers[layer]
                    keys[i, :, width - k.shape[1]:] = k
                    values[i, :, width - v.shape[1]:] = v
            layers.append((keys, values))
        return DynamicCache(ddp_cache_data=layers, config=self.model.config)

    def _remember(self, cache: PrefixCache, kv: Any, line: int, mask: Any, ids: list[int]) -> None:
        """Store the keys/values of batch line ``line`` (its unmasked positions) for ``ids``."""
        valid = mask.bool()
        if int(valid.sum()) != len(ids):
            return
        cache.store(ids, [(layer.keys[line][:, valid], layer.values[line][:, valid]) for layer in kv.layers],
                    self.version)

    async def close(self) -> None:
        """Wait for the generations this event loop asked for."""
        await self._queue.wait_idle()


def _load_model(transformers: Any, path: Any, dtype: Any, device: str) -> Any:
    """The model at ``path`` in eval mode on ``device`` (run on the torch thread)."""
    module = transformers.AutoModelForCausalLM.from_pretrained(path, dtype=dtype)
    module.to(device)
    module.eval()
    return module


def _plain_dynamic(kv: Any) -> bool:
    """True for a cache of full-attention layers only, whose rows can be cut out and stitched together.

    Older transformers (before per-layer caches) answer False: the prefix cache then stays off.
    """
    try:
        from transformers.cache_utils import DynamicLayer
    except ImportError:
        return False

    layers = getattr(kv, "layers", None)
    return bool(layers) and all(type(layer) is DynamicLayer for layer in layers)


def sample(logits: Any, temperature: Any, top_p: Any, generators: list[Any]) -> tuple[Any, Any]:
    """Sample one token per row; returns the tokens and their logprobs under ``softmax(logits / T)``.

    Rows with ``T == 0`` take the argmax and report the logprob at ``T = 1``. Top-p keeps the
    smallest set of most likely tokens whose mass reaches ``top_p`` (always at least one).
    """
    import torch

    greedy = temperature <= 0
    scale = torch.where(greedy, torch.ones_like(temperature), temperature).unsqueeze(1)
    logp = torch.log_softmax(logits / scale, dim=-1)
    chosen = logp.argmax(dim=-1)
    sampled_rows = (~greedy).nonzero().flatten().tolist()
    if sampled_rows:
        probs = logp[sampled_rows].exp()
        cut = top_p[sampled_rows].unsqueeze(1)
        if bool((cut < 1).any()):
            sorted_probs, order = probs.sort(dim=-1, descending=True)
            outside = (sorted_probs.cumsum(dim=-1) - sorted_probs) >= cut
            sorted_probs = sorted_probs.masked_fill(outside, 0.0)
            probs = torch.zeros_like(probs).scatter(-1, order, sorted_probs)
        # Inverse CDF: one uniform draw per row from that row's generator. ``torch.multinomial`` draws
        # an exponential per vocabulary entry (49k for SmolLM2): 12% of a CPU batch's generation time.
        cdf = probs.double().cumsum(dim=-1)  # float64: u x total stays below the total
        u = torch.stack([torch.rand((), generator=generators[row], dtype=torch.float64) for row in sampled_rows])
        # side="right": the first entry whose cumulative mass exceeds the draw, never a zero-probability one
        picks = torch.searchsorted(cdf, (u.to(cdf.device) * cdf[:, -1]).unsqueeze(1), right=True).squeeze(1)
        chosen[sampled_rows] = picks.clamp(max=cdf.shape[1] - 1)
    return chosen, logp.gather(-1, chosen.unsqueeze(1)).squeeze(1)
