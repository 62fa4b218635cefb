"""The server driven by a client written from OpenEnv's protocol description alone.

The client here is the `websockets` library (what OpenEnv's own EnvClient uses) plus a few
lines of JSON; it shares no code with agentgym's client. Every bad input gets its OpenEnv
error code, no answer carries a traceback, and the server stays up after each.
"""

from __future__ import annotations

import asyncio
import json
import os

import aiohttp
import pytest

from .conftest import CLOSED, until

try:
    import websockets  # the client library OpenEnv's EnvClient uses (agentgym[dev])
except ImportError:  # pragma: no cover - CI installs it, so there a missing one fails
    if os.environ.get("CI"):
        raise
    pytest.skip("the OpenEnv-style client needs `pip install websockets`", allow_module_level=True)


class OpenEnvClient:
    """OpenEnv's WebSocket session: send {"type", "data"}, read one answer per message."""

    def __init__(self, ws):
        self.ws = ws

    async def send(self, message) -> dict:
        await self.ws.send(message if isinstance(message, (str, bytes)) else json.dumps(message))
        return json.loads(await asyncio.wait_for(self.ws.recv(), 10))

    async def reset(self, **data) -> dict:
        return await self.send({"type": "reset", "data": data})

    async def step(self, **data) -> dict:
        return await self.send({"type": "step", "data": data})


def connect(url: str, **kwargs):
    return websockets.connect(url + "/ws", open_timeout=10, max_size=None, **kwargs)


def assert_error(answer: dict, code: str) -> str:
    assert answer["type"] == "error", answer
    data = answer["data"]
    assert data["code"] == code, data
    assert "Traceback" not in data["message"] and 'File "' not in data["message"]
    return data["message"]


async def test_http_routes(serve):
    _, url = await serve()
    base = "http" + url[2:]
    async with aiohttp.ClientSession() as http:
        async with http.get(base + "/health") as r:
            assert r.status == 200 and await r.json() == {"status": "healthy"}
        async with http.get(base + "/metadata") as r:
            meta = await r.json()
            assert {"name", "description", "version"} <= set(meta) and meta["name"] == "agentgym"
        async with http.get(base + "/metadata", params={"env_id": "maze-easy"}) as r:
            assert (await r.json())["name"] == "maze-easy/v0"
        async with http.get(base + "/schema") as r:
            schema = await r.json()
            assert {"action", "observation", "state"} <= set(schema)
            assert {"action", "message"} <= set(schema["action"]["properties"])
            assert {"observation", "reward", "done", "metadata"} <= set(schema["observation"]["properties"])
        async with http.get(base + "/envs") as r:
            assert [e["id"] for e in (await r.json())["envs"]] == ["maze-easy/v0", "server-probe/v0"]
        async with http.post(base + "/tasks", json={"env_id": "server-probe/v0", "count": 3, "seed": 1}) as r:
            tasks = (await r.json())["tasks"]
            assert len(tasks) == 3 and all(t["reference"] for t in tasks)
        async with http.post(base + "/validate", json={"env_id": "server-probe/v0", "kwargs": {"nope": 1}}) as r:
            body = await r.json()
            assert r.status == 422 and body["error"]["code"] == "FACTORY_ERROR" and "nope" in body["error"]["message"]
        async with http.get(base + "/nowhere") as r:
            assert r.status == 404 and "error" in await r.json()


