"""The WebShop reward, as ``get_reward`` in princeton-nlp/WebShop computes it.

For a purchased product with chosen options and a goal (Yao et al., 2022, section 3)::

    reward = (n_attr_match + n_opt_match + r_price)
             / (n_goal_attrs + n_goal_opts + 1) * r_type

* ``n_attr_match``: goal attributes with a product attribute of fuzzy token-set ratio
  above 85, or else found as a substring of the lower-cased title, bullet points or
  description;
* ``n_opt_match``: goal options with a chosen option value of token-set ratio above
  85, both first reduced to the first colour of a fixed list they contain
  (:func:`normalize_color`). A synthetic goal's options are ``(name, value)`` pairs,
  compared as the text ``"name value"`` (the original passes ``dict.items()``), and such
  a pair is reduced to a colour only when its name or value *is* one;
* ``r_price``: 1 when the price paid is at most the goal's bound;
* ``r_type``: 1, or 0.5 when neither the query, two product-category levels nor more than
  20% of the goal title's nouns match, 0.1 when under 10% of the nouns match, 0 when none do.

Fuzzy scores are rapidfuzz's ``token_set_ratio`` on text processed as thefuzz 0.19 did
(``force_ascii``: code points 128-255 removed; non-word characters to spaces; lower
case), rounded to an integer before the ``> 85`` test. thefuzz 0.19 without
python-Levenshtein used difflib's matcher, whose ratio can be a little lower than the
exact Indel ratio rapidfuzz computes (newer thefuzz releases use rapidfuzz too).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any

from agentgym.errors import require
from envs.webshop.catalog import Product
from envs.webshop.goals import Goal
from envs.webshop.nouns import title_nouns

FUZZY_THRESHOLD = 85

# The original's colour list, in its order (the first one contained wins).
# fmt: off
COLORS = (
    "alabaster", "apricot", "aqua", "ash", "asphalt", "azure", "banana", "beige", "black", "blue", "blush",
    "bordeaux", "bronze", "brown", "burgundy", "camel", "camo", "caramel", "champagne", "charcoal",
    "cheetah", "chestnut", "chocolate", "christmas", "coffee", "cognac", "copper", "coral", "cranberry",
    "cream", "crystal", "dark", "denim", "eggplant", "elephant", "espresso", "fuchsia", "gold", "granite",
    "grape", "graphite", "grass", "gray", "green", "grey", "heather", "indigo", "ivory", "ivy", "khaki",
    "lavender", "lemon", "leopard", "light", "lilac", "lime", "magenta", "maroon", "mauve", "merlot",
    "midnight", "mint", "mocha", "multicolor", "mushroom", "mustard", "natural", "navy", "nude", "olive",
    "orange", "peach", "pewter", "pink", "plum", "purple", "rainbow", "red", "rose", "royal", "rust",
    "sand", "sapphire", "seashell", "silver", "skull", "slate", "steel", "stone", "stonewash", "sunflower",
    "tan", "taupe", "teal", "tiger", "turquoise", "violet", "walnut", "wheat", "white", "wine", "yellow",
)
# fmt: on

_LATIN1 = {i: None for i in range(128, 256)}
_NON_WORD = re.compile(r"(?u)\W")
_fuzz = None


def token_set_ratio(a: str, b: str) -> float:
    """rapidfuzz's token-set ratio of two already processed texts (0-100)."""
    global _fuzz
    if _fuzz is None:
        _fuzz = require("rapidfuzz.fuzz", "webshop", "the WebShop reward")
    return _fuzz.token_set_ratio(a, b, processor=None)


def process(text: Any) -> str:
    """thefuzz 0.19's ``full_process(str(x), force_ascii=True)``."""
    return _NON_WORD.sub(" ", str(text).translate(_LATIN1)).lower().strip()


def fuzzy_match(a: Any, b: Any) -> bool:
    """Token-set ratio of the processed texts, rounded, above 85."""
    return round(token_set_ratio(process(a), process(b))) > FUZZY_THRESHOLD


OptionLike = str | tuple[str, str]


