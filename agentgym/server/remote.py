"""The remote env factory: ``remote:ws://HOST:PORT`` (or several, comma-separated).

Each :meth:`RemoteEnvFactory.create` opens one session on the server with the fewest
sessions this factory has open there (ties: the one used least), so a batch spreads
evenly over several servers. A server at capacity is skipped for the next; when every
server is full, creation waits (up to ``capacity_wait_s``) for a session to end. A server
that cannot be reached is skipped for a few seconds; when none can be reached creation
fails with the reason after a short retry, so a dead server fails its episodes quickly
instead of hanging the batch, and new episodes reconnect as soon as it is back. Each session
pings its server every ``heartbeat_s``: a server that stops answering (its host gone, the
network cut, the process frozen) fails the episode within 1.5 heartbeats, not at a timeout.

The bearer token, when the servers want one, comes from ``token=``, or the environment
variables ``AGENTGYM_ENV_TOKEN`` (the token) or ``AGENTGYM_ENV_TOKEN_FILE`` (a file holding it).
"""

from __future__ import annotations

import asyncio
import json
import os
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any, Sequence

import aiohttp

from agentgym.core.task import Split, Task
from agentgym.errors import UserError
from agentgym.server.client import RemoteEnv, RemoteEnvError

RETRY_DOWN_S = 2.0
"""A server that could not be reached is tried last for this long."""
CONNECT_ATTEMPTS = 3
"""Passes over the servers before creation gives up on reaching any (0.25 s, then 0.5 s apart)."""
MAX_MESSAGE_BYTES = 64 << 20
"""Largest answer a client accepts (observations can be large: files, pages)."""


@dataclass
class _Server:
    url: str  # ws://host:port, no path
    open: int = 0
    used: int = 0
    down_until: float = 0.0


class _Full(Exception):
    """The server answered the handshake with CAPACITY_REACHED."""


def server_urls(address: str | Sequence[str]) -> list[str]:
    """``ws://`` base URLs from a comma-separated string or a list; http(s) and bare host:port accepted."""
    items = address.split(",") if isinstance(address, str) else list(address)
    urls = []
    for item in (i.strip() for i in items):
        if not item:
            continue
        if item.startswith(("http://", "https://")):
            item = "ws" + item[4:]
        elif "://" not in item:
            item = f"ws://{item}"
        if not item.startswith(("ws://", "wss://")):
            raise UserError(f"env server address {item!r} must look like ws://HOST:PORT.")
        urls.append(item.rstrip("/").removesuffix("/ws"))
    if not urls:
        raise UserError("remote: needs at least one server address, e.g. remote:ws://127.0.0.1:8001.")
    return urls


def default_token() -> str | None:
    """The token from ``AGENTGYM_ENV_TOKEN`` or the file named by ``AGENTGYM_ENV_TOKEN_FILE``."""
    token = os.environ.get("AGENTGYM_ENV_TOKEN")
    if token:
        return token.strip()
    path = os.environ.get("AGENTGYM_ENV_TOKEN_FILE")
    if path:
        try:
            with open(path, encoding="utf-8") as fh:
                return fh.read().strip()
        except OSError as exc:
            raise UserError(f"cannot read AGENTGYM_ENV_TOKEN_FILE={path} ({exc.strerror}).") from exc
    return None


