from typing import Literal

from agentgym.core.actions import ActionError, parse_tool_calls
from agentgym.core.tools import collect_tools, parse_docstring, tool


class Thing:
    @tool
    def search(self, query: str, k: int = 5, mode: Literal["fast", "exact"] = "fast", tags: list[str] | None = None) -> str:
        """Search the index.

        Longer explanation.

        Args:
            query: words to look for.
            k: how many results; at most 50.
            mode: how to match.
            tags: only these tags.
        """


def test_schema_from_type_hints_and_docstring():
    spec = collect_tools(Thing)["search"]
    fn = spec.schema()["function"]
    assert fn["name"] == "search" and fn["description"] == "Search the index. Longer explanation."
    props = fn["parameters"]["properties"]
    assert props["query"] == {"description": "words to look for.", "type": "string"}
    assert props["k"]["type"] == "integer" and props["k"]["default"] == 5
    assert props["mode"]["enum"] == ["fast", "exact"]
    assert fn["parameters"]["required"] == ["query"]
    assert spec.validate({"query": "x", "k": "3"})["k"] == 3


def test_docstring_parser_handles_continuations():
    desc, args = parse_docstring("Do it.\n\nArgs:\n    a (int): first\n        more about a.\n    b: second\n")
    assert desc == "Do it." and args == {"a": "first more about a.", "b": "second"}


TOOLS = collect_tools(Thing)


def test_parse_hermes_tags_including_unclosed_and_multiple():
    calls = parse_tool_calls('<tool_call>{"name": "search", "arguments": {"query": "a"}}</tool_call>'
                             '<tool_call>{"name": "search", "arguments": {"query": "b"}}', TOOLS)
    assert [c.arguments["query"] for c in calls] == ["a", "b"]


def test_parse_openai_tool_calls():
    msg = {"role": "assistant", "tool_calls": [{"id": "c1", "type": "function",
                                                "function": {"name": "search", "arguments": '{"query": "q"}'}}]}
    (call,) = parse_tool_calls(msg, TOOLS)
    assert call.name == "search" and call.arguments == {"query": "q"} and call.id == "c1"


def test_parse_bracket_form_maps_to_first_parameter():
    (call,) = parse_tool_calls("I will search[capital of France] now", TOOLS)
    assert call.arguments == {"query": "capital of France"}
    assert parse_tool_calls("research[x] is not a call", TOOLS) is None


def test_malformed_inputs_are_errors_not_exceptions():
    for bad in ["<tool_call>{nope</tool_call>", '<tool_call>["list"]</tool_call>', "<tool_call></tool_call>",
                {"tool_calls": "x"}, {"tool_calls": [{"function": {"name": "search", "arguments": "[1]"}}]}, 42]:
        assert isinstance(parse_tool_calls(bad, TOOLS), ActionError), bad
    assert parse_tool_calls("plain text", TOOLS) is None


def test_bracket_argument_in_quotes_is_unquoted():
    from agentgym.core.actions import parse_text

    params = {"try_code": ("code",), "move": ("direction",)}
    assert parse_text('try_code["042"]', params)[0].arguments == {"code": "042"}
    assert parse_text("move['up']", params)[0].arguments == {"direction": "up"}
    assert parse_text('move["up]', params)[0].arguments == {"direction": '"up'}  # unmatched: kept as written
