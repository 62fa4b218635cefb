"""A local Ray cluster for the tests (2 CPUs, no dashboard, a small object store), stopped at the end.

The teardown checks that the cluster's own processes (raylet, GCS server) are gone.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

ray = pytest.importorskip("ray")
psutil = pytest.importorskip("psutil")

RAY_DAEMONS = ("raylet", "gcs_server")


def ray_daemons(since: float = 0.0) -> list[psutil.Process]:
    """raylet / gcs_server processes started after ``since`` (a ``time.time()``)."""
    found = []
    for proc in psutil.process_iter(["name", "cmdline", "create_time"]):
        try:
            text = " ".join([proc.info["name"] or "", *(proc.info["cmdline"] or [])[:1]])
            if any(d in text for d in RAY_DAEMONS) and proc.info["create_time"] >= since - 1 \
                    and proc.status() != psutil.STATUS_ZOMBIE:
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


@pytest.fixture(scope="session")
def ray_cluster():
    """``ray.init(num_cpus=2, include_dashboard=False, object_store_memory=200 MiB)`` for the session."""
    if ray.is_initialized():
        ray.shutdown()
    started = time.time()
    root = str(Path(__file__).resolve().parents[2])  # workers import agentgym and tests.* from this checkout
    path = os.pathsep.join([root, *[p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]])
    ray.init(num_cpus=2, include_dashboard=False, object_store_memory=200 * 2**20, namespace="agentgym-tests",
             log_to_driver=False, runtime_env={"env_vars": {"PYTHONPATH": path}})
    daemons = ray_daemons(started)
    assert daemons, "ray.init started no raylet/gcs_server we can see"
    yield ray
    ray.shutdown()
    deadline = time.time() + 30
    while time.time() < deadline and any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in daemons):
        time.sleep(0.5)
    left = [p.pid for p in daemons if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert not left, f"Ray processes left after ray.shutdown(): {left}"
