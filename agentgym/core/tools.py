"""Tools are typed methods.

Decorate an environment method with :func:`tool`; its signature and docstring become
an OpenAI-style function schema, and incoming arguments are validated against the
type hints (pydantic) before the method runs. Methods may be ``async``.

    class Library(TextEnv):
        @tool
        def search(self, query: str, k: int = 5) -> str:
            '''Search the catalogue.

            Args:
                query: words to look for.
                k: how many results to return.
            '''
"""

from __future__ import annotations

import inspect
import re
from dataclasses import dataclass
from typing import Any, Callable, get_type_hints

from pydantic import BaseModel, ConfigDict, ValidationError, create_model

TOOL_ATTR = "__agentgym_tool__"
RESERVED = frozenset({"reset", "step", "close", "render", "reward", "finish"})


class ToolError(ValueError):
    """Raised by a tool for a bad argument; its message is shown to the model."""


@dataclass(frozen=True)
class ToolSpec:
    """A tool's name, description, argument model and method."""

    name: str
    description: str
    args_model: type[BaseModel]
    method_name: str
    is_async: bool
    param_order: tuple[str, ...]

    def schema(self) -> dict[str, Any]:
        """The OpenAI ``{"type": "function", "function": {...}}`` schema."""
        params = self.args_model.model_json_schema()
        params.pop("title", None)
        for prop in params.get("properties", {}).values():
            prop.pop("title", None)
        params.setdefault("properties", {})
        params["additionalProperties"] = False
        return {
            "type": "function",
            "function": {"name": self.name, "description": self.description, "parameters": params},
        }

    def validate(self, arguments: dict[str, Any]) -> dict[str, Any]:
        """Validate and coerce arguments; raises ``ValueError`` with a readable message."""
        try:
            return dict(self.args_model.model_validate(arguments))
        except ValidationError as exc:
            problems = []
            for err in exc.errors():
                where = ".".join(str(p) for p in err["loc"]) or "arguments"
                problems.append(f"{where}: {err['msg']}")
            raise ValueError("; ".join(problems)) from None


def tool(fn: Callable | None = None, *, name: str | None = None) -> Callable:
    """Mark a method as a tool the policy may call (usable bare or with ``name=``)."""

    def mark(f: Callable) -> Callable:
        tool_name = name or f.__name__
        if tool_name in RESERVED:
            raise ValueError(f"{tool_name!r} is reserved and cannot be a tool name")
        setattr(f, TOOL_ATTR, tool_name)
        return f

    return mark(fn) if fn is not None else mark


def collect_tools(cls: type) -> dict[str, ToolSpec]:
    """All tools declared on a class (and its bases), by tool name."""
    specs: dict[str, ToolSpec] = {}
    for attr in dir(cls):
        member = getattr(cls, attr, None)
        tool_name = getattr(member, TOOL_ATTR, None)
        if tool_name:
            specs[tool_name] = build_spec(member, tool_name)
    return specs


def build_spec(fn: Callable, tool_name: str) -> ToolSpec:
    summary, arg_docs = parse_docstring(inspect.getdoc(fn) or "")
    hints = get_type_hints(fn)
    fields: dict[str, Any] = {}
    order = []
    for pname, param in inspect.signature(fn).parameters.items():
        if pname == "self" or param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        annotation = hints.get(pname, str)
        default = ... if param.default is param.empty else param.default
        from pydantic import Field

        fields[pname] = (annotation, Field(default, description=arg_docs.get(pname)))
        order.append(pname)
    model = create_model(
        f"{tool_name}_args", __config__=ConfigDict(extra="forbid", coerce_numbers_to_str=False), **fields
    )
    return ToolSpec(
        name=tool_name,
        description=summary,
        args_model=model,
        method_name=fn.__name__,
        is_async=inspect.iscoroutinefunction(fn),
        param_order=tuple(order),
    )


_SECTION = re.compile(r"^(Args|Arguments|Parameters|Returns|Raises|Yields|Examples?|Notes?):\s*$")


def parse_docstring(doc: str) -> tuple[str, dict[str, str]]:
    """Split a Google-style docstring into its description and per-argument text."""
    lines = doc.splitlines()
    desc: list[str] = []
    args: dict[str, str] = {}
    section = None
    current = None
    for line in lines:
        stripped = line.strip()
        m = _SECTION.match(stripped)
        if m:
            section = m.group(1)
            current = None
            continue
        if section is None:
            desc.append(stripped)
        elif section in ("Args", "Arguments", "Parameters"):
            am = re.match(r"^(\w+)\s*(\([^)]*\))?\s*:\s*(.*)$", stripped)
            if am and not line.startswith(" " * 8):
                current = am.group(1)
                args[current] = am.group(3)
            elif current and stripped:
                args[current] += " " + stripped
    description = " ".join(" ".join(desc).split())
    return description, args
