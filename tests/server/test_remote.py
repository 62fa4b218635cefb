"""The remote env factory against a real server: same episodes as local, spreading, capacity, faults."""

from __future__ import annotations

import asyncio

import pytest

from agentgym.core.factory import LocalEnvFactory
from agentgym.errors import UserError
from agentgym.server import EnvServer, RemoteEnvError, RemoteEnvFactory, start_server

from .conftest import CLOSED, port_of, until


async def play(env, seed: int, turns: int = 12) -> list:
    """Everything the protocol says during one oracle episode, as comparable values."""
    obs, info = await env.areset(seed=seed)
    seen = [obs, info, await env.aprogress(), await env.ahint(), await env.avalid_actions()]
    for _ in range(turns):
        action = await env.aoracle_action()
        result = await env.astep(action)
        seen += [action, result.messages, result.reward, result.terminated, result.truncated, result.info,
                 await env.aprogress(), await env.avalid_actions()]
        if result.done:
            break
    return seen


@pytest.mark.parametrize("env_id,kwargs", [("maze-easy/v0", {"obs_mode": "grid"}),
                                           ("server-probe/v0", {"label": "x"})])
async def test_remote_env_says_what_the_local_one_says(serve, env_id, kwargs):
    _, url = await serve()
    factory = RemoteEnvFactory(url)
    local, remote = await LocalEnvFactory().create(env_id, kwargs), await factory.create(env_id, kwargs)
    try:
        for seed in (0, 1, 7):
            assert await play(remote, seed) == await play(local, seed)
    finally:
        await remote.aclose()
        await local.aclose()
        await factory.aclose()


async def test_native_tool_calls_round_trip(serve):
    _, url = await serve()
    factory = RemoteEnvFactory(url)
    env = await factory.create("server-probe/v0")
    await env.areset(seed=0)
    result = await env.astep({"role": "assistant", "content": None, "tool_calls": [
        {"id": "a", "type": "function", "function": {"name": "echo", "arguments": '{"text": "1"}'}},
        {"id": "b", "type": "function", "function": {"name": "echo", "arguments": '{"text": "done"}'}}]})
    assert [(m["tool_call_id"], m["content"]) for m in result.messages] == [("a", "echo 1"), ("b", "echo done")]
    assert result.terminated and result.info["success"]
    await env.aclose()
    await factory.aclose()


async def test_sessions_spread_over_servers_least_loaded_first(serve):
    (a, url_a), (b, url_b) = await serve(), await serve()
    factory = RemoteEnvFactory(f"{url_a}, {url_b}")
    envs = [await factory.create("server-probe/v0") for _ in range(6)]
    assert factory.open_sessions == {url_a: 3, url_b: 3}
    assert len(a.manager.sessions) == len(b.manager.sessions) == 3
    await envs[0].aclose()
    await envs[2].aclose()  # both on server a (alternating)
    envs.append(await factory.create("server-probe/v0"))
    assert factory.open_sessions == {url_a: 2, url_b: 3}
    for env in envs:
        await env.aclose()
    assert factory.open_sessions == {url_a: 0, url_b: 0}
    assert await until(lambda: not a.manager.sessions and not b.manager.sessions)
    await factory.aclose()


async def test_capacity_goes_elsewhere_then_waits(serve):
    (_, url_full), (_, url_free) = await serve(max_sessions=1), await serve(max_sessions=1)
    factory = RemoteEnvFactory([url_full, url_free], capacity_wait_s=5)
    first, second = await factory.create("server-probe/v0"), await factory.create("server-probe/v0")
    assert {first.url, second.url} == {url_full, url_free}
    waiting = asyncio.create_task(factory.create("server-probe/v0"))
    await asyncio.sleep(0.5)
    assert not waiting.done()  # both servers full: it waits for a session to end
    await second.aclose()
    third = await asyncio.wait_for(waiting, 10)
    assert third.url == second.url
    impatient = RemoteEnvFactory([url_full, url_free], capacity_wait_s=0.3)
    with pytest.raises(RemoteEnvError, match="capacity") as err:
        await impatient.create("server-probe/v0")
    assert err.value.code == "CAPACITY_REACHED"
    for env in (first, third):
        await env.aclose()
    await factory.aclose()
    await impatient.aclose()


