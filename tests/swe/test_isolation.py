"""Sandboxes are security boundaries: test them as such, in both backends."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agentgym.sandbox.base import Sandbox, SandboxSpec
from agentgym.sandbox.pool import SandboxPool
from agentgym.sandbox.reaper import reap

from .conftest import TEST_LIMITS, make_backend

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def spec(tmp_path_factory) -> SandboxSpec:
    src = Path(__file__).with_name("fixture_repo")
    return SandboxSpec(key="isolation-test", source=src, setup="git init -q && git add -A && git commit -qm base")


@pytest.fixture
async def box(backend, spec):
    sandbox = await backend.create(spec)
    yield sandbox
    await sandbox.close()


def host_pids(pattern: str) -> list[str]:
    out = subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True).stdout.split()
    return [p for p in out if int(p) != os.getpid()]


async def test_exec_files_and_reset(box: Sandbox):
    assert isinstance(box, Sandbox)
    res = await box.exec("id -un; pwd; git log --oneline | wc -l; cat pkg/mod.py | head -1")
    assert res.ok and res.stdout.split("\n")[:3] == ["agent", "/work", "1"], res
    await box.write_file("/work/new/dir/file.bin", b"\x00\x01binary")
    assert await box.read_file("/work/new/dir/file.bin") == b"\x00\x01binary"
    await box.exec("echo changed > pkg/mod.py && echo x > /tmp/scratch")
    await box.reset()
    res = await box.exec("ls /work/new /tmp/scratch; cat pkg/mod.py | head -1")
    assert "No such file" in res.stderr and "changed" not in res.stdout
    assert await box.is_alive()


async def test_copy_in_and_out(box: Sandbox, tmp_path: Path):
    d = tmp_path / "data"
    (d / "sub").mkdir(parents=True)
    (d / "sub" / "a.txt").write_text("hello")
    await box.copy_in(d, "/work/data")
    assert (await box.exec("cat /work/data/sub/a.txt")).stdout == "hello"
    await box.copy_out("/work/data", tmp_path / "back")
    assert (tmp_path / "back" / "sub" / "a.txt").read_text() == "hello"


async def test_output_is_truncated_with_marker(box: Sandbox):
    res = await box.exec("head -c 5000000 /dev/zero | tr '\\0' x; echo; echo THE-END")
    assert res.truncated and len(res.stdout) < 2 * TEST_LIMITS.max_output
    assert "bytes truncated" in res.stdout and res.stdout.rstrip().endswith("THE-END")


async def test_no_network(box: Sandbox):
    res = await box.exec("python3 -c \"import socket; s=socket.socket(); s.settimeout(3); s.connect(('1.1.1.1', 53))\"")
    assert res.exit_code != 0 and "unreachable" in res.stderr.lower()
    ifaces = (await box.exec("tail -n +3 /proc/net/dev | cut -d: -f1")).stdout.split()
    assert ifaces == ["lo"]


async def test_no_write_outside_workdir(box: Sandbox):
    for path in ["/agentgym-x", "/etc/agentgym-x", "/usr/lib/agentgym-x", "/var/lib/agentgym/snap/x",
                 "/var/lib/agentgym/x"]:
        res = await box.exec(f"touch {path}")
        assert res.exit_code != 0, path
    marker = f"agentgym-escape-{os.getpid()}"
    await box.exec(f"touch /tmp/{marker} /var/tmp/{marker} /dev/shm/{marker} 2>/dev/null; true")
    assert not any(Path(d, marker).exists() for d in ("/tmp", "/var/tmp", "/dev/shm"))
    assert (await box.exec("touch /work/ok && echo yes")).stdout.strip() == "yes"
    # the pristine source (the answer to every injected bug) is not readable
    assert (await box.exec("ls /var/lib/agentgym/src")).exit_code != 0


async def test_no_docker_socket(box: Sandbox):
    res = await box.exec("ls -la /var/run/docker.sock /run/docker.sock /run/containerd 2>&1; "
                         "python3 -c \"import socket; s=socket.socket(socket.AF_UNIX); s.connect('/var/run/docker.sock')\"")
    assert res.exit_code != 0
    assert "No such file" in res.stdout + res.stderr


async def test_no_privileges(box: Sandbox):
    res = await box.exec("grep -E 'CapEff|NoNewPrivs' /proc/self/status")
    assert "CapEff:\t0000000000000000" in res.stdout
    assert (await box.exec("mount -t tmpfs none /work 2>&1")).exit_code != 0


async def test_fork_bomb_is_contained(box: Sandbox):
    t = time.monotonic()
    # The foreground shell spins (builtins only, no forks) while the bomb grows in the
    # background: a shell that returned at once would take the bomb down with it before any
    # fork failed, and the test would show nothing.
    res = await box.exec(":(){ :|:& };:; i=0; while [ $i -lt 400000 ]; do i=$((i+1)); done", timeout=5)
    assert time.monotonic() - t < 25
    assert "Resource temporarily unavailable" in res.stderr  # the pids limit stopped it
    await box.reset()
    after = await box.exec("echo alive; ps -e --no-headers | wc -l", timeout=20)
    assert after.stdout.split()[0] == "alive"
    assert int(after.stdout.split()[1]) < 10  # nothing of the bomb is left


async def test_runaway_command_is_killed_at_timeout(box: Sandbox):
    tag = f"{1000 + os.getpid() % 1000}.{int(time.time() * 1000) % 1000}"
    t = time.monotonic()
    res = await box.exec(f"setsid sleep {tag} & setsid -f sleep {tag} >/dev/null 2>&1 < /dev/null; sleep {tag}",
                         timeout=2)
    took = time.monotonic() - t
    assert res.timed_out and res.exit_code == 124 and "timed out" in res.stderr
    assert took < 10, took
    time.sleep(0.2)
    assert host_pids(f"sleep {tag}") == []
    assert (await box.exec("echo still-usable")).stdout.strip() == "still-usable"


async def test_memory_over_limit_is_killed(box: Sandbox):
    res = await box.exec("python3 -c \"x = b'x' * (600 << 20); print('survived', len(x))\"", timeout=30)
    assert "survived" not in res.stdout
    assert res.exit_code != 0
    assert (await box.exec("echo ok")).stdout.strip() == "ok"


async def test_pool_hands_out_warm_sandboxes(backend, spec):
    async with SandboxPool(backend, size=1) as pool:
        await pool.warm(spec)
        t = time.perf_counter()
        box = await pool.acquire(spec)
        assert time.perf_counter() - t < 0.5
        await box.exec("echo dirty > /work/pkg/mod.py")
        await pool.release(box)  # reset in place and kept
        again = await pool.acquire(spec)
        assert "dirty" not in (await again.exec("cat /work/pkg/mod.py")).stdout
        await pool.release(again, reuse=False)


OWNER_SCRIPT = """
import asyncio, sys, time
sys.path.insert(0, {root!r})
from tests.swe.conftest import make_backend
from agentgym.sandbox.base import SandboxSpec
async def main():
    backend = make_backend({name!r})
    box = await backend.create(SandboxSpec(key="reaper-test", source=None, setup="true"))
    await box.exec("true")
    print("READY", box.id, flush=True)
    time.sleep(600)
