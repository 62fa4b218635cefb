"""A client killed mid-episode: the server closes its SWE env at once and the sandbox is removed."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.swe.conftest import BACKENDS, make_backend

from .conftest import until

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]

CLIENT = r"""
import asyncio, sys
from agentgym.server import RemoteEnvFactory

async def main():
    factory = RemoteEnvFactory(sys.argv[1])
    env = await factory.create("swe/v0", {"backend": sys.argv[2], "reuse": False, "cmd_timeout": 300})
    await env.areset(options={"task_id": sys.argv[3]})
    print("reset", flush=True)
    await env.astep('<tool_call>{"name": "bash", "arguments": {"cmd": "sleep 200"}}</tool_call>')

asyncio.run(main())
"""


def quickest_task() -> str:
    from envs.swe.tasks import shipped_tasks

    tasks = shipped_tasks()
    return min(tasks, key=lambda t: (t.reference["package"] != "cachetools", len(t.reference["PASS_TO_PASS"]))).id


def removed(backend: str, sandbox, container_id: str | None) -> bool:
    if backend == "bwrap":
        return sandbox.closed and not sandbox.run.exists()
    import docker

    try:
        sandbox.client.containers.get(container_id)
    except docker.errors.NotFound:
        return True
    return False


@pytest.mark.parametrize("backend", BACKENDS)
async def test_killed_client_mid_step_removes_its_sandbox(serve, backend):
    make_backend(backend)  # skips when this machine has no such backend
    server, url = await serve(envs=["swe/v0"])
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    proc = await asyncio.create_subprocess_exec(sys.executable, "-c", CLIENT, url, backend, quickest_task(),
                                                stdout=subprocess.PIPE, env=env, cwd=ROOT)
    try:
        assert await asyncio.wait_for(proc.stdout.readline(), 300) == b"reset\n"
        assert await until(lambda: any(s.busy for s in server.manager.sessions.values()))  # `sleep 200` runs
        (session,) = server.manager.sessions.values()
        sandbox = session.env.sandbox
        container_id = getattr(getattr(sandbox, "container", None), "id", None)
        assert await sandbox.is_alive()
    finally:
        proc.kill()  # SIGKILL: no close message, no close handshake
        await proc.wait()
    assert await until(lambda: not server.manager.sessions, timeout=30)  # not after the 200 s command
    assert await until(lambda: removed(backend, sandbox, container_id), timeout=30)
    assert server.snapshot()["envs_open"] == 0
