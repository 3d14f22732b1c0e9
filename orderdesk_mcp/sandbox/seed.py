"""Seed data: `empty` (folders only) and `demo` (a believable, deterministic store).

The demo is built from a fixed RNG seed as offsets before "now", and materialised with the
clock at start, so it always looks current while the RNG sequence stays the same. The
offset-based blueprint is built once per process and cached.
"""

from __future__ import annotations

import copy
import functools
import random
from datetime import datetime, timedelta
from typing import Any

from orderdesk_mcp.sandbox.fields import JsonObject, timestamp
from orderdesk_mcp.sandbox.store import StoreState

SEEDS = ("demo", "empty")
DEMO_RNG_SEED = 20_260_101
DEMO_ORDER_COUNT = 300
DEMO_DAYS = 90

FIRST_NAMES = (
    "Olivia", "Liam", "Emma", "Noah", "Ava", "Elijah", "Sophia", "James", "Isabella", "Lucas",
    "Mia", "Mason", "Amelia", "Ethan", "Harper", "Logan", "Evelyn", "Aiden", "Abigail", "Jacob",
    "Grace", "Daniel", "Chloe", "Henry", "Zoe", "Samuel", "Nora", "Owen", "Layla", "Wyatt",
)  # fmt: skip
LAST_NAMES = (
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez",
    "Martinez", "Hernandez", "Lopez", "Wilson", "Anderson", "Thomas", "Taylor", "Moore",
    "Jackson", "Martin", "Lee", "Perez", "Thompson", "White", "Harris", "Clark", "Lewis",
    "Walker", "Hall", "Young", "King",
)  # fmt: skip
STREETS = (
    "Maple Ave", "Oak St", "Pine Rd", "Cedar Ln", "Elm St", "Washington Blvd", "Lakeview Dr",
    "Sunset Blvd", "Hillcrest Rd", "Park Ave", "Main St", "River Rd",
)  # fmt: skip
CITIES = (
    ("Austin", "TX", "78701"), ("Portland", "OR", "97205"), ("Denver", "CO", "80202"),
    ("Columbus", "OH", "43215"), ("Raleigh", "NC", "27601"), ("Madison", "WI", "53703"),
    ("Boise", "ID", "83702"), ("Tampa", "FL", "33602"), ("Sacramento", "CA", "95814"),
    ("Burlington", "VT", "05401"), ("Richmond", "VA", "23219"), ("Tucson", "AZ", "85701"),
)  # fmt: skip
COMPANIES = ("", "", "", "", "Acme Studio", "Bright Labs LLC", "Northwind Cafe", "Blue Fern Co")
EMAIL_DOMAINS = ("example.com", "example.net", "example.org", "mail.example.com")
SOURCES = (
    ("Shopify", 0.34),
    ("WooCommerce", 0.2),
    ("Amazon", 0.18),
    ("eBay", 0.1),
    ("Etsy", 0.08),
    ("Order Desk", 0.1),
)
PRODUCTS = (
    ("TEE", "Organic Cotton Tee", 24.0, 0.4, ("S", "M", "L", "XL")),
    ("HOOD", "Fleece Hoodie", 54.0, 1.1, ("S", "M", "L", "XL")),
    ("MUG", "Stoneware Mug", 18.5, 0.9, ("Black", "White", "Sage")),
    ("CAP", "Canvas Cap", 22.0, 0.3, ("Navy", "Khaki")),
    ("TOTE", "Market Tote", 19.0, 0.5, ("Natural", "Black")),
    ("SOCK", "Merino Socks", 16.0, 0.2, ("S/M", "L/XL")),
    ("BOTL", "Insulated Bottle", 32.0, 0.8, ("Steel", "Forest", "Sand")),
    ("NOTE", "Dot Grid Notebook", 12.5, 0.35, ("A5", "A6")),
    ("CNDL", "Soy Candle", 26.0, 0.7, ("Cedar", "Citrus", "Lavender")),
    ("PRNT", "Art Print", 35.0, 0.25, ("8x10", "11x14", "16x20")),
    ("BEAN", "Beanie", 21.0, 0.2, ("Charcoal", "Rust", "Olive")),
    ("APRN", "Linen Apron", 38.0, 0.45, ("Natural", "Indigo")),
    ("SCRF", "Wool Scarf", 42.0, 0.3, ("Grey", "Camel", "Plaid")),
    ("PLNT", "Ceramic Planter", 29.0, 1.4, ("Small", "Medium", "Large")),
    ("BLKT", "Throw Blanket", 68.0, 1.6, ("Oat", "Slate")),
    ("PIN", "Enamel Pin", 9.0, 0.05, ("Fern", "Moon", "Wave")),
    ("STKR", "Sticker Pack", 6.5, 0.05, ("Nature", "Retro")),
    ("JRNL", "Leather Journal", 45.0, 0.6, ("Brown", "Black")),
    ("GLSS", "Tumbler Set", 34.0, 1.2, ("Clear", "Smoke")),
    ("KEYR", "Brass Keyring", 14.0, 0.1, ("Plain", "Engraved")),
    ("PUZZ", "Jigsaw Puzzle", 27.0, 0.9, ("500pc", "1000pc")),
    ("SOAP", "Olive Oil Soap", 8.0, 0.2, ("Unscented", "Rosemary", "Mint")),
    ("LAMP", "Desk Lamp", 58.0, 2.1, ("Black", "White", "Brass")),
)  # fmt: skip
SHIPPING = (
    ("Ground", "UPS", 7.95),
    ("Priority Mail", "USPS", 9.6),
    ("First Class", "USPS", 4.75),
    ("2Day", "FedEx", 14.5),
)
PAYMENT_TYPES = ("Visa", "MasterCard", "American Express", "PayPal", "Discover")
NOTES = (
    "Customer asked for gift wrapping",
    "Address verified by phone",
    "Replacement for damaged item",
    "Held for stock, released",
    "Customer requested a faster shipping method",
)


