"""The environment server's HTTP side (aiohttp): OpenEnv's routes, agentgym's, auth, the WebSocket.

Routes (all JSON):

* ``GET /health``: ``{"status": "healthy"}`` (never needs the token: for load balancers);
* ``GET /metadata[?env_id=ID]``: OpenEnv's environment metadata (name, description, version...);
* ``GET /schema``: JSON schemas of the step data (``action``), ``observation``, ``state`` and ``reset``;
* ``GET /envs``: the hosted environments with their descriptions and default arguments;
* ``GET /metrics``: sessions open, steps/s, messages, errors by code, latency quantiles;
* ``POST /validate`` ``{"env_id", "kwargs"}``: whether creating that environment would work;
* ``POST /tasks`` ``{"env_id", "kwargs", "split", "count", "seed"}``: the env's deterministic task set;
* ``GET /ws``: one session per connection (the protocol is in :mod:`agentgym.server.messages`).

With a token, every route but ``/health`` needs ``Authorization: Bearer TOKEN`` (compared in
constant time; 401 without it). No answer ever carries a traceback: failures are one
sentence, the traceback goes to the server's log.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import time
from typing import Any

from aiohttp import WSCloseCode, WSMsgType, web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agentgym import __version__
from agentgym.core.registry import registry, spec
from agentgym.core.task import Split
from agentgym.core.workers import off_loop
from agentgym.errors import UserError
from agentgym.server import messages as msg
from agentgym.server.messages import ErrorCode, ProtocolError
from agentgym.server.metrics import Metrics
from agentgym.server.sessions import CapacityReached, Session, SessionManager

log = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 1 << 20
"""Default largest client message answered normally; larger ones get ``VALIDATION_ERROR``."""
PIPELINE = 16
"""Messages a client may send ahead of the answers before the server stops reading its socket."""


class EnvServer:
    """Hosts registered environments over OpenEnv's protocol (see the module docstring).

    ``envs``: ids (or family names) to host, None for every registered one. ``token``: the
    bearer token clients must send, None for none. ``max_message_bytes``: larger messages
    are answered with ``VALIDATION_ERROR``; beyond four times that the connection is closed
    (code 1009) without reading them.
    """

    def __init__(self, *, envs: list[str] | None = None, max_sessions: int = 256,
                 idle_timeout_s: float | None = 600.0, token: str | None = None,
                 max_message_bytes: int = MAX_MESSAGE_BYTES):
        if token is not None and not token:
            raise UserError("the token is empty; put a long random string in the token file.")
        if max_message_bytes < 1024:
            raise UserError("--max-message-bytes must be at least 1024.")
        self.manager = SessionManager(envs=envs, max_sessions=max_sessions, idle_timeout_s=idle_timeout_s)
        registry()  # entry points load now, not on the event loop when the first client resets
        self.metrics = Metrics()
        self.token = token.encode() if token else None
        self.max_message_bytes = max_message_bytes

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._guard], client_max_size=self.max_message_bytes)
        app.router.add_get("/health", self.health)
        app.router.add_get("/metadata", self.metadata)
        app.router.add_get("/schema", self.schema)
        app.router.add_get("/envs", self.envs)
        app.router.add_get("/metrics", self.metrics_route)
        app.router.add_post("/validate", self.validate)
        app.router.add_post("/tasks", self.tasks)
        app.router.add_get("/ws", self.websocket)
        app.on_shutdown.append(self._shutdown)
        return app

    # ----------------------------------------------------------------- HTTP
    @web.middleware
    async def _guard(self, request: web.Request, handler):
        """Bearer token check, and JSON errors without tracebacks for everything else that fails."""
        if self.token is not None and request.path != "/health":
            given = request.headers.get("Authorization", "")
            scheme, _, value = given.partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(value.strip().encode(), self.token):
                self.metrics.error("UNAUTHORIZED")
                return _json_error(401, "UNAUTHORIZED",
                                   "this server needs 'Authorization: Bearer TOKEN' with the token from its "
                                   "--token-file", headers={"WWW-Authenticate": "Bearer"})
        try:
            return await handler(request)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            return _json_error(exc.status, "HTTP_ERROR", exc.reason)
        except ProtocolError as exc:
            status = 400 if exc.code in (ErrorCode.VALIDATION_ERROR, ErrorCode.INVALID_JSON) else 422
            return _json_error(status, exc.code.value, exc.message)
        except ValidationError as exc:
            return _json_error(400, ErrorCode.VALIDATION_ERROR.value,
                               f"invalid request: {msg.first_error(exc)}")
        except Exception:
            log.exception("%s %s failed", request.method, request.path)
            return _json_error(500, "INTERNAL_ERROR", "the server failed on this request; see its log")

    async def health(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "healthy"})

    async def metadata(self, request: web.Request) -> web.Response:
        env_id = request.query.get("env_id")
        if env_id:
            env_spec = spec(self.manager.resolve(env_id))
            name, description = env_spec.id, env_spec.description or env_spec.id
        else:
            ids = self.manager.hosted_ids()
            name = "agentgym"
            description = f"agentgym environments over the OpenEnv protocol ({len(ids)} hosted: GET /envs)"
        return web.json_response({"name": name, "description": description, "readme_content": None,
                                  "version": __version__, "author": "agentgym", "documentation_url": None})

    async def schema(self, request: web.Request) -> web.Response:
        return web.json_response(msg.schemas())

    async def envs(self, request: web.Request) -> web.Response:
        out = []
        for env_id in self.manager.hosted_ids():
            s = spec(env_id)
            out.append({"id": s.id, "description": s.description, "defaults": msg.jsonable(s.kwargs),
                        "suites": list(s.suites)})
        return web.json_response({"envs": out, "max_sessions": self.manager.max_sessions,
                                  "idle_timeout_s": self.manager.idle_timeout_s})

    async def metrics_route(self, request: web.Request) -> web.Response:
        return web.json_response(self.snapshot())

    def snapshot(self) -> dict[str, Any]:
        """The metrics with the session gauges."""
        m = self.manager
        return self.metrics.snapshot(sessions_open=len(m.sessions), sessions_max=m.max_sessions,
                                     sessions_total=m.opened_total, envs_open=m.envs_open)

    async def validate(self, request: web.Request) -> web.Response:
        body = _Creation.model_validate(await _body(request))
        env_id = self.manager.resolve(body.env_id)
        try:
            await off_loop(self.manager.factory.validate, env_id, body.kwargs)  # may import the env's module
        except UserError as exc:
            raise ProtocolError(ErrorCode.FACTORY_ERROR, str(exc)) from None
        return web.json_response({"env_id": env_id, "ok": True})

    async def tasks(self, request: web.Request) -> web.Response:
        body = _TaskQuery.model_validate(await _body(request))
        env_id = self.manager.resolve(body.env_id)
        try:
            tasks = await self.manager.factory.tasks(env_id, body.kwargs, split=body.split, count=body.count,
                                                     seed=body.seed)
        except UserError as exc:  # bad kwargs, no generator, too few distinct tasks
            raise ProtocolError(ErrorCode.VALIDATION_ERROR, str(exc)) from None
        except Exception as exc:
            log.warning("drawing tasks of %s failed", env_id, exc_info=True)
            raise ProtocolError(ErrorCode.EXECUTION_ERROR,
                                f"drawing tasks of {env_id} failed: {type(exc).__name__}: {exc}") from None
        return web.json_response({"env_id": env_id, "tasks": [t.model_dump(mode="json") for t in tasks]})

    # ----------------------------------------------------------------- WebSocket
    async def websocket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=4 * self.max_message_bytes, heartbeat=None)
        await ws.prepare(request)
        try:
            session = self.manager.open()
        except CapacityReached as exc:
            self.metrics.error(ErrorCode.CAPACITY_REACHED.value)
            await _send(ws, msg.error(ErrorCode.CAPACITY_REACHED, str(exc),
                                      active_sessions=len(self.manager.sessions),
                                      max_sessions=self.manager.max_sessions))
            await ws.close(code=WSCloseCode.TRY_AGAIN_LATER, message=b"capacity reached")
            return ws

        async def server_close(reason: str) -> None:
            self.metrics.error(ErrorCode.SESSION_ERROR.value)
            await _send(ws, msg.error(ErrorCode.SESSION_ERROR, reason))
            await ws.close(code=WSCloseCode.GOING_AWAY, message=b"session ended")

        session.on_server_close = server_close
        inbox: asyncio.Queue[str | bytes] = asyncio.Queue(PIPELINE)
        worker = asyncio.create_task(self._serve(session, ws, inbox))
        try:
            async for frame in ws:  # reading goes on while a step runs, so a hang-up is seen at once
                if frame.type in (WSMsgType.TEXT, WSMsgType.BINARY):
                    await inbox.put(frame.data)
                elif frame.type == WSMsgType.ERROR:
                    log.info("session %s: %s", session.id, ws.exception())
                    break
        finally:
            if not worker.done():
                worker.cancel()  # the client is gone: stop whatever its env is doing
            await asyncio.gather(worker, return_exceptions=True)
            await self.manager.close(session)
            if not ws.closed:
                await ws.close()
        return ws

    async def _serve(self, session: Session, ws: web.WebSocketResponse, inbox: asyncio.Queue) -> None:
        """Answer one session's messages in the order they came."""
        while True:
            text = await inbox.get()
            if session.closed:
                return
            started = time.perf_counter()
            session.busy += 1
            session.touch()
            kind = "?"
            try:
                kind, data = msg.parse(text, self.max_message_bytes)
                if kind == "close":
                    await self.manager.close(session)
                    await ws.close()
                    return
                answer = await getattr(session, kind)(data)
                self.metrics.record(kind, time.perf_counter() - started)
            except ProtocolError as exc:
                self.metrics.error(exc.code.value)
                answer = msg.error(exc.code, exc.message, **exc.extra)
            except Exception as exc:  # our own bug: the client gets a sentence, the log the traceback
                log.exception("session %s: %s failed", session.id, kind)
                self.metrics.error(ErrorCode.EXECUTION_ERROR.value)
                answer = msg.error(ErrorCode.EXECUTION_ERROR, f"the server failed on this {kind} message "
                                   f"({type(exc).__name__}); see its log")
            finally:
                session.busy -= 1
                session.touch()
            if not await _send(ws, answer):
                return

    async def _shutdown(self, app: web.Application) -> None:
        await self.manager.close_all()


