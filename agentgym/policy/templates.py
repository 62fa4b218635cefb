"""A conversation as the model's chat template writes it: tools for every model, at half the cost.

:class:`TemplateRenderer` is the text half of :class:`~agentgym.policy.chat.ChatRenderer`.

Tools for every model: a template that drops ``tools`` (SmolLM2's does; found with a sentinel
schema) gets the schemas written into the system prompt instead (docs/policy.md).

Half the cost: ``tokenizer.apply_chat_template`` runs the template in jinja's immutable sandbox,
which asks on every attribute access (``message.get``, ``loop.first``...) whether the attribute
is safe; that is most of a short render, and the rollout engine renders a few times per turn of
every episode. The answer depends only on the object's type and the attribute's name, so the
same template is compiled in a sandbox that remembers it, with the filters, globals, tests and
extensions of the environment transformers compiles it in, and rendered with the same variables
(the template's globals merged into them once, not on every render: 30 us becomes 20). It is
checked against ``apply_chat_template`` on its first :attr:`~TemplateRenderer.CHECK_FIRST`
renders and then one in :attr:`~TemplateRenderer.CHECK_EVERY`; a difference, or a transformers
without the pieces it builds on, leaves ``apply_chat_template`` doing every render.
"""

from __future__ import annotations

import json
import logging
from functools import cached_property
from typing import Any, Sequence

from jinja2.sandbox import ImmutableSandboxedEnvironment

from agentgym.policy.base import Message

log = logging.getLogger(__name__)

TOOLS_HEADER = "# Tools\n\nYou can call these tools (JSON schemas):\n<tools>"
TOOLS_FOOTER = (
    "</tools>\n\nTo call a tool, reply with <tool_call>{\"name\": \"TOOL\", \"arguments\": {...}}</tool_call>, "
    "or write TOOL[ARGUMENT] for a tool's first argument."
)
_SENTINEL_TOOL_NAME = "agentgym_sentinel_tool"
_SENTINEL_TOOL = {"type": "function", "function": {
    "name": _SENTINEL_TOOL_NAME, "description": "probe", "parameters": {"type": "object", "properties": {}}}}
_TOLD: set[str] = set()  # models whose dropped tools were logged (once per process)


def with_tools_in_system_prompt(messages: Sequence[Message], tools: list[dict]) -> list[Message]:
    """``messages`` with the tool schemas written into the system prompt (one is added when there is
    none): :data:`TOOLS_HEADER`, one JSON schema per line, :data:`TOOLS_FOOTER`. For chat templates
    that drop ``tools``; the format is documented in docs/policy.md."""
    block = "\n".join([TOOLS_HEADER, *(json.dumps(t, ensure_ascii=False) for t in tools), TOOLS_FOOTER])
    out = [dict(m) for m in messages]
    if out and out[0].get("role") == "system":
        content = out[0].get("content") or ""
        out[0]["content"] = f"{content}\n\n{block}" if content else block
    else:
        out.insert(0, {"role": "system", "content": block})
    return out