def _inventory(rng: random.Random) -> list[JsonObject]:
    items = []
    for prefix, name, price, weight, variants in PRODUCTS:
        for variant in variants:
            code = f"{prefix}-{variant.upper().replace('/', '').replace(' ', '')}"
            items.append(
                {
                    "name": f"{name} - {variant}",
                    "code": code,
                    "price": price,
                    "cost": round(price * rng.uniform(0.3, 0.5), 2),
                    "weight": weight,
                    "stock": rng.randint(0, 140),
                    "location": rng.choice(("Warehouse A", "Warehouse B", "Dropship")),
                    "update_source": "Manual",
                    "manufacturer_sku": f"MFR-{rng.randint(10000, 99999)}",
                    "metadata": {},
                    "variation_list": {"Option": variant},
                    "age_s": rng.randint(100 * 86400, 400 * 86400),
                }
            )
    return items


def _address(rng: random.Random, first: str, last: str) -> JsonObject:
    city, state, postal_code = rng.choice(CITIES)
    return {
        "first_name": first,
        "last_name": last,
        "company": rng.choice(COMPANIES),
        "address1": f"{rng.randint(10, 9899)} {rng.choice(STREETS)}",
        "address2": rng.choice(("", "", "", f"Apt {rng.randint(1, 40)}")),
        "city": city,
        "state": state,
        "postal_code": postal_code,
        "country": "US",
        "phone": f"555-{rng.randint(100, 999)}-{rng.randint(1000, 9999)}",
    }


def _pick_source(rng: random.Random) -> str:
    roll = rng.random()
    for name, share in SOURCES:
        if roll < share:
            return name
        roll -= share
    return SOURCES[-1][0]


