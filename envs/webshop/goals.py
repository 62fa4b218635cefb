"""Goals (instructions to buy a product), built and ordered exactly as the original WebShop.

Two goal sets, as ``get_goals`` in princeton-nlp/WebShop builds them:

* **human**: one goal per instruction of ``items_human_ins.json`` that names at least
  one attribute; its options are the instruction's ``instruction_options`` (a list of
  strings); weight 1.
* **synthetic**: for every product with an ``items_ins_v2`` instruction, one goal per
  combination of its option values (option names sorted), the instruction text
  extended with ``" with name: value, and name: value"``; its options are a
  ``{name: value}`` dict; weight = the mean over its attributes of 1 / (how many
  goals name that attribute).

Both add a price bound: from ``PRICE_RANGE`` = $10, $20 ... $990, the first four
values above the product's price, two of them drawn and the larger kept (no bound
when fewer than two exist), with ``", and price lower than X.00 dollars"`` appended.
Bounds are drawn before the fixed shuffle, which then reorders the goals with
``random.seed(233)``; the goal's position after the shuffle is its index, and the
index ranges are the splits: test [0, 500), eval [500, 1500), train [1500, N). The
original draws the bounds from the unseeded global generator; ours come from a
generator seeded per goal set, so every process agrees on them. The order (and so
which goal has which index) is the original's for the same files.

A data folder may carry ``splits.json`` (``{"test": 100, "eval": 100}``: the sizes of
the first two ranges); the shipped catalog does, the official files need none.
"""

from __future__ import annotations

import itertools
import random
import threading
from collections import OrderedDict, defaultdict
from dataclasses import dataclass
from typing import Any, Literal

from agentgym.core.task import Task, split_of
from agentgym.errors import UserError
from envs.webshop.catalog import Catalog

GoalSet = Literal["human", "synthetic"]
GoalSplit = Literal["train", "eval", "test"]
GOAL_SETS: tuple[str, ...] = ("human", "synthetic")
PRICE_RANGE = [10.0 * i for i in range(1, 100)]
SHUFFLE_SEED = 233
DEFAULT_SPLITS = {"test": 500, "eval": 1000}
TASK_CACHE_SIZE = 4096


