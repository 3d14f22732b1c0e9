"""Order Desk records: validate a request body into a stored record and render it back.

Stored records are plain JSON-able dicts (so the state file is a dump of them). Rendering adds
the PHP-isms: `[]` for empty maps, computed `email_count`, string ids.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from orderdesk_mcp.sandbox.emulation_choices import (
    ITEM_NEEDS_NAME_OR_CODE,
    NAME_FIELDS_ANY_ONE_SUFFICES,
    ORDER_CARD_READ_ONLY_MASK,
)
from orderdesk_mcp.sandbox.errors import invalid
from orderdesk_mcp.sandbox.fields import (
    JsonObject,
    php_map,
    php_number,
    read_int,
    read_list,
    read_map,
    read_number,
    read_text,
    require_object,
)

ADDRESS_FIELDS = (
    "first_name",
    "last_name",
    "company",
    "address1",
    "address2",
    "address3",
    "address4",
    "city",
    "state",
    "postal_code",
    "country",
    "phone",
)
CUSTOMER_FIELDS = tuple(name for name in ADDRESS_FIELDS if name not in ("address3", "address4"))
RETURN_ADDRESS_FIELDS = (
    "title",
    "name",
    "company",
    "address1",
    "address2",
    "city",
    "state",
    "postal_code",
    "country",
    "phone",
)
ORDER_TEXT_FIELDS = (
    "source_id",
    "source_name",
    "email",
    "shipping_method",
    "cc_exp",
    "processor_response",
    "payment_type",
    "payment_status",
    "customer_id",
    "ip_address",
    "tag_color",
    "tag_name",
    "fulfillment_name",
    "fulfillment_id",
)
ORDER_MONEY_FIELDS = ("shipping_total", "handling_total", "tax_total", "refund_total")
PAYMENT_STATUSES = (
    "Approved",
    "Authorized",
    "Captured",
    "Fully Refunded",
    "Partially Refunded",
    "Pending",
    "Rejected",
    "Voided",
)
DELIVERY_TYPES = ("ship", "noship", "download", "future")
ITEM_MAP_FIELDS = ("variation_list", "metadata")
ORDER_MAP_FIELDS = ("checkout_data", "order_metadata")

# Top-level order fields a client may sort by (besides flattened address fields).
SORTABLE_ORDER_FIELDS = (
    "id",
    *ORDER_TEXT_FIELDS,
    "quantity_total",
    "weight_total",
    "product_total",
    "shipping_total",
    "handling_total",
    "tax_total",
    "discount_total",
    "order_total",
    "processor_balance",
    "refund_total",
    "folder_id",
    "date_added",
    "date_updated",
)


# --- addresses ---------------------------------------------------------------------------------


def _read_address(body: Mapping[str, Any], key: str, fields: tuple[str, ...]) -> JsonObject:
    raw = body.get(key)
    if raw is None or raw == []:
        raw = {}
    source = require_object(raw, key)
    address = {name: read_text(source, name, f"{key}.") for name in fields}
    # Flattened spellings (customer_first_name, shipping_address1) fill what the object left blank.
    for name in fields:
        if not address[name]:
            address[name] = read_text(body, f"{key}_{name}")
    return address


def _has_name(address: Mapping[str, str]) -> bool:
    if NAME_FIELDS_ANY_ONE_SUFFICES:
        return any(address.get(name) for name in ("first_name", "last_name", "company"))
    full_name = bool(address.get("first_name")) and bool(address.get("last_name"))
    return full_name or bool(address.get("company"))


def _addresses(body: Mapping[str, Any]) -> tuple[JsonObject, JsonObject]:
    shipping = _read_address(body, "shipping", ADDRESS_FIELDS)
    customer = _read_address(body, "customer", CUSTOMER_FIELDS)
    shipping_given = any(shipping.values())
    customer_given = any(customer.values())
    # When only one address is sent, Order Desk copies it into the other.
    if shipping_given and not customer_given:
        customer = {name: shipping[name] for name in CUSTOMER_FIELDS}
    elif customer_given and not shipping_given:
        shipping = {name: customer.get(name, "") for name in ADDRESS_FIELDS}
    if not (_has_name(shipping) or _has_name(customer)):
        raise invalid(
            "an order needs a first name, last name or company on the shipping or customer "
            "address (shipping.first_name, customer.company, ... or flattened shipping_first_name)"
        )
    return shipping, customer


# --- order items -------------------------------------------------------------------------------


def read_item(body: Any, where: str = "") -> JsonObject:
    """Validate one order line; returns the stored fields without `id`."""
    source = require_object(body, where.rstrip(".") or "the order item")
    quantity = read_int(source, "quantity", where, default=1)
    if quantity < 0:
        raise invalid(f"{where}quantity must be 0 or more")
    delivery_type = read_text(source, "delivery_type", where, default="ship") or "ship"
    if delivery_type not in DELIVERY_TYPES:
        raise invalid(f"{where}delivery_type must be one of {', '.join(DELIVERY_TYPES)}")
    item: JsonObject = {
        "name": read_text(source, "name", where),
        "price": php_number(read_number(source, "price", where)),
        "quantity": quantity,
        "weight": php_number(read_number(source, "weight", where)),
        "code": read_text(source, "code", where),
        "delivery_type": delivery_type,
        "category_code": read_text(source, "category_code", where),
        "fulfillment_method": read_text(source, "fulfillment_method", where),
        "variation_list": read_map(source, "variation_list", where),
        "metadata": read_map(source, "metadata", where),
    }
    if ITEM_NEEDS_NAME_OR_CODE and not (item["name"] or item["code"]):
        raise invalid(f"{where}an order item needs a name or a code")
    return item


def render_item(item: Mapping[str, Any]) -> JsonObject:
    rendered = copy.deepcopy(dict(item))
    for name in ITEM_MAP_FIELDS:
        rendered[name] = php_map(rendered.get(name) or {})
    return rendered


# --- orders ------------------------------------------------------------------------------------


def _read_discounts(body: Mapping[str, Any]) -> list[JsonObject]:
    discounts = []
    for index, raw in enumerate(read_list(body, "discount_list")):
        where = f"discount_list[{index}]."
        entry = require_object(raw, f"discount_list[{index}]")
        amount = abs(read_number(entry, "amount", where))
        discounts.append(
            {
                "name": read_text(entry, "name", where),
                "code": read_text(entry, "code", where),
                "amount": f"{amount:.2f}",
            }
        )
    return discounts


def _read_notes(body: Mapping[str, Any], now_text: str) -> list[JsonObject]:
    notes = []
    for index, raw in enumerate(read_list(body, "order_notes")):
        where = f"order_notes[{index}]."
        entry = require_object(raw, f"order_notes[{index}]")
        notes.append(
            {
                "date_added": read_text(entry, "date_added", where) or now_text,
                "username": read_text(entry, "username", where),
                "content": read_text(entry, "content", where),
            }
        )
    return notes


def read_order_fields(body: Mapping[str, Any], now_text: str) -> JsonObject:
    """Validate the writable, non-item fields of an order body (full replacement semantics)."""
    fields: JsonObject = {name: read_text(body, name) for name in ORDER_TEXT_FIELDS}
    fields["source_name"] = fields["source_name"] or "Order Desk"
    fields["payment_status"] = fields["payment_status"] or "Captured"
    if fields["payment_status"] not in PAYMENT_STATUSES:
        raise invalid(f"payment_status must be one of {', '.join(PAYMENT_STATUSES)}")
    for name in ORDER_MONEY_FIELDS:
        fields[name] = php_number(read_number(body, name))
    balance = body.get("processor_balance")
    fields["processor_balance"] = (
        None if balance in (None, "") else php_number(read_number(body, "processor_balance"))
    )
    card = "".join(ch for ch in read_text(body, "cc_number") if ch.isdigit())
    fields["cc_number_masked"] = f"xxxxxxxxxxxx{card[-4:]}" if card else ""
    if not card and not ORDER_CARD_READ_ONLY_MASK and isinstance(body.get("cc_number_masked"), str):
        fields["cc_number_masked"] = body["cc_number_masked"]
    fields["shipping"], fields["customer"] = _addresses(body)
    return_raw = body.get("return_address")
    return_source = require_object({} if return_raw in (None, []) else return_raw, "return_address")
    fields["return_address"] = {
        name: read_text(return_source, name, "return_address.") for name in RETURN_ADDRESS_FIELDS
    }
    for name in ORDER_MAP_FIELDS:
        fields[name] = read_map(body, name)
    fields["discount_list"] = _read_discounts(body)
    fields["order_notes"] = _read_notes(body, now_text)
    return fields


def read_order_items(body: Mapping[str, Any]) -> list[tuple[str | None, JsonObject]]:
    """The `order_items` list as (existing id or None, validated fields) pairs."""
    pairs: list[tuple[str | None, JsonObject]] = []
    for index, raw in enumerate(read_list(body, "order_items")):
        where = f"order_items[{index}]."
        item = read_item(raw, where)
        raw_id = raw.get("id") if isinstance(raw, dict) else None
        item_id = None if raw_id in (None, "") else read_text(raw, "id", where)
        pairs.append((item_id, item))
    return pairs


def recompute_totals(order: JsonObject) -> None:
    """Order Desk's arithmetic; 10 + 11.17 + 0.5 + 1.2 - 1.7 = 21.17 in the docs' sample."""
    items = order["order_items"]
    product = sum(float(item["price"]) * int(item["quantity"]) for item in items)
    weight = sum(float(item["weight"]) * int(item["quantity"]) for item in items)
    discount = sum(float(entry["amount"]) for entry in order["discount_list"])
    order["quantity_total"] = sum(int(item["quantity"]) for item in items)
    order["weight_total"] = php_number(weight)
    order["product_total"] = php_number(round(product, 2))
    order["discount_total"] = php_number(round(discount, 2))
    total = (
        product
        + float(order["shipping_total"])
        + float(order["handling_total"])
        + float(order["tax_total"])
        - discount
    )
    order["order_total"] = php_number(round(total, 2))


ORDER_KEY_ORDER = (
    "id",
    "email",
    "shipping_method",
    "quantity_total",
    "weight_total",
    "product_total",
    "shipping_total",
    "handling_total",
    "tax_total",
    "discount_total",
    "order_total",
    "cc_number_masked",
    "cc_exp",
    "processor_response",
    "payment_type",
    "payment_status",
    "processor_balance",
    "refund_total",
    "customer_id",
    "email_count",
    "ip_address",
    "tag_color",
    "tag_name",
    "source_id",
    "source_name",
    "fulfillment_name",
    "fulfillment_id",
    "folder_id",
    "date_added",
    "date_updated",
    "shipping",
    "customer",
    "return_address",
    "checkout_data",
    "order_metadata",
    "discount_list",
    "order_notes",
    "order_items",
    "order_shipments",
)


def render_order(
    order: Mapping[str, Any], email_count: int, history: list[JsonObject] | None = None
) -> JsonObject:
    rendered: JsonObject = {}
    for key in ORDER_KEY_ORDER:
        if key == "email_count":
            rendered[key] = str(email_count)
        elif key in ORDER_MAP_FIELDS:
            rendered[key] = php_map(order.get(key) or {})
        elif key == "order_items":
            rendered[key] = [render_item(item) for item in order["order_items"]]
        else:
            rendered[key] = copy.deepcopy(order.get(key))
    if history is not None:
        rendered["order_history"] = copy.deepcopy(history)
    return rendered


# --- shipments ---------------------------------------------------------------------------------

TRACKING_URLS = {
    "UPS": "https://www.ups.com/track?tracknum={}",
    "USPS": "https://tools.usps.com/go/TrackConfirmAction?tLabels={}",
    "FEDEX": "https://www.fedex.com/fedextrack/?trknbr={}",
    "DHL": "https://www.dhl.com/en/express/tracking.html?AWB={}",
}


def guess_tracking_url(carrier_code: str, tracking_number: str) -> str:
    template = TRACKING_URLS.get(carrier_code.upper())
    if template is None or tracking_number.lower() == "n/a":
        return ""
    return template.format(tracking_number)


def read_shipped_items(source: Mapping[str, Any], where: str) -> str | list[JsonObject]:
    """A shipment's `order_items` (partial shipments): "" when absent, else a list of
    {id or code, quantity >= 1}. Undocumented; this is the shape integrators send."""
    raw = source.get("order_items")
    if raw is None or raw == "":
        return ""
    if not isinstance(raw, list):
        raise invalid(f"{where}order_items must be an array of {{id or code, quantity}}")
    shipped: list[JsonObject] = []
    for index, entry in enumerate(raw):
        at = f"{where}order_items[{index}]."
        line = require_object(entry, at.rstrip("."))
        quantity = read_int(line, "quantity", at, default=0)
        if quantity < 1:
            raise invalid(f"{at}quantity must be 1 or more")
        item_id = read_text(line, "id", at).strip()
        code = read_text(line, "code", at).strip()
        if not (item_id or code):
            raise invalid(f"{at}an id (the order line's id) or a code is required")
        kept: JsonObject = {"id": item_id} if item_id else {}
        if code:
            kept["code"] = code
        kept["quantity"] = quantity
        shipped.append(kept)
    return shipped


def read_shipment(body: Any, where: str) -> JsonObject:
    """Validate the fields of a shipment body; `tracking_number` is required. date_shipped is
    not read: Order Desk sets it (SHIPMENT_DATE_SHIPPED_IS_SET_BY_ORDER_DESK)."""
    source = require_object(body, where.rstrip(".") or "the shipment")
    tracking_number = read_text(source, "tracking_number", where).strip()
    if not tracking_number:
        raise invalid(f'{where}tracking_number is required (send "n/a" when there is none)')
    carrier_code = read_text(source, "carrier_code", where)
    return {
        "tracking_number": tracking_number,
        "carrier_code": carrier_code,
        "shipment_method": read_text(source, "shipment_method", where),
        "weight": str(php_number(read_number(source, "weight", where))),
        "cost": str(php_number(read_number(source, "cost", where))),
        "status": read_text(source, "status", where),
        "tracking_url": read_text(source, "tracking_url", where)
        or guess_tracking_url(carrier_code, tracking_number),
        "label_format": read_text(source, "label_format", where),
        "label_image": read_text(source, "label_image", where),
        "print_status": read_text(source, "print_status", where) or "0",
        "order_items": read_shipped_items(source, where),
        "cart_shipment_id": read_text(source, "cart_shipment_id", where),
        "label_shipment_id": read_text(source, "label_shipment_id", where),
    }


# --- inventory ---------------------------------------------------------------------------------


def read_inventory_item(body: Any, where: str = "") -> JsonObject:
    """Validate an inventory item (full replacement): `name` and `code` are required."""
    source = require_object(body, where.rstrip(".") or "the inventory item")
    name = read_text(source, "name", where).strip()
    code = read_text(source, "code", where).strip()
    if not name or not code:
        raise invalid(f"{where}name and code are required on an inventory item")
    manufacturer_sku = source.get("manufacturer_sku")
    return {
        "name": name,
        "code": code,
        "price": php_number(read_number(source, "price", where)),
        "cost": php_number(read_number(source, "cost", where)),
        "weight": php_number(read_number(source, "weight", where)),
        "stock": read_int(source, "stock", where),
        "location": read_text(source, "location", where),
        "update_source": read_text(source, "update_source", where) or "API",
        "manufacturer_sku": None
        if manufacturer_sku is None
        else read_text(source, "manufacturer_sku", where),
        "metadata": read_map(source, "metadata", where),
        "variation_list": read_map(source, "variation_list", where),
    }


def render_inventory_item(item: Mapping[str, Any]) -> JsonObject:
    rendered = copy.deepcopy(dict(item))
    for name in ITEM_MAP_FIELDS:
        rendered[name] = php_map(rendered.get(name) or {})
    return rendered