asyncio.run(main())
"""


@pytest.mark.parametrize("name", [pytest.param("bwrap"), pytest.param("docker", marks=pytest.mark.docker)])
def test_reaper_removes_sandboxes_of_a_killed_owner(name):
    backend = make_backend(name)  # skips if unavailable
    proc = subprocess.Popen([sys.executable, "-c", OWNER_SCRIPT.format(root=str(ROOT), name=name)],
                            stdout=subprocess.PIPE, text=True, cwd=ROOT,
                            env={**os.environ, "AGENTGYM_NO_JANITOR": "1"})  # the reaper's job, not the janitor's
    try:
        line = proc.stdout.readline()
        assert line.startswith("READY"), line
        sid = line.split()[1]
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    report = reap(docker=name == "docker", bwrap=name == "bwrap")
    if name == "docker":
        assert sid in report.containers
        assert backend.client.containers.list(all=True, filters={"name": sid}) == []
    else:
        from agentgym.sandbox.bwraphost import bwrap_home

        assert sid in report.bwrap
        assert not (bwrap_home() / "run" / sid).exists()
        assert not Path(f"/sys/fs/cgroup/pids/agentgym/{sid}").exists()


async def test_reaper_spares_live_owners(backend, spec):
    box = await backend.create(spec)
    try:
        report = reap(docker=backend.name == "docker", bwrap=backend.name == "bwrap")
        assert box.id not in report.containers + report.bwrap
        assert await box.is_alive()
    finally:
        await box.close()


def test_owner_labels_round_trip():
    from agentgym.sandbox.base import Owner

    me = Owner()
    assert me.alive()
    assert Owner.from_labels(json.loads(json.dumps(me.labels()))).alive()
    assert not Owner(pid=me.pid, start="1", boot=me.boot).alive()
