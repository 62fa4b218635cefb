"""WebShop in a real browser (``webshop-browser/v0``): the same shop and reward, acted out in chromium.

The agent's actions are the text engine's (``search[query]``, ``click[value]``) and
mean what they mean there, but they happen in the page: a search types the query into
the search box and presses Search, a click finds the button, product link or option
radio button on the live page and clicks it, and the browser follows the site's forms,
links and scripts to the next page. Observations are read back from the rendered page
(its text nodes in document order, joined with ``" [SEP] "``), and the reward is the one
the server computed when the browser reached the ``Buy Now`` page. Oracle, hints and
progress follow the state the server saw, so they work as in the text engine.

Each environment owns a browser context (its own cookies and page) in the process's
one chromium (:mod:`envs.webshop.browser.runtime`) and closes it in :meth:`close`.
"""

from __future__ import annotations

import logging
from typing import Any

from agentgym.core import ToolError
from envs.webshop.browser.runtime import shared_runtime
from envs.webshop.env import WebShopEnv
from envs.webshop.shop import ShopState

PAGE_TEXT_JS = """() => {
  const skip = new Set(["SCRIPT", "STYLE", "HEAD", "TITLE", "META", "NOSCRIPT"]);
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  const out = [];
  let node;
  while ((node = walker.nextNode())) {
    if (skip.has(node.parentElement.tagName)) continue;
    const text = node.textContent.trim();
    if (text) out.push(text);
  }
  return out.join(" [SEP] ");
}"""

# Mark the element a click names: an option value first (it wins a clash, as in the
# original), then a button or product link by its lower-cased text.
MARK_JS = """(key) => {
  document.querySelectorAll("[data-agentgym-target]").forEach(e => e.removeAttribute("data-agentgym-target"));
  let el = Array.from(document.querySelectorAll("input[type=radio]")).find(e => e.value === key);
  if (!el) el = Array.from(document.querySelectorAll("button.btn, a.product-link"))
      .find(e => e.textContent.trim().toLowerCase() === key);
  if (!el) return false;
  el.setAttribute("data-agentgym-target", "1");
  return true;
}"""

STEP_TIMEOUT_MS = 15_000
log = logging.getLogger(__name__)


class WebShopBrowserEnv(WebShopEnv):
    """WebShop served over HTTP and driven through Playwright and chromium."""

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        self.runtime = shared_runtime()
        self._context = None
        self._page = None
        self._sid: str | None = None

    # ----------------------------------------------------------------- episode
    def setup(self, task):
        self._end_session()
        self._start_goal(task)
        server = self.runtime.server
        self._sid = server.open_session(self.shop, self.goal)
        self.runtime.call(self._open_browser(f"{server.base_url}/{self._sid}"))
        self._sync_state()
        return self._observation()

    async def _open_browser(self, url: str) -> None:
        if self._context is None:
            self._context = await self.runtime.browser.new_context()
            self._page = await self._context.new_page()
            self._page.set_default_timeout(STEP_TIMEOUT_MS)
        await self._page.goto(url)

    def _search(self, query: str) -> ShopState:
        self.runtime.call(self._type_search(query))
        return self._session().state

    async def _type_search(self, query: str) -> None:
        await self._page.fill("#search_input", query)
        async with self._page.expect_navigation():
            await self._page.click("button[form=search-form]")

    def _click(self, key: str, target: ShopState) -> ShopState:
        if not self.runtime.call(self._press(key)):
            raise ToolError(f"{key!r} is not clickable on this page; the page is unchanged.")
        return self._session().state

    async def _press(self, key: str) -> bool:
        if not await self._page.evaluate(MARK_JS, key):
            return False
        async with self._page.expect_navigation():
            await self._page.click("[data-agentgym-target]")
        return True

    def _open(self, state: ShopState) -> None:
        """The browser already moved: take the state and page the server rendered for it."""
        self._sync_state()

    def _sync_state(self) -> None:
        session = self._session()
        self.state, self.page = session.state, session.page
        self.guide.visit(self.page)
        self._dom_text = self.runtime.call(self._page.evaluate(PAGE_TEXT_JS))

    def _session(self):
        session = self.runtime.server.sessions.get(self._sid)
        if session is None or session.page is None:
            raise RuntimeError("the shop server lost this session")
        return session

    def page_text(self) -> str:
        """The page as the browser shows it (its text nodes joined with ``" [SEP] "``)."""
        return self._dom_text

    # ----------------------------------------------------------------- clean-up
    def _end_session(self) -> None:
        if self._sid is not None:
            self.runtime.server.close_session(self._sid)
            self._sid = None

    def close(self) -> None:
        """Close this environment's browser context and session (the browser stays for others)."""
        self._end_session()
        context, self._context, self._page = self._context, None, None
        if context is not None and not self.runtime.closed:
            try:
                self.runtime.call(context.close(), timeout=10)
            except Exception:  # the browser may already be gone; nothing to leak then
                log.debug("closing a browser context failed", exc_info=True)
        super().close()
