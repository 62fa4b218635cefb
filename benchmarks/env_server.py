"""Load test of ``agentgym serve-envs`` on loopback, beside the same env stepped in-process.

``--sessions`` concurrent sessions (default 200) play ``--env`` (default ``maze-easy/v0``)
for ``--duration`` seconds (default 60) through agentgym's remote env factory against a
server started as a subprocess (``agentgym serve-envs``, as it runs in production): each
session resets, steps with random moves until the episode ends, and resets again. It
reports steps/s (resets not counted), p50/p99 step latency seen by the client, errors
(client exceptions plus the server's ``errors_total``; target 0) and the sessions still
open on the server once every client has closed (target 0).

The peer, in the same run: the same env, the same number of concurrent episodes, stepped
in-process through the same async env protocol (``LocalEnvFactory``; each step hops to an
env worker thread, as on the server) for ``--baseline-duration`` seconds, half before and
half after the server run so that a change in the machine's load shows on both sides. The
ratio of the two rates is what the server costs per step. Both processes use the serving
process's GIL switch interval (1 ms). Server and client are separate processes here, so on a
2-core machine each has about one core; the in-process run has both.

    python benchmarks/env_server.py [--sessions 200] [--duration 60] [--baseline-duration 20]

Wall-clock rates on a shared machine move with its load, so CPU time per step is reported too
(process CPU, all threads: the in-process run; the client and the server process): it is what
the server costs per step whatever the neighbours do.

The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
MOVES = ("up", "down", "left", "right")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


async def drive(factory, env_id: str, kwargs: dict[str, Any], sessions: int, duration: float) -> dict:
    """``sessions`` concurrent players for ``duration`` seconds; step latencies and counts."""
    latencies: list[list[float]] = [[] for _ in range(sessions)]
    episodes = [0] * sessions
    errors: list[str] = []
    start = time.perf_counter()
    stop_at = start + duration

    async def player(i: int) -> None:
        rng = random.Random(i)
        try:
            env = await factory.create(env_id, kwargs)
        except Exception as exc:
            errors.append(f"create: {type(exc).__name__}: {exc}")
            return
        mine = latencies[i]
        try:
            seed = i * 100_003
            while time.perf_counter() < stop_at:
                await env.areset(seed=seed)
                seed += 1
                done = False
                while not done and time.perf_counter() < stop_at:
                    t = time.perf_counter()
                    result = await env.astep(rng.choice(MOVES))
                    mine.append(time.perf_counter() - t)
                    done = result.done
                episodes[i] += done
        except Exception as exc:
            errors.append(f"{type(exc).__name__}: {exc}")
        finally:
            await env.aclose()

    await asyncio.gather(*(player(i) for i in range(sessions)))
    return summary([x for per in latencies for x in per], time.perf_counter() - start, sum(episodes), errors)


def summary(latencies: list[float], elapsed: float, episodes: int, errors: list[str]) -> dict[str, Any]:
    return {"steps": len(latencies), "episodes": episodes, "elapsed_s": round(elapsed, 3),
            "steps_per_s": round(len(latencies) / elapsed, 1),
            "p50_ms": round(quantile(latencies, 0.5) * 1e3, 3), "p99_ms": round(quantile(latencies, 0.99) * 1e3, 3),
            "client_errors": len(errors), "error_samples": errors[:3], "_latencies": latencies}


def combine(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """One summary of two runs of the same side (before and after the other side's run)."""
    out = summary(a["_latencies"] + b["_latencies"], a["elapsed_s"] + b["elapsed_s"], a["episodes"] + b["episodes"],
                  a["error_samples"] + b["error_samples"])
    out["client_errors"] = a["client_errors"] + b["client_errors"]
    out["runs_steps_per_s"] = [a["steps_per_s"], b["steps_per_s"]]
    out["cpu_us_per_step"] = round((a["cpu_s"] + b["cpu_s"]) / max(1, out["steps"]) * 1e6, 1)
    return out


def process_cpu_s(pid: int) -> float | None:
    """User + system CPU seconds of another process so far (Linux), or None."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def in_process(env_id: str, kwargs: dict[str, Any], sessions: int, duration: float) -> dict[str, Any]:
    from agentgym.core.factory import LocalEnvFactory

    factory = LocalEnvFactory()
    cpu = time.process_time()
    result = await drive(factory, env_id, kwargs, sessions, duration)
    result["cpu_s"] = time.process_time() - cpu
    await factory.aclose()
    return result


async def remote(url: str, env_id: str, kwargs: dict[str, Any], sessions: int, duration: float, pid: int) -> dict:
    import aiohttp

    from agentgym.server import RemoteEnvFactory

    # the server's work only: no progress hook after every step (the engine would ask for it)
    factory = RemoteEnvFactory(url, progress=False, capacity_wait_s=5)
    cpu, server_cpu = time.process_time(), process_cpu_s(pid)
    result = await drive(factory, env_id, kwargs, sessions, duration)
    steps = max(1, result["steps"])
    result["client_cpu_us_per_step"] = round((time.process_time() - cpu) / steps * 1e6, 1)
    if server_cpu is not None:
        result["server_cpu_us_per_step"] = round((process_cpu_s(pid) - server_cpu) / steps * 1e6, 1)
    await factory.aclose()
    async with aiohttp.ClientSession() as http:
        metrics: dict[str, Any] = {}
        for _ in range(50):  # sessions close just after their clients hang up
            async with http.get("http" + url[2:] + "/metrics") as resp:
                metrics = await resp.json()
            if metrics["sessions_open"] == 0:
                break
            await asyncio.sleep(0.1)
    result.update(server_errors=metrics["errors_total"], open_sessions_after=metrics["sessions_open"],
                  envs_open_after=metrics["envs_open"], server_step_ms=metrics["latency_ms"].get("step"),
                  errors=result["client_errors"] + metrics["errors_total"])
    return result


def start_server(env_id: str, port: int, sessions: int, log) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    proc = subprocess.Popen([sys.executable, "-m", "agentgym", "serve-envs", "--env", env_id,
                             "--port", str(port), "--max-sessions", str(sessions + 8), "--idle-timeout", "0"],
                            stdout=log, stderr=log, env=env, cwd=ROOT)
    import urllib.request

    deadline = time.time() + 60
    while time.time() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited with {proc.returncode}; see {log.name}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1):
                return proc
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("the server did not start within 60 s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--env", default="maze-easy/v0")
    parser.add_argument("--kwargs", default='{"obs_mode": "description"}', help="env kwargs as JSON")
    parser.add_argument("--sessions", type=int, default=200)
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--baseline-duration", type=float, default=20.0)
    args = parser.parse_args()
    kwargs = json.loads(args.kwargs)
    load_start = os.getloadavg()[0]
    sys.path.insert(0, str(ROOT))
    from agentgym.server.cli import SWITCH_INTERVAL_S

    sys.setswitchinterval(SWITCH_INTERVAL_S)  # as in the serving process: the same setting on both sides
    before = asyncio.run(in_process(args.env, kwargs, args.sessions, args.baseline_duration / 2))
    print(f"in-process (before): {before['steps_per_s']:.0f} steps/s", flush=True)
    port = free_port()
    with tempfile.NamedTemporaryFile("w+", prefix="env_server-", suffix=".log", delete=False) as log:
        proc = start_server(args.env, port, args.sessions, log)
        try:
            url = f"ws://127.0.0.1:{port}"
            served = asyncio.run(remote(url, args.env, kwargs, args.sessions, args.duration, proc.pid))
        finally:
            proc.terminate()
            try:
                code = proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                code = proc.wait()
        log.seek(0)
        warnings = [line for line in log.read().splitlines() if "WARNING" in line or "ERROR" in line]
    after = asyncio.run(in_process(args.env, kwargs, args.sessions, args.baseline_duration / 2))
    base = combine(before, after)
    print(f"in-process: {base['steps_per_s']:.0f} steps/s ({before['steps_per_s']:.0f} before, "
          f"{after['steps_per_s']:.0f} after), p50 {base['p50_ms']:.2f} ms, p99 {base['p99_ms']:.2f} ms, "
          f"{base['client_errors']} errors", flush=True)
    for side in (served, base):
        side.pop("_latencies")
    print(f"server:     {served['steps_per_s']:.0f} steps/s, p50 {served['p50_ms']:.2f} ms, "
          f"p99 {served['p99_ms']:.2f} ms "
          f"(inside the server p50 {served['server_step_ms']['p50']} ms), {served['errors']} errors, "
          f"{served['open_sessions_after']} sessions open afterwards; server exit code {code}", flush=True)
    if served["error_samples"] or warnings:
        print("errors:", served["error_samples"], warnings[:5], f"(server log: {log.name})", flush=True)
    else:
        os.unlink(log.name)
    ratio = base["steps_per_s"] / served["steps_per_s"] if served["steps_per_s"] else float("inf")
    server_cpu = served.get("server_cpu_us_per_step")
    cpu_ratio = server_cpu / base["cpu_us_per_step"] if server_cpu and base["cpu_us_per_step"] else None
    print(f"a step through the server takes {ratio:.2f}x the wall time of an in-process step; CPU per step: "
          f"in-process {base['cpu_us_per_step']:.0f} us, server process {server_cpu} us "
          f"({cpu_ratio and f'{cpu_ratio:.2f}x'}), client {served['client_cpu_us_per_step']:.0f} us", flush=True)
    print(json.dumps({"env": args.env, "sessions": args.sessions, "duration_s": args.duration,
                      "server": served, "in_process": base, "cost_ratio": round(ratio, 3),
                      "cpu_ratio": cpu_ratio and round(cpu_ratio, 3),
                      "load_average_start": load_start, "load_average_end": os.getloadavg()[0],
                      "server_exit_code": code}))


if __name__ == "__main__":
    main()
