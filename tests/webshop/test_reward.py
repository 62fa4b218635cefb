"""The reward on a catalog in the official format, each value worked out by hand from the formula:

reward = (n_attr_match + n_opt_match + r_price) / (n_goal_attrs + n_goal_opts + 1) * r_type
"""

from __future__ import annotations

import random

import pytest

from envs.webshop import reward as R
from envs.webshop.catalog import load_catalog
from envs.webshop.goals import Goal, build_goals, price_bound
from envs.webshop.nouns import title_nouns


@pytest.fixture
def catalog(tiny_dir):
    return load_catalog(tiny_dir)


def synthetic_goal(catalog, options):
    return next(
        g for g in build_goals(catalog, "synthetic") if g.asin == "B0SOCKS001" and g.goal_options == options
    )


def buy(catalog, goal, asin, options):
    return R.get_reward(catalog.by_asin[asin], goal, catalog.prices[asin], options)


def test_right_item_with_all_options_scores_one(catalog):
    goal = synthetic_goal(catalog, {"color": "black", "size": "large"})
    parts = buy(catalog, goal, "B0SOCKS001", {"color": "black", "size": "large"})
    # 2 attributes + 2 options + price, out of 2 + 2 + 1; same query, same nouns: r_type 1
    assert parts.reward == (2 + 2 + 1) / (2 + 2 + 1) * 1.0 == 1.0
    assert (parts.n_attr_match, parts.n_opt_match, parts.r_price, parts.r_type) == (2, 2, True, 1.0)
    assert parts.w_att == 2 / 5 and parts.w_option == 2 / 5 and parts.w_price == 1 / 5


def test_right_item_with_a_wrong_option(catalog):
    goal = synthetic_goal(catalog, {"color": "black", "size": "large"})
    parts = buy(catalog, goal, "B0SOCKS001", {"color": "charcoal grey", "size": "large"})
    # "charcoal grey" normalises to "charcoal", which matches neither "black" nor "size large";
    # "large" matches the pair ("size", "large") compared as "size large" (a token subset: 100).
    assert parts.n_opt_match == 1 and parts.r_option == 0.5
    assert parts.reward == pytest.approx((2 + 1 + 1) / (2 + 2 + 1) * 1.0) == 0.8


def test_same_type_item_whose_attributes_miss(catalog):
    goal = synthetic_goal(catalog, {"color": "black", "size": "large"})
    parts = buy(catalog, goal, "B0SOCKS002", {"color": "black", "size": "large"})
    # "machine wash" is not "merino wool" or "moisture wicking", and neither is in its texts: 0 attributes;
    # both options match; its price is drawn in [$55, $60], above any bound for a $12 target ($50 at most).
    assert parts.n_attr_match == 0 and parts.n_opt_match == 2 and parts.r_price is False
    # same query -> r_type 1 as long as some title noun ("socks") is shared
    assert "socks" in title_nouns("Cotton Dress Socks") and "socks" in title_nouns(goal.name)
    assert parts.r_type == 1.0 and parts.query_match
    assert parts.reward == pytest.approx((0 + 2 + 0) / (2 + 2 + 1) * 1.0) == 0.4


def test_item_of_another_type_scores_zero(catalog):
    goal = synthetic_goal(catalog, {"color": "black", "size": "large"})
    parts = buy(catalog, goal, "B0MUG00003", {"size": "16 oz"})
    assert not set(title_nouns("Ceramic Coffee Mug")) & set(title_nouns("Wool Hiking Socks"))
    assert parts.title_score == 0.0 and parts.r_type == 0.0
    assert not parts.query_match and not parts.category_match
    # the price part would be 1 (9.50 <= bound) but r_type 0 zeroes the whole reward
    assert parts.reward == (0 + 0 + 1) / 5 * 0.0 == 0.0


def test_human_goal_options_are_values(catalog):
    goal = next(g for g in build_goals(catalog, "human") if g.asin == "B0SOCKS001")
    assert goal.goal_options == ("black", "large")
    assert buy(catalog, goal, "B0SOCKS001", {"color": "black", "size": "large"}).reward == 1.0
    wrong = buy(catalog, goal, "B0SOCKS001", {"color": "charcoal grey", "size": "large"})
    assert wrong.reward == pytest.approx((2 + 1 + 1) / 5)
    none_chosen = buy(catalog, goal, "B0SOCKS001", {})
    assert none_chosen.reward == pytest.approx((2 + 0 + 1) / 5)


