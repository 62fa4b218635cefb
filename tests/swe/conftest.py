"""Sandbox backends for the SWE tests: real bubblewrap and a real Docker daemon.

A missing backend skips its tests locally; under CI (``CI=true``) it fails them, so a
broken set-up cannot hide behind skips.
"""

from __future__ import annotations

import os

import pytest

from agentgym.sandbox.base import Limits, SandboxError

TEST_LIMITS = Limits(memory_mb=256, cpus=1.0, pids=64, timeout=20, max_output=4000)


def make_backend(name: str, limits: Limits = TEST_LIMITS):
    try:
        if name == "docker":
            from agentgym.sandbox.docker import DockerBackend

            return DockerBackend(limits=limits)
        from agentgym.sandbox.bwrap import BwrapBackend

        backend = BwrapBackend(limits=limits)
        backend._rootfs()
        return backend
    except SandboxError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"{name} backend unavailable in CI: {exc}")
        pytest.skip(f"{name} backend unavailable: {exc}")


BACKENDS = [pytest.param("bwrap", id="bwrap"), pytest.param("docker", id="docker", marks=pytest.mark.docker)]


@pytest.fixture(params=BACKENDS)
def backend_name(request) -> str:
    return request.param


@pytest.fixture
def backend(backend_name):
    return make_backend(backend_name)
