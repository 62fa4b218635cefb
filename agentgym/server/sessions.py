"""Sessions of the environment server: one per WebSocket connection, none ever leaked.

A :class:`Session` holds at most one environment, created at the first ``reset`` (and
again when a reset names another id or other kwargs) through the local env factory, so
environments are built off the event loop and every sync hook of theirs runs on a worker
thread. Heavy state the environment classes share per process (search indexes, sandbox
image snapshots and pools) is therefore loaded once per server and shared by all sessions.

The :class:`SessionManager` caps open sessions (a connection beyond ``max_sessions`` is
refused with ``CAPACITY_REACHED``), closes sessions idle for ``idle_timeout_s`` (their
environments hold sandboxes and browsers), and closes every environment whose connection
is gone: :meth:`SessionManager.close` is called from the connection's ``finally``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from typing import Any, Awaitable, Callable

from agentgym.core.env import TextEnv
from agentgym.core.factory import EnvFactory, LocalEnvFactory
from agentgym.core.protocol import AsyncEnv
from agentgym.core.registry import registry, spec
from agentgym.errors import UserError
from agentgym.server import messages as msg
from agentgym.server.messages import ErrorCode, ProtocolError, ResetData, StateData, StepData

log = logging.getLogger(__name__)

CLOSE_TIMEOUT_S = 60.0
"""How long closing one environment may take (a close behind a hung hook must not hang the server)."""


class CapacityReached(Exception):
    """The server already holds ``max_sessions`` sessions."""


class Session:
    """One client's session: its environment, its episode, when it was last used."""

    def __init__(self, manager: "SessionManager"):
        self.id = uuid.uuid4().hex
        self.manager = manager
        self.env: AsyncEnv | None = None
        self.env_id: str | None = None
        self._env_key: str | None = None
        self.episode_id: str | None = None
        self.step_count = 0
        self.done = True
        self.busy = 0
        self.last_active = time.monotonic()
        self.closed = False
        #: Set by the transport: tells the client why the server ended the session, then hangs up.
        self.on_server_close: Callable[[str], Awaitable[None]] | None = None

    def touch(self) -> None:
        self.last_active = time.monotonic()

    # ----------------------------------------------------------------- messages
    async def reset(self, data: ResetData) -> dict[str, Any]:
        env_id = self.manager.resolve(data.env_id)
        key = json.dumps([env_id, data.kwargs], sort_keys=True, default=str)
        if self.env is None or key != self._env_key:
            await self._close_env()
            self.env = await self.manager.create(env_id, data.kwargs)
            self.env_id, self._env_key = env_id, key
        options: dict[str, Any] | None = None
        if data.task is not None:
            options = {"task": data.task}
        elif data.task_id is not None:
            options = {"task_id": data.task_id}
        self.done, self.episode_id, self.step_count = True, None, 0  # until the reset succeeds
        message, info = await self._call("reset", self.env.areset(seed=data.seed, options=options))
        self.episode_id = data.episode_id or uuid.uuid4().hex
        self.step_count = 0
        self.done = False
        extra = await self._includes(data.include)
        return msg.observation(message, None, False, info, [message], episode_id=self.episode_id,
                               step_count=0, **extra)

    async def step(self, data: StepData) -> dict[str, Any]:
        if self.env is None or self.episode_id is None:
            raise ProtocolError(ErrorCode.VALIDATION_ERROR, "no episode is running: send a reset first")
        if self.done:
            raise ProtocolError(ErrorCode.VALIDATION_ERROR,
                                f"episode {self.episode_id} is over: send a reset to start another")
        # text goes to a TextEnv as text: it reads tool calls written in it as the rollout engine does
        reply = data.action if data.action is not None and isinstance(self.env, TextEnv) else data.reply()
        try:
            result = await self._call("step", self.env.astep(reply))
        except ProtocolError:
            self.done = True  # an env that failed mid-step is in no known state: a reset must come first
            raise
        self.step_count += 1
        self.done = bool(result.done)
        extra = await self._includes(data.include)
        return msg.step_observation(result, episode_id=self.episode_id, step_count=self.step_count, **extra)

    async def state(self, data: StateData) -> dict[str, Any]:
        fields: dict[str, Any] = {"episode_id": self.episode_id, "step_count": self.step_count,
                                  "env_id": self.env_id, "done": self.done}
        fields.update(await self._includes(data.include))
        return msg.state(**fields)

    async def _includes(self, names: list[str]) -> dict[str, Any]:
        """The optional hooks asked for; null when there is no env or its hook fails (logged)."""
        out: dict[str, Any] = {}
        for name in dict.fromkeys(names):
            value = None
            if self.env is not None:
                try:
                    value = await getattr(self.env, f"a{name}")()
                except Exception:
                    log.warning("%s's %s hook failed", self.env_id, name, exc_info=True)
            out[name] = value
        return out

    async def _call(self, what: str, call: Awaitable[Any]) -> Any:
        try:
            return await call
        except UserError as exc:  # e.g. an unknown task_id, a task the env cannot play
            raise ProtocolError(ErrorCode.VALIDATION_ERROR, str(exc)) from None
        except Exception as exc:  # a bug in the env: the client gets one line, the log the traceback
            log.warning("%s failed in %s", self.env_id, what, exc_info=True)
            raise ProtocolError(ErrorCode.EXECUTION_ERROR,
                                f"{self.env_id} failed in {what}: {type(exc).__name__}: {exc}") from None

    async def _close_env(self) -> None:
        env, self.env, self._env_key = self.env, None, None
        self.done = True
        if env is not None:
            await close_env(env, self.env_id)


