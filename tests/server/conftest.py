"""A real server on a loopback port for each test, and a small env whose hooks the tests control."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import agentgym
from agentgym import Task, TextEnv, tool
from agentgym.server import EnvServer, start_server

CLOSED: list[str] = []
"""Task ids of every ProbeEnv closed, in order (the tests read it to see the server close envs)."""


class ProbeEnv(TextEnv):
    """Echoes; ``wait`` sleeps on the event loop (a long sandbox command); ``crash`` is an env bug."""

    system_prompt = "Probe the server."

    def __init__(self, *, label: str = "probe", listed: bool = False, oracle_wait: float = 0.0,
                 close_marker: str | None = None, **kwargs: Any):
        if listed:  # a task list (as search and SWE have) instead of a generator
            kwargs["tasks"] = [Task(id=f"listed-{i}", inputs={"index": i}, reference={"answer": i}) for i in range(3)]
        super().__init__(**kwargs)
        self.label = label
        self.oracle_wait = oracle_wait  # > 0: the oracle first waits that long (a slow episode)
        self.close_marker = close_marker  # a file each close appends the task id to (a server in a subprocess)

    def generate_task(self, index: int) -> Task:
        return Task(id=f"probe-{index}", inputs={"index": index}, reference={"answer": index % 7})

    def setup(self, task: Task) -> str:
        return f"{self.label}: task {task.id}"

    @tool
    def echo(self, text: str) -> str:
        """Echo the text.

        Args:
            text: what to echo; "done" ends the episode.
        """
        if text == "done":
            self.finish(1.0, True)
        return f"echo {text}"

    @tool
    async def wait(self, seconds: float) -> str:
        """Wait a while.

        Args:
            seconds: how long.
        """
        await asyncio.sleep(seconds)
        return "waited"

    @tool
    def crash(self) -> str:
        """Fail with a bug."""
        raise RuntimeError("probe bug: /secret/path in a stack frame")

    def progress(self) -> float | None:
        return 0.5 if self.task else None

    def hint(self) -> str | None:
        return "say done"

    def oracle_action(self) -> str:
        if self.oracle_wait and self.turn == 0:
            return f'<tool_call>{{"name": "wait", "arguments": {{"seconds": {self.oracle_wait}}}}}</tool_call>'
        return '<tool_call>{"name": "echo", "arguments": {"text": "done"}}</tool_call>'

    def close(self) -> None:
        CLOSED.append(self.task.id if self.task else "-")
        if self.close_marker:
            with open(self.close_marker, "a", encoding="utf-8") as fh:
                fh.write(CLOSED[-1] + "\n")


agentgym.register("server-probe/v0", ProbeEnv, description="the server tests' probe env", override=True)


def port_of(runner) -> int:
    return runner.addresses[0][1]


@pytest.fixture
async def serve():
    """``await serve(**EnvServer kwargs) -> (server, ws_url)``; every server is stopped after the test."""
    runners = []

    async def start(**kwargs: Any):
        kwargs.setdefault("envs", ["server-probe/v0", "maze-easy/v0"])
        server = EnvServer(**kwargs)
        runner = await start_server(server, "127.0.0.1", 0)
        runners.append(runner)
        return server, f"ws://127.0.0.1:{port_of(runner)}"

    yield start
    for runner in runners:
        await runner.cleanup()


@pytest.fixture(autouse=True)
def _clear_closed():
    CLOSED.clear()


async def until(predicate, timeout: float = 10.0) -> bool:
    """Wait for ``predicate()`` to hold (the server closes sessions just after the client hangs up)."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not predicate():
        if loop.time() > end:
            return False
        await asyncio.sleep(0.02)
    return True
