"""The scripted purchase (oracle), hints and progress for one WebShop episode.

All three read the goal, which only guidance may see:

* the oracle searches the goal's query, pages through the (at most 50) results to the
  target product (straight back to the search page when they do not hold it), opens it, clicks the value that best matches each goal option and buys;
  when the query does not retrieve the target it goes back and searches the target's title;
* the hint names what the purchase still lacks: the goal's attributes the open product
  does not have, the options not chosen yet, the price bound;
* progress follows the reward's parts so far: a result of the goal's type was listed
  (type reward 1), the right kind of item was opened (type 1 and every attribute), and
  the share of goal options chosen on it; each counts a third, and the done page's
  progress is the reward itself.
"""

from __future__ import annotations

from envs.webshop.goals import Goal
from envs.webshop.reward import (
    attribute_matches,
    goal_option_list,
    normalize_color,
    option_matches,
    option_text,
    process,
    token_set_ratio,
    type_reward,
)
from envs.webshop.shop import (
    BACK_TO_SEARCH,
    BUY_NOW,
    NEXT_PAGE,
    PREV_PAGE,
    PRODUCT_WINDOW,
    Page,
    Shop,
    ShopState,
)


class Guide:
    """Oracle, hint and progress for the episode in progress (call :meth:`start`, then :meth:`visit`)."""

    def __init__(self, shop: Shop):
        self.shop = shop
        self.goal: Goal | None = None

    def start(self, goal: Goal) -> None:
        self.goal = goal
        self._failed_queries: set[str] = set()
        self._listed: set[str] = set()
        self._typed: dict[str, bool] = {}
        self._opened_right = False
        self._plan: list[str] | None = None

    def visit(self, page: Page) -> None:
        """Record what a page showed (results listed, items opened)."""
        state = page.state
        if state.kind == "results":
            self._listed.update(n.text for n in page.nodes if n.kind == "link")
            asins = self.shop.results(state.query)
            if self.goal.asin not in asins:
                self._failed_queries.add(state.query)
        elif state.kind in ("item", "sub") and not self._opened_right:
            self._opened_right = self._right_item(state.asin)

    # ----------------------------------------------------------------- oracle
    def next_action(self, state: ShopState, page: Page) -> str:
        goal = self.goal
        if state.kind == "search":
            query = (
                goal.query
                if goal.query and goal.query not in self._failed_queries
                else title_query(goal.name)
            )
            return f"search[{query}]"
        if state.kind == "results":
            target = goal.asin.lower()
            if target in page.clickables:
                return f"click[{target}]"
            asins = self.shop.results(state.query)
            if goal.asin not in asins:  # not among the (at most 50) results: search again
                return f"click[{BACK_TO_SEARCH.lower()}]"
            on_page = asins.index(goal.asin) // PRODUCT_WINDOW + 1
            return f"click[{(NEXT_PAGE if on_page > state.page else PREV_PAGE).lower()}]"
        if state.kind == "item" and state.asin == goal.asin:
            chosen = state.options_dict
            for name, value in self.option_plan():
                if chosen.get(name) != value:
                    return f"click[{value}]"
            return f"click[{BUY_NOW.lower()}]"
        if state.kind in ("item", "sub"):
            return f"click[{PREV_PAGE.lower()}]"
        return f"click[{BUY_NOW.lower()}]"  # done: nothing left to do; any action is ignored

    def option_plan(self) -> list[tuple[str, str]]:
        """(option name, value) to choose on the target for each goal option, best match first."""
        if self._plan is None:
            product = self.shop.product(self.goal.asin)
            plan: dict[str, str] = {}
            for wanted in goal_option_list(self.goal):
                best = _best_value(product.options, wanted, taken=set(plan))
                if best is not None:
                    plan[best[0]] = best[1]
            self._plan = list(plan.items())
        return self._plan

    # ----------------------------------------------------------------- hint
    def hint(self, state: ShopState) -> str:
        goal = self.goal
        product = self.shop.product(state.asin) if state.asin else None
        attrs = list(goal.attributes)
        if product is not None:
            attrs = [a for a in attrs if not attribute_matches(product, _only(goal, a))]
        wanted = goal_option_list(goal)
        chosen = list(state.options_dict.values()) if product is not None and state.asin == goal.asin else []
        missing_opts = [
            option_text(o) if isinstance(o, str) else f"{o[0]}: {o[1]}"
            for o in wanted
            if not option_matches(chosen, [o])
        ]
        parts = [
            f'Search for "{goal.query or title_query(goal.name)}" and open the product that matches the instruction.'
        ]
        if attrs:
            where = "the product you have open lacks" if product is not None else "the product must have"
            parts.append(f"{where.capitalize()}: {', '.join(attrs)}.")
        if missing_opts:
            parts.append(f"Options still to choose on its page: {', '.join(missing_opts)}.")
        if goal.price_upper < 1_000_000:
            parts.append(f"Its price must be below ${goal.price_upper:.2f}.")
        parts.append("Then click Buy Now.")
        return " ".join(parts)

    # ----------------------------------------------------------------- progress
    def progress(self, state: ShopState, page: Page) -> float:
        if state.kind == "done" and page.reward is not None:
            return float(page.reward.reward)
        found = any(self._typed_ok(asin) for asin in self._listed)
        opened = self._opened_right
        options = 0.0
        if state.kind in ("item", "sub") and self._right_item(state.asin):
            wanted = goal_option_list(self.goal)
            chosen = list(state.options_dict.values())
            options = option_matches(chosen, wanted) / len(wanted) if wanted else 1.0
        return (float(found) + float(opened) + options) / 3.0

    def _typed_ok(self, asin: str) -> bool:
        ok = self._typed.get(asin)
        if ok is None:
            ok = self._typed[asin] = type_reward(self.shop.product(asin), self.goal).r_type >= 1.0
        return ok

    def _right_item(self, asin: str) -> bool:
        product = self.shop.product(asin)
        return self._typed_ok(asin) and attribute_matches(product, self.goal) == len(self.goal.attributes)


def title_query(title: str, max_words: int = 12) -> str:
    """A search query from a product title (the oracle's fallback)."""
    return " ".join(title.lower().split()[:max_words])


def _only(goal: Goal, attribute: str) -> Goal:
    from dataclasses import replace

    return replace(goal, attributes=(attribute,))


def _best_value(options: dict[str, tuple[str, ...]], wanted, taken: set[str]) -> tuple[str, str] | None:
    """The (name, value) among unchosen option groups that best matches one goal option."""
    target = process(option_text(normalize_color(wanted)))
    best, best_score = None, -1.0
    for name, values in options.items():
        if name in taken:
            continue
        exact = wanted[1] if isinstance(wanted, tuple) and wanted[0] == name else wanted
        if exact in values:
            return name, exact
        for value in values:
            score = token_set_ratio(process(option_text(normalize_color(value))), target)
            if score > best_score:
                best, best_score = (name, value), score
    return best