@dataclass(frozen=True, slots=True)
class Goal:
    """One instruction and the hidden facts the reward compares a purchase with."""

    asin: str
    instruction_text: str
    attributes: tuple[str, ...]
    #: ``{name: value}`` for synthetic goals, a list of strings for human goals.
    goal_options: dict[str, str] | tuple[str, ...]
    price_upper: float
    query: str
    category: str
    product_category: str
    name: str
    weight: float

    def as_dict(self) -> dict[str, Any]:
        options = dict(self.goal_options) if isinstance(self.goal_options, dict) else list(self.goal_options)
        return {
            "asin": self.asin,
            "instruction_text": self.instruction_text,
            "attributes": list(self.attributes),
            "goal_options": options,
            "price_upper": self.price_upper,
            "query": self.query,
            "category": self.category,
            "product_category": self.product_category,
            "name": self.name,
            "weight": self.weight,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Goal:
        options = d.get("goal_options") or {}
        return cls(
            asin=str(d["asin"]),
            instruction_text=str(d["instruction_text"]),
            attributes=tuple(d.get("attributes") or ()),
            goal_options=dict(options) if isinstance(options, dict) else tuple(options),
            price_upper=float(d.get("price_upper", 1_000_000)),
            query=str(d.get("query", "")),
            category=str(d.get("category", "")),
            product_category=str(d.get("product_category", "")),
            name=str(d.get("name", "")),
            weight=float(d.get("weight", 1.0)),
        )


def price_bound(price: float, rng: random.Random) -> tuple[float, str]:
    """(upper bound, instruction suffix): two of the next four $10 steps, the larger kept."""
    steps = [p for p in PRICE_RANGE if p > price][:4]
    if len(steps) >= 2:
        _, upper = sorted(rng.sample(steps, 2))
        return upper, f", and price lower than {upper:.2f} dollars"
    return 1_000_000.0, ""


def human_goals(catalog: Catalog, rng: random.Random) -> list[Goal]:
    """One goal per human instruction that names an attribute (file order)."""
    goals = []
    for product in catalog.products:
        for ins in product.human_instructions:
            attributes = list(ins.get("instruction_attributes") or [])
            if not attributes:
                continue
            upper, price_text = price_bound(catalog.prices[product.asin], rng)
            goals.append(
                Goal(
                    asin=product.asin,
                    instruction_text=str(ins.get("instruction", "")).strip(".") + price_text,
                    attributes=tuple(attributes),
                    goal_options=tuple(ins.get("instruction_options") or ()),
                    price_upper=upper,
                    query=product.query,
                    category=product.category,
                    product_category=product.product_category,
                    name=product.title,
                    weight=1.0,
                )
            )
    return goals


def synthetic_goals(catalog: Catalog, rng: random.Random) -> list[Goal]:
    """One goal per product x option combination, weighted by attribute rarity."""
    drafts: list[dict[str, Any]] = []
    counts: dict[str, int] = defaultdict(int)
    for product in catalog.products:
        if product.instruction is None or not product.instruction_attributes:
            continue
        upper, price_text = price_bound(catalog.prices[product.asin], rng)
        names = sorted(product.options)
        for combination in itertools.product(*(product.options[n] for n in names)):
            options = dict(zip(names, combination))
            option_text = ", and ".join(f"{k}: {v}" for k, v in options.items())
            option_text = f" with {option_text}" if option_text else ""
            drafts.append(
                {
                    "product": product,
                    "text": f"{product.instruction}{option_text}{price_text}",
                    "options": options,
                    "upper": upper,
                }
            )
            for attribute in product.instruction_attributes:
                counts[attribute] += 1
    goals = []
    for d in drafts:
        product = d["product"]
        attributes = product.instruction_attributes
        goals.append(
            Goal(
                asin=product.asin,
                instruction_text=d["text"],
                attributes=attributes,
                goal_options=d["options"],
                price_upper=d["upper"],
                query=product.query,
                category=product.category,
                product_category=product.product_category,
                name=product.title,
                weight=sum(1.0 / counts[a] for a in attributes) / len(attributes),
            )
        )
    return goals


def build_goals(catalog: Catalog, goal_set: str, seed: int = 0) -> list[Goal]:
    """All goals of ``goal_set`` in the original's fixed shuffled order (index = position)."""
    if goal_set not in GOAL_SETS:
        raise UserError(f"goals must be one of {', '.join(GOAL_SETS)}, not {goal_set!r}.")
    rng = random.Random(f"webshop-price-bounds-{seed}-{goal_set}")
    goals = human_goals(catalog, rng) if goal_set == "human" else synthetic_goals(catalog, rng)
    if not goals:
        raise UserError(f"{catalog.source} has no {goal_set} goals.")
    random.Random(SHUFFLE_SEED).shuffle(goals)
    return goals


def split_bounds(catalog: Catalog, num_goals: int) -> dict[str, tuple[int, int]]:
    """Index ranges of the three splits (the original's, or the data folder's ``splits.json``)."""
    sizes = {**DEFAULT_SPLITS, **catalog.splits}
    test_end = min(sizes["test"], num_goals)
    eval_end = min(test_end + sizes["eval"], num_goals)
    return {"test": (0, test_end), "eval": (test_end, eval_end), "train": (eval_end, num_goals)}


def hash_split(goal_split: str) -> str:
    """The core's train/test split a goal's task must hash to: held-out goals are 'test'."""
    return "train" if goal_split == "train" else "test"


class GoalBook:
    """The goals of one catalog and goal set, with their splits, turned into Tasks on demand."""

    def __init__(self, catalog: Catalog, goal_set: str, seed: int = 0):
        self.catalog = catalog
        self.goal_set = goal_set
        self.goals = build_goals(catalog, goal_set, seed)
        self.bounds = split_bounds(catalog, len(self.goals))
        self._tasks: OrderedDict[int, Task] = OrderedDict()  # the most recent, bounded
        self._tasks_lock = threading.Lock()

    def indices(self, goal_split: str) -> range:
        if goal_split not in self.bounds:
            raise UserError(f"split must be one of train, eval, test, not {goal_split!r}.")
        lo, hi = self.bounds[goal_split]
        return range(lo, hi)

    def split_of_index(self, index: int) -> str:
        return next((name for name, (lo, hi) in self.bounds.items() if lo <= index < hi), "train")

    def task(self, index: int) -> Task:
        """The task for goal ``index``: its instruction in inputs, the goal as the hidden reference.

        ``inputs["nonce"]`` (never shown) is set when needed so the core's hash split
        (:func:`agentgym.core.task.split_of`) agrees with the goal's index split.
        """
        with self._tasks_lock:
            task = self._tasks.get(index)
        if task is None:
            goal = self.goals[index]
            goal_split = self.split_of_index(index)
            # The index keeps goals with the same instruction (for different products) distinct tasks.
            inputs: dict[str, Any] = {"instruction": goal.instruction_text, "goal_index": index}
            want = hash_split(goal_split)
            base = Task(
                id=f"{self.goal_set}-{index}",
                inputs=inputs,
                reference={"goal": goal.as_dict()},
                metadata={"goal_index": index, "goal_set": self.goal_set, "goal_split": goal_split},
            )
            task = base
            nonce = 0
            while split_of(task.fingerprint()) != want:
                nonce += 1
                if nonce > 10_000:  # p = 0.8 ** 10_000
                    raise RuntimeError(f"no nonce puts goal {index} in the {want} split")
                task = base.model_copy(update={"inputs": {**inputs, "nonce": nonce}})
            with self._tasks_lock:
                self._tasks[index] = task
                if len(self._tasks) > TASK_CACHE_SIZE:
                    self._tasks.popitem(last=False)
        return task


_BOOKS: dict[tuple[int, str, int], GoalBook] = {}
_LOCK = threading.Lock()


def shared_goals(catalog: Catalog, goal_set: str, seed: int = 0) -> GoalBook:
    """One :class:`GoalBook` per catalog, goal set and seed per process."""
    key = (id(catalog), goal_set, seed)
    with _LOCK:
        book = _BOOKS.get(key)
        if book is None:
            book = _BOOKS[key] = GoalBook(catalog, goal_set, seed)
        return book