def normalize_color(option: OptionLike) -> OptionLike:
    """The first listed colour contained in a value (a pair: one of its two parts), else the option."""
    for color in COLORS:
        if color in option:
            return color
    return option


def option_text(option: OptionLike) -> str:
    return " ".join(option) if isinstance(option, tuple) else option


@dataclass(frozen=True)
class TypeMatch:
    r_type: float
    query_match: bool
    category_match: bool
    title_score: float


def type_reward(product: Product, goal: Goal) -> TypeMatch:
    """Whether the purchase is the goal's kind of product: query, category levels, title nouns."""
    query_match = product.query == goal.query
    bought_levels = {x.strip() for x in product.product_category.split("›")}
    goal_levels = {x.strip() for x in goal.product_category.split("›")}
    category_match = len(bought_levels & goal_levels) >= 2
    desired = title_nouns(goal.name)
    common = len(set(title_nouns(product.title)) & set(desired))
    title_score = 0.2 if not desired else common / len(desired)
    r_type = 1.0
    if not (query_match or category_match or title_score > 0.2):
        r_type = 0.5
    if title_score < 0.1:
        r_type = 0.1
    if title_score == 0.0:
        r_type = 0.0
    return TypeMatch(r_type, query_match, category_match, title_score)


def attribute_matches(product: Product, goal: Goal) -> int:
    """How many goal attributes the product has (fuzzy), or mentions (substring)."""
    title = product.title.lower()
    bullets = " ".join(product.bullets).lower()
    description = product.description.lower()
    matches = 0
    for wanted in goal.attributes:
        if (
            any(fuzzy_match(have, wanted) for have in product.attributes)
            or wanted in title
            or wanted in bullets
            or wanted in description
        ):
            matches += 1
    return matches


def goal_option_list(goal: Goal) -> list[OptionLike]:
    """A goal's options as the original compares them: values, or (name, value) pairs."""
    if isinstance(goal.goal_options, dict):
        return list(goal.goal_options.items())
    return list(goal.goal_options)


def option_matches(chosen: list[str], goal_options: list[OptionLike]) -> int:
    """How many goal options some chosen value matches, after colour normalisation."""
    bought = [option_text(normalize_color(o)) for o in chosen]
    wanted = [option_text(normalize_color(o)) for o in goal_options]
    return sum(1 for w in wanted if any(fuzzy_match(b, w) for b in bought))


@dataclass(frozen=True)
class RewardParts:
    """Everything the reward is made of (for info, rubrics, progress and hints)."""

    reward: float
    r_type: float
    r_att: float
    r_option: float | None
    r_price: bool
    n_attr_match: int
    n_opt_match: int
    n_goal_attrs: int
    n_goal_opts: int
    query_match: bool
    category_match: bool
    title_score: float
    w_att: float
    w_option: float
    w_price: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def get_reward(product: Product, goal: Goal, price: float, options: dict[str, str]) -> RewardParts:
    """The reward for buying ``product`` at ``price`` with ``options`` chosen ({name: value})."""
    kind = type_reward(product, goal)
    r_price = price <= goal.price_upper
    n_attr = attribute_matches(product, goal)
    wanted = goal_option_list(goal)
    n_opt = option_matches(list(options.values()), wanted)
    n_goal_attrs, n_goal_opts = len(goal.attributes), len(wanted)
    denominator = n_goal_attrs + n_goal_opts + 1
    total = (n_attr + n_opt + r_price) / denominator * kind.r_type
    return RewardParts(
        reward=total,
        r_type=kind.r_type,
        r_att=n_attr / n_goal_attrs if n_goal_attrs else 0.0,
        r_option=n_opt / n_goal_opts if n_goal_opts else None,
        r_price=r_price,
        n_attr_match=n_attr,
        n_opt_match=n_opt,
        n_goal_attrs=n_goal_attrs,
        n_goal_opts=n_goal_opts,
        query_match=kind.query_match,
        category_match=kind.category_match,
        title_score=kind.title_score,
        w_att=n_goal_attrs / denominator,
        w_option=n_goal_opts / denominator,
        w_price=1 / denominator,
    )
