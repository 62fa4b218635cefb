"""The product types WebShop catalogs are composed from: hand-written vocabulary tables.

Kept apart from :mod:`envs.webshop.maker` so the data (five categories, five types
each, with their queries, category path, attribute pool, option groups, price range,
title styles and use) can be read and extended without wading through the code that
turns it into products. Several products of each type share the type's query and
attribute pool, which is what gives every goal same-type distractors.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Kind:
    """One product type and the vocabulary its products are made of."""

    category: str
    noun: str
    queries: tuple[str, ...]
    path: str
    attributes: tuple[str, ...]
    options: dict[str, tuple[str, ...]]
    price: tuple[int, int]
    styles: tuple[str, ...]
    use: str


def _k(category, noun, queries, path, attributes, options, price, styles, use) -> Kind:
    return Kind(category, noun, tuple(queries), path, tuple(attributes), options, price, tuple(styles), use)


COLORS_BASIC = ("black", "white", "navy blue", "light grey", "burgundy red", "olive green")
SIZES_APPAREL = ("small", "medium", "large", "x-large")

KINDS: tuple[Kind, ...] = (
    # ---- beauty
    _k(
        "beauty",
        "shampoo",
        ["shampoo for dry hair", "natural shampoo"],
        "Beauty & Personal Care › Hair Care › Shampoo & Conditioner › Shampoos",
        ["sulfate free", "paraben free", "argan oil", "dry hair", "color treated hair", "tea tree"],
        {
            "size": ("8.4 fl oz (pack of 1)", "16.9 fl oz (pack of 1)", "16.9 fl oz (pack of 2)"),
            "scent": ("lavender", "coconut", "unscented"),
        },
        (7, 34),
        ["Moisturizing", "Clarifying", "Volumizing", "Repairing"],
        "hair",
    ),
    _k(
        "beauty",
        "lipstick",
        ["matte lipstick", "long lasting lipstick"],
        "Beauty & Personal Care › Makeup › Lips › Lipstick",
        ["long lasting", "cruelty free", "vitamin e", "highly pigmented", "waterproof formula"],
        {"color": ("ruby red", "nude beige", "berry plum", "coral pink")},
        (5, 26),
        ["Velvet", "Satin", "Creamy", "Liquid"],
        "lips",
    ),
    _k(
        "beauty",
        "face serum",
        ["vitamin c serum", "face serum for wrinkles"],
        "Beauty & Personal Care › Skin Care › Face › Serums",
        ["hyaluronic acid", "vitamin c", "fine lines", "sensitive skin", "fragrance free"],
        {"size": ("1 fl oz", "2 fl oz")},
        (11, 48),
        ["Brightening", "Hydrating", "Firming", "Daily"],
        "skin",
    ),
    _k(
        "beauty",
        "nail polish",
        ["nail polish set", "quick dry nail polish"],
        "Beauty & Personal Care › Foot, Hand & Nail Care › Nail Art & Polish › Nail Polish",
        ["quick dry", "non toxic", "chip resistant", "gel finish"],
        {"color": ("cherry red", "pastel lilac", "glitter gold", "jet black", "soft pink")},
        (4, 19),
        ["Glossy", "Salon", "Classic", "Shimmer"],
        "nails",
    ),
    _k(
        "beauty",
        "hair dryer",
        ["ionic hair dryer", "travel hair dryer"],
        "Beauty & Personal Care › Hair Care › Styling Tools & Appliances › Hair Dryers",
        ["ionic technology", "low noise", "foldable handle", "diffuser attachment", "fast drying"],
        {"color": ("matte black", "rose gold", "pearl white")},
        (19, 89),
        ["Professional", "Compact", "Salon Grade", "Lightweight"],
        "hair",
    ),
    # ---- electronics
    _k(
        "electronics",
        "wireless earbuds",
        ["bluetooth earbuds", "wireless earbuds with microphone"],
        "Electronics › Headphones, Earbuds & Accessories › Earbuds",
        ["noise cancelling", "charging case", "water resistant", "built in microphone", "touch control"],
        {"color": ("black", "white", "navy blue")},
        (15, 120),
        ["True", "Sport", "Mini", "Pro"],
        "music and calls",
    ),
    _k(
        "electronics",
        "phone case",
        ["iphone case", "shockproof phone case"],
        "Cell Phones & Accessories › Cases, Holsters & Sleeves › Basic Cases",
        ["shockproof bumper", "wireless charging compatible", "raised edges", "slim fit", "kickstand"],
        {
            "color": ("clear", "black", "dark green", "lavender purple"),
            "model": ("iphone 13", "iphone 14", "iphone 15"),
        },
        (6, 29),
        ["Rugged", "Crystal", "Slim", "Armor"],
        "phones",
    ),
    _k(
        "electronics",
        "usb c cable",
        ["usb c charging cable", "fast charging cable"],
        "Electronics › Computers & Accessories › Cables › USB Cables",
        ["fast charging", "braided nylon", "data transfer", "durable connector"],
        {"size": ("3 ft", "6 ft", "10 ft"), "package": ("1 pack", "2 pack", "3 pack")},
        (5, 24),
        ["Heavy Duty", "Premium", "Tangle Free", "Right Angle"],
        "charging",
    ),
    _k(
        "electronics",
        "bluetooth speaker",
        ["portable bluetooth speaker", "waterproof speaker"],
        "Electronics › Portable Audio & Video › Portable Speakers & Docks › Portable Bluetooth Speakers",
        ["waterproof ipx7", "long battery life", "stereo sound", "deep bass", "hands free"],
        {"color": ("black", "blue", "red")},
        (19, 99),
        ["Outdoor", "Mini", "Party", "Rugged"],
        "music",
    ),
    _k(
        "electronics",
        "hdmi cable",
        ["4k hdmi cable", "high speed hdmi cable"],
        "Electronics › Television & Video › Accessories › Cables › HDMI Cables",
        ["high speed", "4k resolution", "gold plated", "ethernet channel"],
        {"size": ("3 feet", "6 feet", "15 feet")},
        (5, 22),
        ["Ultra", "Flat", "Premium", "Slim"],
        "home theater",
    ),
    # ---- fashion
    _k(
        "fashion",
        "t-shirt",
        ["men's t-shirt", "cotton t-shirt"],
        "Clothing, Shoes & Jewelry › Men › Clothing › Shirts › T-Shirts",
        ["machine wash", "short sleeve", "cotton jersey", "relaxed fit", "crew neck"],
        {"color": COLORS_BASIC[:5], "size": SIZES_APPAREL},
        (8, 28),
        ["Classic", "Everyday", "Heavyweight", "Vintage"],
        "casual wear",
    ),
    _k(
        "fashion",
        "hoodie",
        ["women's hoodie", "pullover hoodie"],
        "Clothing, Shoes & Jewelry › Women › Clothing › Fashion Hoodies & Sweatshirts",
        ["fleece lined", "long sleeve", "kangaroo pocket", "drawstring hood", "machine washable"],
        {"color": ("heather grey", "black", "dusty rose", "sage green"), "size": SIZES_APPAREL},
        (19, 49),
        ["Cozy", "Oversized", "Cropped", "Classic"],
        "lounging",
    ),
    _k(
        "fashion",
        "jeans",
        ["men's jeans", "slim fit jeans"],
        "Clothing, Shoes & Jewelry › Men › Clothing › Jeans",
        ["stretch denim", "slim fit", "button closure", "five pocket", "straight leg"],
        {
            "color": ("dark indigo", "light denim", "black rinse"),
            "size": ("30w x 30l", "32w x 32l", "34w x 32l", "36w x 34l"),
        },
        (24, 69),
        ["Athletic", "Classic", "Rigid", "Comfort"],
        "everyday wear",
    ),
    _k(
        "fashion",
        "running shoes",
        ["women's running shoes", "lightweight running shoes"],
        "Clothing, Shoes & Jewelry › Women › Shoes › Athletic › Running",
        ["rubber sole", "breathable mesh", "arch support", "memory foam insole", "non slip"],
        {"color": ("white pink", "black grey", "navy blue"), "size": ("6", "7", "8", "9")},
        (29, 99),
        ["Cushioned", "Trail", "Road", "Walking"],
        "running",
    ),
    _k(
        "fashion",
        "sunglasses",
        ["polarized sunglasses", "women's sunglasses"],
        "Clothing, Shoes & Jewelry › Women › Accessories › Sunglasses & Eyewear Accessories › Sunglasses",
        ["polarized lenses", "uv400 protection", "metal frame", "lightweight frame"],
        {"color": ("tortoise brown", "black", "gold mirror")},
        (9, 59),
        ["Aviator", "Cat Eye", "Oversized", "Round"],
        "sunny days",
    ),
    # ---- furniture
    _k(
        "furniture",
        "office chair",
        ["ergonomic office chair", "desk chair"],
        "Home & Kitchen › Furniture › Home Office Furniture › Home Office Chairs › Home Office Desk Chairs",
        ["lumbar support", "adjustable height", "mesh back", "padded armrests", "swivel base"],
        {"color": ("black", "grey", "white")},
        (59, 249),
        ["Ergonomic", "Executive", "Task", "Mid Back"],
        "working from home",
    ),
    _k(
        "furniture",
        "bookshelf",
        ["wooden bookshelf", "5 tier bookshelf"],
        "Home & Kitchen › Furniture › Living Room Furniture › Bookcases",
        ["easy assemble", "solid wood", "anti tip kit", "storage space", "engineered wood"],
        {"color": ("rustic brown", "white", "black oak"), "size": ("3 tier", "4 tier", "5 tier")},
        (39, 159),
        ["Industrial", "Ladder", "Modern", "Farmhouse"],
        "living room",
    ),
    _k(
        "furniture",
        "nightstand",
        ["nightstand with drawer", "wooden nightstand"],
        "Home & Kitchen › Furniture › Bedroom Furniture › Nightstands",
        ["storage drawer", "charging station", "easy assemble", "open shelf", "metal legs"],
        {"color": ("walnut", "white", "weathered grey")},
        (29, 119),
        ["Modern", "Mid Century", "Compact", "Rustic"],
        "bedroom",
    ),
    _k(
        "furniture",
        "sofa cover",
        ["stretch sofa cover", "couch cover"],
        "Home & Kitchen › Furniture › Slipcovers › Sofa Slipcovers",
        ["machine washable", "stretch fabric", "pet friendly", "non slip backing"],
        {
            "color": ("dark grey", "beige", "navy", "chocolate brown"),
            "size": ("loveseat", "sofa", "large sofa"),
        },
        (19, 69),
        ["Jacquard", "Velvet", "Quilted", "Spandex"],
        "couches",
    ),
    _k(
        "furniture",
        "bed frame",
        ["queen bed frame", "metal bed frame"],
        "Home & Kitchen › Furniture › Bedroom Furniture › Beds, Frames & Bases › Bed Frames",
        ["heavy duty", "no box spring needed", "under bed storage", "noise free", "wood slats"],
        {"size": ("twin", "full", "queen", "king")},
        (89, 299),
        ["Platform", "Upholstered", "Steel", "Low Profile"],
        "bedroom",
    ),
    # ---- grocery
    _k(
        "grocery",
        "green tea",
        ["green tea bags", "organic green tea"],
        "Grocery & Gourmet Food › Beverages › Tea › Green",
        ["usda organic", "caffeine free", "non gmo", "individually wrapped", "kosher certified"],
        {"flavor": ("jasmine", "mint", "original"), "size": ("20 count", "100 count")},
        (4, 24),
        ["Premium", "Japanese", "Loose Leaf Style", "Pure"],
        "tea time",
    ),
    _k(
        "grocery",
        "protein bars",
        ["protein bars", "low sugar protein bars"],
        "Grocery & Gourmet Food › Snack Foods › Bars › Protein Bars",
        ["gluten free", "low sugar", "high protein", "plant based", "non gmo"],
        {"flavor": ("chocolate chip", "peanut butter", "cookie dough"), "size": ("12 count", "24 count")},
        (12, 45),
        ["Chewy", "Crunchy", "Keto", "Whole Food"],
        "snacks",
    ),
    _k(
        "grocery",
        "coffee beans",
        ["whole bean coffee", "dark roast coffee beans"],
        "Grocery & Gourmet Food › Beverages › Coffee, Tea & Cocoa › Coffee › Whole Coffee Beans",
        ["single origin", "dark roast", "fair trade", "low acid", "medium roast"],
        {"size": ("12 ounce", "2 pound", "5 pound")},
        (9, 54),
        ["Artisan", "Espresso", "Breakfast", "Colombian"],
        "coffee",
    ),
    _k(
        "grocery",
        "hot sauce",
        ["hot sauce", "hot sauce gift set"],
        "Grocery & Gourmet Food › Condiments & Salad Dressings › Sauces › Hot Sauce",
        ["extra hot", "no preservatives", "small batch", "gift set", "sugar free"],
        {"flavor": ("habanero", "chipotle", "ghost pepper"), "size": ("5 fl oz", "3 pack")},
        (5, 29),
        ["Smoky", "Fiery", "Craft", "Garlic"],
        "cooking",
    ),
    _k(
        "grocery",
        "snack box",
        ["snack box variety pack", "healthy snack box"],
        "Grocery & Gourmet Food › Snack Foods › Variety Packs",
        ["variety pack", "individually packed", "gift box", "nut free", "whole grain"],
        {"size": ("30 count", "50 count")},
        (14, 49),
        ["Deluxe", "Healthy", "Office", "Family"],
        "sharing",
    ),
)
