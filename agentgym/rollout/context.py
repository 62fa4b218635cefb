"""What the model sees each turn: the one place that builds the policy's context.

A :class:`ContextBuilder` turns an environment's first observation into the opening
messages (system prompt, task, optional guidance) and, for each turn, into a
:class:`~agentgym.policy.base.GenerationRequest`. It keeps two views of the episode:

* ``messages``: the chat transcript, valid OpenAI wire format (what text-only policies such
  as an OpenAI-compatible server receive): each assistant message carries the tool calls it
  made, with ids, and each call is answered by its own ``tool`` message;
* ``token_ids`` / ``loss_mask`` / ``logprobs``: token-in/token-out bookkeeping for
  policies that expose a tokenizer through a chat renderer. Sampled ids are appended
  exactly as sampled (mask 1, behaviour logprobs); prompt, observation and chat-template
  ids come from the renderer (mask 0), tool messages through the chat template's tool
  role. Nothing is ever re-tokenized, so ``token_ids`` at the end of the last turn is
  exactly what the policy saw plus what it sampled.

The assistant message an environment steps with is built here too (:meth:`EpisodeContext.
add_completion`): the policy's parsed tool calls when it parsed them, else the calls written
in its text (:func:`agentgym.core.actions.reply_message`), ids made up where the source had none.

Guidance (re-attempting a task with a hint in the prompt) hooks in through
:class:`Guidance`: extra text added to the first user message, or an extra message after
it. It is recorded in ``Trajectory.metadata["guidance"]`` so the learner can tell guided
episodes apart.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field, replace
from typing import Any, Literal, Protocol, Sequence, runtime_checkable

from agentgym.core.actions import reply_message, tool_params
from agentgym.policy.base import Completion, GenerationRequest, Message, SamplingParams

GuidanceMode = Literal["prepend", "append", "message"]


@dataclass
class Guidance:
    """Extra text shown to the model at the start of an episode.

    ``mode``: ``"append"`` adds ``text`` after the first user message's content,
    ``"prepend"`` before it, ``"message"`` adds a separate ``role`` message after it.
    ``kind`` says where it came from (``"hint"``, ``"plan"``, ``"feedback"``...).
    ``every_turn``: the engine also appends the environment's current ``hint()`` to each
    later observation (step-level scaffolding: a small model that cannot carry out a plan
    from the first prompt can still follow the next move shown at each turn).
    """

    text: str
    mode: GuidanceMode = "append"
    role: str = "user"
    kind: str = "hint"
    separator: str = "\n\n"
    every_turn: bool = False
    turn_header: str = "Hint:"

    def record(self) -> dict[str, Any]:
        return {"text": self.text, "mode": self.mode, "role": self.role, "kind": self.kind,
                "every_turn": self.every_turn}

    def with_turn_hint(self, messages: list[Message], hint: str | None) -> list[Message]:
        """The env's answer with its current hint appended to the last message (when there is one)."""
        if not self.every_turn or not hint or not messages:
            return messages
        content = messages[-1].get("content") or ""
        return [*messages[:-1], {**messages[-1], "content": f"{content}{self.separator}{self.turn_header} {hint}"}]


@runtime_checkable
class TokenRenderer(Protocol):
    """Incremental chat rendering to token ids (see :class:`agentgym.policy.chat.ChatRenderer`).

    ``initial(messages, tools)`` renders a conversation followed by the assistant
    generation prompt. ``append_observation(messages_so_far, new_messages, tools,
    sampled_ids)`` returns the ids that follow an assistant turn whose exact ids were
    ``sampled_ids``: closing template ids when the sample did not end with them, the new
    messages, the next generation prompt. It raises when the template is not prefix-stable
    (rendering earlier turns differently once new ones are added).
    """

    def initial(self, messages: Sequence[Message], tools: list[dict] | None = None) -> list[int]:
        ...

    def append_observation(
        self,
        messages_so_far: Sequence[Message],
        new_messages: Sequence[Message],
        tools: list[dict] | None = None,
        sampled_ids: Sequence[int] | None = None,
    ) -> list[int]:
        ...


class ContextOverflow(Exception):
    """The context has no room left for another turn (the episode ends as truncated)."""


