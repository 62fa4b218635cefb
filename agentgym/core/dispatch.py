"""How a :class:`~agentgym.TextEnv` answers one assistant reply.

:class:`ReplyDispatcher` is the part of ``TextEnv`` that turns a step's action into its
answer: it reads the reply as the rollout engine reads it, refuses what is not an action
(wrong type, too long, malformed ``tool_calls``), runs each tool call (or hands a reply
without calls to ``on_text``), counts invalid actions against the limit, and builds the
step's messages (one ``tool`` message per call, carrying its ``tool_call_id``) and its
``info``. Kept apart from the env class so the per-step path reads in one place.
"""

from __future__ import annotations

import threading
from typing import Any

from agentgym.core.actions import ActionError, ToolCall, openai_call, parse_text, read_reply, reply_text
from agentgym.core.hooks import HookRunner, is_async
from agentgym.core.protocol import StepResult, merge_messages
from agentgym.core.tools import ToolError, ToolSpec

_UNREAD = object()  # a reply's text not parsed for tool calls yet


class ReplyDispatcher(HookRunner):
    """Answers one step's action (see the module docstring); mixed into ``TextEnv``, whose
    ``tools``, limits, hooks (``on_text``, ``valid_actions``) and ``finish`` it uses."""

    tools: dict[str, ToolSpec]
    max_action_chars: int
    max_invalid_actions: int
    _own_hooks: frozenset[str]

    async def _astep(self, action: Any) -> StepResult:
        """One step. ``action`` is an assistant message or its text; text is read like the rollout
        engine reads it (:func:`~agentgym.core.actions.reply_message`). Calls in ``tool_calls`` are
        answered one tool message each; a message without tool calls goes to :meth:`on_text`."""
        self.turn += 1
        # this thread drives the step and none of its hooks is async: call them directly
        direct = self._driving_sync and self._driver == threading.get_ident()
        self._step_reward = 0.0
        self._terminated = False
        self._success = False
        self._end_info: dict[str, Any] = {}
        parsed: Any = _UNREAD
        raw_calls: Any = None
        if isinstance(action, str):  # read as the rollout engine reads a reply, parsed once
            text, parsed = action, parse_text(action, self._tool_params())
            if isinstance(parsed, list):
                raw_calls = read_reply(action, self._tool_params(), self.turn)[0]["tool_calls"]
        else:
            raw_calls = action.get("tool_calls") if isinstance(action, dict) else None
            text = reply_text(action)
        size = len(text) + _calls_size(raw_calls) if isinstance(raw_calls, list) else len(text)
        ids: list[str] | None = None
        if isinstance(raw_calls, list) and raw_calls:
            ids = [c.get("id") if isinstance(c, dict) and isinstance(c.get("id"), str) else f"call_{self.turn}_{i}"
                   for i, c in enumerate(raw_calls)]
        if not isinstance(action, (str, dict)):
            outputs, invalid = [("", f"Error: an action must be text or an assistant message, "
                                     f"not {type(action).__name__}.")], True
        elif size > self.max_action_chars:
            error = f"Error: the reply is {size} characters long; the limit is {self.max_action_chars}."
            outputs, invalid = [("", error)] * (len(ids) if ids else 1), True
        elif raw_calls is not None and not isinstance(raw_calls, list):
            outputs, invalid = [("", "Error: tool_calls must be a list.")], True
        elif ids:
            outputs, invalid = await self._run_calls([openai_call(c) for c in raw_calls], direct)
        else:
            outputs, invalid = await self._on_reply(text, parsed, direct)
        if invalid:
            self.invalid_actions += 1
            if self.invalid_actions > self.max_invalid_actions and not self._terminated:
                self.finish(0.0, False, reason="too many invalid actions")
                name, last = outputs[-1]
                outputs[-1] = (name, last + f"\nToo many invalid actions ({self.invalid_actions}); the episode is over.")
        terminated = self._terminated
        truncated = not terminated and self.turn >= self.max_turns
        info: dict[str, Any] = {"turn": self.turn, "invalid_action": invalid, "invalid_actions": self.invalid_actions}
        if terminated or truncated:
            self._done = True
            info["success"] = self._success if terminated else False
            if truncated:
                info["reason"] = "turn limit"
            info.update(self._end_info)
        elif "valid_actions" in self._own_hooks:
            fn = self.valid_actions
            valid = fn() if direct else await self._call(fn)
            if valid is not None:
                info["valid_actions"] = valid
        if ids:
            messages = [{"role": "tool", "tool_call_id": i, **({"name": n} if n else {}), "content": o}
                        for i, (n, o) in zip(ids, outputs)]
        else:
            content = outputs[0][1] if len(outputs) == 1 else "\n\n".join(f"[{n}] {o}" for n, o in outputs)
            messages = [{"role": "user", "content": content}]
        self._last_obs = messages[0] if not ids else merge_messages(messages)
        return StepResult(messages, self._step_reward, terminated, truncated, info)

    async def _on_reply(self, text: str, parsed: Any, direct: bool) -> tuple[list[tuple[str, str]], bool]:
        """A reply without tool calls: a call written in its text, else :meth:`on_text`."""
        calls = parse_text(text, self._tool_params()) if parsed is _UNREAD else parsed
        if calls is None:
            fn = self.on_text
            try:
                handled = (None if "on_text" not in self._own_hooks else fn(text) if direct
                           else await self._call(fn, text))
            except ToolError as exc:  # the env rejects the reply and says why
                handled = ActionError(str(exc))
            if isinstance(handled, str):
                return [("", handled)], False
            if handled is None:
                return [("", self._no_action_message())], True
            calls = handled
        if isinstance(calls, ActionError):
            return [("", f"Error: {calls.message}")], True
        return await self._run_calls(calls, direct)

    async def _run_calls(self, calls: list[ToolCall | ActionError], direct: bool) -> tuple[list[tuple[str, str]], bool]:
        """Each call's (tool name, output); whether any was invalid."""
        outputs, invalid = [], False
        for call in calls:
            if isinstance(call, ActionError):
                outputs.append(("", f"Error: {call.message}"))
                invalid = True
                continue
            if self._terminated:
                outputs.append((call.name, f"[{call.name}] skipped: the episode already ended."))
                continue
            spec = self.tools.get(call.name)
            if spec is None:
                known = ", ".join(self.tools) or "none"
                outputs.append((call.name, f"Error: unknown tool {call.name!r}; available tools: {known}."))
                invalid = True
                continue
            try:
                args = spec.validate(call.arguments)
                fn = getattr(self, spec.method_name)
                result = fn(**args) if direct else await self._call(fn, **args)
            except ValueError as exc:  # includes ToolError and argument validation
                outputs.append((call.name, f"Error in {call.name}: {exc}"))
                invalid = True
                continue
            outputs.append((call.name, str(result) if result is not None else ""))
        return outputs, invalid

    def _no_action_message(self) -> str:
        if self.tools:
            names = ", ".join(self.tools)
            first = next(iter(self.tools))
            return (
                "Error: no action found. Call one of the tools "
                f"({names}) as <tool_call>{{\"name\": ..., \"arguments\": {{...}}}}</tool_call>, "
                f"or as {first}[ARGUMENT]."
            )
        return "Error: no action found in the reply."

    def _tool_params(self) -> dict[str, tuple[str, ...]]:
        cached = self.__dict__.get("_params")
        if cached is None or cached[0] is not self.tools:  # cached: this runs on every step
            cached = self._params = (self.tools, {name: spec.param_order for name, spec in self.tools.items()})
        return cached[1]

    def _step_suspends(self) -> bool:
        """Whether a step awaits something (an async tool or hook): then it runs on the loop."""
        cached = self.__dict__.get("_suspends")
        if cached is None or cached[0] is not self.tools:
            hooks = (self.on_text, self.valid_actions)
            suspends = any(s.is_async for s in self.tools.values()) or any(map(is_async, hooks))
            cached = self._suspends = (self.tools, suspends)
        return cached[1]


def _calls_size(raw_calls: list) -> int:
    """Characters in a reply's raw tool calls. Calls that cannot be printed (integers past
    Python's digit limit, nesting past the recursion limit) count as nothing here: parsing
    them refuses them with a message for the model."""
    size = 0
    for call in raw_calls:
        try:
            size += len(str(call))
        except (ValueError, RecursionError):
            continue
    return size
