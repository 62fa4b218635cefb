import asyncio
import threading

import gymnasium as gym
import pytest

from agentgym import Task, TextEnv, tool
from agentgym.errors import UserError

from .conftest import CounterEnv


def test_reset_gives_user_message_and_tools(counter_env):
    obs, info = counter_env.reset(seed=3)
    assert obs["role"] == "user" and "Reach" in obs["content"]
    assert info["system_prompt"] == CounterEnv.system_prompt
    assert info["tools"][0]["function"]["name"] == "add"


def test_oracle_solves_and_success_is_reported(counter_env):
    counter_env.reset(seed=5)
    info = {}
    while not counter_env.done:
        obs, reward, term, trunc, info = counter_env.step(counter_env.oracle_action())
        assert obs["role"] == "tool"
    assert info["success"] is True and term and reward == 1.0


def test_invalid_actions_are_observations_and_count_to_limit():
    env = CounterEnv(max_invalid_actions=2, max_turns=50)
    env.reset(seed=0)
    for expected in (1, 2):
        obs, reward, term, trunc, info = env.step("no tool call here")
        assert "no action found" in obs["content"] and info["invalid_actions"] == expected and not term
    obs, reward, term, trunc, info = env.step("<tool_call>{broken")
    assert term and info["success"] is False and "Too many invalid actions" in obs["content"]


def test_bad_arguments_and_unknown_tool_are_explained(counter_env):
    counter_env.reset(seed=0)
    obs, *_ = counter_env.step('<tool_call>{"name": "add", "arguments": {"n": 50}}</tool_call>')
    assert "between -10 and 10" in obs["content"]
    obs, *_ = counter_env.step('<tool_call>{"name": "add", "arguments": {"n": "lots"}}</tool_call>')
    assert "valid integer" in obs["content"]
    obs, *_ = counter_env.step('<tool_call>{"name": "mul", "arguments": {}}</tool_call>')
    assert "unknown tool 'mul'" in obs["content"] and "add" in obs["content"]


def test_oversized_action_is_rejected_without_parsing():
    env = CounterEnv(max_action_chars=100)
    env.reset(seed=0)
    obs, reward, term, trunc, info = env.step("add[1]" + "x" * 200)
    assert "limit is 100" in obs["content"] and info["invalid_action"]


def test_turn_limit_truncates_with_success_false():
    env = CounterEnv(max_turns=2)
    env.reset(seed=50)
    env.step("add[0]")
    obs, reward, term, trunc, info = env.step("add[0]")
    assert trunc and not term and info["success"] is False


def test_step_before_reset_and_after_end_fail_clearly(counter_env):
    with pytest.raises(gym.error.ResetNeeded):
        counter_env.step("add[1]")
    counter_env.reset(options={"task": {"id": "t", "inputs": {"target": 1}}})
    counter_env.step("add[1]")
    with pytest.raises(gym.error.ResetNeeded):
        counter_env.step("add[1]")


def test_reset_with_explicit_task_and_fixed_task():
    env = CounterEnv(task=Task(id="fixed", inputs={"target": 4}))
    obs, info = env.reset(seed=123)
    assert info["task_id"] == "fixed" and "Reach 4" in obs["content"]


def test_same_seed_same_task_and_split_respected():
    a, b = CounterEnv(), CounterEnv()
    assert a.reset(seed=9)[0] == b.reset(seed=9)[0]
    from agentgym.core.task import split_of

    test_env = CounterEnv(split="test")
    for s in range(20):
        test_env.reset(seed=s)
        assert split_of(test_env.task.fingerprint()) == "test"


def test_bad_constructor_arguments_are_user_errors():
    with pytest.raises(UserError):
        CounterEnv(split="validation")
    with pytest.raises(UserError):
        CounterEnv(max_turns=0)


class AsyncEnv(TextEnv):
    async def setup(self, task):
        await asyncio.sleep(0)
        return "go"

    @tool
    async def wait(self, ms: int = 1) -> str:
        """Wait a little.

        Args:
            ms: milliseconds.
        """
        await asyncio.sleep(ms / 1000)
        self.finish(1.0, True)
        return "waited"


def test_async_tools_work_sync_and_async():
    env = AsyncEnv(task=Task(id="a"))
    env.reset()
    assert env.step("wait[2]")[0]["content"] == "waited"

    async def run():
        await env.areset()
        return await env.astep("wait[1]")

    result = asyncio.run(run())
    assert result.terminated and result.info["success"]
    (message,) = result.messages
    assert message["role"] == "tool" and message["content"] == "waited" and message["tool_call_id"] == "call_1_0"


def test_astep_runs_sync_hooks_off_the_event_loop():
    threads = []

    class Watched(CounterEnv):
        def setup(self, task):
            threads.append(threading.current_thread().name)
            return super().setup(task)

        def on_text(self, text):
            threads.append(threading.current_thread().name)
            return "no"

    env = Watched(task=Task(id="x", inputs={"target": 2}))

    async def run():
        await env.areset()
        await env.astep({"role": "assistant", "content": "hello"})
        return await env.astep("add[2]")

    result = asyncio.run(run())
    assert not result.truncated and env.done
    assert threads and all(name.startswith("agentgym-env") for name in threads), threads
