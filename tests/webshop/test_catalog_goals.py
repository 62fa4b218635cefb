"""Loading the official formats and building goals in the original's order and splits."""

from __future__ import annotations

import json
import random

import pytest

from agentgym.core.task import split_of
from agentgym.errors import UserError
from envs.webshop.catalog import SHIPPED_DATA, load_catalog, parse_options, parse_pricing
from envs.webshop.goals import GoalBook, build_goals, human_goals, synthetic_goals
from tests.webshop.conftest import write_official


def test_products_are_normalised_as_the_original(tiny_dir):
    catalog = load_catalog(tiny_dir)
    assert [p.asin for p in catalog.products] == ["B0SOCKS001", "B0SOCKS002", "B0MUG00003", "B0PLAIN004"]
    socks = catalog.by_asin["B0SOCKS001"]
    assert socks.options == {"color": ("black", "charcoal grey"), "size": ("large", "small")}
    assert socks.price_tag == "$12.0" and catalog.prices["B0SOCKS001"] == 12.0
    ranged = catalog.by_asin["B0SOCKS002"]
    assert ranged.price_tag == "$55.0 to $60.0" and 55.0 <= catalog.prices["B0SOCKS002"] <= 60.0
    plain = catalog.by_asin["B0PLAIN004"]
    assert (
        plain.price_tag == "$100.0" and plain.bullets == ("A bag.",) and plain.attributes == ("DUMMY_ATTR",)
    )
    assert socks.query == "men's wool socks" and socks.rating == "N.A."


def test_pricing_and_option_parsing():
    assert parse_pricing("$1,299.99") == ((1299.99,), "$1299.99")
    assert parse_pricing("$5.5 - $7") == ((5.5, 7.0), "$5.5 to $7.0")
    assert parse_pricing(None) == ((100.0,), "$100.0")
    assert parse_pricing("$") == ((100.0,), "$100.0")
    assert parse_options({"Color": [{"value": " Navy/Blue "}], "Empty": None}) == {"color": ("navy | blue",)}


def test_prices_are_seeded(tiny_dir):
    a, b, c = (load_catalog(tiny_dir, seed=s).prices["B0SOCKS002"] for s in (0, 0, 1))
    assert a == b != c


def test_synthetic_goals(tiny_dir):
    goals = build_goals(load_catalog(tiny_dir), "synthetic")
    assert len(goals) == 4 + 2 + 2  # one per option combination; the tote bag has no instruction
    socks = [g for g in goals if g.asin == "B0SOCKS001"]
    assert {tuple(g.goal_options.items()) for g in socks} == {
        (("color", c), ("size", s)) for c in ("black", "charcoal grey") for s in ("large", "small")
    }
    one = next(g for g in socks if g.goal_options == {"color": "black", "size": "large"})
    assert one.instruction_text == (
        f"i want merino wool socks with color: black, and size: large, and price lower than {one.price_upper:.2f} dollars"
    )
    # weight: mean over attributes of 1 / (goals naming it): merino wool and moisture wicking are in 4 goals each
    assert one.weight == pytest.approx((1 / 4 + 1 / 4) / 2)
    assert next(g for g in goals if g.asin == "B0MUG00003").weight == pytest.approx(1 / 2)


def test_human_goals(tiny_dir):
    goals = build_goals(load_catalog(tiny_dir), "human")
    assert len(goals) == 2  # the instruction without attributes is skipped
    socks = next(g for g in goals if g.asin == "B0SOCKS001")
    assert socks.instruction_text.startswith(
        "i'm looking for merino wool socks that are moisture wicking, in black and size large, and price lower than"
    )
    assert (
        socks.goal_options == ("black", "large") and socks.weight == 1.0 and socks.name == "Wool Hiking Socks"
    )


@pytest.mark.parametrize("goal_set,make", [("human", human_goals), ("synthetic", synthetic_goals)])
def test_order_is_the_fixed_shuffle_of_the_original(goal_set, make):
    catalog = load_catalog()
    unshuffled = make(catalog, random.Random(f"webshop-price-bounds-0-{goal_set}"))
    state = random.getstate()
    try:
        random.seed(233)  # what the original does to the global generator
        random.shuffle(unshuffled)
    finally:
        random.setstate(state)
    assert build_goals(catalog, goal_set) == unshuffled


def test_splits_and_tasks(tiny_dir, tmp_path):
    shipped = GoalBook(load_catalog(), "synthetic")
    assert shipped.bounds["test"] == (0, 100) and shipped.bounds["eval"] == (100, 200)
    # without splits.json the original's ranges apply
    official = GoalBook(load_catalog(tiny_dir), "synthetic")
    assert official.bounds == {"test": (0, 8), "eval": (8, 8), "train": (8, 8)}
    for index in (0, 150, 300):
        task = shipped.task(index)
        assert task.id == f"synthetic-{index}" and task.metadata["goal_index"] == index
        assert task.inputs["instruction"] == shipped.goals[index].instruction_text
        want = "train" if index >= 200 else "test"
        assert split_of(task.fingerprint()) == want  # agrees with the core's hash split
        assert task.reference["goal"]["asin"] == shipped.goals[index].asin


def test_bad_data_folders_are_user_errors(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        load_catalog(tmp_path / "missing")
    with pytest.raises(UserError, match="items_shuffle"):
        load_catalog(tmp_path)
    folder = write_official(tmp_path / "broken")
    (folder / "items_shuffle_1000.json").write_text("{not json")
    with pytest.raises(UserError, match="not valid JSON"):
        load_catalog(folder)
    write_official(tmp_path / "noname", raw=[{"asin": "B0X"}])
    with pytest.raises(UserError, match="'name'"):
        load_catalog(tmp_path / "noname")


def test_shipped_catalog_is_small_and_varied():
    raw = json.loads((SHIPPED_DATA / "items_shuffle.json").read_text())
    human = json.loads((SHIPPED_DATA / "items_human_ins.json").read_text())
    assert len(raw) >= 100 and len({p["category"] for p in raw}) >= 5
    assert sum(len(v) for v in human.values()) >= 200
    assert sum(f.stat().st_size for f in SHIPPED_DATA.iterdir()) < 400_000


def test_shipped_catalog_is_what_the_maker_writes(tmp_path):
    from envs.webshop.maker import write_catalog

    out = write_catalog(tmp_path / "made", 125, 0, {"test": 100, "eval": 100})
    for name in ("items_shuffle.json", "items_ins_v2.json", "items_human_ins.json", "splits.json"):
        assert json.loads((out / name).read_text()) == json.loads((SHIPPED_DATA / name).read_text()), name
