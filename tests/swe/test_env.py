"""The SWE environment end to end: tools, grading against tampering, progress, hints."""

from __future__ import annotations

import json

import pytest

import agentgym
from agentgym.sandbox.pool import SandboxPool
from envs.swe.env import SweEnv
from envs.swe.tasks import shipped_tasks

from .conftest import make_backend

pytestmark = pytest.mark.slow


def call(name: str, **arguments) -> str:
    return f"<tool_call>{json.dumps({'name': name, 'arguments': arguments})}</tool_call>"


@pytest.fixture
def task():
    # the quickest suite: cachetools' TTL tests
    tasks = shipped_tasks()
    return min(tasks, key=lambda t: (t.reference["package"] != "cachetools", len(t.reference["PASS_TO_PASS"])))


@pytest.fixture
async def env(backend_name, task):
    backend = make_backend(backend_name)
    async with SandboxPool(backend, size=0, reuse=True) as pool:
        e = SweEnv(backend=backend_name, task=task, pool=pool, cmd_timeout=5, max_output=3000)
        yield e
        await e.aclose_sandbox()


async def test_tools_and_errors(env, task):
    obs, info = await env.areset()
    assert task.inputs["problem_statement"] in obs["content"]
    assert {t["function"]["name"] for t in info["tools"]} == {"bash", "view", "edit", "submit"}
    bug_file = task.metadata["file"]
    obs, r, term, trunc, info = await env.astep(call("view", path=bug_file, lines=[1, 3]))
    assert obs["content"].splitlines()[0].strip().startswith("1") and not info["invalid_action"]
    obs, *_ , info = await env.astep(call("view", path="."))
    assert ".git" in obs["content"]
    obs, *_, info = await env.astep(call("view", path="nope.py"))
    assert info["invalid_action"] and "does not exist" in obs["content"]
    obs, *_, info = await env.astep(call("edit", path=bug_file, old="self", new="this"))
    assert info["invalid_action"] and "exactly once" in obs["content"]
    obs, *_, info = await env.astep(call("bash", cmd="sleep 30"))
    assert "timed out" in obs["content"]
    obs, *_, info = await env.astep(call("bash", cmd="yes | head -c 100000"))
    assert "truncated" in obs["content"] and len(obs["content"]) < 4000
    obs, *_, info = await env.astep("I think the bug is somewhere")
    assert info["invalid_action"] and "tool" in obs["content"]
    obs, *_, info = await env.astep(call("bash", cmd="git status --porcelain; git log --oneline | wc -l"))
    assert obs["content"].split("\n")[1:] == ["1"]  # clean tree, one commit: the bug is not visible in git


async def test_editing_tests_does_not_pay(env, task):
    await env.areset()
    ref = task.reference
    f2p_files = sorted({t.split("::")[0] for t in ref["FAIL_TO_PASS"]})
    for f in f2p_files:  # gut the failing tests and add a conftest that skips everything
        await env.sandbox.write_file(f"/work/{f}", "def test_nothing():\n    pass\n")
    await env.sandbox.write_file("/work/conftest.py", "import pytest\ndef pytest_runtest_setup(item):\n"
                                 "    pytest.skip('no')\n")
    await env.sandbox.write_file("/work/pytest.py", "raise SystemExit(0)\n")
    obs, reward, term, _, info = await env.astep(call("submit"))
    assert term and reward == 0.0 and not info["success"]
    assert info["progress"] == 0.0


async def test_progress_hint_and_oracle(env, task):
    await env.areset()
    assert await env.aprogress() == 0.0
    hint = env.hint()
    assert task.metadata["file"] in hint and task.reference["FAIL_TO_PASS"][0] in hint
    patch = task.reference["gold_patch"]
    obs, *_ = await env.astep(call("bash", cmd=f"git apply <<'EOF'\n{patch}EOF"))
    assert obs["content"].startswith("exit code: 0"), obs
    assert await env.aprogress() == 1.0
    obs, reward, term, _, info = await env.astep(call("submit"))
    assert term and reward == 1.0 and info["success"]
    # the next episode of the same task starts from the snapshot again (the sandbox is reused)
    await env.areset()
    assert await env.aprogress() == 0.0


@pytest.mark.parametrize("backend_name", ["bwrap"])
def test_registered_and_sync_api(backend_name, task):
    make_backend(backend_name)
    env = agentgym.make("swe/v0", backend=backend_name, task=task)
    try:
        obs, info = env.reset(seed=0)
        assert obs["role"] == "user"
        obs, reward, term, trunc, info = env.step(env.oracle_action())
        assert term and reward == 1.0
        assert env.progress() == 1.0
    finally:
        env.close()


@pytest.mark.parametrize("backend_name", ["bwrap"])
def test_text_env_checker(backend_name, task):
    from agentgym.core.checker import check_text_env

    make_backend(backend_name)
    results = check_text_env(lambda: SweEnv(backend=backend_name, task=task, max_turns=4), fuzz_actions=30,
                             time_budget_s=60)
    failed = [f"{r.name}: {r.detail}" for r in results if not r.passed]
    assert not failed, failed
