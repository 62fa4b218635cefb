"""Incremental chat rendering for token-in/token-out multi-turn rollouts.

A multi-turn episode is one growing token sequence::

    initial prompt | sampled ids (turn 1) | closing ids | observation ids + generation prompt | sampled ids ...

The sampled ids are appended exactly as the policy produced them (never re-tokenized); everything
else comes from the tokenizer's chat template. Observation ids are the *difference* between
rendering the conversation before and after the new messages, which is only meaningful when the
template is prefix-stable: rendering turns 1..k must be a prefix of rendering turns 1..k+1.
Templates that rewrite history (e.g. ones that drop the reasoning of past assistant turns) break
that; :class:`ChatRenderer` detects it and raises :class:`PrefixBroken`, and
:class:`Conversation` falls back to re-rendering from scratch and records that it did.

Typical use by a rollout engine::

    renderer = ChatRenderer(policy.tokenizer)
    conv = renderer.conversation(first_messages, tools)     # conv.ids: prompt + generation prompt
    completion = ...generate(prompt_ids=conv.ids)...
    conv.add_assistant(completion.token_ids)                 # mask 1 on sampled ids
    conv.add_observation([{"role": "user", "content": obs}]) # mask 0, ends with generation prompt
    conv.ids, conv.mask, conv.prefix_broken
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Sequence

from agentgym.policy.base import GenerationRequest, Message
from agentgym.policy.templates import TemplateRenderer

_SENTINEL = "AGENTGYMSENTINEL"


#: The user message a window of the conversation opens with (:meth:`ChatRenderer.window`).
WINDOW_USER: Message = {"role": "user", "content": "Go on."}

log = logging.getLogger(__name__)


class PrefixBroken(Exception):
    """The chat template is not prefix-stable here: earlier turns render differently later."""


class ChatRenderer:
    """Renders chat messages to token ids with a tokenizer's chat template, turn by turn.

    ``tokenizer`` is a transformers tokenizer with a chat template (``chat_template`` overrides it).
    Text is rendered by the template and encoded without adding special tokens, as vLLM does.
    """

    VALIDATE_CALLS = 8
    SPOT_CHECK_EVERY = 64

    def __init__(self, tokenizer: Any, chat_template: str | None = None):
        self.tokenizer = tokenizer
        self.chat_template = chat_template
        self.templates = TemplateRenderer(tokenizer, chat_template)
        self._fast_path = True  # off for good once a validation finds a difference
        self._validated = 0
        self._windowed = True  # the same, for rendering a window of the conversation
        self._windows_checked = [0, 0]  # validations of windows as long as the history, and shorter
        self._window_calls = 0
        self._openings: dict[str, str] = {}
        self._head_reuse = True  # the same, for the system message's ids in first prompts
        self._heads_checked = 0
        self._heads: dict[str, tuple[str, list[int]]] = {}

    def render_text(
        self, messages: Sequence[Message], tools: list[dict] | None = None, add_generation_prompt: bool = False
    ) -> str:
        """The conversation as the template writes it (:meth:`TemplateRenderer.render_text`: tools
        reach the model even when the template drops them)."""
        return self.templates.render_text(messages, tools, add_generation_prompt)

    @property
    def template_drops_tools(self) -> bool:
        """Whether the chat template leaves tool schemas out (see :class:`TemplateRenderer`)."""
        return self.templates.template_drops_tools

    @property
    def _name(self) -> str:
        """The tokenizer's model, for log lines."""
        return getattr(self.tokenizer, "name_or_path", "") or type(self.tokenizer).__name__

    def encode(self, text: str) -> list[int]:
        """``text``'s ids, without special tokens added (the template wrote them).

        A fast tokenizer is asked directly (its Rust backend), which gives the ids that
        ``tokenizer(text)`` gives at half the cost, a cost paid on every turn of every episode;
        only while the backend has no truncation or padding set (``tokenizer(..., truncation=True)``
        elsewhere leaves it on) and splits special tokens as the tokenizer says.
        """
        backend = getattr(self.tokenizer, "backend_tokenizer", None)
        if (backend is not None and backend.truncation is None and backend.padding is None
                and getattr(backend, "encode_special_tokens", False)
                == bool(getattr(self.tokenizer, "split_special_tokens", False))):
            return backend.encode(text, add_special_tokens=False).ids
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def render(
        self, messages: Sequence[Message], tools: list[dict] | None = None, add_generation_prompt: bool = False
    ) -> list[int]:
        """Token ids of the whole conversation."""
        return self.encode(self.render_text(messages, tools, add_generation_prompt))

    def initial(self, messages: Sequence[Message], tools: list[dict] | None = None) -> list[int]:
        """The first prompt: the messages followed by the generation prompt.

        Every episode of an environment opens with the same system message (tool schemas
        included, often thousands of characters): where the prompt continues after it at a
        special token, the system message's ids are kept from the last episode and only the rest
        is tokenized (validated like :meth:`append_observation`'s shortcuts).
        """
        text = self.render_text(messages, tools, add_generation_prompt=True)
        if not (self._head_reuse and messages and messages[0].get("role") == "system"):
            return self.encode(text)
        head = self._heads.get(key := repr((messages[0], tools)))
        if head is None:
            if len(self._heads) >= 64:
                self._heads.clear()
            head_text = self.render_text(messages[:1], tools)
            head = self._heads[key] = (head_text, self.encode(head_text))
        head_text, head_ids = head
        rest = text[len(head_text):]
        if not (text.startswith(head_text) and (head_text.endswith(self.special_tokens)
                                                 or rest.startswith(self.special_tokens))):
            return self.encode(text)
        ids = head_ids + self.encode(rest)
        if self._heads_checked < self.VALIDATE_CALLS:
            full = self.encode(text)
            if full != ids:
                self._head_reuse = False
                return full
            self._heads_checked += 1
        return ids

    def prompt_of(self, request: GenerationRequest) -> list[int]:
        """A request's prompt ids: its token ids as given, or its messages rendered."""
        if request.prompt_ids is not None:
            return list(request.prompt_ids)
        if request.messages is not None:
            return self.initial(request.messages, request.tools)
        raise ValueError("a GenerationRequest needs messages or prompt_ids")

    @cached_property
    def turn_suffix(self) -> list[int]:
        """The ids the template puts after an assistant message's content (e.g. ``<|im_end|>\\n``)."""
        messages = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": _SENTINEL}]
        text = self.render_text(messages)
        at = text.rfind(_SENTINEL)
        if at < 0:
            raise PrefixBroken("the chat template does not render assistant content verbatim")
        return self.encode(text[at + len(_SENTINEL):])

    def close_turn(self, sampled_ids: Sequence[int]) -> list[int]:
        """Ids to append after ``sampled_ids`` so the assistant turn ends as the template ends it.

        When the policy stopped on the end-of-turn token only the rest of the suffix (e.g. the
        newline) is added; when it hit ``max_tokens`` the whole suffix is.
        """
        suffix = self.turn_suffix
        tail = list(sampled_ids[-len(suffix):]) if suffix else []
        for k in range(min(len(suffix), len(tail)), 0, -1):
            if tail[len(tail) - k:] == suffix[:k]:
                return suffix[k:]
        return list(suffix)

    def append_observation(
        self,
        messages_so_far: Sequence[Message],
        new_messages: Sequence[Message],
        tools: list[dict] | None = None,
        sampled_ids: Sequence[int] | None = None,
    ) -> list[int]:
        """Ids for ``new_messages`` plus the next generation prompt.

        ``messages_so_far`` ends with the assistant message just sampled. With ``sampled_ids``
        (the assistant's exact ids) the result starts with :meth:`close_turn`, so it can be
        appended directly after them; without, it starts right after the template's end of turn.
        Raises :class:`PrefixBroken` when the template renders the earlier turns differently
        once the new messages are added.

        Two shortcuts keep a turn's cost small and from growing with the episode, each checked
        against the slow path (the whole conversation rendered and tokenized before and after)
        on the first :attr:`VALIDATE_CALLS` calls that take it; any difference turns it off for
        this renderer. Only the new text is tokenized when the old text ends, or the new text
        starts, at a special token (tokenizers split there before anything else, so encoding
        the two parts apart gives the same ids). And only a window of the conversation is
        rendered (:meth:`window`): templates render a message from the message itself and its
        neighbours, so the new messages come out the same after the window as after the whole
        history, and the window's opening renders the same for every turn (it is rendered once).
        Past validation, one window call in :attr:`SPOT_CHECK_EVERY` is still checked.
        """
        closing = self.close_turn(sampled_ids) if sampled_ids is not None else []
        if self._fast_path:
            window = self.window(messages_so_far) if self._windowed else None
            added = None
            window_failed = False
            if window is not None:
                try:
                    added = self._append_by_text(window, new_messages, tools,
                                                 self._opening_prompt(window[:-1], tools))
                except Exception:  # noqa: BLE001 - the whole conversation decides (below) whose fault it is
                    window_failed = True
                if added is not None and self._should_check_window(len(window) < len(messages_so_far)):
                    slow = self._checked(messages_so_far, new_messages, tools)
                    if slow != added:
                        self._windowed = False
                        log.info("the chat template of %s renders new messages differently after a window of "
                                 "the conversation: whole conversations are rendered from now on", self._name)
                        return closing + slow
            if added is None and self._fast_path:
                added = self._append_by_text(messages_so_far, new_messages, tools)
                if window_failed:  # the whole conversation renders: the template needs more than a window
                    self._windowed = False
                if added is not None and self._validated < self.VALIDATE_CALLS:
                    slow = self._checked(messages_so_far, new_messages, tools)
                    if slow != added:
                        self._fast_path = False
                        return closing + slow
                    self._validated += 1
            if added is not None:
                return closing + added
        return closing + self._append_by_tokens(messages_so_far, new_messages, tools)

    def _should_check_window(self, shortened: bool) -> bool:
        """Validate the first calls of each kind (the window as long as the history, only its user
        message stood in for; a shorter one), then one call in :attr:`SPOT_CHECK_EVERY`."""
        self._window_calls += 1
        spot = self._window_calls % self.SPOT_CHECK_EVERY == 0
        if self._windows_checked[shortened] < self.VALIDATE_CALLS or spot:
            self._windows_checked[shortened] += 1
            return True
        return False

    def _opening_prompt(self, opening: list[Message], tools: list[dict] | None) -> str:
        """The window's opening and the generation prompt, rendered once per system message and tools."""
        key = repr((opening, tools))
        text = self._openings.get(key)
        if text is None:
            if len(self._openings) >= 256:
                self._openings.clear()
            text = self._openings[key] = self.render_text(opening, tools, add_generation_prompt=True)
        return text

    def _checked(self, messages_so_far: Sequence[Message], new_messages: Sequence[Message],
                 tools: list[dict] | None) -> list[int]:
        """The slow path's answer while a shortcut is validated; a template that breaks the prefix
        property turns the shortcuts off before :class:`PrefixBroken` propagates."""
        try:
            return self._append_by_tokens(messages_so_far, new_messages, tools)
        except PrefixBroken:
            self._fast_path = False
            raise

    @staticmethod
    def window(messages: Sequence[Message]) -> list[Message] | None:
        """The part of a conversation that decides how the messages after it render: its system
        message, a stand-in user message (the same every turn, so the opening renders once), and
        the last assistant message on. None without an assistant message."""
        last = _last_assistant(messages)
        if last is None:
            return None
        head = [messages[0]] if last > 0 and messages[0].get("role") == "system" else []
        return [*head, WINDOW_USER, *messages[last:]]

    def _append_by_tokens(self, messages_so_far: Sequence[Message], new_messages: Sequence[Message],
                          tools: list[dict] | None) -> list[int]:
        """Render and tokenize the whole conversation before and after; return the difference."""
        before = self.render(messages_so_far, tools)
        after = self.render([*messages_so_far, *new_messages], tools, add_generation_prompt=True)
        if after[: len(before)] != before:
            raise PrefixBroken(_first_difference(before, after, self.tokenizer))
        last = _last_assistant(messages_so_far)
        if last is not None:
            prompt = self.render(messages_so_far[:last], tools, add_generation_prompt=True)
            if before[: len(prompt)] != prompt:
                raise PrefixBroken(_first_difference(prompt, before, self.tokenizer))
        return after[len(before):]

    def _append_by_text(self, messages_so_far: Sequence[Message], new_messages: Sequence[Message],
                        tools: list[dict] | None, prompt: str | None = None) -> list[int] | None:
        """The same difference from text, tokenizing only the new part; None when not safe.

        ``prompt``: the conversation before its last assistant message with the generation prompt,
        when already rendered (the text the reply must continue)."""
        before = self.render_text(messages_so_far, tools)
        after = self.render_text([*messages_so_far, *new_messages], tools, add_generation_prompt=True)
        if not after.startswith(before):
            return None  # the token path raises PrefixBroken with the exact place
        last = _last_assistant(messages_so_far)
        if last is not None and not before.startswith(
                prompt if prompt is not None else
                self.render_text(messages_so_far[:last], tools, add_generation_prompt=True)):
            return None
        new = after[len(before):]
        if not (before.endswith(self.special_tokens) or new.startswith(self.special_tokens)):
            return None
        return self.encode(new)

    @cached_property
    def special_tokens(self) -> tuple[str, ...]:
        """Texts of the tokenizer's special and added tokens (split off before any merging)."""
        texts = set(getattr(self.tokenizer, "all_special_tokens", []) or [])
        try:
            texts |= set(self.tokenizer.get_added_vocab())
        except (AttributeError, NotImplementedError):
            pass
        return tuple(sorted((t for t in texts if t), key=len, reverse=True))

    def conversation(self, messages: Sequence[Message], tools: list[dict] | None = None, *,
                     on_broken: str = "rerender") -> "Conversation":
        """A :class:`Conversation` starting from ``messages`` (``on_broken``: "rerender" or "raise")."""
        if on_broken not in ("rerender", "raise"):
            raise ValueError("on_broken must be 'rerender' or 'raise'")
        conv = Conversation(self, copy.deepcopy(list(messages)), tools, on_broken)
        conv.ids = self.initial(messages, tools)
        conv.mask = [0] * len(conv.ids)
        return conv