def test_attribute_falls_back_to_title_bullets_description(catalog):
    product = catalog.by_asin["B0SOCKS002"]
    base = {
        "instruction_text": "",
        "goal_options": {},
        "price_upper": 1e6,
        "query": product.query,
        "category": "",
        "product_category": "",
        "name": product.title,
        "weight": 1.0,
        "asin": product.asin,
    }
    assert R.attribute_matches(product, Goal(attributes=("dress socks",), **base)) == 1  # in the title
    assert R.attribute_matches(product, Goal(attributes=("thin",), **base)) == 1  # in the description
    assert R.attribute_matches(product, Goal(attributes=("machine washing",), **base)) == 1  # fuzzy: 89
    assert R.attribute_matches(product, Goal(attributes=("hand wash only",), **base)) == 0


def test_fuzzy_match_rounds_before_the_threshold():
    a, b = "x" * 23 + "abcd", "x" * 23 + "efgh"  # ratio 2 * 23 / 54 = 85.19: rounds to 85, not above
    assert 85 < R.token_set_ratio(a, b) < 85.5 and not R.fuzzy_match(a, b)
    a, b = "abcdefg", "abcdefh"  # 2 * 6 / 14 = 85.71 -> 86
    assert R.fuzzy_match(a, b)
    assert R.fuzzy_match("Merino-Wool", "merino wool")  # punctuation and case are processed away
    assert (
        R.process("Caf\u00e9 Ni\u00f1o\u00bd") == "caf nio"
    )  # code points 128-255 dropped, as thefuzz's force_ascii


def test_colour_normalisation_as_the_original():
    assert R.normalize_color("navy blue") == "blue"  # the first listed colour contained
    assert R.normalize_color("light wash") == "ash"  # "ash" comes before "light" in the list
    assert R.normalize_color(("color", "black")) == "black"  # a pair: only an exact part
    assert R.normalize_color(("color", "navy blue")) == ("color", "navy blue")
    # so a synthetic goal ("color", "light wash") never matches the value "light wash" (a quirk kept)
    assert R.option_matches(["light wash"], [("color", "light wash")]) == 0
    assert R.option_matches(["light wash"], ["light wash"]) == 1


def test_type_reward_branches(monkeypatch):
    from envs.webshop.catalog import Product

    nouns = {
        "goal": ("a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k"),
        "one": ("a",),
        "two": ("a", "b"),
        "three": ("a", "b", "c"),
    }
    monkeypatch.setattr(R, "title_nouns", lambda title: nouns.get(title, ()))

    def product(title, query="q2", path="x › y"):
        return Product(title, title, "", ("",), "$1", (1.0,), {}, "", query, path, ("DUMMY_ATTR",))

    goal = Goal("G", "", ("a",), {}, 1e6, "q1", "", "c1 › c2 › c3", "goal", 1.0)
    assert R.type_reward(product("two"), goal).r_type == 0.5  # 2/11 <= 0.2 and no query or category match
    assert R.type_reward(product("two"), goal).title_score == pytest.approx(2 / 11)
    assert R.type_reward(product("three"), goal).r_type == 1.0  # 3/11 > 0.2 is a match by itself
    assert R.type_reward(product("one"), goal).r_type == 0.1  # 1/11 < 0.1
    assert R.type_reward(product("none"), goal).r_type == 0.0
    assert R.type_reward(product("one", query="q1"), goal).r_type == 0.1  # a query match does not lift < 0.1
    assert R.type_reward(product("two", path="c1 › c2 › z"), goal).r_type == 1.0  # two category levels
    no_nouns = Goal("G", "", ("a",), {}, 1e6, "q1", "", "", "", 1.0)
    assert R.type_reward(product("none"), no_nouns).title_score == 0.2  # no goal nouns: 0.2 by rule


def test_price_bound_rule():
    for seed in range(20):
        upper, text = price_bound(12.0, random.Random(seed))
        assert upper in (30.0, 40.0, 50.0) and text == f", and price lower than {upper:.2f} dollars"
    assert price_bound(985.0, random.Random(0)) == (1_000_000.0, "")  # fewer than two steps above


def test_nouns_of_titles():
    assert {"socks"} <= set(title_nouns("Wool Hiking Socks"))
    assert {"mug", "coffee"} <= set(title_nouns("Ceramic Coffee Mug"))
    assert "|" not in title_nouns("Lamp | Desk")  # punctuation never counts
    assert title_nouns("") == ()
