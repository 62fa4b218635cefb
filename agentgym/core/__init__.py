"""The environment core: base class, tasks, tools, action parsing, registry, checker."""

from agentgym.core.actions import ActionError, ToolCall, parse_tool_calls
from agentgym.core.env import TextEnv, ToolError
from agentgym.core.registry import EnvSpec, make, register, registry, spec
from agentgym.core.spaces import AnyText, message_space
from agentgym.core.task import Task, generate_split, load_tasks, save_tasks, split_of
from agentgym.core.tools import ToolSpec, tool

__all__ = [
    "ActionError", "AnyText", "EnvSpec", "Task", "TextEnv", "ToolCall", "ToolError", "ToolSpec",
    "generate_split", "load_tasks", "make", "message_space", "parse_tool_calls", "register",
    "registry", "save_tasks", "spec", "split_of", "tool",
]
