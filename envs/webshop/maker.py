"""Make product catalogs in WebShop's official file formats, written for this project.

The shipped catalog (``envs/webshop/data``) was made with this module and committed;
the throughput benchmark makes a 10,000-product catalog with it. Products are composed
from the hand-written tables in :mod:`envs.webshop.product_types`: five categories (as
the original's: beauty, electronics, fashion, furniture, grocery), five product types
each, every type with its search queries, a product-category path, a pool of
attributes, option groups and a price range. Several products of each type share the
type's query and attribute pool, so every goal has same-type distractors that miss some
of its attributes or options.

    python -m envs.webshop.maker --products 125 --out envs/webshop/data
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path
from typing import Any

from envs.webshop.product_types import KINDS, Kind

_SYLLABLES = [c + v for c in "bdfgklmnprstvz" for v in ("a", "e", "i", "o", "u", "ai", "ei", "ou")]
_OPENERS_SYN = ("i need", "i am looking for", "i want", "find me", "i would like")
_OPENERS_HUMAN = (
    "i'm looking for",
    "please find",
    "i need to buy",
    "can you get me",
    "i want to order",
    "i'd like",
    "show me",
    "buy me",
)


def _brand(rng: random.Random) -> str:
    return "".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(2, 3))).capitalize()


def _asin(rng: random.Random, taken: set[str]) -> str:
    while True:
        asin = "B0" + "".join(rng.choice("ABCDEFGHJKLMNPQRSTUVWXYZ0123456789") for _ in range(8))
        if asin not in taken:
            taken.add(asin)
            return asin


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def make_product(kind: Kind, rng: random.Random, asin: str) -> tuple[dict, dict, list[dict]]:
    """One raw product, its ``items_ins_v2`` record and its human instructions."""
    brand, style = _brand(rng), rng.choice(kind.styles)
    attrs = rng.sample(kind.attributes, rng.randint(3, min(4, len(kind.attributes))))
    in_title = attrs[: rng.randint(1, 2)]
    noun_title = " ".join(w.capitalize() if not w[0].isdigit() else w for w in kind.noun.split())
    title = f"{brand} {style} {noun_title} - {', '.join(a.title() for a in in_title)}, for {kind.use.title()}"
    options: dict[str, list[str]] = {}
    for name, values in kind.options.items():
        options[name] = rng.sample(values, rng.randint(2, len(values)))
    low = rng.randint(kind.price[0], kind.price[1])
    pricing = f"${low}.99" if rng.random() < 0.8 else f"${low}.99 - ${low + rng.randint(2, 12)}.49"
    rest = [a for a in attrs if a not in in_title]
    bullets = [f"{a.upper()}: this {kind.noun} is {a}, made for {kind.use}." for a in rest[:1]]
    bullets += [
        f"Designed by {brand} for {kind.use}, in {len(options) and ', '.join(next(iter(options.values())))}.",
        f"Satisfaction guaranteed: contact {brand} with any question about your {kind.noun}.",
    ]
    description = f"The {brand} {style.lower()} {kind.noun} is made for {kind.use}. " + " ".join(
        f"It is {a}." for a in rest[1:]
    )
    raw = {
        "asin": asin,
        "name": title,
        "full_description": description,
        "small_description": bullets,
        "pricing": pricing,
        "customization_options": {
            name.capitalize(): [{"value": v, "image": None} for v in values]
            for name, values in options.items()
        },
        "category": kind.category,
        "query": rng.choice(kind.queries),
        "product_category": kind.path,
        "images": [],
    }
    goal_attrs = rng.sample(attrs, rng.randint(1, min(3, len(attrs))))
    instruction = (
        f"{rng.choice(_OPENERS_SYN)} {_article(goal_attrs[0])} {' and '.join(goal_attrs)} {kind.noun}"
    )
    ins = {"attributes": attrs, "instruction": instruction, "instruction_attributes": goal_attrs}
    human = []
    for _ in range(rng.randint(2, 4)):
        wanted = rng.sample(attrs, rng.randint(1, 2))
        picked = {n: rng.choice(v) for n, v in options.items() if rng.random() < 0.8}
        option_words = [
            f"{v} {n}" if n in ("color", "flavor", "scent") else f"size {v}" if n == "size" else f"{n} {v}"
            for n, v in picked.items()
        ]
        text = f"{rng.choice(_OPENERS_HUMAN)} {_article(wanted[0])} {wanted[0]} {kind.noun}"
        if len(wanted) > 1:
            text += rng.choice([f" that is {wanted[1]}", f" with {wanted[1]}", f", {wanted[1]}"])
        if option_words:
            text += rng.choice([" in ", ", ", " and i want "]) + " and ".join(option_words)
        human.append(
            {
                "instruction": text,
                "instruction_attributes": wanted,
                "instruction_options": list(picked.values()),
            }
        )
    return raw, ins, human


def make_catalog(
    num_products: int, seed: int = 0
) -> tuple[list[dict], dict[str, dict], dict[str, list[dict]]]:
    """``num_products`` products (round-robin over the types), shuffled, in the three official formats."""
    rng = random.Random(seed)
    taken: set[str] = set()
    products, ins, human = [], {}, {}
    for i in range(num_products):
        kind = KINDS[i % len(KINDS)]
        raw, record, instructions = make_product(kind, rng, _asin(rng, taken))
        products.append(raw)
        ins[raw["asin"]] = record
        human[raw["asin"]] = instructions
    rng.shuffle(products)  # items_shuffle: the files come shuffled
    return products, ins, human


def write_catalog(
    out: str | Path, num_products: int, seed: int = 0, splits: dict[str, int] | None = None
) -> Path:
    """Write ``items_shuffle.json``, ``items_ins_v2.json``, ``items_human_ins.json`` (and ``splits.json``)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    products, ins, human = make_catalog(num_products, seed)
    files: dict[str, Any] = {
        "items_shuffle.json": products,
        "items_ins_v2.json": ins,
        "items_human_ins.json": human,
    }
    if splits:
        files["splits.json"] = splits
    for name, data in files.items():
        (out / name).write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--products", type=int, default=125, help="how many products (default 125)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", required=True, help="the folder to write the three JSON files into")
    parser.add_argument("--test", type=int, default=100, help="goals in the test split (splits.json)")
    parser.add_argument("--eval", type=int, default=100, help="goals in the eval split (splits.json)")
    args = parser.parse_args(argv)
    path = write_catalog(args.out, args.products, args.seed, {"test": args.test, "eval": args.eval})
    print(f"wrote {args.products} products to {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
