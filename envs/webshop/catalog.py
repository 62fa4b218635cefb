"""The product catalog, read from WebShop's official data files (or our shipped catalog).

Three files, in the formats princeton-nlp/WebShop publishes, so the official 1k or full
files can be dropped in unchanged:

* ``items_shuffle*.json``: a list of raw products (``asin``, ``name``, ``full_description``,
  ``small_description`` as a string or a list, ``pricing`` as ``"$x"`` or ``"$x - $y"``,
  ``customization_options`` as ``{Name: [{"value": ..., "image": ...}]}``, ``category``,
  ``query``, ``product_category`` as ``"A › B › C"``; other keys are ignored);
* ``items_ins_v2*.json``: asin -> ``{"attributes": [...], "instruction": ...,
  "instruction_attributes": [...]}`` (the synthetic goals' source);
* ``items_human_ins.json``: asin -> a list of ``{"instruction", "instruction_attributes",
  "instruction_options"}`` (the human goals).

Products are normalised the way the original engine does it: invalid or duplicate
asins are dropped, option names and values are lower-cased (``/`` in a value becomes
`` | ``), a price range keeps its two ends, a product with no price costs $100.0, and
products without attributes get the placeholder ``DUMMY_ATTR``. Each product's price
for the reward is drawn once, uniformly inside its range, from a seeded generator
(the original draws it unseeded, so its prices vary from process to process).
"""

from __future__ import annotations

import json
import random
import re
import threading
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from agentgym.errors import UserError

#: The shipped catalog (written for this project; see ``docs/webshop.md``).
SHIPPED_DATA = Path(__file__).resolve().parent / "data"
DEFAULT_PRICE = 100.0


@dataclass(frozen=True, slots=True)
class Product:
    """One product as the shop shows it and the reward reads it."""

    asin: str
    title: str
    description: str
    bullets: tuple[str, ...]
    price_tag: str
    pricing: tuple[float, ...]
    options: dict[str, tuple[str, ...]]
    category: str
    query: str
    product_category: str
    attributes: tuple[str, ...]
    rating: str = "N.A."
    reviews: tuple[dict, ...] = ()
    #: The synthetic instruction of ``items_ins_v2`` (None when the product has none).
    instruction: str | None = None
    instruction_attributes: tuple[str, ...] = ()
    #: The human instructions of ``items_human_ins`` (each a dict in the official form).
    human_instructions: tuple[dict, ...] = ()


@dataclass
class Catalog:
    """All products of one data folder, in file order, with their drawn prices."""

    products: list[Product]
    prices: dict[str, float]
    source: str
    splits: dict[str, int] = field(default_factory=dict)
    by_asin: dict[str, Product] = field(init=False)

    def __post_init__(self) -> None:
        self.by_asin = {p.asin: p for p in self.products}

    def __len__(self) -> int:
        return len(self.products)


@dataclass(frozen=True)
class DataFiles:
    """Where a catalog's three files are; :func:`find_files` fills it from a folder."""

    products: Path
    attributes: Path
    human: Path | None


def find_files(data_dir: str | Path) -> DataFiles:
    """The official files in ``data_dir``: one ``items_shuffle*.json``, one ``items_ins_v2*.json``."""
    folder = Path(data_dir)
    if not folder.is_dir():
        raise UserError(
            f"WebShop data folder {folder} does not exist: give a folder with items_shuffle*.json."
        )

    def pick(pattern: str) -> Path | None:
        found = sorted(folder.glob(pattern))
        if len(found) > 1:
            names = ", ".join(p.name for p in found)
            raise UserError(
                f"{folder} has several {pattern} files ({names}): keep one set of data files per folder."
            )
        return found[0] if found else None

    products = pick("items_shuffle*.json")
    attributes = pick("items_ins_v2*.json")
    if products is None or attributes is None:
        raise UserError(
            f"{folder} needs items_shuffle*.json and items_ins_v2*.json (the official WebShop files); "
            "see docs/webshop.md for how to get them."
        )
    human = folder / "items_human_ins.json"
    return DataFiles(products, attributes, human if human.is_file() else None)


def _read_json(path: Path) -> Any:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as exc:
        raise UserError(
            f"{path} is not valid JSON ({exc}); use the official WebShop files unchanged."
        ) from exc


def parse_pricing(pricing: Any) -> tuple[tuple[float, ...], str]:
    """``"$x"`` or ``"$x - $y"`` -> (prices, the tag the item page shows), as the original does."""
    values: list[float] = []
    if isinstance(pricing, str):
        for piece in pricing.split("$")[1:]:
            digits = re.sub(r"[^\d.]", "", piece)
            try:
                values.append(float(Decimal(digits)))
            except InvalidOperation:
                continue
    if not values:
        return (DEFAULT_PRICE,), f"${DEFAULT_PRICE}"
    if len(values) == 1:
        return (values[0],), f"${values[0]}"
    return (values[0], values[1]), f"${values[0]} to ${values[1]}"


