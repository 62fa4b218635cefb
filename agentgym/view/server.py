"""The ``agentgym view`` web server: one page, its local assets, HTML fragments, and live events.

Everything is served from this process: the page's own CSS and script (no CDN, no network), HTML
fragments that ``app.js`` puts in place, and ``/events``, a server-sent-event stream that says
which run changed on disk (a watcher polls file sizes and times once a second) so the open page
fetches just that run's fragments again, without a reload.

File work runs in worker threads, never on the event loop. A bad request parameter answers 400
with one sentence; anything unexpected answers 500 with a generic line and is logged here, so no
traceback ever reaches the page.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import errno
import json
import logging
from html import escape
from pathlib import Path
from typing import Any, Awaitable, Callable

from aiohttp import web

from agentgym.errors import UserError
from agentgym.view.viewer import Viewer

log = logging.getLogger(__name__)

ASSETS = Path(__file__).parent / "assets"
_ASSET_TYPES = {"app.js": "text/javascript", "app.css": "text/css"}
HEARTBEAT_S = 15.0

VIEWER = web.AppKey("viewer", Viewer)
CLIENTS = web.AppKey("clients", set)
WARMER = web.AppKey("warmer", concurrent.futures.ThreadPoolExecutor)
WARMING = web.AppKey("warming", set)


def create_app(viewer: Viewer, *, poll_s: float = 1.0) -> web.Application:
    """The aiohttp application serving ``viewer`` (``poll_s``: seconds between looks at the files)."""
    app = web.Application(middlewares=[_errors])
    app[VIEWER] = viewer
    app[CLIENTS] = set()
    app[WARMING] = set()
    # Summaries for the filters are built ahead, one file at a time, so they never take both cores.
    app[WARMER] = concurrent.futures.ThreadPoolExecutor(
        max_workers=1, thread_name_prefix="agentgym-view-index"
    )
    app.router.add_get("/", _index)
    app.router.add_get("/assets/{name}", _asset)
    app.router.add_get("/events", _events)
    for name, handler in _FRAGMENTS.items():
        app.router.add_get(f"/f/{name}", _fragment(handler))
    watcher: dict[str, asyncio.Task] = {}

    async def start(app: web.Application) -> None:
        watcher["task"] = asyncio.create_task(_watch(app, poll_s), name="agentgym-view-watch")

    async def stop(app: web.Application) -> None:
        for queue in list(app[CLIENTS]):
            queue.put_nowait(None)
        task = watcher.pop("task", None)
        if task is not None:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass
        app[WARMER].shutdown(wait=False, cancel_futures=True)

    app.on_startup.append(start)
    app.on_shutdown.append(stop)
    return app


@web.middleware
async def _errors(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]):
    try:
        return await handler(request)
    except web.HTTPException:
        raise
    except ValueError as exc:
        return web.Response(
            status=400, text=f'<p class="error">{escape(str(exc))}.</p>', content_type="text/html"
        )
    except Exception:  # a bug or a file that vanished: say so, log the details here only
        log.exception("error serving %s", request.path_qs)
        return web.Response(
            status=500,
            content_type="text/html",
            text='<p class="error">The viewer could not show this; the details are in its log.</p>',
        )


async def _index(request: web.Request) -> web.Response:
    text = await asyncio.to_thread((ASSETS / "index.html").read_text, encoding="utf-8")
    return web.Response(text=text, content_type="text/html", headers={"Cache-Control": "no-cache"})


async def _asset(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    if name not in _ASSET_TYPES:  # a fixed list: no path from the request ever reaches the disk
        raise web.HTTPNotFound()
    body = await asyncio.to_thread((ASSETS / name).read_bytes)
    return web.Response(body=body, content_type=_ASSET_TYPES[name], headers={"Cache-Control": "no-cache"})


def _fragment(handler: Callable[[Viewer, Any], str]):
    async def serve(request: web.Request) -> web.Response:
        viewer = request.app[VIEWER]
        query = dict(request.query)
        html = await asyncio.to_thread(handler, viewer, query)
        if handler is _episodes and query.get("run") in viewer.catalog.runs:
            # After the first page of a run's list is on its way: the summaries that filters need
            # are built next, so they never compete with the fragments of the page being opened.
            _warm(request.app, query["run"])
        return web.Response(text=html, content_type="text/html", headers={"Cache-Control": "no-store"})

    return serve


def _warm(app: web.Application, run_id: str) -> None:
    """Build the run's summaries in the background; the page hears when they are ready."""
    viewer, warming = app[VIEWER], app[WARMING]
    if run_id in warming:
        return
    loop = asyncio.get_running_loop()

    def done(future: concurrent.futures.Future) -> None:
        warming.discard(run_id)
        if not future.cancelled() and future.exception() is None and future.result():
            loop.call_soon_threadsafe(_broadcast, app, {"type": "run", "run": run_id})

    try:
        future = app[WARMER].submit(lambda: viewer.episodes(viewer.catalog.get(run_id)).warm())
    except RuntimeError:  # shutting down
        return
    warming.add(run_id)
    future.add_done_callback(done)