def _order(rng: random.Random, index: int, inventory: list[JsonObject]) -> JsonObject:
    first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
    source = _pick_source(rng)
    method, carrier, shipping_cost = rng.choice(SHIPPING)
    lines = rng.sample(inventory, rng.choice((1, 1, 1, 2, 2, 3)))
    items = [
        {
            "name": line["name"],
            "code": line["code"],
            "price": line["price"],
            "quantity": rng.choice((1, 1, 1, 2, 3)),
            "weight": line["weight"],
            "variation_list": dict(line["variation_list"]),
        }
        for line in lines
    ]
    subtotal = sum(item["price"] * item["quantity"] for item in items)
    age_s = int((DEMO_DAYS * 86400 - 3600) * (1 - index / DEMO_ORDER_COUNT) ** 1.3) + rng.randint(
        0, 3000
    )
    discount = []
    if rng.random() < 0.15:
        discount = [{"name": "Welcome discount", "code": "WELCOME10", "amount": subtotal * 0.1}]
    body: JsonObject = {
        "source_name": source,
        "source_id": "" if source == "Order Desk" else f"{source[:2].upper()}{10400 + index}",
        "email": f"{first}.{last}{rng.randint(1, 99)}@{rng.choice(EMAIL_DOMAINS)}".lower(),
        "shipping_method": method,
        "shipping_total": shipping_cost,
        "tax_total": round(subtotal * rng.choice((0, 0.06, 0.0825)), 2),
        "payment_type": rng.choice(PAYMENT_TYPES),
        "cc_number": f"{rng.randint(1000, 9999)}",
        "customer_id": f"C{rng.randint(1000, 9999)}",
        "ip_address": f"203.0.113.{rng.randint(1, 254)}",
        "shipping": _address(rng, first, last),
        "order_items": items,
        "discount_list": discount,
        "checkout_data": {"Gift Message": "Happy birthday!"} if rng.random() < 0.08 else {},
    }
    age_days = age_s / 86400
    # Recent orders wait in New or Prepared; older ones are shipped (Closed) or Canceled.
    roll = rng.random()
    if roll < 0.04:
        folder = "Canceled"
    elif age_days <= 4:
        folder = "New" if roll < 0.75 else "Prepared"
    elif age_days <= 10:
        folder = "Prepared" if roll < 0.45 else "Closed"
    else:
        folder = "Closed"
    shipments = []
    if folder == "Closed":
        for parcel in range(rng.choice((1, 1, 1, 2))):
            prefix = {"UPS": "1Z", "USPS": "9400", "FedEx": "7"}[carrier]
            shipments.append(
                {
                    "tracking_number": f"{prefix}{rng.randint(10**11, 10**12 - 1)}{parcel}",
                    "carrier_code": carrier,
                    "shipment_method": method,
                    "weight": round(sum(i["weight"] * i["quantity"] for i in items), 2),
                    "cost": round(shipping_cost * rng.uniform(0.7, 1.0), 2),
                    "age_s": max(0, age_s - rng.randint(3600, 2 * 86400)),
                }
            )
    notes = []
    if rng.random() < 0.12:
        notes.append(rng.choice(NOTES))
    return {"body": body, "folder": folder, "age_s": age_s, "shipments": shipments, "notes": notes}


@functools.cache
def demo_blueprint() -> dict[str, Any]:
    """The demo store as data relative to now (ages in seconds); deterministic."""
    rng = random.Random(DEMO_RNG_SEED)  # noqa: S311  (deterministic demo data)
    inventory = _inventory(rng)
    orders = [_order(rng, index, inventory) for index in range(DEMO_ORDER_COUNT)]
    return {"inventory": inventory, "orders": orders}


def apply_seed(store: StoreState, seed: str, now: datetime) -> None:
    """Fill an empty store with `seed` ("demo" or "empty"), dates counted back from `now`."""
    if seed not in SEEDS:
        raise ValueError(f"unknown seed {seed!r}; use one of {', '.join(SEEDS)}")
    if seed == "empty":
        return
    blueprint = copy.deepcopy(demo_blueprint())
    store.name = "Sandbox Demo Outfitters"

    def at(age_s: int) -> str:
        return timestamp(now - timedelta(seconds=age_s))

    for entry in blueprint["inventory"]:
        age = entry.pop("age_s")
        store.create_inventory_item(entry, date_added=at(age))
    folder_ids = {name: folder_id for folder_id, name in store.folders.items()}
    for entry in blueprint["orders"]:
        added = at(entry["age_s"])
        order = store.create_order(entry["body"], date_added=added)
        order["folder_id"] = folder_ids[entry["folder"]]
        history = store.history[order["id"]]
        history.append({"source_name": "Order Desk", "note": "Order imported", "date_added": added})
        for note in entry["notes"]:
            history.append({"source_name": "Staff", "note": note, "date_added": added})
        for shipment in entry["shipments"]:
            shipped = at(shipment.pop("age_s"))
            created = store.add_shipment(order["id"], shipment, date_added=shipped)
            created["date_shipped"] = shipped[:10]
        if entry["folder"] != "New":
            history.append(
                {
                    "source_name": "Rule",
                    "note": f"Order moved from New to {entry['folder']}",
                    "date_added": added,
                }
            )
        order["date_updated"] = max([added, *(s["date_added"] for s in order["order_shipments"])])
