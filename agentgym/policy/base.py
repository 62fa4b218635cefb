"""The one interface every policy backend implements.

The rollout engine, the learner, judges and teachers all call policies through
:class:`Policy`. Requests come as chat messages (rendered by the backend's chat
template) or as token ids (token-in/token-out, what training needs); results carry
the sampled token ids and their logprobs so the learner trains on exactly what was
sampled.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, Sequence, runtime_checkable

Message = dict[str, Any]
"""A chat message in OpenAI format: ``{"role": ..., "content": ...}`` (+ ``tool_calls``)."""


@dataclass
class SamplingParams:
    """How to sample. ``temperature=0`` means greedy."""

    temperature: float = 1.0
    top_p: float = 1.0
    max_tokens: int = 256
    stop: list[str] | None = None
    n: int = 1
    seed: int | None = None


@dataclass
class GenerationRequest:
    """One prompt: either ``prompt_ids`` (token-in) or ``messages`` (+ ``tools``).

    ``env`` is the live environment; only scripted policies (oracle, random) read it.
    """

    messages: list[Message] | None = None
    prompt_ids: list[int] | None = None
    tools: list[dict] | None = None
    params: SamplingParams = field(default_factory=SamplingParams)
    env: Any = None


FinishReason = Literal["stop", "length", "error"]


@dataclass
class Completion:
    """One sampled continuation: exact token ids, the logprob of each, and the text.

    ``logprobs[i]`` is ``log softmax(logits / T)[token_ids[i]]`` over the whole vocabulary, with
    ``T = params.temperature`` (``T = 1`` for greedy): what a learner recomputes with
    ``log_softmax(logits / T)``. Top-p does not change it on hf; vLLM renormalises over the nucleus
    when ``top_p < 1``, so train with ``top_p = 1``. ``token_ids`` include the end-of-turn token when
    the policy stopped on it; ``text`` does not (and is cut before a matched stop string).
    Scripted policies return text only.
    """

    text: str
    token_ids: list[int] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)
    finish_reason: FinishReason = "stop"
    error: str | None = None
    version: int | None = None
    """The policy's weight version that produced it (learners bump it on each update)."""


@runtime_checkable
class Policy(Protocol):
    """Async batched generation. ``generate`` returns ``params.n`` completions per request.

    A policy whose engine schedules requests itself (continuous batching: vLLM, an HTTP
    server) sets ``continuous_batching = True``; the rollout engine then sends each request
    on its own as soon as it is ready instead of collecting batches, so a short reply never
    waits for a long one.
    """

    name: str

    async def generate(self, requests: Sequence[GenerationRequest]) -> list[list[Completion]]:
        ...

    async def close(self) -> None:
        ...
