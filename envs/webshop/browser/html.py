"""WebShop pages as HTML, and the URLs that encode a :class:`ShopState`.

Each node of a :class:`~envs.webshop.shop.Page` becomes one element holding only its
text, in page order, so the page's text nodes read in document order are exactly the
text engine's observation. Buttons are small POST forms (as in the original), product
links are ``a.product-link``, options are radio inputs with a label; clicking one
navigates to the chosen state (also when it is already chosen, as in the original), and the search box is a GET form. No external assets:
the style sheet is inline.
"""

from __future__ import annotations

import json
from html import escape
from urllib.parse import quote, urlencode

from envs.webshop.shop import Node, Page, ShopState

STYLE = """
body{font-family:sans-serif;margin:2em auto;max-width:60em;color:#222}
.btn{margin:.2em;padding:.3em .8em;cursor:pointer}
form{display:inline}
.product-link{font-weight:bold}
.radio-toolbar{display:inline-block;margin:.2em}
"""
_TEXT_TAG = {"WebShop": "h2", "Instruction:": "h4", "Thank you for shopping with us!": "h1"}


def state_url(sid: str, state: ShopState) -> str:
    """The path of ``state`` in session ``sid``."""
    base = f"/{quote(sid)}"
    if state.kind == "search":
        return base
    params = {"q": state.query, "page": str(state.page)}
    if state.kind == "results":
        return f"{base}/results?{urlencode(params)}"
    params["o"] = json.dumps([list(p) for p in state.options])
    path = {"item": "item", "sub": "item", "done": "buy"}[state.kind]
    tail = f"/{quote(state.sub)}" if state.kind == "sub" else ""
    return f"{base}/{path}/{quote(state.asin)}{tail}?{urlencode(params)}"


def parse_state(kind: str, query: dict[str, str], asin: str = "", sub: str = "") -> ShopState:
    """The state a URL names (raises ``ValueError`` for a malformed one)."""
    q = " ".join(query.get("q", "").lower().split())
    page = int(query.get("page", "1"))
    if page < 1:
        raise ValueError("page must be at least 1")
    raw = json.loads(query.get("o", "[]"))
    options = tuple((str(name), str(value)) for name, value in raw)
    return ShopState(kind, q, page, asin, options, sub)  # type: ignore[arg-type]


def render_html(sid: str, page: Page) -> str:
    """The whole HTML document of ``page`` for session ``sid``."""
    body = []
    for i, node in enumerate(page.nodes):
        body.append(_node_html(sid, node, i))
    script = (
        "document.querySelectorAll('input[type=radio]').forEach(function(r){"
        "r.addEventListener('click',function(){window.location.href=r.dataset.url;});});"
    )
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>WebShop</title>"
        f"<style>{STYLE}</style></head><body>" + "\n".join(body) + f"<script>{script}</script></body></html>"
    )


def _node_html(sid: str, node: Node, i: int) -> str:
    text = escape(node.text)
    if node.kind == "text":
        tag = _TEXT_TAG.get(node.text, "p")
        return f"<{tag}>{text}</{tag}>"
    if node.kind == "input":
        return (
            f"<form id='search-form' method='get' action='/{quote(sid)}/results'>"
            "<input id='search_input' type='text' name='q' placeholder='Search...' required></form>"
        )
    if node.kind == "button":
        if node.target is None:  # the search box's button
            return f"<button class='btn' type='submit' form='search-form'>{text}</button>"
        action = escape(state_url(sid, node.target), quote=True)
        return (
            f"<form method='post' action='{action}'><button class='btn' type='submit'>{text}</button></form>"
        )
    if node.kind == "link":
        href = escape(state_url(sid, node.target), quote=True)
        return f"<h4><a class='product-link' href='{href}'>{text}</a></h4>"
    # an option value: a radio button and its label
    url = escape(state_url(sid, node.target), quote=True)
    rid = f"radio_{i}"
    checked = " checked" if node.checked else ""
    value = escape(node.text, quote=True)
    return (
        f"<span class='radio-toolbar'><input type='radio' id='{rid}' name='{escape(node.group, quote=True)}' "
        f"value='{value}' data-url='{url}'{checked}><label for='{rid}'>{text}</label></span>"
    )
