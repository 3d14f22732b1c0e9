"""What an order PUT body may hold, and how a partial change merges into an order.

Order Desk knowledge (docs/ORDERDESK.md ("Orders")): PUT /orders/{id} replaces the whole order
("any parts left out will be updated as blank"), so a read-merge-PUT sends the order back,
minus what Order Desk computes or keeps itself. Order lines follow their own documented rule:
a line with an `id` updates that line, a line without one is added.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from orderdesk_mcp.orderdesk.errors import InvalidRequest
from orderdesk_mcp.orderdesk.merge import deep_merge, json_copy

ORDER_READ_ONLY_FIELDS: dict[str, str] = {
    "id": "the order id cannot change (it is the order_id argument)",
    "date_added": "date_added is set by Order Desk",
    "date_updated": "date_updated is set by Order Desk (pass what you saw as "
    "expected_date_updated instead)",
    "quantity_total": "Order Desk computes the totals from the order lines",
    "weight_total": "Order Desk computes the totals from the order lines",
    "product_total": "Order Desk computes the totals from the order lines",
    "discount_total": "Order Desk computes it from discount_list",
    "order_total": "Order Desk computes the totals from the order lines",
    "email_count": "Order Desk counts the orders with this e-mail address",
    "cc_number_masked": "it is the read-back form; to change the card send cc_number with "
    "its last four digits",
}
"""Order fields Order Desk computes or owns: never sent in a PUT body, refused in changes.
The totals and email_count are marked read-only in the Order Properties table; id, the two
dates and cc_number_masked (the read form of the write-only cc_number) are server-owned."""

ORDER_PUT_LEFT_OUT: frozenset[str] = frozenset(
    {*ORDER_READ_ONLY_FIELDS, "order_shipments", "order_history"}
)
"""Also left out of a PUT: shipments "may not be modified with this process" (docs) and
history is written only through POST /orders/{id}/order-history."""

_CARD_DIGITS = 4


class BadOrderLines(InvalidRequest):
    """``changes.order_items`` cannot be applied (not a list of lines, or names a line id the
    order does not have). Raised before any write."""


def merge_order_changes(order: Mapping[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    """``order`` with ``changes`` applied the way Order Desk treats an order PUT.

    Everything but ``order_items`` deep-merges (``deep_merge``). ``order_items`` entries with
    an ``id`` deep-merge into that existing line (an unknown id raises BadOrderLines),
    entries without one are added; lines not named are kept. Removing a line is
    DELETE /orders/{id}/order-items/{item_id}'s job: how a PUT removes lines is undocumented.
    """
    rest = {key: value for key, value in changes.items() if key != "order_items"}
    merged = deep_merge(order, rest)
    if "order_items" in changes:
        merged["order_items"] = _merge_lines(order.get("order_items"), changes["order_items"])
    return merged


def _merge_lines(current: Any, wanted: Any) -> list[Any]:
    if not isinstance(wanted, list):
        raise BadOrderLines(
            "order_items must be a list of order lines: {id, ...fields} changes that line, "
            "{...fields} without id adds one"
        )
    lines: list[Any] = json_copy(current) if isinstance(current, list) else []
    by_id = {str(line.get("id")): index for index, line in enumerate(lines) if _has_id(line)}
    for position, entry in enumerate(wanted):
        if not isinstance(entry, Mapping):
            raise BadOrderLines(f"order_items[{position}] must be an object (an order line)")
        if entry.get("id") in (None, ""):
            lines.append({key: value for key, value in entry.items() if key != "id"})
            continue
        index = by_id.get(str(entry["id"]).strip())
        if index is None:
            known = ", ".join(by_id) or "none"
            raise BadOrderLines(
                f"order_items[{position}] names line id {entry['id']!r}, which is not on this "
                f"order (its lines: {known}); leave id out to add a new line"
            )
        lines[index] = deep_merge(lines[index], entry)
    return lines


def _has_id(line: Any) -> bool:
    return isinstance(line, Mapping) and line.get("id") not in (None, "")


def order_put_body(order: Mapping[str, Any]) -> dict[str, Any]:
    """The body of PUT /orders/{id} for a whole (read-back, maybe merged) order.

    Leaves out ``ORDER_PUT_LEFT_OUT``; keeps ``folder_id`` as read (left out, it might be
    blanked; moving is /move-orders' job) and every order line with its ``id`` (a line sent
    without one would be added again). The card's last four digits go back as ``cc_number``,
    its write field, unless the order already carries a ``cc_number``: left out, Order Desk
    may blank the stored card.
    """
    body = {key: json_copy(value) for key, value in order.items() if key not in ORDER_PUT_LEFT_OUT}
    masked = order.get("cc_number_masked")
    if "cc_number" not in body and isinstance(masked, str):
        digits = "".join(ch for ch in masked if ch.isdigit())
        if digits:
            body["cc_number"] = digits[-_CARD_DIGITS:]
    return body
