"""The shop itself: where a session is (:class:`ShopState`) and what each page shows (:class:`Page`).

A page is a flat list of :class:`Node`: plain text, buttons, product links, option
radio buttons and the search box, in the order the original WebShop templates put
them on screen. Every clickable node carries the state it leads to, so the text
engine (:mod:`envs.webshop.env`) and the HTML server of the browser mode
(:mod:`envs.webshop.browser.server`) share one definition of the site: the text
observation is the nodes' visible texts joined with ``" [SEP] "``, and the HTML page
puts each node's text in its own element in the same order.

Pages, as in the original:

* search: ``WebShop``, ``Instruction:``, the goal, the search box and ``Search``;
* results: the instruction, ``Back to Search``, ``Page N (Total results: T)``, ``< Prev``
  (after page 1), ``Next >``, then for each of (up to) 10 products its asin, title and price;
* item: the instruction, ``Back to Search``, ``< Prev``, each option name and its values,
  the title, ``Price: ...``, ``Rating: N.A.``, ``Description``, ``Features``, ``Reviews``
  (``Attributes`` with ``show_attrs``) and ``Buy Now``;
* a sub-page: the instruction, ``Back to Search``, ``< Prev`` and its content;
* done: ``Thank you for shopping with us!``, ``Your score (min 0.0, max 1.0)``, the score.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal

from envs.webshop.catalog import Catalog, Product
from envs.webshop.goals import Goal
from envs.webshop.reward import RewardParts, get_reward
from envs.webshop.search import ProductSearch

PRODUCT_WINDOW = 10
SUB_PAGES = ("Description", "Features", "Reviews", "Attributes")
BACK_TO_SEARCH = "Back to Search"
NEXT_PAGE = "Next >"
PREV_PAGE = "< Prev"
BUY_NOW = "Buy Now"
SEP = " [SEP] "

PageKind = Literal["search", "results", "item", "sub", "done"]
NodeKind = Literal["text", "button", "link", "option", "input"]


@dataclass(frozen=True, slots=True)
class ShopState:
    """Where a session is; everything a page needs besides the catalog and the goal."""

    kind: PageKind = "search"
    query: str = ""
    page: int = 1
    asin: str = ""
    #: Chosen options as (name, value) pairs, in the order they were first chosen.
    options: tuple[tuple[str, str], ...] = ()
    sub: str = ""

    def with_option(self, name: str, value: str) -> ShopState:
        chosen = dict(self.options)
        chosen[name] = value
        return replace(self, options=tuple(chosen.items()))

    @property
    def options_dict(self) -> dict[str, str]:
        return dict(self.options)


@dataclass(frozen=True, slots=True)
class Node:
    """One element of a page: its kind, its visible text and, if clickable, where it leads."""

    kind: NodeKind
    text: str
    target: ShopState | None = None
    #: The option name of an ``option`` node (its radio group).
    group: str = ""
    #: Whether an option node is the chosen value of its group.
    checked: bool = False

    @property
    def key(self) -> str:
        """What ``click[...]`` names this node by: a button's or link's lower-cased text, an option's value."""
        return self.text if self.kind == "option" else self.text.lower()


@dataclass
class Page:
    """A rendered page: its state, its nodes, and (for the done page) the reward."""

    state: ShopState
    nodes: list[Node]
    reward: RewardParts | None = None
    clickables: dict[str, Node] = field(init=False)

    def __post_init__(self) -> None:
        # As the original: buttons and product links first, then option values (which win a clash).
        clickables = {n.key: n for n in self.nodes if n.kind in ("button", "link")}
        clickables.update((n.key, n) for n in self.nodes if n.kind == "option")
        self.clickables = clickables

    @property
    def has_search_box(self) -> bool:
        return any(n.kind == "input" for n in self.nodes)

    @property
    def text(self) -> str:
        """The observation: every visible text, stripped, joined with ``" [SEP] "``."""
        return SEP.join(t for t in (n.text.strip() for n in self.nodes) if t)

    def actions(self, query: str = "<query>") -> list[str]:
        """The valid actions on this page; ``search[query]`` stands for any query."""
        out = [f"search[{query}]"] if self.has_search_box else []
        out.extend(f"click[{key}]" for key in self.clickables if key != "search")
        return out


