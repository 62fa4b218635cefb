"""The openai client against real HTTP servers: agentgym's own (in process and via the CLI)."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time

import aiohttp
import pytest

from agentgym.errors import UserError
from agentgym.policy import GenerationRequest, SamplingParams, load_policy
from agentgym.policy.openai_client import OpenAIPolicy, PolicyServerError
from agentgym.policy.server import start_server


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
async def served(tiny_policy):
    port = free_port()
    runner = await start_server(tiny_policy, "127.0.0.1", port, "tiny")
    client = OpenAIPolicy(f"http://127.0.0.1:{port}/v1", retries=1, backoff=0.01)
    yield tiny_policy, client, port
    await client.close()
    await runner.cleanup()


def chat(text: str, **params) -> GenerationRequest:
    return GenerationRequest(messages=[{"role": "user", "content": text}], params=SamplingParams(**params))


async def test_chat_and_token_completions_match_the_local_policy(served):
    local, client, _ = served
    requests = [chat(t, temperature=0, max_tokens=8) for t in ("move up", "where is the goal", "hi")]
    requests.append(GenerationRequest(prompt_ids=local.renderer.initial([{"role": "user", "content": "go"}]),
                                      params=SamplingParams(temperature=1.0, max_tokens=6, n=2, seed=3)))
    remote = await client.generate(requests)
    direct = await local.generate(requests)
    assert client.model == "tiny"
    for r, d in zip(remote, direct):
        assert len(r) == len(d)
        for a, b in zip(r, d):
            assert a.token_ids == b.token_ids and a.token_ids
            assert a.logprobs == pytest.approx(b.logprobs, abs=1e-5)
            assert a.text == b.text and a.finish_reason == b.finish_reason


async def test_server_errors(served):
    _, client, port = served
    async with aiohttp.ClientSession() as session:
        async with session.get(f"http://127.0.0.1:{port}/v1/models") as response:
            assert (await response.json())["data"][0]["id"] == "tiny"
        body = {"model": "tiny", "messages": [{"role": "user", "content": "x"}], "stream": True}
        async with session.post(f"http://127.0.0.1:{port}/v1/chat/completions", json=body) as response:
            assert response.status == 400 and "streaming" in (await response.json())["error"]["message"]
    wrong = OpenAIPolicy(f"http://127.0.0.1:{port}/v1", model="other", retries=0)
    with pytest.raises(PolicyServerError, match="404"):
        await wrong.generate([chat("x", max_tokens=2)])
    await wrong.close()


async def test_unreachable_server_is_a_user_error():
    client = load_policy(f"openai:http://127.0.0.1:{free_port()}/v1#m", retries=2, backoff=0.01)
    started = time.monotonic()
    with pytest.raises(UserError, match="cannot reach the policy server"):
        await client.generate([chat("x")])
    assert time.monotonic() - started < 10
    await client.close()


@pytest.mark.slow
def test_serve_policy_command(tiny_model):
    """`agentgym serve-policy` as a user runs it, queried over HTTP."""
    port = free_port()
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    server = subprocess.Popen([sys.executable, "-m", "agentgym", "serve-policy", f"hf:{tiny_model}",
                               "--port", str(port)], env=env, stderr=subprocess.PIPE, text=True)
    try:
        client = OpenAIPolicy(f"http://127.0.0.1:{port}/v1", retries=0)

        async def ask():
            for _ in range(240):
                try:
                    return await client.generate([chat("move up", temperature=0, max_tokens=5)])
                except UserError:
                    assert server.poll() is None, server.stderr.read()
                    await asyncio.sleep(0.5)
                finally:
                    await client.close()
            raise AssertionError("the server did not come up")

        (out,) = asyncio.run(ask())
        assert out[0].token_ids and len(out[0].logprobs) == len(out[0].token_ids)
    finally:
        server.terminate()
        server.wait(timeout=30)


async def test_retries_timeouts_and_server_errors():
    from aiohttp import web

    calls = {"slow": 0, "busy": 0}

    async def slow(request):
        calls["slow"] += 1
        await asyncio.sleep(2)
        return web.json_response({})

    async def busy(request):
        calls["busy"] += 1
        if calls["busy"] < 3:
            return web.Response(status=503, text="overloaded")
        return web.json_response({"choices": [{"index": 0, "text": "ok", "finish_reason": "stop"}]})

    app = web.Application()
    app.router.add_post("/slow/v1/completions", slow)
    app.router.add_post("/busy/v1/completions", busy)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        request = GenerationRequest(prompt_ids=[1, 2], params=SamplingParams(max_tokens=2))
        client = OpenAIPolicy(f"http://127.0.0.1:{port}/slow/v1", "m", timeout=0.3, retries=1, backoff=0.01)
        with pytest.raises(PolicyServerError, match="did not answer"):
            await client.generate([request])
        assert calls["slow"] == 2
        await client.close()
        client = OpenAIPolicy(f"http://127.0.0.1:{port}/busy/v1", "m", retries=3, backoff=0.01)
        (out,) = await client.generate([request])
        assert out[0].text == "ok" and out[0].token_ids == [] and calls["busy"] == 3
        await client.close()
    finally:
        await runner.cleanup()
