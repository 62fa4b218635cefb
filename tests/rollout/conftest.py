"""Small environments and policies for rollout tests (no model needed)."""

from __future__ import annotations

import asyncio
import re
from typing import Sequence

import pytest

from agentgym import Task, TextEnv, ToolError, register, tool
from agentgym.policy.base import Completion, GenerationRequest


class CountEnv(TextEnv):
    """Reach a target by calling add(n); optional delay per step and a failing task."""

    system_prompt = "Reach the target by calling add."
    blocking = False

    def __init__(self, delay_s: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        self.delay_s = delay_s

    def generate_task(self, index: int) -> Task:
        return Task(id=f"count-{index % 50}", inputs={"target": index % 50})

    def setup(self, task: Task) -> str:
        self.value = 0
        return f"Reach {task.inputs['target']}. You are at 0."

    @tool
    async def add(self, n: int) -> str:
        """Add a number to the counter.

        Args:
            n: how much to add (between -10 and 10).
        """
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        if self.task.inputs.get("explode"):
            raise RuntimeError("the environment broke")
        if self.task.inputs.get("hang"):
            await asyncio.sleep(3600)
        if not -10 <= n <= 10:
            raise ToolError("n must be between -10 and 10")
        self.value += n
        if self.value == self.task.inputs["target"]:
            self.finish(1.0, True)
            return f"You reached {self.value}."
        return f"Now at {self.value}."

    def oracle_action(self) -> str:
        gap = self.task.inputs["target"] - self.value
        return f"add[{max(-10, min(10, gap))}]"


register("testcount/v0", CountEnv, description="rollout test env")


def count_move(transcript: str) -> str:
    """The optimal reply in a CountEnv episode, read from what the policy was shown."""
    target = int(re.search(r"Reach (-?\d+)", transcript).group(1))
    value = int(re.findall(r"(?:Now at|You are at) (-?\d+)", transcript)[-1])
    return f"add[{max(-10, min(10, target - value))}]"


def transcript(request: GenerationRequest) -> str:
    return "\n".join(str(m.get("content") or "") for m in request.messages or [])


class OraclePolicy:
    """Text-only policy that plays CountEnv optimally from the transcript it is sent; records batch sizes."""

    name = "test-oracle"

    def __init__(self, delay_s: float = 0.0):
        self.batches: list[int] = []
        self.delay_s = delay_s

    async def generate(self, requests: Sequence[GenerationRequest]) -> list[list[Completion]]:
        self.batches.append(len(requests))
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        return [[Completion(text=count_move(transcript(r)))] for r in requests]

    async def close(self) -> None:
        pass


@pytest.fixture
def oracle():
    return OraclePolicy()
