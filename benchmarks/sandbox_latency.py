"""Sandbox latency: reset-to-ready and a full reset -> patch -> tests -> reward cycle.

For each backend (docker, bwrap), p50 and p95 of:

- ``reset_fresh``: start a new sandbox from the snapshot (create + set-up);
- ``reset_warm``: take a ready sandbox from a warm pool (refilled in the background);
- ``reset_reused``: reset a used sandbox in place (kill processes, restore work dir);
- ``cycle_fresh`` / ``cycle_reused``: reset, apply the gold patch, grade, score;
- ``grade_only``: the hardened grading of :mod:`envs.swe.grading` (take the agent's diff,
  keep library files, restore the tree, apply, run the tests through the trusted runner;
  one exec); pytest's own time is the floor;
- ``pytest_only``: the task's test command alone in the sandbox, for that floor;
- ``exec``: one trivial command.

Peers, in the same run: the grading agentgym used before issue #15 (``legacy_*``: test
files restored in place in the agent's own tree, pytest run there, outcomes parsed from its
output: fast, and fooled by a conftest or a library that patches pytest), interleaved with
the hardened grading on the same sandbox; and the plain Docker CLI a typical harness uses:
``docker run --rm`` of the same image per episode (``peer_docker_run_rm``), and
``docker exec`` per command. Task: the shipped toolz task with the fewest tests. Last line:
one JSON object, with ``hardened_over_legacy`` (the cycle's p50 ratio) per backend.

    python benchmarks/sandbox_latency.py [--iterations 10] [--backends docker,bwrap]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shlex
import shutil
import statistics
import subprocess
import time

from agentgym.sandbox.base import SNAPSHOT_DIR, Limits
from agentgym.sandbox.pool import SandboxPool
from envs.swe.grading import grade, parse_pytest
from envs.swe.tasks import sandbox_spec, shipped_tasks

#: The pre-#15 grading, kept as the peer: put test files back from the snapshot in place.
LEGACY_RESTORE = r'''
import os, shutil, sys
snap, work = sys.argv[1], sys.argv[2]
def protected(rel):
    parts = rel.split("/"); name = parts[-1]
    return (name.startswith("test_") or name.endswith("_test.py") or name == "conftest.py"
            or any(p in ("tests", "test", "testing") for p in parts[:-1])
            or name in ("pytest.ini", "tox.ini", "setup.cfg", "pyproject.toml", "noxfile.py"))
def walk(root):
    for d, dirs, files in os.walk(root):
        dirs[:] = [x for x in dirs if x != ".git"]
        for f in files + [x for x in dirs if os.path.islink(os.path.join(d, x))]:
            yield os.path.relpath(os.path.join(d, f), root)
for rel in list(walk(work)):
    if protected(rel) and not os.path.lexists(os.path.join(snap, rel)):
        os.unlink(os.path.join(work, rel))
for rel in walk(snap):
    if protected(rel):
        dst = os.path.join(work, rel)
        if os.path.isdir(dst) and not os.path.islink(dst):
            shutil.rmtree(dst)
        elif os.path.lexists(dst):
            os.unlink(dst)
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        shutil.copy2(os.path.join(snap, rel), dst, follow_symlinks=False)
'''


async def legacy_grade(box, ref: dict) -> float:
    """The pre-#15 grading, as it was: one exec, outcomes parsed from pytest's -rA summary."""
    cmd = (f"for i in 1 2 3 4 5 6 7 8; do kill -9 -1 2>/dev/null || break; done; "
           f"python3 -I -c {shlex.quote(LEGACY_RESTORE)} {SNAPSHOT_DIR} /work && cd /work && {ref['test_cmd']}")
    res = await box.exec(cmd, timeout=300, limit=4_000_000)
    outcomes = parse_pytest(res.stdout + "\n" + res.stderr)
    ok = all(outcomes.get(t) == "PASSED" for t in ref["FAIL_TO_PASS"] + ref["PASS_TO_PASS"])
    return 1.0 if ok else 0.0


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
    legacy_grades: list[float] = []
    pytest_only: list[float] = []

    async def cycle(box, legacy: bool = False) -> float:
        await box.write_file("/tmp/gold.patch", patch)
        await box.exec("cd /work && git apply /tmp/gold.patch")
        t = time.perf_counter()
        if legacy:
            reward = await legacy_grade(box, ref)
            legacy_grades.append(time.perf_counter() - t)
            assert reward == 1.0
            return reward
        res = await grade(box, ref, workdir="/work")
        grades.append(time.perf_counter() - t)
        assert res.reward == 1.0, (res.error, res.tampering, res.output[-1000:])
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
    reused, cycle_reused, legacy_cycle, execs = [], [], [], []
    for i in range(2 * n):  # the hardened and the legacy cycle alternate, on the same sandbox
        legacy = i % 2 == 1
        t = time.perf_counter()
        await box.reset()
        if not legacy:
            reused.append(time.perf_counter() - t)
        await cycle(box, legacy)
        (legacy_cycle if legacy else cycle_reused).append(time.perf_counter() - t)
        if not legacy:
            execs.append(await timed(lambda: box.exec("true")))
            pytest_only.append(await timed(lambda: box.exec(f"cd /work && {ref['test_cmd']}", timeout=120)))
    await box.close()
    out["reset_reused"], out["cycle_reused"], out["exec"] = pct(reused), pct(cycle_reused), pct(execs)
    out["grade_only"], out["pytest_only"] = pct(grades), pct(pytest_only)
    out["legacy_cycle_reused"], out["legacy_grade_only"] = pct(legacy_cycle), pct(legacy_grades)
    out["hardened_over_legacy"] = round(out["cycle_reused"]["p50_ms"] / out["legacy_cycle_reused"]["p50_ms"], 3)

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
    subprocess.run(["docker", "rm", "-f", cid], capture_output=True, check=False)
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
        print(f"{name}: " + ", ".join(f"{k} p50 {v['p50_ms']} ms / p95 {v['p95_ms']} ms" if isinstance(v, dict)
                                      else f"{k} {v}" for k, v in r.items()), flush=True)
    if "docker" in args.backends:
        result["peer"] = bench_peer(task, args.iterations)
        print("peer (docker CLI): " + ", ".join(f"{k} p50 {v['p50_ms']} ms" for k, v in result["peer"].items()))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