@dataclass
class EpisodeContext:
    """The growing context of one episode (see the module docstring)."""

    messages: list[Message]
    tools: list[dict] | None
    renderer: TokenRenderer | None = None
    max_context_tokens: int | None = None
    min_generation_tokens: int = 1
    #: The environment's tools (name -> parameters), whether or not the prompt shows them.
    tool_params: dict[str, tuple[str, ...]] = field(default_factory=dict)
    token_ids: list[int] = field(default_factory=list)
    loss_mask: list[int] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)
    turns: int = 0

    @property
    def token_level(self) -> bool:
        return self.renderer is not None

    def _append(self, ids: Sequence[int], mask: int, logprobs: Sequence[float] | None = None) -> None:
        self.token_ids.extend(ids)
        self.loss_mask.extend([mask] * len(ids))
        self.logprobs.extend(logprobs if logprobs is not None else [0.0] * len(ids))

    def start(self) -> None:
        """Render the opening messages (token-level policies)."""
        if self.renderer is not None:
            self._append(self.renderer.initial(self.messages, self.tools), 0)
            self._check_room()

    def room(self) -> int | None:
        """How many tokens may still be generated, or None when unbounded."""
        if self.max_context_tokens is None or not self.token_level:
            return None
        return self.max_context_tokens - len(self.token_ids)

    def _check_room(self) -> None:
        room = self.room()
        if room is not None and room < self.min_generation_tokens:
            raise ContextOverflow(
                f"context overflow: {len(self.token_ids)} tokens, limit {self.max_context_tokens}"
            )

    def request(self, params: SamplingParams) -> GenerationRequest:
        """The request for the next turn; ``max_tokens`` is capped by the room left."""
        room = self.room()
        if room is not None and room < params.max_tokens:
            params = replace(params, max_tokens=room)
        if self.token_level:
            return GenerationRequest(prompt_ids=list(self.token_ids), tools=self.tools, params=params)
        return GenerationRequest(messages=copy.deepcopy(self.messages), tools=self.tools, params=params)

    def add_completion(self, completion: Completion) -> Message:
        """Record the sampled reply; returns the assistant message the environment steps with.

        The transcript keeps it with its ``tool_calls`` (valid wire format), except for a
        token-level policy whose calls were read from its text: there the text alone is what
        was sampled, and a fresh render of the transcript must give back the sampled tokens.
        """
        self.turns += 1
        if completion.tool_calls:
            calls = [{**c, "id": c.get("id") or f"call_{self.turns}_{i}"} for i, c in enumerate(completion.tool_calls)]
            message: Message = {"role": "assistant", "content": completion.text or None, "tool_calls": calls}
            shown = message
        else:
            message = reply_message(completion.text, self.tool_params, self.turns)
            shown = {"role": "assistant", "content": completion.text} if self.token_level else message
        if self.token_level:
            ids = list(completion.token_ids)
            lps = list(completion.logprobs)
            if len(lps) != len(ids):
                raise ValueError(f"the policy returned {len(ids)} token ids but {len(lps)} logprobs")
            self._last_completion_ids = ids
            self._append(ids, 1, lps)
        self.messages.append(shown)
        return message

    def add_observation(self, observation: list[Message]) -> None:
        """Record the environment's answer (its messages); raises :class:`ContextOverflow` when it
        does not fit.

        On overflow the messages join the transcript but not ``token_ids``: the tokens stay
        exactly what the policy saw and sampled.
        """
        new = [dict(m) for m in observation]
        if not self.token_level:
            self.messages.extend(new)
            return
        try:
            ids = self.renderer.append_observation(self.messages, new, self.tools, self._last_completion_ids)
            fresh = False
        except Exception as exc:  # the template is not prefix-stable: start a new segment
            if type(exc).__name__ != "PrefixBroken":
                raise
            ids, fresh = self.renderer.initial([*self.messages, *new], self.tools), True
        self.messages.extend(new)
        total = len(ids) if fresh else len(self.token_ids) + len(ids)
        if self.max_context_tokens is not None and self.max_context_tokens - total < self.min_generation_tokens:
            raise ContextOverflow(f"context overflow: {total} tokens, limit {self.max_context_tokens}")
        if fresh:
            # Earlier turns no longer render as the policy saw them: keep them as a closed
            # segment; the main token fields hold the context of the latest turns.
            self.metadata["prefix_broken"] = True
            self.metadata.setdefault("token_segments", []).append(
                {"token_ids": self.token_ids, "loss_mask": self.loss_mask, "logprobs": self.logprobs}
            )
            self.token_ids, self.loss_mask, self.logprobs = [], [], []
        self._append(ids, 0)

    def add_final_observation(self, observation: list[Message]) -> None:
        """The answer that ended the episode: transcript only (the policy never sees it)."""
        self.messages.extend(dict(m) for m in observation)


