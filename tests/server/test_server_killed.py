"""``kill -9`` of the env server mid-batch: the eval finishes, those episodes fail with a clear reason."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time

import pytest
import yaml

from .servers import ROOT, child_env, metrics, start_serve_envs

pytestmark = pytest.mark.slow


def test_eval_survives_the_server_killed_mid_batch(tmp_path):
    server, url = start_serve_envs("--env", "server-probe/v0", probe=True, log=tmp_path / "server.log")
    try:
        suite = tmp_path / "probe.yaml"
        suite.write_text(yaml.safe_dump({
            "name": "probe", "env_factory": f"remote:{url}",
            "envs": [{"id": "server-probe/v0", "kwargs": {"oracle_wait": 3.0}, "num_tasks": 24}]}))
        out = tmp_path / "run"
        # the eval process has no probe env: tasks, validation and episodes all go to the server
        evaluation = subprocess.Popen(
            [sys.executable, "-m", "agentgym", "eval", "--suite", str(suite), "--policy", "scripted:oracle",
             "--out", str(out), "--env-concurrency", "server-probe=8", "--no-progress"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=child_env(), cwd=ROOT)
        deadline = time.monotonic() + 120
        while metrics(url)["sessions_open"] < 8:  # the first 8 episodes are waiting in their first step
            assert time.monotonic() < deadline and evaluation.poll() is None, evaluation.stderr.read()
            time.sleep(0.1)
        time.sleep(0.5)
        server.send_signal(signal.SIGKILL)
        server.wait(10)
        stdout, stderr = evaluation.communicate(timeout=120)  # nothing hangs
    finally:
        server.kill()
    assert evaluation.returncode == 0, stderr
    assert "Traceback" not in stderr and "24 episode(s) failed" in stderr
    trajs = [json.loads(line) for line in (out / "trajectories.jsonl").read_text().splitlines()]
    assert len(trajs) == 24 and all(t["status"] == "failed" for t in trajs)
    lost = [t for t in trajs if "was lost during step" in t["error"]]
    refused = [t for t in trajs if "cannot connect to the env server" in t["error"]]
    assert len(lost) == 8 and len(refused) == 16, [t["error"] for t in trajs]
    assert all(url in t["error"] and "RemoteEnvError" in t["error"] for t in trajs)
    results = json.loads((out / "results.json").read_text())
    assert results["overall"]["failed"] == 24


def test_sigterm_tells_clients_closes_every_env_and_exits(tmp_path):
    from websockets.sync.client import connect

    marker = tmp_path / "closed.txt"
    server, url = start_serve_envs("--env", "server-probe/v0", probe=True, log=tmp_path / "server.log")
    try:
        with connect(url + "/ws", open_timeout=10) as ws:
            ws.send(json.dumps({"type": "reset", "data": {"kwargs": {"close_marker": str(marker)}, "seed": 3}}))
            task_id = json.loads(ws.recv(10))["data"]["metadata"]["info"]["task_id"]
            server.send_signal(signal.SIGTERM)
            answer = json.loads(ws.recv(10))
            assert answer["data"]["code"] == "SESSION_ERROR" and "shutting down" in answer["data"]["message"]
        assert server.wait(30) == 0
    finally:
        server.kill()
    assert marker.read_text().split() == [task_id]


async def test_a_frozen_server_fails_the_episode_within_the_heartbeat(tmp_path):
    """SIGSTOP: the TCP connection stays open but nothing answers; the client's pings notice."""
    from agentgym.server import RemoteEnvError, RemoteEnvFactory

    server, url = start_serve_envs("--env", "maze-easy/v0", log=tmp_path / "server.log")
    factory = RemoteEnvFactory(url, heartbeat_s=1.0)
    try:
        env = await factory.create("maze-easy/v0")
        await env.areset(seed=0)
        server.send_signal(signal.SIGSTOP)
        started = time.monotonic()
        with pytest.raises(RemoteEnvError, match="lost|broke"):
            await asyncio.wait_for(env.astep("up"), 30)
        assert time.monotonic() - started < 10
        await env.aclose()
    finally:
        server.send_signal(signal.SIGCONT)
        server.kill()
        await factory.aclose()