def _broadcast(app: web.Application, event: dict[str, Any]) -> None:
    for queue in list(app[CLIENTS]):
        if not queue.full():
            queue.put_nowait(event)


def _ids(value: str | None) -> list[str]:
    return [v for v in (value or "").split(",") if v]


def _runs(v: Viewer, q: dict) -> str:
    return v.runs_fragment()


def _run(v: Viewer, q: dict) -> str:
    return v.run_fragment(q.get("run", ""))


def _episodes(v: Viewer, q: dict) -> str:
    return v.episodes_fragment(q.get("run", ""), q)


def _overlay(v: Viewer, q: dict) -> str:
    return v.curves_page(_ids(q.get("runs")), _ids(q.get("extra")))


_FRAGMENTS: dict[str, Callable[[Viewer, Any], str]] = {
    "runs": _runs,
    "run": _run,
    "overlay": _overlay,
    "head": lambda v, q: v.head_fragment(q.get("run", "")),
    "curves": lambda v, q: v.curves_fragment(_ids(q.get("runs")), _ids(q.get("extra"))),
    "results": lambda v, q: v.results_fragment(q.get("run", "")),
    "compare": lambda v, q: v.compare_fragment(q.get("a"), q.get("b")),
    "episodes": _episodes,
    "episode": lambda v, q: v.episode_fragment(q.get("run", ""), q.get("at"), reveal=q.get("reveal") == "1"),
    "tokens": lambda v, q: v.tokens_fragment(q.get("run", ""), q.get("at")),
    "warnings": lambda v, q: "".join(f"<li>{escape(w)}</li>" for w in v.catalog.warnings),
}


# ----------------------------------------------------------------------------- live events
async def _events(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
    await response.prepare(request)
    queue: asyncio.Queue = asyncio.Queue(maxsize=256)
    clients = request.app[CLIENTS]
    clients.add(queue)
    try:
        await response.write(b'retry: 2000\ndata: {"type": "hello"}\n\n')
        while True:
            try:
                event = await asyncio.wait_for(queue.get(), HEARTBEAT_S)
            except asyncio.TimeoutError:
                await response.write(b": keep-alive\n\n")
                continue
            if event is None:
                break
            await response.write(f"data: {json.dumps(event)}\n\n".encode())
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    finally:
        clients.discard(queue)
    return response


async def _watch(app: web.Application, poll_s: float) -> None:
    viewer = app[VIEWER]
    while True:
        try:
            events = await asyncio.to_thread(viewer.changes)
        except Exception:  # keep watching: a file that vanished mid-look is seen next time
            log.exception("watching the run folders failed")
            events = []
        for event in events:
            _broadcast(app, event)
        await asyncio.sleep(poll_s)


# ----------------------------------------------------------------------------- running it
async def serve(
    viewer: Viewer,
    host: str,
    port: int,
    *,
    poll_s: float = 1.0,
    ready: Callable[[str], None] | None = None,
    stop: asyncio.Event | None = None,
) -> None:
    """Serve until ``stop`` is set (or forever); a port in use is a :class:`UserError`."""
    runner = web.AppRunner(create_app(viewer, poll_s=poll_s), shutdown_timeout=2.0)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        try:
            await site.start()
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise UserError(
                    f"port {port} on {host} is in use; pass another --port (0 picks a free one)."
                ) from exc
            raise UserError(
                f"cannot listen on {host}:{port} ({exc.strerror or exc}); check --host and --port."
            ) from exc
        address = runner.addresses[0]
        url_host = f"[{address[0]}]" if ":" in str(address[0]) else address[0]
        if ready is not None:
            ready(f"http://{url_host}:{address[1]}/")
        await (stop or asyncio.Event()).wait()
    finally:
        await runner.cleanup()
