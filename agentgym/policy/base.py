"""The one interface every policy backend implements.

The rollout engine, the learner, judges and teachers all call policies through
:class:`Policy`. Requests come as chat messages (rendered by the backend's chat
template) or as token ids (token-in/token-out, what training needs); results carry
the sampled token ids and their logprobs so the learner trains on exactly what was
sampled, and the tool calls the reply makes when the backend parsed them.

Scripted players (oracle, random, replay) are :class:`ActionSource` s instead: they
read the environment through the async env protocol, never a live env object handed
over in a request. Policies the learner can train expose their weights through
:class:`TrainablePolicy`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Literal, Mapping, Protocol, Sequence, runtime_checkable

if TYPE_CHECKING:  # policies never need the env core at run time; action sources only name its protocol
    from agentgym.core.protocol import AsyncEnv

Message = dict[str, Any]
"""A chat message in OpenAI format: ``{"role": ..., "content": ...}`` (+ ``tool_calls``, ``tool_call_id``)."""


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
    """One prompt: either ``prompt_ids`` (token-in) or ``messages`` (+ ``tools``)."""

    messages: list[Message] | None = None
    prompt_ids: list[int] | None = None
    tools: list[dict] | None = None
    params: SamplingParams = field(default_factory=SamplingParams)


FinishReason = Literal["stop", "length", "tool_calls", "error"]


@dataclass
class Completion:
    """One sampled continuation: exact token ids, the logprob of each, and the text.

    ``logprobs[i]`` is ``log softmax(logits / T)[token_ids[i]]`` over the whole vocabulary, with
    ``T = params.temperature`` (``T = 1`` for greedy): what a learner recomputes with
    ``log_softmax(logits / T)``. Top-p does not change it on hf; vLLM renormalises over the nucleus
    when ``top_p < 1``, so train with ``top_p = 1``. ``token_ids`` include the end-of-turn token when
    the policy stopped on it; ``text`` does not (and is cut before a matched stop string).
    Scripted policies return text only.

    ``tool_calls`` are OpenAI ``tool_calls`` entries (``{"id", "type": "function", "function":
    {"name", "arguments"}}``) when the backend parsed them (an OpenAI server's native answer, a
    vLLM tool parser); ``None`` when it did not, and the rollout engine reads the calls written
    in ``text`` (``<tool_call>`` blocks, ``name[arg]``). ``text`` is then the content besides them.
    """

    text: str
    token_ids: list[int] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)
    finish_reason: FinishReason = "stop"
    error: str | None = None
    version: int | None = None
    """The policy's weight version that produced it (learners bump it on each update)."""
    tool_calls: list[dict[str, Any]] | None = None


@runtime_checkable
class Policy(Protocol):
    """Async batched generation. ``generate`` returns ``params.n`` completions per request.

    A policy whose engine schedules requests itself (continuous batching: vLLM, an HTTP
    server) sets ``continuous_batching = True``; the rollout engine then sends each request
    on its own as soon as it is ready instead of collecting batches, so a short reply never
    waits for a long one.

    A policy may also offer ``start_generate(requests) -> asyncio.Future``: ``generate``
    started at once, without a coroutine (the ``hf`` backend). The rollout engine's batching
    queue then starts each batch within the callback that forms it, unless a subclass overrides
    ``generate`` below the class that defines ``start_generate`` (it is sent every batch through
    its ``generate``).
    """

    name: str

    async def generate(self, requests: Sequence[GenerationRequest]) -> list[list[Completion]]:
        ...

    async def close(self) -> None:
        ...


@runtime_checkable
class ActionSource(Protocol):
    """A scripted player: decides each reply by asking the environment through the async protocol.

    ``request`` is what a policy would be sent this turn (messages or token ids, tools,
    sampling); the rollout engine calls :meth:`act` where it would call ``generate``.
    """

    name: str

    async def act(self, env: "AsyncEnv", request: GenerationRequest) -> Completion:
        ...

    async def close(self) -> None:
        ...


@dataclass
class LocalWeights:
    """A policy that generates with ``module`` in this process (the hf backend).

    ``lock`` is held by every generation; whoever writes the weights holds it too. ``commit()``
    tells the policy its weights changed in place (its version moves on, caches of the old
    weights are dropped); call it from the torch thread, in the same job as the write.
    ``drop_caches()`` frees what only the current weights can use (the prefix cache) at once:
    called in that job before the write, it keeps those caches out of the step's peak memory.
    """

    module: Any
    lock: Any
    commit: Callable[[], int]
    drop_caches: Callable[[], None] = lambda: None


@dataclass
class WeightsPath:
    """A policy whose engine holds its own copy of the weights, loaded from ``path`` (vLLM)."""

    path: str


@runtime_checkable
class TrainablePolicy(Protocol):
    """A policy a learner can train: its tokenizer, where its weights live, how to update them."""

    name: str
    tokenizer: Any
    version: int

    def weights(self) -> LocalWeights | WeightsPath:
        ...

    async def update_weights(self, state_dict: Mapping[str, Any] | None = None) -> int:
        """Load ``state_dict`` (None: the weights changed in place) and return the new version."""
        ...

    async def generate(self, requests: Sequence[GenerationRequest]) -> list[list[Completion]]:
        ...

    async def close(self) -> None:
        ...