async def test_episode_and_state(serve):
    server, url = await serve()
    async with connect(url) as ws:
        c = OpenEnvClient(ws)
        state = await c.send({"type": "state"})
        assert state == {"type": "state", "data": {"episode_id": None, "step_count": 0, "env_id": None, "done": True}}
        obs = await c.reset(env_id="server-probe/v0", seed=5, episode_id="ep-1")
        assert obs["type"] == "observation"
        data = obs["data"]
        assert data["observation"] == {"role": "user", "content": data["metadata"]["messages"][0]["content"]}
        assert data["reward"] is None and data["done"] is False
        meta = data["metadata"]
        assert meta["episode_id"] == "ep-1" and meta["step_count"] == 0
        assert {t["function"]["name"] for t in meta["tools"]} == {"echo", "wait", "crash"}
        assert meta["info"]["task"]["reference"]  # the task, hidden reference included, for scoring
        step = await c.step(action='<tool_call>{"name": "echo", "arguments": {"text": "hi"}}</tool_call>')
        assert step["data"]["observation"] == {"role": "tool", "content": "echo hi"}  # a call written in the text
        step = await c.step(action="just words")
        assert step["data"]["observation"]["role"] == "user" and step["data"]["metadata"]["info"]["invalid_action"]
        assert step["data"]["reward"] == 0.0 and step["data"]["done"] is False
        native = {"role": "assistant", "content": None, "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "echo", "arguments": '{"text": "a"}'}},
            {"id": "c2", "type": "function", "function": {"name": "echo", "arguments": '{"text": "done"}'}}]}
        step = await c.step(message=native)
        data = step["data"]
        assert data["done"] is True and data["reward"] == 1.0 and data["observation"]["role"] == "tool"
        assert [(m["role"], m["tool_call_id"], m["content"]) for m in data["metadata"]["messages"]] == [
            ("tool", "c1", "echo a"), ("tool", "c2", "echo done")]
        assert data["metadata"]["success"] is True and data["metadata"]["terminated"] is True
        state = await c.send({"type": "state", "data": {"include": ["progress", "hint", "oracle_action"]}})
        assert state["data"] == {"episode_id": "ep-1", "step_count": 3, "env_id": "server-probe/v0", "done": True,
                                 "progress": 0.5, "hint": "say done", "oracle_action": ProbeOracle}
        await ws.send(json.dumps({"type": "close"}))
        await asyncio.wait_for(ws.wait_closed(), 10)
    assert await until(lambda: server.snapshot()["sessions_open"] == 0)
    assert CLOSED == [meta["info"]["task"]["id"]]


ProbeOracle = '<tool_call>{"name": "echo", "arguments": {"text": "done"}}</tool_call>'