class Shop:
    """Renders the pages of one catalog for one goal (sessions keep only a :class:`ShopState`)."""

    def __init__(self, catalog: Catalog, search: ProductSearch, *, show_attrs: bool = False):
        self.catalog = catalog
        self.search = search
        self.show_attrs = show_attrs

    def product(self, asin: str) -> Product:
        return self.catalog.by_asin[asin]

    def results(self, query: str) -> tuple[str, ...]:
        return self.search.search(query)

    def purchase_reward(self, goal: Goal, state: ShopState) -> RewardParts:
        """The reward for buying the state's product with its chosen options."""
        return get_reward(self.product(state.asin), goal, self.catalog.prices[state.asin], state.options_dict)

    def render(self, state: ShopState, goal: Goal) -> Page:
        """The page shown in ``state`` to a session pursuing ``goal``."""
        if state.kind == "done":
            reward = self.purchase_reward(goal, state)
            nodes = [
                Node("text", "Thank you for shopping with us!"),
                Node("text", "Your score (min 0.0, max 1.0)"),
                Node("text", repr(reward.reward)),
            ]
            return Page(state, nodes, reward)
        if state.kind == "search":
            nodes = [
                Node("text", "WebShop"),
                Node("text", "Instruction:"),
                Node("text", goal.instruction_text),
                Node("input", ""),
                Node("button", "Search"),
            ]
            return Page(state, nodes)
        head = [
            Node("text", "Instruction:"),
            Node("text", goal.instruction_text),
            Node("button", BACK_TO_SEARCH, ShopState()),
        ]
        if state.kind == "results":
            return Page(state, head + self._results(state))
        if state.kind == "item":
            return Page(state, head + self._item(state))
        return Page(state, head + self._sub_page(state))

    def _results(self, state: ShopState) -> list[Node]:
        asins = self.results(state.query)
        nodes = [Node("text", f"Page {state.page} (Total results: {len(asins)})")]
        if state.page > 1:
            nodes.append(Node("button", PREV_PAGE, replace(state, page=state.page - 1)))
        nodes.append(Node("button", NEXT_PAGE, replace(state, page=state.page + 1)))
        start = (state.page - 1) * PRODUCT_WINDOW
        for asin in asins[start : start + PRODUCT_WINDOW]:
            product = self.product(asin)
            target = ShopState("item", state.query, state.page, asin)
            nodes += [
                Node("link", asin, target),
                Node("text", product.title),
                Node("text", product.price_tag),
            ]
        return nodes

    def _item(self, state: ShopState) -> list[Node]:
        product = self.product(state.asin)
        chosen = state.options_dict
        nodes = [Node("button", PREV_PAGE, ShopState("results", state.query, state.page))]
        for name, values in product.options.items():
            nodes.append(Node("text", name))
            for value in values:
                nodes.append(
                    Node("option", value, state.with_option(name, value), name, chosen.get(name) == value)
                )
        nodes += [
            Node("text", product.title),
            Node("text", f"Price: {product.price_tag}"),
            Node("text", f"Rating: {product.rating}"),
        ]
        for sub in SUB_PAGES if self.show_attrs else SUB_PAGES[:3]:
            nodes.append(Node("button", sub, replace(state, kind="sub", sub=sub)))
        nodes.append(Node("button", BUY_NOW, replace(state, kind="done", sub="")))
        return nodes

    def _sub_page(self, state: ShopState) -> list[Node]:
        product = self.product(state.asin)
        nodes = [Node("button", PREV_PAGE, replace(state, kind="item", sub=""))]
        if state.sub == "Description":
            nodes.append(Node("text", product.description))
        elif state.sub == "Features":
            nodes += [Node("text", b) for b in product.bullets]
        elif state.sub == "Reviews":
            for review in product.reviews:
                nodes += [
                    Node("text", f'"{review.get("title", "")}"'),
                    Node("text", str(review.get("score", ""))),
                    Node("text", str(review.get("body", ""))),
                ]
        else:
            nodes += [Node("text", a) for a in product.attributes]
            nodes += [Node("text", t) for t in (product.category, product.query, product.product_category)]
        return nodes
