"""The WebShop text environment (``webshop/v0``): shop for the product an instruction describes.

Actions, as in the original: ``search[query]`` where the page has a search box, and
``click[value]`` for anything clickable on the page (a button's text, a product's
lower-cased asin, an option value), case-insensitive. Anything else changes nothing
and counts as invalid (it uses up a step; by default it never ends the episode early).
The episode ends only on ``Buy Now``, with the reward of :mod:`envs.webshop.reward`,
or at the step limit (15 by default, as GiGPO/verl-agent) with reward 0.

Observations are the page's visible texts joined with ``" [SEP] "`` (see
:mod:`envs.webshop.shop`), followed by the list of valid actions unless
``show_actions=False``. Tasks are goals: ``Task.id`` is ``"<goal set>-<index>"`` and
``Task.metadata["goal_index"]`` the index in the original's fixed goal order;
``split`` picks the goal range (test [0, 500), eval [500, 1500), train the rest), and
``reset(options={"goal_index": i})`` plays goal ``i`` whatever the split (the original's
``reset(session=i)``).
"""

from __future__ import annotations

from typing import Any

from agentgym.core import Task, TextEnv, ToolError, tool
from agentgym.errors import UserError
from envs.webshop.catalog import shared_catalog
from envs.webshop.goals import Goal, hash_split, shared_goals
from envs.webshop.guide import Guide
from envs.webshop.search import shared_search
from envs.webshop.shop import Page, Shop, ShopState

SYSTEM_PROMPT = (
    "You are shopping on WebShop, a web shop, for the product an instruction describes. Each page is "
    "shown as its texts separated by [SEP]. Act with one action per reply: search[query] on the page "
    "with a search box, or click[value] to click a button, a product id or an option value shown on "
    "the page (for example click[b0123abcde], click[large], click[next >], click[buy now]). Choose "
    "the options the instruction asks for before clicking Buy Now, which ends the episode; you are "
    "scored on how well the product, its options and its price match the instruction."
)
DEFAULT_MAX_TURNS = 15