async def test_every_bad_input_gets_its_code_and_the_server_stays_up(serve):
    server, url = await serve(max_message_bytes=4096)
    async with connect(url) as ws:
        c = OpenEnvClient(ws)
        assert_error(await c.send("{not json"), "INVALID_JSON")
        assert_error(await c.send(b"\xff\xfe"), "INVALID_JSON")
        assert_error(await c.send("[1, 2]"), "VALIDATION_ERROR")
        assert_error(await c.send({"type": "dance"}), "UNKNOWN_TYPE")
        assert_error(await c.send({"data": {}}), "UNKNOWN_TYPE")
        assert_error(await c.send({"type": "mcp", "data": {}}), "UNKNOWN_TYPE")
        assert "reset" in assert_error(await c.step(action="up"), "VALIDATION_ERROR")  # step before reset
        assert_error(await c.send({"type": "step"}), "VALIDATION_ERROR")
        assert_error(await c.step(), "VALIDATION_ERROR")  # neither action nor message
        assert_error(await c.step(action="x", message={"content": "y"}), "VALIDATION_ERROR")
        assert_error(await c.reset(env_id="server-probe/v0", seed=-1), "VALIDATION_ERROR")
        assert_error(await c.reset(env_id="server-probe/v0", bogus=1), "VALIDATION_ERROR")
        assert_error(await c.reset(env_id="server-probe/v0", task={"inputs": {}}), "VALIDATION_ERROR")  # no id
        assert_error(await c.reset(), "VALIDATION_ERROR")  # two envs hosted: env_id needed
        assert "sokoban" in assert_error(await c.reset(env_id="sokoban-easy/v0"), "FACTORY_ERROR")  # not hosted
        assert_error(await c.reset(env_id="no-such-env/v0"), "FACTORY_ERROR")
        assert "colour" in assert_error(await c.reset(env_id="server-probe/v0", kwargs={"colour": 1}), "FACTORY_ERROR")
        assert_error(await c.reset(env_id="maze-easy/v0", kwargs={"obs_mode": "smell"}), "FACTORY_ERROR")
        assert_error(await c.reset(env_id="server-probe/v0", kwargs={"max_turns": 0}), "FACTORY_ERROR")
        big = json.dumps({"type": "step", "data": {"action": "x" * 5000}})
        assert "limit" in assert_error(await c.send(big), "VALIDATION_ERROR")
        # the session still works after all of that
        ok = await c.reset(env_id="server-probe/v0", kwargs={"max_turns": 1})
        assert ok["type"] == "observation"
        message = assert_error(await c.step(action='<tool_call>{"name": "crash", "arguments": {}}</tool_call>'),
                               "EXECUTION_ERROR")
        assert "probe bug" in message
        assert_error(await c.step(action="x"), "VALIDATION_ERROR")  # the failed step ended the episode
        await c.reset(env_id="server-probe/v0", kwargs={"max_turns": 1})
        assert (await c.step(action="anything"))["data"]["done"] is True  # turn limit
        assert "over" in assert_error(await c.step(action="again"), "VALIDATION_ERROR")  # step after done
    # beyond four times the limit the message is not even read: the connection is closed (1009)
    async with connect(url) as ws:
        await ws.send(json.dumps({"type": "step", "data": {"action": "x" * 20000}}))
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 10)
        assert closed.value.rcvd.code == 1009
    async with connect(url) as ws:  # the server is still up
        assert (await OpenEnvClient(ws).reset(env_id="maze-easy/v0", seed=1))["type"] == "observation"
    errors = server.snapshot()["errors"]
    assert errors["INVALID_JSON"] == 2 and errors["UNKNOWN_TYPE"] == 3 and errors["FACTORY_ERROR"] == 5


async def test_reset_by_task_id_or_task(serve):
    _, url = await serve()
    async with connect(url) as ws:
        c = OpenEnvClient(ws)
        obs = await c.reset(env_id="server-probe/v0", kwargs={"listed": True}, task_id="listed-2")
        assert obs["data"]["metadata"]["info"]["task"]["inputs"] == {"index": 2}
        assert "listed-9" in assert_error(await c.reset(env_id="server-probe/v0", kwargs={"listed": True},
                                                         task_id="listed-9"), "VALIDATION_ERROR")
        assert "generates" in assert_error(await c.reset(env_id="server-probe/v0", task_id="probe-1"),
                                           "VALIDATION_ERROR")
        task = {"id": "mine", "inputs": {"index": 42}, "reference": {"answer": 0}}
        obs = await c.reset(env_id="server-probe/v0", task=task)
        assert obs["data"]["observation"]["content"] == "probe: task mine"


async def test_one_env_hosted_needs_no_env_id(serve):
    _, url = await serve(envs=["maze-easy"])
    async with connect(url) as ws:
        obs = await OpenEnvClient(ws).reset(seed=3)
        assert obs["data"]["metadata"]["info"]["task_id"].startswith("maze-easy")


async def test_capacity(serve):
    server, url = await serve(max_sessions=2)
    async with connect(url) as a, connect(url) as b:
        for ws in (a, b):
            assert (await OpenEnvClient(ws).send({"type": "state"}))["type"] == "state"
        async with connect(url) as c:
            answer = json.loads(await asyncio.wait_for(c.recv(), 10))
            assert_error(answer, "CAPACITY_REACHED")
            assert answer["data"]["max_sessions"] == 2
            with pytest.raises(websockets.ConnectionClosed):
                await asyncio.wait_for(c.recv(), 10)
    assert await until(lambda: server.snapshot()["sessions_open"] == 0)
    async with connect(url) as d:  # room again once the others left
        assert (await OpenEnvClient(d).send({"type": "state"}))["type"] == "state"
    assert server.snapshot()["errors"]["CAPACITY_REACHED"] == 1