def parse_options(raw: Any) -> dict[str, tuple[str, ...]]:
    """``customization_options`` -> {lower-case name: lower-case values}, as the original does."""
    options: dict[str, tuple[str, ...]] = {}
    if not isinstance(raw, dict):
        return options
    for name, contents in raw.items():
        if not contents:
            continue
        values = []
        for content in contents:
            value = content.get("value") if isinstance(content, dict) else content
            if value is None:
                continue
            values.append(str(value).strip().replace("/", " | ").lower())
        options[str(name).lower()] = tuple(values)
    return options


def _bullets(raw: Any) -> tuple[str, ...]:
    if isinstance(raw, list):
        return tuple(str(b) for b in raw) or ("",)
    return (str(raw) if raw is not None else "",)


def build_catalog(
    raw_products: list[dict],
    attributes: dict[str, dict],
    human: dict[str, list[dict]] | None,
    *,
    num_products: int | None = None,
    seed: int = 0,
    source: str = "<memory>",
) -> Catalog:
    """Normalise raw products (official format) into a :class:`Catalog`."""
    if not isinstance(raw_products, list):
        raise UserError(f"{source}: the products file must hold a JSON list of products.")
    if num_products is not None:
        raw_products = raw_products[:num_products]  # the files are already shuffled
    seen: set[str] = set()
    products: list[Product] = []
    for i, p in enumerate(raw_products):
        if not isinstance(p, dict):
            raise UserError(f"{source}: product {i} is not a JSON object.")
        asin = str(p.get("asin", "nan"))
        if asin == "nan" or len(asin) > 10 or asin in seen:
            continue
        seen.add(asin)
        try:
            pricing, price_tag = parse_pricing(p.get("pricing"))
            info = attributes.get(asin) or {}
            products.append(
                Product(
                    asin=asin,
                    title=str(p["name"]),
                    description=str(p.get("full_description") or ""),
                    bullets=_bullets(p.get("small_description")),
                    price_tag=price_tag,
                    pricing=pricing,
                    options=parse_options(p.get("customization_options")),
                    category=str(p.get("category") or ""),
                    query=str(p.get("query") or "").lower().strip(),
                    product_category=str(p.get("product_category") or ""),
                    attributes=tuple(info.get("attributes") or ("DUMMY_ATTR",)),
                    instruction=info.get("instruction"),
                    instruction_attributes=tuple(info.get("instruction_attributes") or ()),
                    human_instructions=tuple((human or {}).get(asin) or ()),
                )
            )
        except KeyError as exc:
            raise UserError(f"{source}: product {asin} has no {exc.args[0]!r} field.") from exc
    if not products:
        raise UserError(f"{source} has no valid products.")
    return Catalog(products, draw_prices(products, random.Random(seed)), source)


def draw_prices(products: list[Product], rng: random.Random) -> dict[str, float]:
    """The price each product is bought at: its price, or a uniform draw inside its range."""
    prices: dict[str, float] = {}
    for product in products:
        prices[product.asin] = (
            product.pricing[0] if len(product.pricing) == 1 else rng.uniform(*product.pricing[:2])
        )
    return prices


def load_catalog(
    data_dir: str | Path | None = None, *, num_products: int | None = None, seed: int = 0
) -> Catalog:
    """Read a data folder (default: the shipped catalog) into a :class:`Catalog`."""
    files = find_files(data_dir or SHIPPED_DATA)
    raw = _read_json(files.products)
    attributes = _read_json(files.attributes)
    if not isinstance(attributes, dict):
        raise UserError(f"{files.attributes} must map asins to attribute records.")
    human = _read_json(files.human) if files.human is not None else None
    catalog = build_catalog(
        raw, attributes, human, num_products=num_products, seed=seed, source=str(files.products)
    )
    splits_file = files.products.parent / "splits.json"
    if splits_file.is_file():
        catalog.splits = {k: int(v) for k, v in _read_json(splits_file).items()}
    return catalog


_CACHE: dict[tuple, Catalog] = {}
_LOCK = threading.Lock()


def shared_catalog(
    data_dir: str | Path | None = None, *, num_products: int | None = None, seed: int = 0
) -> Catalog:
    """One :class:`Catalog` per data folder and settings per process, shared by every session."""
    folder = Path(data_dir or SHIPPED_DATA).resolve()
    key = (str(folder), num_products, seed)
    with _LOCK:
        catalog = _CACHE.get(key)
        if catalog is None:
            catalog = _CACHE[key] = load_catalog(folder, num_products=num_products, seed=seed)
        return catalog