def _last_assistant(messages: Sequence[Message]) -> int | None:
    return max((i for i, m in enumerate(messages) if m.get("role") == "assistant"), default=None)


def _first_difference(a: list[int], b: list[int], tokenizer: Any) -> str:
    i = next((j for j, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
    return (
        f"chat template is not prefix-stable at token {i}: "
        f"{tokenizer.decode(a[max(0, i - 8): i + 8])!r} became {tokenizer.decode(b[max(0, i - 8): i + 8])!r}"
    )


@dataclass
class Segment:
    """A token sequence the model saw as one context, with its loss mask (1 = sampled)."""

    ids: list[int] = field(default_factory=list)
    mask: list[int] = field(default_factory=list)


@dataclass
class Conversation:
    """One episode's token sequence, built turn by turn; sampled ids carry mask 1, all else 0.

    When the template breaks the prefix property (and ``on_broken == "rerender"``) the current
    sequence is closed into :attr:`segments`, the next prompt is rendered from scratch, and
    :attr:`prefix_broken` is set: the trajectory is then several contexts, not one.
    """

    renderer: ChatRenderer
    messages: list[Message]
    tools: list[dict] | None = None
    on_broken: str = "rerender"
    ids: list[int] = field(default_factory=list)
    mask: list[int] = field(default_factory=list)
    segments: list[Segment] = field(default_factory=list)
    prefix_broken: bool = False
    _last_sampled: list[int] | None = None

    def add_assistant(self, sampled_ids: Sequence[int], text: str | None = None,
                      message: Message | None = None) -> None:
        """Append the policy's sampled ids exactly; the message defaults to their decoded text."""
        sampled = list(sampled_ids)
        if message is None:
            if text is None:
                text = self.renderer.tokenizer.decode(sampled, skip_special_tokens=True)
            message = {"role": "assistant", "content": text}
        self.messages.append(message)
        self.ids += sampled
        self.mask += [1] * len(sampled)
        self._last_sampled = sampled

    def add_observation(self, new_messages: Sequence[Message]) -> list[int]:
        """Append the observation messages and the next generation prompt; returns the ids added."""
        try:
            added = self.renderer.append_observation(
                self.messages, new_messages, self.tools, sampled_ids=self._last_sampled
            )
        except PrefixBroken:
            if self.on_broken == "raise":
                raise
            self.segments.append(Segment(self.ids, self.mask))
            self.prefix_broken = True
            self.messages.extend(copy.deepcopy(list(new_messages)))
            self.ids = self.renderer.initial(self.messages, self.tools)
            self.mask = [0] * len(self.ids)
            self._last_sampled = None
            return list(self.ids)
        self.messages.extend(copy.deepcopy(list(new_messages)))
        self.ids += added
        self.mask += [0] * len(added)
        self._last_sampled = None
        return added

    def all_segments(self) -> list[Segment]:
        """Closed segments followed by the current one."""
        return [*self.segments, Segment(self.ids, self.mask)]
