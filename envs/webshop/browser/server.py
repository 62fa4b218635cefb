"""The shop as a web site: an aiohttp server rendering :mod:`envs.webshop.shop` pages as HTML.

One server per process (on 127.0.0.1, a free port) serves every browser-mode session;
a session is a random id in the URL, registered with its shop and goal. The URL holds
the whole state (query, results page, product, chosen options), as in the original
site; the server records the last state each session rendered, and, on ``Buy Now``, the
reward, which the environment reads back in-process. A malformed URL or an unknown
session gets a plain 404 page, never a traceback.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

from aiohttp import web

from envs.webshop.browser.html import parse_state, render_html
from envs.webshop.goals import Goal
from envs.webshop.shop import SUB_PAGES, Page, Shop, ShopState


@dataclass
class Session:
    """One shopper: the shop and goal it plays, and what it last saw."""

    shop: Shop
    goal: Goal
    state: ShopState = field(default_factory=ShopState)
    page: Page | None = None
    requests: int = 0


class ShopServer:
    """The HTTP side of the browser mode (start and stop it on one event loop)."""

    def __init__(self) -> None:
        self.sessions: dict[str, Session] = {}
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def open_session(self, shop: Shop, goal: Goal) -> str:
        sid = secrets.token_hex(8)
        self.sessions[sid] = Session(shop, goal)
        return sid

    def close_session(self, sid: str) -> None:
        self.sessions.pop(sid, None)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{sid}", self._search_page)
        app.router.add_route("*", "/{sid}/results", self._results)
        app.router.add_route("*", "/{sid}/item/{asin}", self._item)
        app.router.add_route("*", "/{sid}/item/{asin}/{sub}", self._sub)
        app.router.add_route("*", "/{sid}/buy/{asin}", self._buy)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]  # the port the OS chose

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # ----------------------------------------------------------------- handlers
    async def _search_page(self, request: web.Request) -> web.Response:
        return self._serve(request, lambda q: ShopState())

    async def _results(self, request: web.Request) -> web.Response:
        return self._serve(request, lambda q: parse_state("results", q))

    async def _item(self, request: web.Request) -> web.Response:
        return self._serve(request, lambda q: parse_state("item", q, request.match_info["asin"]))

    async def _sub(self, request: web.Request) -> web.Response:
        return self._serve(
            request, lambda q: parse_state("sub", q, request.match_info["asin"], request.match_info["sub"])
        )

    async def _buy(self, request: web.Request) -> web.Response:
        return self._serve(request, lambda q: parse_state("done", q, request.match_info["asin"]))

    def _serve(self, request: web.Request, make_state) -> web.Response:
        session = self.sessions.get(request.match_info["sid"])
        if session is None:
            return _not_found("no such session")
        try:
            state = make_state(dict(request.query))
            if state.asin and state.asin not in session.shop.catalog.by_asin:
                return _not_found("no such product")
            if state.kind == "sub" and state.sub not in SUB_PAGES:
                return _not_found("no such page")
            if session.state.kind == "done":
                state = session.state  # a finished session stays on its done page
            page = (
                session.page
                if state == session.state and session.page
                else session.shop.render(state, session.goal)
            )
        except (ValueError, TypeError, KeyError):
            return _not_found("malformed address")
        session.state, session.page = state, page
        session.requests += 1
        return web.Response(text=render_html(request.match_info["sid"], page), content_type="text/html")


def _not_found(reason: str) -> web.Response:
    return web.Response(status=404, text=f"Not found: {reason}.", content_type="text/plain")