async def close_env(env: AsyncEnv, env_id: str | None) -> None:
    """Close an environment within :data:`CLOSE_TIMEOUT_S`; failures are logged, never raised."""
    try:
        await asyncio.wait_for(env.aclose(), CLOSE_TIMEOUT_S)
    except asyncio.TimeoutError:
        log.error("closing %s took longer than %s s; abandoned", env_id, CLOSE_TIMEOUT_S)
    except Exception:
        log.warning("closing %s failed", env_id, exc_info=True)


class SessionManager:
    """Opens, counts, reaps and closes sessions (see the module docstring)."""

    def __init__(self, *, envs: list[str] | None = None, max_sessions: int = 256,
                 idle_timeout_s: float | None = 600.0, factory: EnvFactory | None = None):
        if max_sessions < 1:
            raise UserError("--max-sessions must be at least 1.")
        if idle_timeout_s is not None and idle_timeout_s <= 0:
            raise UserError("--idle-timeout must be positive.")
        self.factory = factory or LocalEnvFactory()
        self.hosted: list[str] | None = sorted({spec(e).id for e in envs}) if envs else None
        self.max_sessions = max_sessions
        self.idle_timeout_s = idle_timeout_s
        self.sessions: dict[str, Session] = {}
        self.opened_total = 0
        self._reaper: asyncio.Task | None = None

    # ----------------------------------------------------------------- environments
    def hosted_ids(self) -> list[str]:
        """The ids this server serves (every registered one unless ``--env`` named some)."""
        return list(self.hosted) if self.hosted is not None else list(registry())

    def resolve(self, env_id: str | None) -> str:
        """The registered id a reset names; :class:`ProtocolError` when it is missing or not hosted."""
        if env_id is None:
            if self.hosted is not None and len(self.hosted) == 1:
                return self.hosted[0]
            raise ProtocolError(ErrorCode.VALIDATION_ERROR,
                                "reset needs an env_id: this server hosts several environments (GET /envs)")
        try:
            canonical = spec(env_id).id
        except UserError:
            canonical = None
        if canonical is None or (self.hosted is not None and canonical not in self.hosted):
            ids = self.hosted_ids()
            shown = ", ".join(ids[:12]) + (f" and {len(ids) - 12} more" if len(ids) > 12 else "")
            raise ProtocolError(ErrorCode.FACTORY_ERROR,
                                f"unknown environment {env_id!r}; this server hosts {shown} (GET /envs)")
        return canonical

    async def create(self, env_id: str, kwargs: dict[str, Any]) -> AsyncEnv:
        """A new environment from the local factory; creation failures are ``FACTORY_ERROR`` s."""
        try:
            return await self.factory.create(env_id, kwargs)
        except UserError as exc:  # unknown arguments, bad values, a missing extra
            raise ProtocolError(ErrorCode.FACTORY_ERROR, str(exc)) from None
        except Exception as exc:
            log.warning("creating %s failed", env_id, exc_info=True)
            raise ProtocolError(ErrorCode.FACTORY_ERROR,
                                f"creating {env_id} failed: {type(exc).__name__}: {exc}") from None

    # ----------------------------------------------------------------- sessions
    def open(self) -> Session:
        """A new session, or :class:`CapacityReached`."""
        if len(self.sessions) >= self.max_sessions:
            raise CapacityReached(f"the server has {len(self.sessions)} sessions open, its limit "
                                  f"(--max-sessions {self.max_sessions}); retry later or use another server")
        session = Session(self)
        self.sessions[session.id] = session
        self.opened_total += 1
        self._start_reaper()
        return session

    async def close(self, session: Session) -> None:
        """Close the session's environment and forget it; safe to call twice, never cancelled halfway."""
        if session.closed:
            return
        session.closed = True
        try:
            await asyncio.shield(session._close_env())
        finally:
            self.sessions.pop(session.id, None)

    async def end(self, session: Session, reason: str) -> None:
        """The server ends a session: the client is told why, then the connection and env are closed."""
        notify = session.on_server_close
        if notify is not None:
            try:
                await notify(reason)
            except Exception:
                log.debug("telling session %s it ends failed", session.id, exc_info=True)
        await self.close(session)

    async def close_all(self, reason: str = "the server is shutting down") -> None:
        if self._reaper is not None:
            self._reaper.cancel()
            self._reaper = None
        await asyncio.gather(*(self.end(s, reason) for s in list(self.sessions.values())))

    @property
    def envs_open(self) -> int:
        return sum(s.env is not None for s in self.sessions.values())

    def _start_reaper(self) -> None:
        if self.idle_timeout_s is not None and (self._reaper is None or self._reaper.done()):
            self._reaper = asyncio.get_running_loop().create_task(self._reap())

    async def _reap(self) -> None:
        """End sessions that sent nothing and ran nothing for ``idle_timeout_s``."""
        assert self.idle_timeout_s is not None
        period = min(self.idle_timeout_s / 4, 5.0)
        while self.sessions:
            await asyncio.sleep(period)
            now = time.monotonic()
            idle = [s for s in self.sessions.values()
                    if not s.busy and not s.closed and now - s.last_active > self.idle_timeout_s]
            for s in idle:
                log.info("session %s idle for %.0f s: closing it", s.id, now - s.last_active)
            reason = f"the session was idle for over {self.idle_timeout_s:g} s and was closed; open another"
            await asyncio.gather(*(self.end(s, reason) for s in idle))
