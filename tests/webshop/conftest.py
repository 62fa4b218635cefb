"""A tiny catalog in the official WebShop formats, written in the test (for exact expectations)."""

from __future__ import annotations

import json

import pytest


def _product(asin, name, query, path, pricing, options, desc="", bullets=("",), category="fashion"):
    return {
        "asin": asin,
        "name": name,
        "full_description": desc,
        "small_description": bullets if isinstance(bullets, str) else list(bullets),
        "pricing": pricing,
        "customization_options": {k: [{"value": v, "image": None} for v in vs] for k, vs in options.items()},
        "category": category,
        "query": query,
        "product_category": path,
        "images": [],
    }


SOCKS_PATH = "Clothing, Shoes & Jewelry › Men › Clothing › Socks"
MUG_PATH = "Home & Kitchen › Kitchen & Dining › Dining & Entertaining › Cups, Mugs & Saucers › Mugs"

RAW = [
    # the target: wool socks with two attributes and two option groups
    _product(
        "B0SOCKS001",
        "Wool Hiking Socks",
        "men's wool socks",
        SOCKS_PATH,
        "$12.00",
        {"Color": ["black", "charcoal grey"], "Size": ["large", "small"]},
        desc="Warm socks.",
        bullets=["Cushioned sole for long hikes."],
    ),
    # same type, but neither goal attribute, and above any price bound of the target ($50 at most)
    _product(
        "B0SOCKS002",
        "Cotton Dress Socks",
        "men's wool socks",
        SOCKS_PATH,
        "$55.00 - $60.00",
        {"Color": ["black", "navy"], "Size": ["large"]},
        desc="Thin socks.",
    ),
    # another type altogether
    _product(
        "B0MUG00003",
        "Ceramic Coffee Mug",
        "coffee mug",
        MUG_PATH,
        "$9.50",
        {"Size": ["12 oz", "16 oz"]},
        desc="A mug.",
        category="kitchen",
    ),
    # dropped by the loader: a duplicate asin and an invalid one
    _product("B0SOCKS001", "Duplicate", "x", SOCKS_PATH, "$1.00", {}),
    _product("nan", "Invalid", "x", SOCKS_PATH, "$1.00", {}),
    # no price, no options, string bullet
    _product("B0PLAIN004", "Plain Tote Bag", "tote bag", "Clothing › Bags", "", {}, bullets="A bag."),
]
ATTRS = {
    "B0SOCKS001": {
        "attributes": ["merino wool", "moisture wicking"],
        "instruction": "i want merino wool socks",
        "instruction_attributes": ["merino wool", "moisture wicking"],
    },
    "B0SOCKS002": {
        "attributes": ["machine wash"],
        "instruction": "i need machine wash dress socks",
        "instruction_attributes": ["machine wash"],
    },
    "B0MUG00003": {
        "attributes": ["dishwasher safe"],
        "instruction": "a dishwasher safe mug",
        "instruction_attributes": ["dishwasher safe"],
    },
}
HUMAN = {
    "B0SOCKS001": [
        {
            "instruction": "i'm looking for merino wool socks that are moisture wicking, in black and size large.",
            "instruction_attributes": ["merino wool", "moisture wicking"],
            "instruction_options": ["black", "large"],
        },
        {"instruction": "no attributes: skipped", "instruction_attributes": [], "instruction_options": []},
    ],
    "B0MUG00003": [
        {
            "instruction": "a 16 oz dishwasher safe mug",
            "instruction_attributes": ["dishwasher safe"],
            "instruction_options": ["16 oz"],
        },
    ],
}


def write_official(folder, raw=RAW, attrs=ATTRS, human=HUMAN, suffix="_1000"):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"items_shuffle{suffix}.json").write_text(json.dumps(raw))
    (folder / f"items_ins_v2{suffix}.json").write_text(json.dumps(attrs))
    if human is not None:
        (folder / "items_human_ins.json").write_text(json.dumps(human))
    return folder


@pytest.fixture
def tiny_dir(tmp_path):
    return write_official(tmp_path / "tiny")