async def test_token(serve, tmp_path):
    token = "s3cret-token-0123456789"
    server, url = await serve(token=token)
    base = "http" + url[2:]
    async with aiohttp.ClientSession() as http:
        async with http.get(base + "/health") as r:
            assert r.status == 200  # health checks need no token
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": token}):
            async with http.get(base + "/envs", headers=headers) as r:
                assert r.status == 401 and r.headers["WWW-Authenticate"] == "Bearer"
                assert (await r.json())["error"]["code"] == "UNAUTHORIZED"
        async with http.get(base + "/envs", headers={"Authorization": f"Bearer {token}"}) as r:
            assert r.status == 200
    with pytest.raises(websockets.InvalidStatus) as refused:
        async with connect(url, additional_headers={"Authorization": "Bearer nope"}):
            pass
    assert refused.value.response.status_code == 401
    async with connect(url, additional_headers={"Authorization": f"Bearer {token}"}) as ws:
        assert (await OpenEnvClient(ws).reset(env_id="maze-easy/v0"))["type"] == "observation"
    assert await until(lambda: server.snapshot()["sessions_open"] == 0)


async def test_idle_timeout_closes_the_env(serve):
    server, url = await serve(idle_timeout_s=0.4)
    async with connect(url) as ws:
        c = OpenEnvClient(ws)
        await c.reset(env_id="server-probe/v0", seed=2)
        answer = json.loads(await asyncio.wait_for(ws.recv(), 10))  # the server speaks first: the session ended
        assert "idle" in assert_error(answer, "SESSION_ERROR")
        with pytest.raises(websockets.ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 10)
    assert await until(lambda: server.snapshot()["sessions_open"] == 0) and len(CLOSED) == 1


async def test_a_long_step_is_not_idle(serve):
    _, url = await serve(idle_timeout_s=0.3)
    async with connect(url) as ws:
        c = OpenEnvClient(ws)
        await c.reset(env_id="server-probe/v0")
        step = await c.step(action='<tool_call>{"name": "wait", "arguments": {"seconds": 1.0}}</tool_call>')
        assert step["data"]["observation"]["content"] == "waited"


async def test_dropped_connection_closes_the_env_at_once(serve):
    """The client vanishes mid-step: the step is cancelled and the env closed without waiting for it."""
    server, url = await serve()
    ws = await connect(url)
    c = OpenEnvClient(ws)
    await c.reset(env_id="server-probe/v0", seed=4)
    await ws.send(json.dumps({"type": "step", "data": {
        "action": '<tool_call>{"name": "wait", "arguments": {"seconds": 60}}</tool_call>'}}))
    await asyncio.sleep(0.2)
    ws.transport.abort()  # no close handshake: as if the process was killed
    assert await until(lambda: len(CLOSED) == 1, timeout=5)  # not after the 60 s step
    assert await until(lambda: server.snapshot()["sessions_open"] == 0)


async def test_messages_are_answered_in_order(serve):
    _, url = await serve()
    async with connect(url) as ws:
        await ws.send(json.dumps({"type": "reset", "data": {"env_id": "server-probe/v0"}}))
        for i in range(10):
            await ws.send(json.dumps({"type": "step", "data": {
                "action": f'<tool_call>{{"name": "echo", "arguments": {{"text": "{i}"}}}}</tool_call>'}}))
        answers = [json.loads(await asyncio.wait_for(ws.recv(), 10)) for _ in range(11)]
    assert [a["data"]["observation"]["content"] for a in answers[1:]] == [f"echo {i}" for i in range(10)]
    assert [a["data"]["metadata"]["step_count"] for a in answers[1:]] == list(range(1, 11))
