"""Every shipped task: the gold patch gives reward 1, no patch gives 0, in both backends."""

from __future__ import annotations

import pytest

from agentgym.sandbox.base import Limits
from agentgym.sandbox.pool import SandboxPool
from envs.swe.env import SweEnv
from envs.swe.tasks import shipped_tasks

from .conftest import make_backend

pytestmark = pytest.mark.slow
TASKS = shipped_tasks()
LIMITS = Limits(memory_mb=1024, pids=256, timeout=120, max_output=8000)


@pytest.mark.parametrize("task", TASKS, ids=[t.id for t in TASKS])
async def test_gold_patch_scores_one_and_no_patch_zero(backend_name, task):
    backend = make_backend(backend_name, LIMITS)
    async with SandboxPool(backend, size=0, reuse=False) as pool:
        env = SweEnv(backend=backend_name, task=task, pool=pool, test_timeout=300)
        await env.areset()
        nothing = await env.grade()
        assert nothing.reward == 0.0 and nothing.progress == 0.0, nothing.output[-2000:]
        assert all(v == "PASSED" for v in nothing.pass_to_pass.values())
        obs, reward, terminated, _, info = await env.astep(env.oracle_action())
        assert terminated and reward == 1.0 and info["success"], obs["content"]
        assert info["progress"] == 1.0
        await env.aclose_sandbox()
