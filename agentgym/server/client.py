"""One remote environment: the async env protocol over one WebSocket session of ``serve-envs``.

A :class:`RemoteEnv` turns each protocol call into one message and its answer, in order:
``areset`` a ``reset`` (its env id and kwargs, the seed, the task), ``astep`` a ``step``
(the assistant message), ``ahint``/``aoracle_action`` a ``state`` asking for that hook.
Progress comes back with every reset and step (the engine reads it after each), and the
valid actions with the info, so those cost no extra round trip.

Any failure is a :class:`RemoteEnvError` with the reason: an error answer (its OpenEnv code
kept in ``code``), a connection that closed or broke (a server killed mid-episode), a call
abandoned halfway (a timeout: the session's answers are then out of step, so it is not used
again). The rollout engine ends that episode as failed with this reason; the rest go on.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any, Callable

import aiohttp

from agentgym.core.protocol import AsyncEnv, Message, StepResult
from agentgym.core.task import Task


class RemoteEnvError(RuntimeError):
    """The env server answered with an error, or the connection to it failed."""

    def __init__(self, message: str, code: str | None = None):
        super().__init__(message)
        self.code = code


class RemoteEnv(AsyncEnv):
    """An environment living in an env server's session (see the module docstring)."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse, url: str, env_id: str,
                 kwargs: dict[str, Any] | None = None, *, progress: bool = True,
                 on_close: Callable[[], None] | None = None):
        self.ws = ws
        self.url = url
        self.env_id = env_id
        self.kwargs = dict(kwargs or {})
        self._include = ["progress"] if progress else []
        self._on_close = on_close
        self._broken: str | None = None
        self._closed = False
        self._progress: tuple[bool, float | None] = (False, None)  # (known, value) for the current state
        self._valid: list[str] | None = None
        self.episode_id: str | None = None

    # ----------------------------------------------------------------- protocol
    async def areset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        data: dict[str, Any] = {"env_id": self.env_id, "kwargs": self.kwargs, "include": self._include}
        if seed is not None:
            data["seed"] = int(seed)
        options = dict(options or {})
        task = options.pop("task", None)
        if task is not None:
            data["task"] = task.model_dump(mode="json") if isinstance(task, Task) else task
        if options.get("task_id") is not None:
            data["task_id"] = str(options.pop("task_id"))
        if options:
            raise ValueError(f"a remote environment takes the reset options task and task_id, "
                             f"not {sorted(options)}")
        answer = await self._request("reset", data)
        meta = answer.get("metadata") or {}
        info = dict(meta.get("info") or {})
        if isinstance(info.get("task"), dict):
            info["task"] = Task.model_validate(info["task"])
        self.episode_id = meta.get("episode_id")
        self._remember(meta, info)
        messages = meta.get("messages") or [answer["observation"]]
        return dict(messages[0]), info

    async def astep(self, message: Message | str) -> StepResult:
        if isinstance(message, str):
            data: dict[str, Any] = {"action": message}
        else:
            reply: dict[str, Any] = {"role": "assistant", "content": message.get("content")}
            if message.get("tool_calls"):
                reply["tool_calls"] = message["tool_calls"]
            data = {"message": reply}
        data["include"] = self._include
        answer = await self._request("step", data)
        meta = answer.get("metadata") or {}
        info = dict(meta.get("info") or {})
        self._remember(meta, info)
        messages = [dict(m) for m in meta.get("messages") or [answer["observation"]]]
        terminated = bool(meta.get("terminated", answer["done"]))
        return StepResult(messages, float(answer.get("reward") or 0.0), terminated,
                          bool(meta.get("truncated", False)), info)

    async def aprogress(self) -> float | None:
        known, value = self._progress
        if not known:
            value = await self._hook("progress")
            self._progress = (True, value)
        return None if value is None else float(value)

    async def ahint(self) -> str | None:
        value = await self._hook("hint")
        return None if value is None else str(value)

    async def aoracle_action(self) -> Message | str | None:
        return await self._hook("oracle_action")

    async def avalid_actions(self) -> list[str] | None:
        if self._valid is not None:
            return list(self._valid)
        value = await self._hook("valid_actions")
        return None if value is None else [str(v) for v in value]

    async def aclose(self) -> None:
        """End the session (the server closes the env at once); idempotent, never raises."""
        if self._closed:
            return
        self._closed = True
        try:
            if not self.ws.closed and self._broken is None:
                await asyncio.wait_for(self.ws.send_str('{"type":"close"}'), 5)
            await asyncio.wait_for(self.ws.close(), 10)
        except (asyncio.TimeoutError, aiohttp.ClientError, ConnectionError, RuntimeError):
            pass
        finally:
            if self._on_close is not None:
                self._on_close()

    async def state(self) -> dict[str, Any]:
        """The session's state: ``episode_id``, ``step_count``, ``env_id``, ``done``."""
        return await self._request("state", {})

    # ----------------------------------------------------------------- internals
    def _remember(self, meta: dict[str, Any], info: dict[str, Any]) -> None:
        self._progress = (True, meta["progress"]) if "progress" in meta else (False, None)
        valid = info.get("valid_actions")
        self._valid = [str(v) for v in valid] if isinstance(valid, list) else None

    async def _hook(self, name: str) -> Any:
        return (await self._request("state", {"include": [name]})).get(name)

    async def _request(self, kind: str, data: dict[str, Any]) -> dict[str, Any]:
        """Send one message and read its answer; any failure is a :class:`RemoteEnvError`."""
        if self._closed:
            raise RemoteEnvError(f"the session with {self.url} is closed")
        if self._broken is not None:
            raise RemoteEnvError(f"the session with {self.url} cannot be used any more: {self._broken}")
        try:
            await self.ws.send_str(json.dumps({"type": kind, "data": data}, separators=(",", ":")))
            frame = await self.ws.receive()
        except asyncio.CancelledError:
            self._broken = f"a {kind} was abandoned before its answer came"
            raise
        except (aiohttp.ClientError, ConnectionError, RuntimeError) as exc:
            raise self._fail(f"the connection to {self.url} broke during {kind} "
                             f"({type(exc).__name__}: {exc})") from None
        if frame.type in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
            try:
                payload = json.loads(frame.data)
                answer_type, answer = payload["type"], payload.get("data") or {}
            except (ValueError, KeyError, TypeError) as exc:
                raise self._fail(f"the env server at {self.url} sent an unreadable answer to {kind} ({exc})")
            if answer_type == "error":
                code = answer.get("code")
                if code in ("SESSION_ERROR", "CAPACITY_REACHED"):
                    self._broken = str(answer.get("message"))
                raise RemoteEnvError(f"{self.env_id} at {self.url}: {answer.get('message')} ({code})",
                                     code=code)
            return answer
        code = self.ws.close_code
        reason = f"code {code}" if code is not None else str(self.ws.exception() or frame.type)
        raise self._fail(f"the connection to the env server at {self.url} was lost during {kind} ({reason})")

    def _fail(self, reason: str) -> RemoteEnvError:
        self._broken = reason
        return RemoteEnvError(reason)
