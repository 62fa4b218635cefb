"""Every shipped task: the gold patch gives reward 1, no patch gives 0, in both backends.

Tasks run two at a time (one per core) inside one test per backend; a failure names
every task that misbehaved.
"""

from __future__ import annotations

import asyncio

import pytest

from agentgym.core.task import Task
from agentgym.sandbox.base import Limits
from agentgym.sandbox.pool import SandboxPool
from envs.swe.env import SweEnv
from envs.swe.tasks import shipped_tasks

from .conftest import make_backend

pytestmark = pytest.mark.slow
LIMITS = Limits(memory_mb=1024, pids=256, timeout=120, max_output=8000)


async def check(task: Task, backend_name: str, pool: SandboxPool) -> str | None:
    env = SweEnv(backend=backend_name, task=task, pool=pool, test_timeout=300)
    try:
        await env.areset()
        nothing = await env.grade()
        if nothing.reward != 0.0 or nothing.progress != 0.0:
            return f"{task.id}: no patch scored {nothing.reward}"
        if not all(v == "PASSED" for v in nothing.pass_to_pass.values()):
            return f"{task.id}: PASS_TO_PASS fails without a patch"
        obs, reward, terminated, _, info = await env.astep(env.oracle_action())
        if not (terminated and reward == 1.0 and info["success"] and info["progress"] == 1.0):
            return f"{task.id}: gold patch scored {reward}: {obs['content'][:500]}"
        return None
    finally:
        await env.aclose_sandbox()


async def test_every_shipped_task_gold_one_none_zero(backend_name):
    backend = make_backend(backend_name, LIMITS)
    tasks = shipped_tasks()
    gate = asyncio.Semaphore(2)

    async def one(task: Task) -> str | None:
        async with gate:
            return await check(task, backend_name, pool)

    async with SandboxPool(backend, size=0, reuse=False) as pool:
        problems = [p for p in await asyncio.gather(*(one(t) for t in tasks)) if p]
    assert not problems, "\n".join(problems)
