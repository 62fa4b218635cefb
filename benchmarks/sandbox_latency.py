"""Sandbox latency: reset-to-ready and a full reset -> patch -> tests -> reward cycle.

For each backend (docker, bwrap), p50 and p95 of:

- ``reset_fresh``: start a new sandbox from the snapshot (create + set-up);
- ``reset_warm``: take a ready sandbox from a warm pool (refilled in the background);
- ``reset_reused``: reset a used sandbox in place (kill processes, restore work dir);
- ``cycle_fresh`` / ``cycle_reused``: reset, apply the gold patch, run the task's tests, score;
- ``grade_only``: restoring the hidden tests and running them (pytest's own time is the floor);
- ``exec``: one trivial command.

The peer is the plain Docker CLI a typical harness uses: ``docker run --rm`` of the same
image per episode (``peer_docker_run_rm``), and ``docker exec`` per command.
Task: the shipped toolz task with the fewest tests. Last line: one JSON object.

    python benchmarks/sandbox_latency.py [--iterations 10] [--backends docker,bwrap]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import subprocess
import time

from agentgym.sandbox.base import Limits
from agentgym.sandbox.pool import SandboxPool
from envs.swe.grading import run_tests
from envs.swe.tasks import sandbox_spec, shipped_tasks


def pct(xs: list[float]) -> dict[str, float]:
    xs = sorted(xs)
    p95 = xs[min(len(xs) - 1, max(0, round(0.95 * (len(xs) - 1))))]
    return {"p50_ms": round(statistics.median(xs) * 1000, 1), "p95_ms": round(p95 * 1000, 1)}


def backend_of(name: str, limits: Limits):
    if name == "docker":
        from agentgym.sandbox.docker import DockerBackend

        return DockerBackend(limits=limits)
    from agentgym.sandbox.bwrap import BwrapBackend

    return BwrapBackend(limits=limits)


async def timed(fn) -> float:
    t = time.perf_counter()
    await fn()
    return time.perf_counter() - t


async def bench_backend(name: str, task, n: int) -> dict:
    limits = Limits(memory_mb=1024, pids=256, timeout=120)
    backend = backend_of(name, limits)
    spec = await asyncio.to_thread(sandbox_spec, task)
    await backend.prepare(spec)
    ref = task.reference
    patch = ref["gold_patch"]

    grades: list[float] = []

    async def cycle(box) -> float:
        await box.write_file("/tmp/gold.patch", patch)
        await box.exec("cd /work && git apply /tmp/gold.patch")
        t = time.perf_counter()
        res = await run_tests(box, ref["test_cmd"], ref["FAIL_TO_PASS"], ref["PASS_TO_PASS"], workdir="/work")
        grades.append(time.perf_counter() - t)
        assert res.reward == 1.0, res.output[-1000:]
        return res.reward

    out: dict[str, dict] = {}
    fresh, cycle_fresh = [], []
    for _ in range(n):
        t = time.perf_counter()
        box = await backend.create(spec)
        fresh.append(time.perf_counter() - t)
        await cycle(box)
        cycle_fresh.append(time.perf_counter() - t)
        await box.close()
    out["reset_fresh"], out["cycle_fresh"] = pct(fresh), pct(cycle_fresh)

    box = await backend.create(spec)
    reused, cycle_reused, execs = [], [], []
    for _ in range(n):
        t = time.perf_counter()
        await box.reset()
        reused.append(time.perf_counter() - t)
        await cycle(box)
        cycle_reused.append(time.perf_counter() - t)
        execs.append(await timed(lambda: box.exec("true")))
    await box.close()
    out["reset_reused"], out["cycle_reused"], out["exec"] = pct(reused), pct(cycle_reused), pct(execs)
    out["grade_only"] = pct(grades)  # restore tests + run them: the floor of any cycle

    async with SandboxPool(backend, size=2, reuse=False) as pool:
        warm = []
        for _ in range(n):
            await pool.warm(spec)
            t = time.perf_counter()
            box = await pool.acquire(spec)
            warm.append(time.perf_counter() - t)
            await pool.release(box, reuse=False)
        out["reset_warm"] = pct(warm)
    return out


def bench_peer(task, n: int) -> dict:
    """``docker run --rm`` and ``docker exec`` through the CLI, on the same repo image."""
    if not shutil.which("docker"):
        return {}
    from agentgym.sandbox import images
    from agentgym.sandbox.docker import docker_client

    client = docker_client()
    repo = sandbox_spec(task).source
    image = images.ensure_docker_repo(client, repo.name, repo)
    run = []
    for _ in range(n):
        t = time.perf_counter()
        subprocess.run(["docker", "run", "--rm", "--network", "none", image, "true"], check=True)
        run.append(time.perf_counter() - t)
    cid = subprocess.run(["docker", "run", "-d", "--rm", "--network", "none", image, "sleep", "600"],
                         check=True, capture_output=True, text=True).stdout.strip()
    ex = []
    for _ in range(n):
        t = time.perf_counter()
        subprocess.run(["docker", "exec", cid, "true"], check=True)
        ex.append(time.perf_counter() - t)
    subprocess.run(["docker", "rm", "-f", cid], capture_output=True)
    return {"docker_run_rm": pct(run), "docker_exec_cli": pct(ex)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--iterations", type=int, default=10)
    p.add_argument("--backends", default="docker,bwrap")
    args = p.parse_args()
    tasks = [t for t in shipped_tasks() if t.reference["package"] == "toolz"]
    task = min(tasks, key=lambda t: len(t.reference["PASS_TO_PASS"]))
    result: dict = {"bench": "sandbox_latency", "task": task.id, "iterations": args.iterations,
                    "load_avg_1m": round(__import__("os").getloadavg()[0], 1)}
    for name in args.backends.split(","):
        r = asyncio.run(bench_backend(name, task, args.iterations))
        result[name] = r
        print(f"{name}: " + ", ".join(f"{k} p50 {v['p50_ms']} ms / p95 {v['p95_ms']} ms" for k, v in r.items()),
              flush=True)
    if "docker" in args.backends:
        result["peer"] = bench_peer(task, args.iterations)
        print("peer (docker CLI): " + ", ".join(f"{k} p50 {v['p50_ms']} ms" for k, v in result["peer"].items()))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
