"""10,000 garbage tool calls (huge integers, deep nesting, surrogates) raise nothing, in every
built-in environment."""

from __future__ import annotations

import os

import pytest

import agentgym
from agentgym.core.checker import check_text_env, fuzz_garbage

from .conftest import CounterEnv

N = 10_000


def _swe():
    from agentgym.sandbox.base import SandboxError
    from agentgym.sandbox.bwrap import BwrapBackend

    try:
        BwrapBackend()._rootfs()
    except SandboxError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"bwrap unavailable in CI: {exc}")
        pytest.skip(f"bwrap unavailable: {exc}")
    from envs.swe.tasks import shipped_tasks

    task = min(shipped_tasks(), key=lambda t: (t.reference["package"] != "cachetools", len(t.reference["PASS_TO_PASS"])))
    return lambda: agentgym.make("swe/v0", backend="bwrap", task=task, cmd_timeout=10)


BUILT_IN = {
    "maze/v0": lambda: lambda: agentgym.make("maze/v0"),
    "sokoban/v0": lambda: lambda: agentgym.make("sokoban/v0"),
    "qa/v0": lambda: lambda: agentgym.make("qa/v0"),
    "webshop/v0": lambda: lambda: agentgym.make("webshop/v0"),
    "search/v0": lambda: lambda: agentgym.make("search/v0"),
    "swe/v0": _swe,
    "webshop-browser/v0": lambda: lambda: agentgym.make("webshop-browser/v0"),
    "alfworld/v0": lambda: lambda: agentgym.make("alfworld/v0"),
}
MARKS = {"webshop-browser/v0": [pytest.mark.browser], "alfworld/v0": [pytest.mark.alfworld]}


@pytest.mark.slow
@pytest.mark.parametrize("env_id", [pytest.param(i, marks=MARKS.get(i, [])) for i in BUILT_IN])
def test_garbage_tool_calls_never_raise(env_id):
    make = BUILT_IN[env_id]()
    try:
        detail = fuzz_garbage(make(), N, budget_s=120, seed=0)
    except agentgym.UserError as exc:  # a missing extra or data set: say so, do not hide it
        pytest.skip(f"{env_id} cannot be made here: {exc}")
    assert detail.startswith(f"{N} garbage tool calls"), detail


def test_the_checker_runs_the_garbage_fuzzer():
    results = {r.name: r for r in check_text_env(lambda: CounterEnv(), fuzz_actions=50, garbage_actions=500)}
    assert results["garbage tool calls never raise"].passed
    assert results["garbage tool calls never raise"].detail.startswith("500 garbage tool calls")