class WebShopEnv(TextEnv):
    """WebShop on a catalog in the official format: search, browse, choose options, buy."""

    system_prompt = SYSTEM_PROMPT
    blocking = True

    def __init__(
        self,
        *,
        goals: str = "human",
        human_goals: bool | None = None,
        data_dir: str | None = None,
        num_products: int | None = None,
        split: str = "train",
        backend: str = "bm25s",
        seed: int = 0,
        show_attrs: bool = False,
        show_actions: bool = True,
        max_turns: int = DEFAULT_MAX_TURNS,
        max_invalid_actions: int | None = None,
        **kwargs: Any,
    ):
        if human_goals is not None:  # the original's name for the choice
            goals = "human" if human_goals else "synthetic"
        if split not in ("train", "eval", "test"):
            raise UserError(f"split must be 'train', 'eval' or 'test', not {split!r}.")
        self.catalog = shared_catalog(data_dir, num_products=num_products, seed=seed)
        self.book = shared_goals(self.catalog, goals, seed)
        self.goal_split = split
        self._indices = self.book.indices(split)
        if not self._indices:
            raise UserError(
                f"the {split} split of the {goals} goals of {self.catalog.source} is empty "
                f"({len(self.book.goals)} goals in all); choose another split."
            )
        self.shop = Shop(self.catalog, shared_search(self.catalog, backend), show_attrs=show_attrs)
        self.show_actions = bool(show_actions)
        self.guide = Guide(self.shop)
        super().__init__(
            split=hash_split(split),  # type: ignore[arg-type]
            max_turns=int(max_turns),
            max_invalid_actions=int(max_invalid_actions if max_invalid_actions is not None else max_turns),
            **kwargs,
        )
        self.goal: Goal | None = None
        self.state = ShopState()
        self.page: Page | None = None

    # ----------------------------------------------------------------- tasks
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        """As ``TextEnv.reset``; ``options={"goal_index": i}`` plays goal ``i`` (the original's ``session=i``)."""
        return super().reset(seed=seed, options=self._goal_options(options))

    async def areset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        return await super().areset(seed=seed, options=self._goal_options(options))

    def _goal_options(self, options: dict[str, Any] | None) -> dict[str, Any] | None:
        if not options or "goal_index" not in options:
            return options
        index = options["goal_index"]
        if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < len(self.book.goals):
            raise UserError(
                f"goal_index must be an integer from 0 to {len(self.book.goals) - 1}, not {index!r}."
            )
        return {**options, "task": self.book.task(index)}

    def generate_task(self, index: int) -> Task:
        """Goal number ``index`` (modulo the split's size) of this environment's split."""
        return self.book.task(self._indices[index % len(self._indices)])

    def setup(self, task: Task) -> str:
        self._start_goal(task)
        self._open(ShopState())
        return self._observation()

    def _start_goal(self, task: Task) -> None:
        goal_dict = task.reference.get("goal")
        if not isinstance(goal_dict, dict):
            raise TypeError(f"task {task.id}: reference.goal must hold a WebShop goal (a dict)")
        goal = Goal.from_dict(goal_dict)
        if goal.asin not in self.catalog.by_asin:
            raise ValueError(f"task {task.id}: product {goal.asin} is not in {self.catalog.source}")
        self.goal = goal
        self.guide.start(goal)
        self._acted_turn = -1

    # ----------------------------------------------------------------- actions
    @tool
    def search(self, query: str) -> str:
        """Search the shop (only on a page with a search box).

        Args:
            query: the words to search for.
        """
        self._one_action_per_turn()
        if not self.page.has_search_box:
            raise ToolError("this page has no search box; click[back to search] first.")
        query = " ".join(str(query).lower().split())
        if not query:
            raise ToolError("the query is empty; give some words to search for.")
        self._open(self._search(query))
        return self._observation()

    @tool
    def click(self, value: str) -> str:
        """Click a button, a product id or an option value shown on the page.

        Args:
            value: the clickable's text, e.g. "b0123abcde", "large", "next >" or "buy now".
        """
        self._one_action_per_turn()
        key = str(value).strip().lower()
        node = self.page.clickables.get(key)
        if node is None or key == "search":
            shown = key if len(key) <= 60 else key[:57] + "..."
            raise ToolError(f"{shown!r} is not clickable on this page; the page is unchanged.")
        self._open(self._click(key, node.target))
        if self.state.kind == "done":
            parts = self.page.reward
            self.finish(
                parts.reward,
                parts.reward >= 1.0 - 1e-9,
                reward_parts=parts.as_dict(),
                purchased={"asin": self.state.asin, "options": self.state.options_dict},
                goal_index=self.task.metadata.get("goal_index"),
            )
        return self._observation()

    def on_text(self, text: str) -> str | None:
        raise ToolError("no action found; reply with search[query] or click[value], e.g. click[buy now].")

    # ----------------------------------------------------------------- transitions (the browser mode overrides)
    def _search(self, query: str) -> ShopState:
        return ShopState("results", query, 1)

    def _click(self, key: str, target: ShopState) -> ShopState:
        return target

    def _open(self, state: ShopState) -> None:
        self.state = state
        self.page = self.shop.render(state, self.goal)
        self.guide.visit(self.page)

    def page_text(self) -> str:
        """The current page as the ``[SEP]`` text of the original's text mode."""
        return self.page.text

    def _observation(self) -> str:
        text = self.page_text()
        if self.show_actions and self.state.kind != "done":
            text += "\n\nValid actions: " + ", ".join(self.page.actions())
        return text

    def _one_action_per_turn(self) -> None:
        if self._acted_turn == self.turn:
            raise ToolError("one action per step: this one was ignored.")
        self._acted_turn = self.turn

    # ----------------------------------------------------------------- hooks for policies and guidance
    def valid_actions(self) -> list[str] | None:
        """Concrete valid actions; on the search page the one search offered is the instruction itself."""
        if self.page is None or self.state.kind == "done":
            return None
        return self.page.actions(self.goal.instruction_text.split(", and price lower than")[0].lower())

    def oracle_action(self) -> str:
        """The scripted purchase: search the goal's query, open the target, choose its options, buy."""
        if self.goal is None:
            raise RuntimeError("call reset() first")
        return self.guide.next_action(self.state, self.page)

    def hint(self) -> str | None:
        return None if self.goal is None else self.guide.hint(self.state)

    def progress(self) -> float | None:
        return None if self.goal is None else self.guide.progress(self.state, self.page)

    def render_text(self) -> str:
        return self.page.text if self.page is not None else ""