class ContextBuilder:
    """Builds each episode's :class:`EpisodeContext`; subclass or configure to change what the model sees.

    ``system_prompt`` replaces the environment's (e.g. to state the exact reply format);
    ``show_tools=False`` leaves the tool schemas out of the prompt (plain-text replies), while
    calls the model writes are still read against the environment's tools.
    """

    def __init__(
        self,
        *,
        max_context_tokens: int | None = 4096,
        include_system_prompt: bool = True,
        system_prompt: str | None = None,
        show_tools: bool = True,
        min_generation_tokens: int = 1,
    ):
        self.max_context_tokens = max_context_tokens
        self.include_system_prompt = include_system_prompt
        self.system_prompt = system_prompt
        self.show_tools = show_tools
        self.min_generation_tokens = min_generation_tokens

    def opening_messages(self, observation: Message, info: dict[str, Any]) -> list[Message]:
        """System prompt (if any) and the first observation."""
        messages: list[Message] = []
        system = self.system_prompt if self.system_prompt is not None else (info.get("system_prompt") or "")
        if self.include_system_prompt and system:
            messages.append({"role": "system", "content": system})
        messages.append(dict(observation))
        return messages

    def apply_guidance(self, messages: list[Message], guidance: Guidance) -> list[Message]:
        """The hook a guidance feature uses: add ``guidance`` to the opening messages."""
        first_user = next(i for i, m in enumerate(messages) if m.get("role") in ("user", "tool"))
        if guidance.mode == "message":
            messages.insert(first_user + 1, {"role": guidance.role, "content": guidance.text})
            return messages
        content = messages[first_user].get("content") or ""
        if guidance.mode == "prepend":
            content = guidance.text + guidance.separator + content
        else:
            content = content + guidance.separator + guidance.text
        messages[first_user] = {**messages[first_user], "content": content}
        return messages

    def start(
        self,
        observation: Message,
        info: dict[str, Any],
        *,
        renderer: TokenRenderer | None = None,
        guidance: Guidance | None = None,
    ) -> EpisodeContext:
        """A new episode's context, rendered and ready for the first request."""
        messages = self.opening_messages(observation, info)
        metadata: dict[str, Any] = {}
        unguided = None
        if guidance is not None and guidance.text:
            unguided = copy.deepcopy(messages)
            messages = self.apply_guidance(messages, guidance)
            metadata["guidance"] = guidance.record()
        ctx = EpisodeContext(
            messages=messages,
            tools=info.get("tools") if self.show_tools else None,
            renderer=renderer,
            max_context_tokens=self.max_context_tokens,
            min_generation_tokens=self.min_generation_tokens,
            tool_params=tool_params(info.get("tools")),
            metadata=metadata,
        )
        ctx.start()
        if unguided is not None and renderer is not None:
            # The first prompt as it would be without guidance: lets the learner train on the
            # unguided context (guidance "strip" mode, agentgym.train.offpolicy).
            ctx.metadata["unguided_prompt_ids"] = renderer.initial(unguided, ctx.tools)
        return ctx


def renderer_of(policy: Any) -> TokenRenderer | None:
    """The policy's chat renderer when it is token-level, else None (text-only policy).

    A policy is token-level when it exposes ``renderer`` or a ``tokenizer`` with a chat
    template (then a :class:`agentgym.policy.chat.ChatRenderer` is built on it).
    """
    renderer = getattr(policy, "renderer", None)
    if renderer is not None and isinstance(renderer, TokenRenderer):
        return renderer
    tokenizer = getattr(policy, "tokenizer", None)
    if tokenizer is not None and getattr(tokenizer, "chat_template", None):
        from agentgym.policy.chat import ChatRenderer

        return ChatRenderer(tokenizer)
    return None