async def test_server_gone_fails_the_episode_with_the_reason_and_new_episodes_reconnect():
    server = EnvServer(envs=["server-probe/v0"])
    runner = await start_server(server, "127.0.0.1", 0)
    port = port_of(runner)
    factory = RemoteEnvFactory(f"ws://127.0.0.1:{port}")
    env = await factory.create("server-probe/v0")
    await env.areset(seed=1)
    await runner.cleanup()  # the server goes away mid-episode
    with pytest.raises(RemoteEnvError, match="shutting down|lost|broke") as err:
        await env.astep("hello")
    assert "Traceback" not in str(err.value)
    with pytest.raises(RemoteEnvError):
        await env.astep("again")  # the session stays failed
    await env.aclose()
    with pytest.raises(RemoteEnvError, match="cannot connect.*serve-envs"):
        await factory.create("server-probe/v0")  # fails in about a second, does not hang
    runner = await start_server(EnvServer(envs=["server-probe/v0"]), "127.0.0.1", port)  # back on the same port
    try:
        env = await factory.create("server-probe/v0")
        assert (await env.areset(seed=1))[0]["content"].startswith("probe")
        await env.aclose()
    finally:
        await factory.aclose()
        await runner.cleanup()


async def test_an_abandoned_call_ends_the_session(serve):
    server, url = await serve()
    factory = RemoteEnvFactory(url)
    env = await factory.create("server-probe/v0")
    await env.areset(seed=3)
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(env.astep('<tool_call>{"name": "wait", "arguments": {"seconds": 30}}</tool_call>'), 0.2)
    with pytest.raises(RemoteEnvError, match="abandoned"):
        await env.astep("x")  # its answer would be out of step with the next question
    await env.aclose()
    assert await until(lambda: CLOSED and not server.manager.sessions, timeout=5)
    await factory.aclose()


async def test_server_errors_become_remote_env_errors(serve):
    _, url = await serve()
    factory = RemoteEnvFactory(url)
    env = await factory.create("no-such/v0")
    with pytest.raises(RemoteEnvError, match="unknown environment") as err:
        await env.areset()
    assert err.value.code == "FACTORY_ERROR"
    await env.aclose()
    env = await factory.create("server-probe/v0", {"max_turns": 1})
    await env.areset()
    await env.astep("x")
    with pytest.raises(RemoteEnvError, match="over") as err:
        await env.astep("y")
    assert err.value.code == "VALIDATION_ERROR"
    await env.aclose()
    await factory.aclose()


async def test_validate_and_tasks(serve):
    _, url = await serve()
    factory = RemoteEnvFactory(url)
    # validate is a short blocking call (the CLI makes it before any loop); here the server shares our loop
    await asyncio.to_thread(factory.validate, "maze-easy/v0", {"obs_mode": "grid"})
    with pytest.raises(UserError, match="unknown environment 'mase/v0'"):
        await asyncio.to_thread(factory.validate, "mase/v0")
    with pytest.raises(UserError, match="obs_moed"):
        await asyncio.to_thread(factory.validate, "maze-easy/v0", {"obs_moed": "grid"})
    with pytest.raises(UserError, match="cannot reach"):
        await asyncio.to_thread(RemoteEnvFactory("ws://127.0.0.1:9").validate, "maze-easy/v0")
    from agentgym.core.registry import make
    from agentgym.core.task import generate_split

    remote = await factory.tasks("maze-easy/v0", {}, split="test", count=5, seed=2)
    local_env = make("maze-easy/v0", split="test")
    assert remote == generate_split(local_env.generate_task, split="test", count=5, seed=2)
    await factory.aclose()


async def test_token(serve):
    token = "a-long-enough-token-for-tests"
    _, url = await serve(token=token)
    wrong = RemoteEnvFactory(url, token="wrong-wrong-wrong")
    with pytest.raises(UserError, match="AGENTGYM_ENV_TOKEN"):
        await wrong.create("maze-easy/v0")
    await wrong.aclose()
    factory = RemoteEnvFactory(url, token=token)
    env = await factory.create("maze-easy/v0")
    assert (await env.areset(seed=0))[1]["task_id"]
    await env.aclose()
    await factory.aclose()


def test_the_factory_spec():
    from agentgym.core.factory import env_factory

    factory = env_factory("remote:ws://10.0.0.1:8001, http://10.0.0.2:8001/ws,10.0.0.3:9")
    assert isinstance(factory, RemoteEnvFactory)
    assert list(factory.open_sessions) == ["ws://10.0.0.1:8001", "ws://10.0.0.2:8001", "ws://10.0.0.3:9"]
    for bad in ("remote:", "remote:ftp://x:1"):
        with pytest.raises(UserError, match="ws://"):
            env_factory(bad)
