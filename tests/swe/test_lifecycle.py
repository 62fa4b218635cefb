"""Nothing is left behind: after a clean exit, and after ``kill -9`` of an eval or a train in
the middle of an episode, there are no containers, no sandbox processes, no run dirs and no
cgroups once the next agentgym command has started (both backends)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agentgym.sandbox.base import LABEL
from envs.swe.tasks import shipped_tasks

from .conftest import make_backend

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
BACKENDS = [pytest.param("bwrap", id="bwrap"), pytest.param("docker", id="docker", marks=pytest.mark.docker)]


def task():
    return min(shipped_tasks(), key=lambda t: (t.reference["package"] != "cachetools", len(t.reference["PASS_TO_PASS"])))


def bash_call(cmd: str) -> str:
    return "<tool_call>" + json.dumps({"name": "bash", "arguments": {"cmd": cmd}}) + "</tool_call>"


def agentgym(*args: str, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "agentgym", *args], cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)


class Leftovers:
    """What sandboxes of one owner pid exist now, in both backends."""

    def __init__(self, name: str):
        self.name = name
        self.backend = make_backend(name)
        self.seen: set[str] = set()

    def sandboxes(self, pid: int) -> set[str]:
        if self.name == "docker":
            found = {c.name for c in self.backend.client.containers.list(
                all=True, filters={"label": f"{LABEL}.owner_pid={pid}"})}
        else:
            from agentgym.sandbox.bwraphost import bwrap_home

            found = set()
            for d in (bwrap_home() / "run").iterdir():
                try:
                    if json.loads((d / "owner.json").read_text()).get(f"{LABEL}.owner_pid") == str(pid):
                        found.add(d.name)
                except (OSError, ValueError):
                    continue
        self.seen |= found
        return found

    def cgroups(self) -> set[str]:
        from agentgym.sandbox import cgroups

        return {name for name in cgroups.leftover_groups() if name in self.seen}

    def processes(self, tag: str, pid: int) -> list[str]:
        out = subprocess.run(["ps", "-eo", "pid=,args="], capture_output=True, text=True, check=True).stdout.splitlines()
        return [line for line in out if int(line.split()[0]) != os.getpid() and (
            tag in line or any(sid in line for sid in self.seen) or f"--owner {pid}:" in line)]

    def wait_until_clean(self, pid: int, tag: str, seconds: float = 30.0) -> None:
        end = time.monotonic() + seconds
        while True:
            state = {"sandboxes": self.sandboxes(pid), "cgroups": self.cgroups(), "processes": self.processes(tag, pid)}
            if not any(state.values()):
                return
            if time.monotonic() > end:
                pytest.fail(f"left behind after {seconds:g} s: {state}")
            time.sleep(0.2)


def wait_for(predicate, seconds: float, proc: subprocess.Popen, what: str) -> None:
    end = time.monotonic() + seconds
    while not predicate():
        if proc.poll() is not None:
            pytest.fail(f"the process ended before {what}: {proc.stdout.read()[-3000:]}")
        if time.monotonic() > end:
            proc.kill()
            pytest.fail(f"no {what} after {seconds:g} s: {proc.stdout.read()[-3000:] if proc.stdout else ''}")
        time.sleep(0.1)


def tag_for(name: str) -> str:
    return f"{4000 + os.getpid() % 1000}.{int(time.time() * 1000) % 100000}{len(name)}"


def next_command() -> None:
    """The next agentgym command starts (and finishes)."""
    proc = agentgym("envs", "list")
    proc.communicate(timeout=120)


CLEAN_EXIT = """
import os
import agentgym
from envs.swe.tasks import shipped_tasks
task = min(shipped_tasks(), key=lambda t: (t.reference["package"] != "cachetools", len(t.reference["PASS_TO_PASS"])))
env = agentgym.make("swe/v0", backend={name!r}, task=task, cmd_timeout=60)
env.reset(seed=0)
obs, *_ = env.step({action!r})
env.progress()  # a second sandbox, for grading
print("READY", os.getpid(), obs["content"][:200], flush=True)
# no env.close(): a script that just ends
"""


@pytest.mark.parametrize("name", BACKENDS)
def test_a_clean_exit_closes_every_sandbox(name):
    leftovers = Leftovers(name)
    tag = tag_for(name)
    action = bash_call(f"(setsid sleep {tag} >/dev/null 2>&1 &); (setsid sh -c 'while :; do :; done; : {tag}' "
                       ">/dev/null 2>&1 &); echo started")
    proc = subprocess.run([sys.executable, "-c", CLEAN_EXIT.format(name=name, action=action)], cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT), "AGENTGYM_NO_JANITOR": "1"},  # the hook alone
                          capture_output=True, text=True, timeout=300, check=False)
    assert "READY" in proc.stdout and proc.returncode == 0, proc.stdout + proc.stderr
    assert "cannot schedule new futures" not in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    pid = int(proc.stdout.split("READY", 1)[1].split()[0])
    # closed by the exit hook itself, before the interpreter was gone: nothing to wait for
    assert leftovers.sandboxes(pid) == set()
    leftovers.wait_until_clean(pid, tag, seconds=5)


SUITE = """
name: swe_kill
envs:
  - id: swe/v0
    kwargs: {{backend: {name}, cmd_timeout: 300}}
    tasks: tasks.jsonl
    num_tasks: 1
    samples: 2
    max_turns: 5
