"""Parse a model's reply into tool calls.

Three forms are understood, tried in this order:

1. OpenAI ``tool_calls`` on an assistant message dict;
2. ``<tool_call>{"name": ..., "arguments": {...}}</tool_call>`` blocks, as emitted by
   Qwen/Hermes chat templates (an unclosed final block is accepted: generation often
   stops on the closing tag);
3. ``name[argument]`` for a known tool, the argument going to its first parameter (one pair of
   quotes around it is dropped: ``name["a b"]`` is ``name[a b]``).

Parsing never raises on model output (integers of any size, any nesting, lone
surrogates): problems come back as :class:`ActionError` with a message meant to be shown
to the model. Lone surrogates in strings become U+FFFD (they cannot be encoded), and
arguments nested deeper than :data:`MAX_DEPTH` are refused.

:func:`reply_message` turns a reply's text into the assistant message an environment
steps with: tool calls found in the text become OpenAI ``tool_calls`` with ids
(``call_<turn>_<i>``: deterministic, unique within an episode), so the rollout engine and
the environment agree on which calls were made and every tool result can name its call.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from agentgym.core.protocol import Message, assistant_message

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


ToolParams = Mapping[str, Sequence[str]]
"""Tool name -> its parameter names in order (``name[arg]`` fills the first one)."""


def tool_params(schemas: Sequence[dict[str, Any]] | None) -> dict[str, tuple[str, ...]]:
    """:data:`ToolParams` from OpenAI tool schemas (properties keep their declared order)."""
    out: dict[str, tuple[str, ...]] = {}
    for schema in schemas or ():
        fn = schema.get("function", schema) if isinstance(schema, dict) else {}
        name = fn.get("name")
        if isinstance(name, str):
            out[name] = tuple(((fn.get("parameters") or {}).get("properties") or {}).keys())
    return out


def openai_calls(calls: Sequence[ToolCall], turn: int) -> list[dict[str, Any]]:
    """OpenAI ``tool_calls`` entries for ``calls``; calls without an id get ``call_<turn>_<i>``."""
    return [
        {"id": c.id or f"call_{turn}_{i}", "type": "function",
         "function": {"name": c.name, "arguments": json.dumps(c.arguments, ensure_ascii=False)}}
        for i, c in enumerate(calls)
    ]


def reply_message(text: str, params: ToolParams, turn: int) -> Message:
    """The assistant message for a text reply: tool calls in ``<tool_call>`` blocks or ``name[arg]``
    form become ``tool_calls`` with ids (``<tool_call>`` blocks leave the content); a reply with no
    parseable call, or a malformed one, stays content only (the env explains what was wrong)."""
    return read_reply(text, params, turn)[0]


def read_reply(text: str, params: ToolParams, turn: int) -> tuple[Message, list[ToolCall] | ActionError | None]:
    """:func:`reply_message` and what parsing the text found (calls, an error, or None)."""
    calls = parse_text(text, params)
    if not isinstance(calls, list):
        return {"role": "assistant", "content": text}, calls
    content = text[: text.find("<tool_call>")].strip() if "<tool_call>" in text else text
    return assistant_message(content, openai_calls(calls, turn)), calls


def parse_text(text: str, params: ToolParams) -> list[ToolCall] | ActionError | None:
    """Tool calls written in a reply's text (``<tool_call>`` blocks, then ``name[arg]``); None if none."""
    if "<tool_call>" in text:
        return _from_tags(text)
    return _from_brackets(text, params)


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
        raw = action["tool_calls"]
        if not isinstance(raw, list):
            return ActionError("tool_calls must be a list")
        calls = [openai_call(item) for item in raw]
        return next((c for c in calls if isinstance(c, ActionError)), calls)  # type: ignore[return-value]
    if not isinstance(action, (str, dict)):
        return ActionError(f"an action must be text or an assistant message, not {type(action).__name__}")
    return parse_text(reply_text(action), {name: _param_order(spec) for name, spec in tools.items()})


def _param_order(spec: Any) -> Sequence[str]:
    """A tool's parameter names in order, from a spec or given as a sequence (else none)."""
    order = getattr(spec, "param_order", spec)
    return tuple(order) if isinstance(order, (tuple, list)) else ()


def openai_call(item: Any) -> ToolCall | ActionError:
    """One OpenAI ``tool_calls`` entry (``{"id", "function": {"name", "arguments"}}``) as a call."""
    fn = item.get("function") if isinstance(item, dict) else None
    if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
        return ActionError("each tool call needs a function with a name")
    args = _arguments(fn["name"], fn.get("arguments", {}))
    if isinstance(args, ActionError):
        return args
    call_id = item.get("id")
    return ToolCall(_clean(fn["name"]), args, call_id if isinstance(call_id, str) else None)


def _from_tags(text: str) -> list[ToolCall] | ActionError:
    calls = []
    for body in _TOOL_CALL.findall(text):
        obj = _loads(body.strip())
        if isinstance(obj, ActionError):
            return obj
        if not isinstance(obj, dict) or not isinstance(obj.get("name"), str):
            return ActionError('a <tool_call> must hold {"name": ..., "arguments": {...}}')
        args = _arguments(obj["name"], obj.get("arguments", obj.get("parameters", {})))
        if isinstance(args, ActionError):
            return args
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


def _from_brackets(text: str, tools: ToolParams) -> list[ToolCall] | None:
    if not tools or "[" not in text:
        return None
    calls = []
    for m in _bracket_pattern(tuple(tools)).finditer(text):
        name, arg = m.group(1), _clean(m.group(2).strip())
        if len(arg) >= 2 and arg[0] == arg[-1] and arg[0] in "\"'":  # move["up"] means move[up]
            arg = arg[1:-1]
        params = tools[name]
        args = {params[0]: arg} if params and arg else {}
        calls.append(ToolCall(name, args))
    return calls or None


def _arguments(name: str, args: Any) -> dict[str, Any] | ActionError:
    """A call's arguments as a dict (given as one, or as a JSON string)."""
    if isinstance(args, str):
        args = _loads(args or "{}")
        if isinstance(args, ActionError):
            return args
    if not isinstance(args, dict):
        return ActionError(f"the arguments of {_clean(name)} must be a JSON object")
    return _sanitize(args) or args


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