class RemoteEnvFactory:
    """An :class:`~agentgym.core.factory.EnvFactory` whose environments live on env servers."""

    def __init__(self, address: str | Sequence[str] = "", *, token: str | None = None, progress: bool = True,
                 connect_timeout_s: float = 10.0, capacity_wait_s: float = 60.0, heartbeat_s: float | None = 30.0):
        self.servers = [_Server(url) for url in server_urls(address)]
        self.token = token if token is not None else default_token()
        self.progress = progress
        self.connect_timeout_s = connect_timeout_s
        self.capacity_wait_s = capacity_wait_s
        self.heartbeat_s = heartbeat_s
        self._http: aiohttp.ClientSession | None = None
        self._http_loop: asyncio.AbstractEventLoop | None = None

    def __repr__(self) -> str:
        return f"RemoteEnvFactory({','.join(s.url for s in self.servers)!r})"

    @property
    def open_sessions(self) -> dict[str, int]:
        """Sessions this factory has open, per server."""
        return {s.url: s.open for s in self.servers}

    # ----------------------------------------------------------------- EnvFactory
    async def create(self, env_id: str, kwargs: dict[str, Any] | None = None) -> RemoteEnv:
        """A session on the least-loaded server that has room (see the module docstring)."""
        deadline = time.monotonic() + self.capacity_wait_s
        attempts, wait = 0, 0.25
        while True:
            full, errors = 0, []
            for server in self._by_load():
                try:
                    ws = await self._connect(server)
                except _Full:
                    full += 1
                    continue
                except RemoteEnvError as exc:
                    server.down_until = time.monotonic() + RETRY_DOWN_S
                    errors.append(str(exc))
                    continue
                server.open += 1
                server.used += 1
                return RemoteEnv(ws, server.url, env_id, kwargs, progress=self.progress,
                                 on_close=lambda s=server: setattr(s, "open", s.open - 1))
            if not full:
                attempts += 1
                if attempts >= CONNECT_ATTEMPTS:
                    raise RemoteEnvError(errors[0] if len(errors) == 1 else "no env server could be reached: "
                                         + "; ".join(errors))
            elif time.monotonic() > deadline:
                raise RemoteEnvError(f"every env server was at capacity for {self.capacity_wait_s:g} s "
                                     "(raise --max-sessions, add servers, or lower rollout env_concurrency)",
                                     code="CAPACITY_REACHED")
            await asyncio.sleep(wait)
            wait = min(wait * 2, 2.0)

    def validate(self, env_id: str, kwargs: dict[str, Any] | None = None) -> None:
        """Ask a server whether it hosts ``env_id`` and takes ``kwargs``; :class:`UserError` if not.

        A short blocking HTTP call (call it before the event loop starts, as the CLI does).
        """
        body = {"env_id": env_id, "kwargs": kwargs or {}}
        self._post_sync("/validate", body)

    async def tasks(self, env_id: str, kwargs: dict[str, Any] | None = None, *, split: Split = "test",
                    count: int = 20, seed: int = 0) -> list[Task]:
        """The env's deterministic task set, drawn on a server (the local machine need not host the env)."""
        body = {"env_id": env_id, "kwargs": kwargs or {}, "split": split, "count": count, "seed": seed}
        http = await self._session()
        errors = []
        for server in self._by_load():  # every server draws the same tasks: the first that answers
            try:
                async with http.post(_http(server.url) + "/tasks", json=body, headers=self._headers()) as resp:
                    payload = await resp.json(content_type=None)
            except (aiohttp.ClientError, OSError, ValueError) as exc:
                errors.append(f"{server.url} ({_reason(exc)})")
                continue
            if resp.status == 401:
                raise UserError(_refused_token(server.url))
            if resp.status != 200:
                raise UserError(f"{env_id} at {server.url}: {_message(payload) or f'HTTP {resp.status}'}")
            return [Task.model_validate(t) for t in payload["tasks"]]
        raise RemoteEnvError(f"cannot get the tasks of {env_id} from {', '.join(errors)}")

    async def aclose(self) -> None:
        http, self._http = self._http, None
        if http is not None and not http.closed:
            await http.close()

    # ----------------------------------------------------------------- internals
    def _by_load(self) -> list[_Server]:
        now = time.monotonic()
        return sorted(self.servers, key=lambda s: (s.down_until > now, s.open, s.used))

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    async def _session(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        if self._http is None or self._http.closed or self._http_loop is not loop:
            # no connection limit: every episode holds one WebSocket for its whole length
            self._http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
            self._http_loop = loop
        return self._http

    async def _connect(self, server: _Server) -> aiohttp.ClientWebSocketResponse:
        """Open a session and check it is accepted (the server refuses at capacity right after connecting)."""
        http = await self._session()
        try:
            ws = await asyncio.wait_for(http.ws_connect(server.url + "/ws", headers=self._headers(),
                                                        max_msg_size=MAX_MESSAGE_BYTES, autoping=True,
                                                        heartbeat=self.heartbeat_s),
                                        self.connect_timeout_s)
        except aiohttp.WSServerHandshakeError as exc:
            if exc.status == 401:
                raise UserError(_refused_token(server.url)) from None
            raise RemoteEnvError(f"the env server at {server.url} refused the session "
                                 f"(HTTP {exc.status})") from None
        except asyncio.TimeoutError:
            raise RemoteEnvError(f"connecting to the env server at {server.url} took longer than "
                                 f"{self.connect_timeout_s:g} s") from None
        except (aiohttp.ClientError, OSError) as exc:
            raise RemoteEnvError(f"cannot connect to the env server at {server.url} ({_reason(exc)}); "
                                 "is `agentgym serve-envs` running there?") from None
        try:
            await ws.send_str('{"type":"state"}')
            frame = await asyncio.wait_for(ws.receive(), self.connect_timeout_s)
            payload = json.loads(frame.data) if frame.type == aiohttp.WSMsgType.TEXT else None
        except (asyncio.TimeoutError, aiohttp.ClientError, ConnectionError, RuntimeError, ValueError) as exc:
            await ws.close()
            raise RemoteEnvError(f"the env server at {server.url} did not answer ({_reason(exc)})") from None
        except asyncio.CancelledError:  # the caller gave up: do not leave a session open on the server
            await asyncio.shield(ws.close())
            raise
        if payload is not None and payload.get("type") == "state":
            return ws
        await ws.close()
        data = (payload or {}).get("data") or {}
        if data.get("code") == "CAPACITY_REACHED":
            raise _Full()
        raise RemoteEnvError(f"the env server at {server.url} refused the session: "
                             f"{data.get('message') or f'connection closed ({ws.close_code})'}")

    def _post_sync(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        errors = []
        for server in self.servers:
            request = urllib.request.Request(_http(server.url) + path, data=json.dumps(body).encode(),
                                             headers={"Content-Type": "application/json", **self._headers()})
            try:
                with urllib.request.urlopen(request, timeout=self.connect_timeout_s) as resp:
                    return json.loads(resp.read())
            except urllib.error.HTTPError as exc:
                try:
                    payload = json.loads(exc.read())
                except ValueError:
                    payload = {}
                if exc.code == 401:
                    raise UserError(_refused_token(server.url)) from None
                message = _message(payload) or exc.reason
                raise UserError(f"{body.get('env_id')} at {server.url}: {message}") from None
            except (urllib.error.URLError, OSError, ValueError) as exc:
                errors.append(f"{server.url} ({_reason(exc)})")
        raise UserError(f"cannot reach the env server(s) {', '.join(errors)}; start one with "
                        "`agentgym serve-envs` or fix the remote: address.")


def _refused_token(url: str) -> str:
    return (f"the env server at {url} refused the token: set AGENTGYM_ENV_TOKEN (or AGENTGYM_ENV_TOKEN_FILE) "
            "to the token in its --token-file.")


def _http(url: str) -> str:
    return "http" + url[2:]


def _message(payload: Any) -> str:
    error = payload.get("error") if isinstance(payload, dict) else None
    return str(error.get("message")) if isinstance(error, dict) else ""


def _reason(exc: BaseException) -> str:
    errno = getattr(getattr(exc, "os_error", exc), "errno", None)
    if errno:
        return os.strerror(errno).lower()  # "connection refused", not the socket call's repr
    reason = getattr(exc, "reason", None) or getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    if isinstance(reason, BaseException):
        reason = getattr(reason, "strerror", None) or str(reason)
    return str(reason)