class TemplateRenderer:
    """Renders conversations with a tokenizer's chat template (``chat_template`` overrides it)."""

    CHECK_FIRST = 16
    CHECK_EVERY = 256

    def __init__(self, tokenizer: Any, chat_template: str | None = None):
        self.tokenizer = tokenizer
        self.chat_template = chat_template
        self._compiled: dict[str, Any] = {}  # template source -> compiled here (None: not available)
        self._fast = True
        self._renders = 0

    def render_text(self, messages: Sequence[Message], tools: list[dict] | None = None,
                    add_generation_prompt: bool = False) -> str:
        """The conversation as the template writes it; ``tools`` reach the model either way: through
        the template, or written into the system prompt when the template drops them
        (:attr:`template_drops_tools`, :func:`with_tools_in_system_prompt`)."""
        if tools and self.template_drops_tools:
            messages, tools = with_tools_in_system_prompt(messages, tools), None
        return self.render(messages, tools, add_generation_prompt)

    @cached_property
    def template_drops_tools(self) -> bool:
        """Whether the chat template leaves tool schemas out (SmolLM2's does): a conversation rendered
        with a sentinel tool must show its name. Logged once per model and process when it does."""
        probe = [{"role": "user", "content": "hi"}]
        try:
            shown = _SENTINEL_TOOL_NAME in self.render(probe, [_SENTINEL_TOOL], False)
        except Exception:  # noqa: BLE001 - a template that fails on tools cannot show them
            shown = False
        if not shown and self.name not in _TOLD:
            _TOLD.add(self.name)
            log.info("the chat template of %s ignores `tools`: tool schemas are written into the system "
                     "prompt instead (docs/policy.md, 'Tools for every model')", self.name)
        return not shown

    @property
    def name(self) -> str:
        """The tokenizer's model, for log lines."""
        return getattr(self.tokenizer, "name_or_path", "") or type(self.tokenizer).__name__

    def render(self, messages: Sequence[Message], tools: list[dict] | None,
               add_generation_prompt: bool) -> str:
        """The template's text for exactly these messages and tools (``content=None`` read as "")."""
        messages = _clean(messages)
        template = self._template(tools) if self._fast else None
        if template is None:
            return self.reference(messages, tools, add_generation_prompt)
        try:
            text = template.render(messages=messages, tools=tools or None, documents=None,
                                   add_generation_prompt=add_generation_prompt,
                                   **self.tokenizer.special_tokens_map)
        except Exception:  # noqa: BLE001 - the reference raises the error the caller should see, or renders
            expected = self.reference(messages, tools, add_generation_prompt)
            self._give_up("fails where apply_chat_template renders")
            return expected
        self._renders += 1
        if self._renders <= self.CHECK_FIRST or self._renders % self.CHECK_EVERY == 0:
            expected = self.reference(messages, tools, add_generation_prompt)
            if text != expected:
                self._give_up("renders differently")
                return expected
        return text

    def reference(self, messages: Sequence[Message], tools: list[dict] | None,
                  add_generation_prompt: bool) -> str:
        """The render by ``tokenizer.apply_chat_template``."""
        return self.tokenizer.apply_chat_template(_clean(messages), tools=tools or None,
                                                  chat_template=self.chat_template,
                                                  add_generation_prompt=add_generation_prompt, tokenize=False)

    def _template(self, tools: list[dict] | None) -> Any:
        source = self.tokenizer.get_chat_template(self.chat_template, tools or None)
        if source not in self._compiled:
            try:
                self._compiled[source] = _compile(source)
            except Exception:  # noqa: BLE001 - apply_chat_template reports a broken template itself
                self._compiled[source] = None
        return self._compiled[source]

    def _give_up(self, why: str) -> None:
        self._fast = False
        log.info("the chat template of %s %s in a remembering sandbox: apply_chat_template renders it "
                 "from now on", self.name, why)


def _clean(messages: Sequence[Message]) -> list[Message]:
    """Copies with ``content=None`` replaced by "" (many templates concatenate content)."""
    out = []
    for message in messages:
        message = dict(message)
        if message.get("content") is None:
            message["content"] = ""
        out.append(message)
    return out


class _RememberingSandbox(ImmutableSandboxedEnvironment):
    """jinja's immutable sandbox, with its verdict on each (type, attribute) asked once."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._verdicts: dict[tuple[type, str], bool] = {}

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        key = (type(obj), attr)
        verdict = self._verdicts.get(key)
        if verdict is None:
            verdict = self._verdicts[key] = super().is_safe_attribute(obj, attr, value)
        return verdict


class _Compiled:
    """A template compiled in a remembering sandbox, rendered as ``Template.render`` renders it but
    with the template's globals merged into the variables once, not on every render (a third of a
    short render: jinja copies them into each render's context and takes their keys again)."""

    def __init__(self, template: Any):
        self.template = template
        self.globals = dict(template.globals)

    def render(self, **variables: Any) -> str:
        template = self.template
        env = template.environment
        context = env.context_class(env, {**self.globals, **variables}, template.name, template.blocks)
        return env.concat(template.root_render_func(context))


def _compile(source: str) -> Any:
    """``source`` compiled as transformers compiles it, in a remembering sandbox; None if unavailable."""
    try:
        from transformers.utils.chat_template_utils import _compile_jinja_template
    except ImportError:
        return None
    env = _compile_jinja_template(source).environment
    if type(env) is not ImmutableSandboxedEnvironment:
        return None  # a transformers that renders differently: leave it to apply_chat_template
    fast = _RememberingSandbox(trim_blocks=env.trim_blocks, lstrip_blocks=env.lstrip_blocks,
                               keep_trailing_newline=env.keep_trailing_newline,
                               extensions=[type(ext) for ext in env.extensions.values()])
    fast.filters.update(env.filters)
    fast.globals.update(env.globals)
    fast.tests.update(env.tests)
    return _Compiled(fast.from_string(source))