class _Creation(BaseModel):
    model_config = ConfigDict(extra="forbid")

    env_id: str | None = None
    kwargs: dict[str, Any] = Field(default_factory=dict)


class _TaskQuery(_Creation):
    split: Split = "test"
    count: int = Field(20, ge=1, le=100_000)
    seed: int = Field(0, ge=0)


async def _body(request: web.Request) -> Any:
    try:
        text = await request.text()
    except web.HTTPRequestEntityTooLarge:
        raise ProtocolError(ErrorCode.VALIDATION_ERROR, "the request body is too large") from None
    try:
        return json.loads(text) if text.strip() else {}
    except ValueError as exc:
        raise ProtocolError(ErrorCode.INVALID_JSON, f"the body is not valid JSON ({exc})") from None


async def _send(ws: web.WebSocketResponse, payload: dict[str, Any]) -> bool:
    """Send one answer; False when the connection is already gone."""
    if ws.closed:
        return False
    try:
        await ws.send_str(msg.dumps(payload))
        return True
    except (ConnectionError, RuntimeError):
        return False


def _json_error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"error": {"message": message, "code": code}}, status=status, headers=headers)


async def start_server(server: EnvServer, host: str, port: int) -> web.AppRunner:
    """Start serving on ``host:port``; returns the runner (``await runner.cleanup()`` stops it)."""
    runner = web.AppRunner(server.app(), access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port, reuse_address=True)
    try:
        await site.start()
    except BaseException:
        await runner.cleanup()
        raise
    return runner
