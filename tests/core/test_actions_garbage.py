"""Model output never raises in parsing: integers of any size, any nesting, lone surrogates."""

from __future__ import annotations

import json

import pytest

from agentgym.core.actions import MAX_DEPTH, ActionError, ToolCall, parse_tool_calls

TOOLS = {"act": object()}


def tag(body: str) -> str:
    return f"<tool_call>{body}</tool_call>"


@pytest.mark.parametrize("action", [
    tag('{"name": "act", "arguments": {"n": ' + "7" * 4301 + "}}"),
    tag('{"name": "act", "arguments": {"n": -' + "1" * 100_000 + "}}"),
    tag('{"name": "act", "arguments": "{\\"n\\": ' + "9" * 5000 + '}"}'),
    tag('{"a":' * 100_000 + "1" + "}" * 100_000),
    tag("[" * 50_000),
    tag('{"name": "act", "arguments": {"a": ' + "[" * (MAX_DEPTH + 5) + "]" * (MAX_DEPTH + 5) + "}}"),
    {"role": "assistant", "tool_calls": [{"function": {"name": "act", "arguments": '{"n": ' + "1" * 4400 + "}"}}]},
    {"role": "assistant", "tool_calls": [{"function": {"name": "act", "arguments": {"n": [10 ** 6000]}}}]},
])
def test_huge_integers_and_deep_nesting_are_action_errors(action):
    result = parse_tool_calls(action, TOOLS)
    assert isinstance(result, ActionError)
    str(result.message).encode("utf-8")  # printable and encodable


def test_deep_python_objects_are_refused_without_recursion():
    args: dict = {}
    inner = args
    for _ in range(100_000):
        inner["x"] = {}
        inner = inner["x"]
    result = parse_tool_calls({"role": "assistant", "tool_calls": [{"function": {"name": "act", "arguments": args}}]},
                              TOOLS)
    assert isinstance(result, ActionError) and "nested" in result.message


def test_lone_surrogates_become_replacement_characters():
    result = parse_tool_calls(tag('{"name": "act\\ud800", "arguments": {"k\\udfff": ["\\ud83d", {"v": "\\udc00"}]}}'),
                              TOOLS)
    assert isinstance(result, list) and len(result) == 1
    call = result[0]
    json.dumps(call.arguments, ensure_ascii=False).encode("utf-8")
    call.name.encode("utf-8")
    assert call.arguments == {"k\ufffd": ["\ufffd", {"v": "\ufffd"}]}
    # a proper pair is one character and is kept
    ok = parse_tool_calls(tag('{"name": "act", "arguments": {"s": "\\ud83d\\ude00"}}'), TOOLS)
    assert ok[0].arguments == {"s": "\U0001F600"}
    raw = parse_tool_calls("act[\ud800x]", TOOLS)
    assert isinstance(raw, list) and raw[0].name == "act"


def test_large_but_printable_integers_still_parse():
    result = parse_tool_calls(tag('{"name": "act", "arguments": {"n": ' + "9" * 4000 + "}}"), TOOLS)
    assert isinstance(result, list) and isinstance(result[0], ToolCall)
