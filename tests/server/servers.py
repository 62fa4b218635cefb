"""``agentgym serve-envs`` as a real subprocess, for the tests that kill it or run evals against it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def child_env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}


def start_serve_envs(*args: str, probe: bool = False, log: Path) -> tuple[subprocess.Popen, str]:
    """Start ``agentgym serve-envs ARGS`` on a free port; ``probe`` also registers the tests' probe env.

    Returns the process and its ``ws://`` URL once ``/health`` answers.
    """
    port = free_port()
    argv = ["serve-envs", "--port", str(port), *args]
    if probe:  # the CLI's own main, after importing the module that registers server-probe/v0
        code = f"import sys, tests.server.conftest; from agentgym.cli import main; sys.exit(main({argv!r}))"
        cmd = [sys.executable, "-c", code]
    else:
        cmd = [sys.executable, "-m", "agentgym", *argv]
    proc = subprocess.Popen(cmd, stdout=log.open("w"), stderr=subprocess.STDOUT, env=child_env(), cwd=ROOT)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"serve-envs exited with {proc.returncode}: {log.read_text()}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1):
                return proc, f"ws://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("serve-envs did not answer /health within 120 s")


def metrics(url: str) -> dict:
    import json

    with urllib.request.urlopen("http" + url[2:] + "/metrics", timeout=5) as resp:
        return json.loads(resp.read())
