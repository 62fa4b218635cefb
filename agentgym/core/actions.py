"""Parse a model's reply into tool calls.

Three forms are understood, tried in this order:

1. OpenAI ``tool_calls`` on an assistant message dict;
2. ``<tool_call>{"name": ..., "arguments": {...}}</tool_call>`` blocks, as emitted by
   Qwen/Hermes chat templates (an unclosed final block is accepted: generation often
   stops on the closing tag);
3. ``name[argument]`` for a known tool, the argument going to its first parameter.

Parsing never raises on model output (integers of any size, any nesting, lone
surrogates): problems come back as :class:`ActionError` with a message meant to be shown
to the model. Lone surrogates in strings become U+FFFD (they cannot be encoded), and
arguments nested deeper than :data:`MAX_DEPTH` are refused.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

_TOOL_CALL = re.compile(r"<tool_call>(.*?)(?:</tool_call>|$)", re.DOTALL)
#: Deepest nesting of lists and objects accepted in tool-call arguments.
MAX_DEPTH = 64
#: Largest integer (in bits) accepted in arguments given as objects: past ~4,300 digits
#: Python refuses to print one, so it would raise wherever it is logged or shown.
MAX_INT_BITS = 14_000


@dataclass
class ToolCall:
    """One requested call: tool name and raw (unvalidated) arguments."""

    name: str
    arguments: dict[str, Any] = field(default_factory=dict)
    id: str | None = None


@dataclass
class ActionError:
    """Why an action could not be understood; ``message`` is shown to the model."""

    message: str


def reply_text(action: Any) -> str:
    """The text content of an action given as a string or an assistant message dict."""
    if isinstance(action, str):
        return action
    if isinstance(action, dict):
        content = action.get("content")
        return content if isinstance(content, str) else ""
    return ""


def parse_tool_calls(action: Any, tools: dict[str, Any]) -> list[ToolCall] | ActionError | None:
    """Tool calls in ``action``; ``None`` when it contains no recognisable call.

    ``tools`` maps tool names to specs (only the names and first parameters are used).
    """
    if isinstance(action, dict) and action.get("tool_calls"):
        return _from_openai(action["tool_calls"])
    if not isinstance(action, (str, dict)):
        return ActionError(f"an action must be text or an assistant message, not {type(action).__name__}")
    text = reply_text(action)
    if "<tool_call>" in text:
        return _from_tags(text)
    return _from_brackets(text, tools)


def _from_openai(raw: Any) -> list[ToolCall] | ActionError:
    if not isinstance(raw, list):
        return ActionError("tool_calls must be a list")
    calls = []
    for item in raw:
        fn = item.get("function") if isinstance(item, dict) else None
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
            return ActionError("each tool call needs a function with a name")
        args = fn.get("arguments", {})
        if isinstance(args, str):
            args = _loads(args or "{}")
            if isinstance(args, ActionError):
                return args
        if not isinstance(args, dict):
            return ActionError(f"the arguments of {_clean(fn['name'])} must be a JSON object")
        problem = _sanitize(args)
        if problem:
            return problem
        calls.append(ToolCall(_clean(fn["name"]), args, item.get("id")))
    return calls


def _from_tags(text: str) -> list[ToolCall] | ActionError:
    calls = []
    for body in _TOOL_CALL.findall(text):
        obj = _loads(body.strip())
        if isinstance(obj, ActionError):
            return obj
        if not isinstance(obj, dict) or not isinstance(obj.get("name"), str):
            return ActionError('a <tool_call> must hold {"name": ..., "arguments": {...}}')
        args = obj.get("arguments", obj.get("parameters", {}))
        if isinstance(args, str):
            args = _loads(args or "{}")
            if isinstance(args, ActionError):
                return args
        if not isinstance(args, dict):
            return ActionError(f"the arguments of {_clean(obj['name'])} must be a JSON object")
        problem = _sanitize(args)
        if problem:
            return problem
        calls.append(ToolCall(_clean(obj["name"]), args))
    if not calls:
        return ActionError("found <tool_call> but no call inside it")
    return calls


_BRACKET_PATTERNS: dict[tuple[str, ...], re.Pattern[str]] = {}


def _bracket_pattern(names: tuple[str, ...]) -> re.Pattern[str]:
    """The compiled ``name[argument]`` pattern for a set of tool names (cached: steps are hot)."""
    pattern = _BRACKET_PATTERNS.get(names)
    if pattern is None:
        alternatives = "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True))
        pattern = _BRACKET_PATTERNS[names] = re.compile(rf"(?<![\w])({alternatives})\[(.*?)\]", re.DOTALL)
    return pattern


def _from_brackets(text: str, tools: dict[str, Any]) -> list[ToolCall] | None:
    if not tools or "[" not in text:
        return None
    calls = []
    for m in _bracket_pattern(tuple(tools)).finditer(text):
        name, arg = m.group(1), _clean(m.group(2).strip())
        params = getattr(tools[name], "param_order", ())
        args = {params[0]: arg} if params and arg else {}
        calls.append(ToolCall(name, args))
    return calls or None


def _loads(body: str) -> Any:
    try:
        return json.loads(body)
    except (ValueError, RecursionError) as exc:  # ValueError: bad JSON, and integers past Python's digit limit
        snippet = _clean(body[:80].replace("\n", " "))
        why = "it is nested too deeply" if isinstance(exc, RecursionError) else f"{exc.__class__.__name__}: {exc}"
        return ActionError(f"could not parse the tool call JSON ({_clean(why)[:200]}) in: {snippet}")


def _clean(text: Any) -> Any:
    """``text`` with lone surrogates (from ``\\ud800`` escapes) replaced by U+FFFD; non-strings as they are."""
    if not isinstance(text, str):
        return text
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return "".join("\ufffd" if "\ud800" <= c <= "\udfff" else c for c in text)


def _sanitize(args: dict) -> ActionError | None:
    """Clean the strings of parsed arguments in place; refuse nesting deeper than MAX_DEPTH
    and integers too large to print."""
    stack: list[tuple[Any, int]] = [(args, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_DEPTH:
            return ActionError(f"the tool call arguments are nested more than {MAX_DEPTH} levels deep")
        if isinstance(item, int) and item.bit_length() > MAX_INT_BITS:
            return ActionError("an integer in the tool call arguments has more than 4,200 digits")
        if isinstance(item, dict):
            for key in list(item):
                value = item[key]
                clean_key = _clean(key)
                if clean_key is not key:
                    del item[key]
                item[clean_key] = _clean(value)
                if isinstance(value, (dict, list, int)):
                    stack.append((value, depth + 1))
        elif isinstance(item, list):
            for i, value in enumerate(item):
                item[i] = _clean(value)
                if isinstance(value, (dict, list, int)):
                    stack.append((value, depth + 1))
    return None
