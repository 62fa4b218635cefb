"""agentgym: multi-turn text environments and an async GRPO learner for LLM agents.

    import agentgym
    env = agentgym.make("maze/v0", preset="easy")
    obs, info = env.reset(seed=0)
    obs, reward, terminated, truncated, info = env.step("right")
"""

__version__ = "0.1.0"

from agentgym.core import (  # noqa: E402
    Task,
    TextEnv,
    ToolError,
    make,
    register,
    registry,
    spec,
    tool,
)
from agentgym.errors import UserError  # noqa: E402

__all__ = ["Task", "TextEnv", "ToolError", "UserError", "__version__", "make", "register", "registry", "spec", "tool"]
