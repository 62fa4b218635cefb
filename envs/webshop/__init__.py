"""WebShop: shop on a product catalog for what an instruction describes (Yao et al., 2022).

``webshop/v0`` is the text engine; ``webshop-browser/v0`` the same shop served as HTML
and driven through Playwright and Debian's chromium. Registering imports nothing heavy:
the catalog, goals and search index load when an environment is made.
"""

from __future__ import annotations


def register() -> None:
    """Entry point (group ``agentgym.envs``): register the WebShop environments."""
    import agentgym

    agentgym.register(
        "webshop/v0",
        "envs.webshop.env:WebShopEnv",
        description="WebShop text engine: search[...] / click[...] on a product catalog; goals=human|synthetic",
        extra="webshop",
        suites=["webshop_test"],
    )
    agentgym.register(
        "webshop-browser/v0",
        "envs.webshop.browser.env:WebShopBrowserEnv",
        description="WebShop served as HTML and driven through Playwright + chromium; same reward",
        extra="browser",
    )
