"""The environment core: the async env protocol and factory, ``TextEnv``, tasks, tools,
action parsing, registry, checker."""

from agentgym.core.actions import ActionError, ToolCall, parse_tool_calls, reply_message
from agentgym.core.env import TextEnv
from agentgym.core.factory import EnvFactory, LocalEnvFactory, env_factory
from agentgym.core.protocol import AsyncEnv, Message, StepResult
from agentgym.core.registry import EnvSpec, make, register, registry, spec
from agentgym.core.spaces import AnyText, message_space
from agentgym.core.task import Task, generate_split, load_tasks, save_tasks, split_of
from agentgym.core.tools import ToolError, ToolSpec, tool

__all__ = [
    "ActionError", "AnyText", "AsyncEnv", "EnvFactory", "EnvSpec", "LocalEnvFactory", "Message", "StepResult",
    "Task", "TextEnv", "ToolCall", "ToolError", "ToolSpec", "env_factory", "generate_split", "load_tasks", "make",
    "message_space", "parse_tool_calls", "register", "registry", "reply_message", "save_tasks", "spec",
    "split_of", "tool",
]
