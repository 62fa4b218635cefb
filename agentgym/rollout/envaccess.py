"""How the rollout engine reaches environments: within its concurrency limits and timeouts.

:class:`EnvAccess` is the part of :class:`~agentgym.rollout.engine.RolloutEngine` that
creates environments through the engine's factory and calls them: at most
``env_concurrency`` sessions per env id or family (sandboxes are expensive) and
``max_concurrent_episodes`` episodes in total, every call bounded by ``step_timeout_s``,
and optional hooks (progress, hint) whose failure never ends an episode. Guidance reaches
environments through the same methods (``env_session``, ``env_call``, ``hint``), so it
respects the same limits.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from agentgym.core.factory import EnvFactory
from agentgym.core.protocol import AsyncEnv
from agentgym.rollout.config import RolloutConfig
from agentgym.rollout.deadlines import Deadlines


class EnvTimeout(RuntimeError):
    """An environment call (reset, step, hook, close) exceeded ``step_timeout_s``."""


def deadlines_for(config: RolloutConfig) -> Deadlines:
    """The engine's step timeouts: an overrun is stopped within an eighth of the limit (at most 1 s)."""
    return Deadlines(min(1.0, (config.step_timeout_s or 60.0) / 8))


class EnvAccess:
    """Environments within the engine's limits (see the module docstring); a base of ``RolloutEngine``."""

    config: RolloutConfig
    factory: EnvFactory
    _episode_slots: asyncio.Semaphore | None
    _env_slots: dict[str, asyncio.Semaphore]
    _loop: asyncio.AbstractEventLoop | None
    _deadlines: Deadlines

    @contextlib.asynccontextmanager
    async def env_session(self, env_id: str, env_kwargs: dict[str, Any] | None = None) -> AsyncIterator[AsyncEnv]:
        """An environment from the factory, within the env's concurrency limit; closed on exit."""
        self._bind_loop()
        async with self._env_slot(env_id):
            # not bounded by step_timeout_s: a first creation may load a corpus or build an index
            env = await self.factory.create(env_id, dict(env_kwargs or {}))
            try:
                yield env
            finally:
                await _close(env, self._deadlines, self.config.step_timeout_s or 60.0)

    async def env_call(self, call: Awaitable[Any], what: str) -> Any:
        """Await an environment call within ``step_timeout_s``."""
        limit = self.config.step_timeout_s
        if limit is None:
            return await call
        try:
            return await self._deadlines.within(call, limit)
        except asyncio.TimeoutError:
            raise EnvTimeout(f"the environment's {what} took longer than {limit} s") from None

    async def hint(self, env: AsyncEnv) -> str | None:
        """The env's current hint, or None (also when asking fails: guidance never ends an episode)."""
        return await self._optional(env.ahint(), "hint", str)

    async def _progress(self, env: AsyncEnv) -> float | None:
        """``env.aprogress()`` (state progress in [0, 1]), read by retrospective progress rewards."""
        return await self._optional(env.aprogress(), "progress", float)

    async def _optional(self, call: Awaitable[Any], what: str, convert: Callable[[Any], Any]) -> Any:
        """An optional hook's converted value, or None when it has none or fails (bookkeeping and
        guidance never end an episode); bounded by ``step_timeout_s``."""
        try:
            value = await self.env_call(call, what)
            return None if value is None else convert(value)
        except Exception:
            return None

    def _bind_loop(self) -> None:
        loop = asyncio.get_running_loop()
        if loop is self._loop:
            return
        self._loop = loop
        self._episode_slots = asyncio.Semaphore(self.config.max_concurrent_episodes)
        self._env_slots = {}

    def _env_slot(self, env_id: str) -> asyncio.Semaphore | _NoLimit:
        limits = self.config.env_concurrency
        family = env_id.rsplit("/v", 1)[0]
        key, limit = env_id, limits.get(env_id)
        if limit is None:
            key, limit = family, limits.get(family, self.config.default_env_concurrency)
        if limit is None:
            return _NO_LIMIT
        if key not in self._env_slots:
            self._env_slots[key] = asyncio.Semaphore(limit)
        return self._env_slots[key]


class _NoLimit:
    async def __aenter__(self) -> None:
        return None

    async def __aexit__(self, *exc: Any) -> None:
        return None


_NO_LIMIT = _NoLimit()


async def _close(env: AsyncEnv, deadlines: Deadlines, limit: float) -> None:
    """Close within ``limit`` seconds (a close behind a hung hook must not hang the episode)."""
    try:
        await deadlines.within(env.aclose(), limit)
    except Exception:  # closing must not hide the episode's own outcome
        pass