"""


@pytest.mark.parametrize("name", BACKENDS)
def test_kill_9_of_an_eval_mid_episode_leaves_nothing(name, tmp_path):
    leftovers = Leftovers(name)
    tag = tag_for(name)
    (tmp_path / "tasks.jsonl").write_text(task().model_dump_json() + "\n")
    (tmp_path / "suite.yaml").write_text(SUITE.format(name=name))
    (tmp_path / "actions.txt").write_text(bash_call(
        f"(setsid sleep {tag} >/dev/null 2>&1 &); (setsid sh -c 'while :; do :; done; : {tag}' >/dev/null 2>&1 &); "
        f"sleep 600; : {tag}") + "\n")
    proc = agentgym("eval", "--suite", str(tmp_path / "suite.yaml"), "--policy",
                    f"scripted:replay:{tmp_path / 'actions.txt'}", "--out", str(tmp_path / "run"), "--no-progress")
    try:
        wait_for(lambda: len(leftovers.processes(tag, proc.pid)) >= 2 and leftovers.sandboxes(proc.pid), 240, proc,
                 "agent processes in a sandbox")
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    assert leftovers.seen
    next_command()
    leftovers.wait_until_clean(proc.pid, tag)


@pytest.mark.parametrize("name", BACKENDS)
def test_kill_9_of_a_train_mid_episode_leaves_nothing(name, tmp_path, tiny_folder):
    leftovers = Leftovers(name)
    config = {"name": "swe-kill", "run_dir": str(tmp_path / "run"), "model": {"policy": f"hf:{tiny_folder}"},
              "envs": [{"id": "swe/v0", "kwargs": {"backend": name, "cmd_timeout": 60}}],
              "rollout": {"group_size": 2, "groups_per_step": 2, "max_tokens": 8, "max_turns": 3},
              "trainer": {"steps": 100}, "eval": {"at_start": False, "at_end": False},
              "checkpoint": {"every": 1000}, "logging": {"tensorboard": False}}
    (tmp_path / "swe.yaml").write_text(json.dumps(config))  # JSON is YAML
    proc = agentgym("train", str(tmp_path / "swe.yaml"), "--no-progress")
    try:
        wait_for(lambda: leftovers.sandboxes(proc.pid), 300, proc, "sandbox")
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    next_command()
    leftovers.wait_until_clean(proc.pid, tag="agentgym-no-tag")
