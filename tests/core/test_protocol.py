"""The async env protocol as TextEnv implements it, the env factory, and the registry's checks."""

from __future__ import annotations

import asyncio
import threading
import time

import gymnasium as gym
import pytest

import agentgym
from agentgym import Task, TextEnv
from agentgym.core import AsyncEnv, LocalEnvFactory, StepResult, env_factory
from agentgym.errors import UserError

from .conftest import CounterEnv


def call(call_id, name, arguments):
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


async def test_each_tool_call_gets_its_own_message_with_its_id():
    env = CounterEnv(task=Task(id="x", inputs={"target": 3}), max_turns=9)
    obs, info = await env.areset()
    assert info["task"].id == "x" and info["tools"][0]["function"]["name"] == "add"
    reply = {"role": "assistant", "content": None, "tool_calls": [
        call("a", "add", '{"n": 1}'), call("b", "mul", "{}"), call("c", "add", "{broken"), call("d", "add", '{"n": 2}')]}
    result = await env.astep(reply)
    assert isinstance(result, StepResult) and result.done and result.reward == 1.0
    assert [m["tool_call_id"] for m in result.messages] == ["a", "b", "c", "d"]
    assert all(m["role"] == "tool" for m in result.messages)
    contents = [m["content"] for m in result.messages]
    assert contents[0] == "Now at 1." and "unknown tool 'mul'" in contents[1]
    assert "could not parse the tool call JSON" in contents[2] and contents[3] == "You reached 3."
    assert result.info["invalid_action"] and result.info["success"] is True


async def test_text_replies_are_read_like_the_engine_reads_them():
    env = CounterEnv(task=Task(id="x", inputs={"target": 50}), max_turns=9)
    await env.areset()
    tagged = await env.astep('thinking <tool_call>{"name": "add", "arguments": {"n": 4}}</tool_call>')
    assert tagged.messages == [{"role": "tool", "tool_call_id": "call_1_0", "name": "add", "content": "Now at 4."}]
    plain = await env.astep({"role": "assistant", "content": "no call here"})
    assert plain.messages[0]["role"] == "user" and "no action found" in plain.messages[0]["content"]
    broken = await env.astep({"role": "assistant", "content": "<tool_call>{oops"})
    assert broken.info["invalid_action"] and "could not parse" in broken.messages[0]["content"]


def test_gymnasium_step_merges_tool_messages_and_lists_them():
    env = CounterEnv(task=Task(id="x", inputs={"target": 50}))
    env.reset()
    obs, reward, term, trunc, info = env.step("add[2] add[3]")
    assert set(obs) == {"role", "content"} and obs["role"] == "tool"
    assert obs["content"] == "[add] Now at 2.\n\n[add] Now at 5."
    assert [m["tool_call_id"] for m in info["messages"]] == ["call_1_0", "call_1_1"]


async def test_optional_hooks_answer_none_when_not_implemented():
    class Bare(TextEnv):
        def generate_task(self, index):
            return Task(id=str(index))

        def setup(self, task):
            return "hi"

    env = Bare()
    await env.areset(seed=0)
    assert await env.aprogress() is None and await env.ahint() is None
    assert await env.aoracle_action() is None and await env.avalid_actions() is None
    await env.aclose()
    assert isinstance(env, AsyncEnv)


async def test_one_hook_at_a_time_per_instance():
    """Hooks of one env never overlap, even when callers ask concurrently; two envs do overlap."""
    live = {"now": 0, "max": 0}
    lock = threading.Lock()

    class Slow(CounterEnv):
        def _busy(self):
            with lock:
                live["now"] += 1
                live["max"] = max(live["max"], live["now"])
            time.sleep(0.05)
            with lock:
                live["now"] -= 1

        def hint(self):
            self._busy()
            return "h"

        def progress(self):
            self._busy()
            return 0.5

    env = Slow(task=Task(id="x", inputs={"target": 3}))
    await env.areset()
    await asyncio.gather(env.ahint(), env.aprogress(), env.ahint(), env.aprogress())
    assert live["max"] == 1
    other = Slow(task=Task(id="y", inputs={"target": 3}))
    await other.areset()
    await asyncio.gather(env.ahint(), other.ahint())
    assert live["max"] == 2


def test_duplicate_ids_raise_unless_overridden():
    agentgym.register("proto-dup/v0", CounterEnv)
    with pytest.raises(ValueError, match="already registered"):
        agentgym.register("proto-dup/v0", CounterEnv, max_turns=3)
    with pytest.raises(ValueError, match="already registered"):
        agentgym.register("maze/v0", CounterEnv)  # built-ins too
    agentgym.register("proto-dup/v0", CounterEnv, override=True, max_turns=3)
    assert agentgym.make("proto-dup/v0").max_turns == 3


class Picky(TextEnv):
    def __init__(self, size: int = 3, **kwargs):
        super().__init__(**kwargs)
        if size > 10:
            raise TypeError("the env's own bug: size must be small")


class Needy(TextEnv):
    def __init__(self, *, corpus: str, **kwargs):
        super().__init__(**kwargs)


def test_make_checks_arguments_before_calling_and_lets_env_errors_through():
    agentgym.register("proto-picky/v0", Picky)
    agentgym.register("proto-needy/v0", Needy)
    with pytest.raises(UserError, match=r"no argument 'sise' \(did you mean 'size'\?\)"):
        agentgym.make("proto-picky/v0", sise=4)
    assert agentgym.make("proto-picky/v0", size=4, max_turns=2).max_turns == 2  # TextEnv's own arguments pass
    with pytest.raises(TypeError, match="the env's own bug"):
        agentgym.make("proto-picky/v0", size=11)
    with pytest.raises(UserError, match="'corpus' is required"):
        agentgym.make("proto-needy/v0")


async def test_local_factory_creates_validates_and_refuses_non_protocol_envs():
    factory = env_factory(None)
    assert isinstance(factory, LocalEnvFactory) and env_factory("local").__class__ is LocalEnvFactory
    env = await factory.create("maze-easy/v0", {"obs_mode": "description"})
    assert isinstance(env, AsyncEnv)
    await env.aclose()
    factory.validate("maze-easy/v0", {"obs_mode": "grid"})
    with pytest.raises(UserError, match="unknown environment"):
        factory.validate("no-such-env/v0")
    with pytest.raises(UserError, match="no argument 'bogus'"):
        factory.validate("maze/v0", {"bogus": 1})

    class Plain(gym.Env):
        pass

    agentgym.register("proto-plain/v0", Plain)
    with pytest.raises(UserError, match="does not implement the async env protocol"):
        await factory.create("proto-plain/v0")
    for bad in ("remote:", "bogus"):  # remote: needs an address (agentgym.server's factory)
        with pytest.raises(UserError):
            env_factory(bad)


class Echo(AsyncEnv):
    """A protocol implementation written directly, with no TextEnv: what a remote client looks like."""

    async def areset(self, *, seed=None, options=None):
        self.turns = 0
        return {"role": "user", "content": "say done"}, {"task_id": "echo", "system_prompt": "", "tools": []}

    async def astep(self, message):
        self.turns += 1
        done = "done" in (message.get("content") or "")
        return StepResult([{"role": "user", "content": "ok" if done else "again"}], float(done), done,
                          self.turns >= 3 and not done, {"turn": self.turns, "success": done})


async def test_a_direct_protocol_implementation_has_none_defaults():
    env = Echo()
    assert isinstance(env, AsyncEnv)
    await env.areset()
    assert await env.aprogress() is None and await env.aoracle_action() is None
    assert (await env.astep({"role": "assistant", "content": "done"})).terminated

