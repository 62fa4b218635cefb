"""Checks that run before any model loads: a broken env fails in a second, not after minutes.

``agentgym train`` and ``agentgym eval`` call :func:`check_env` for every environment they
will use: the factory's cheap ``validate`` (id and argument names), then one real episode
start (``create`` + ``areset`` + ``aclose``), so a constructor that cannot find its data, a
sandbox backend that is not there or a reset that raises is reported before the policy's
weights load. Each failure is one :class:`~agentgym.errors.UserError` line that starts with
where the entry was written (``configs/x.yaml: envs.0.id: ...``).

A reset slower than ``reset_timeout_s`` (an env that builds an image on first use) is not an
error: the check logs that it skipped the rest and the run goes on; ``validate`` has passed.
"""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path
from typing import Any

from agentgym.core.factory import EnvFactory
from agentgym.errors import UserError

log = logging.getLogger(__name__)

RESET_TIMEOUT_S = 120.0


async def check_env(factory: EnvFactory, env_id: str, kwargs: dict[str, Any] | None, *, where: str,
                    reset_timeout_s: float = RESET_TIMEOUT_S) -> None:
    """Validate ``env_id`` with ``kwargs`` and start one episode; raise one line prefixed by ``where``.

    ``where`` names the entry (``"configs/x.yaml: envs.0"``); the message adds ``.id`` or
    ``.kwargs`` after it, whichever the problem is in.
    """
    try:
        await asyncio.to_thread(factory.validate, env_id, kwargs)  # remote: an HTTP call
    except UserError as exc:
        key = "id" if str(exc).startswith("unknown environment") else "kwargs"
        raise UserError(f"{where}.{key}: {exc}") from exc
    try:
        await asyncio.wait_for(_one_reset(factory, env_id, kwargs), reset_timeout_s)
    except asyncio.TimeoutError:
        log.warning("%s: %s took over %.0f s to start an episode; checked its arguments only", where, env_id,
                    reset_timeout_s)
    except UserError as exc:  # the id is known: the env refused these arguments
        raise UserError(f"{where}.kwargs: {exc}") from exc
    except Exception as exc:  # an env's own bug or missing resource: one line, the cause named
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        detail = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
        raise UserError(f"{where}: {env_id} could not start an episode ({detail}); "
                        f"try `agentgym envs check {env_id}`.") from exc


async def _one_reset(factory: EnvFactory, env_id: str, kwargs: dict[str, Any] | None) -> None:
    env = await factory.create(env_id, dict(kwargs or {}))
    try:
        await env.areset(seed=0)
    finally:
        await env.aclose()


def check_writable_dir(path: Path, *, where: str) -> None:
    """Raise when ``path`` could not be created or written (checked without creating it)."""
    probe = Path(path)
    if probe.exists() and not probe.is_dir():
        raise UserError(f"{where}: {path} exists and is not a folder.")
    while not probe.exists():
        parent = probe.parent
        if parent == probe:
            break
        probe = parent
    if not probe.is_dir() or not os.access(probe, os.W_OK | os.X_OK):
        raise UserError(f"{where}: cannot write to {probe}; pick another folder.")
