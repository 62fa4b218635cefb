"""Which sandbox backend a SWE env uses, and the warm pools its instances share.

Kept apart from :mod:`envs.swe.env` because choosing a backend is process-wide state, not
an episode's: one pool per (backend, limits, size, reuse) serves every env instance in this
process, and the first pool made also removes what crashed runs left behind. ``agentgym swe``
(:mod:`envs.swe.cli`) picks a backend the same way without loading the environment.
"""

from __future__ import annotations

import logging

from agentgym.errors import UserError
from agentgym.sandbox.base import Limits, SandboxError
from agentgym.sandbox.pool import SandboxPool

_POOLS: dict[tuple, SandboxPool] = {}
log = logging.getLogger(__name__)


def make_backend(name: str, limits: Limits):
    """``"docker"``, ``"bwrap"``, or ``"auto"`` (docker when a daemon answers, else bwrap)."""
    if name in ("docker", "auto"):
        try:
            from agentgym.sandbox.docker import DockerBackend

            return DockerBackend(limits=limits)
        except SandboxError as exc:
            if name == "docker":
                raise UserError(str(exc)) from exc
    if name in ("bwrap", "auto"):
        from agentgym.sandbox.bwrap import BwrapBackend

        try:
            return BwrapBackend(limits=limits)
        except SandboxError as exc:
            raise UserError(str(exc)) from exc
    raise UserError(f"unknown sandbox backend {name!r}; use docker, bwrap or auto.")


def shared_pool(backend: str, limits: Limits, size: int, reuse: bool) -> SandboxPool:
    """One pool per (backend, limits) in this process, shared by every env instance.

    The first one also removes sandboxes that crashed runs left behind. Every sandbox is
    closed when the process exits (:mod:`agentgym.sandbox.lifecycle`).
    """
    key = (backend, limits, size, reuse)
    if key not in _POOLS:
        impl = make_backend(backend, limits)
        if not _POOLS:
            _reap_dead(impl)
        _POOLS[key] = SandboxPool(impl, size=size, limits=limits, reuse=reuse)
    return _POOLS[key]


def _reap_dead(backend) -> None:
    from agentgym.sandbox.reaper import reap

    try:
        reap(docker=backend.name == "docker", bwrap=backend.name == "bwrap",
             client=getattr(backend, "client", None))
    except Exception as exc:  # best effort: never block an episode on cleanup
        log.debug("reaping leftovers failed: %s", exc)
