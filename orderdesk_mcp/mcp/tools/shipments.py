"""Shipment tools: tracking numbers on one order, or on many orders at once."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from orderdesk_mcp.mcp.tools._base import (
    CREATE,
    OVERWRITE,
    READ,
    ToolContext,
    ToolInputError,
    tool,
)
from orderdesk_mcp.mcp.tools._common import (
    DRY_RUN_ARG,
    FIELDS_ARG,
    LIMIT_ARG,
    NULLABLE_RECORD,
    OFFSET_ARG,
    as_int,
    delete_or_preview,
    deleted_output,
    dry_run_output,
    id_arg,
    id_text,
    input_schema,
    list_output,
    message_of,
    one_of_types,
    output_schema,
    project,
    record,
    record_output,
    records,
    slice_page,
    written_record,
)
from orderdesk_mcp.mcp.tools._common import (
    ORDER_ID_ARG as ORDER_ID,
)
from orderdesk_mcp.mcp.tools._updates import order_part_update_schema, update_order_part
from orderdesk_mcp.orderdesk import OrderDeskClient

SHIPMENT_ID = id_arg("The shipment's id (from list_shipments or the order's order_shipments).")

# The only shipment fields Order Desk documents as writable (sparkweb/slate
# source/includes/_shipments.md, "Shipment Properties"); everything else on a shipment is set
# by Order Desk or its label and cart integrations.
WRITABLE_SHIPMENT_FIELDS = (
    "tracking_number",
    "carrier_code",
    "shipment_method",
    "weight",
    "cost",
    "status",
    "tracking_url",
)
# Left out of the PUT body as well as refused: they name the record, not its content.
_READ_ONLY_SHIPMENT_FIELDS = {
    "order_id": "a shipment belongs to its order: delete it and add it to the other order",
    "store_id": "store_id is set by Order Desk",
}
_WHY_NOT_WRITABLE = {
    **_READ_ONLY_SHIPMENT_FIELDS,
    "date_shipped": "Order Desk sets it when the shipment is added; it is not documented as "
    "writable",
    "order_items": "the shipped lines are given when the shipment is added; to change them, "
    "delete the shipment and add it again",
}

# The writable shipment fields, shared by add_shipment and each add_shipments_batch entry.
SHIPMENT_FIELDS: dict[str, Any] = {
    "tracking_number": {
        "type": "string",
        "minLength": 1,
        "maxLength": 200,
        "description": 'Tracking number; "n/a" when there is none.',
    },
    "carrier_code": {
        "type": "string",
        "maxLength": 100,
        "description": "Carrier, e.g. USPS, UPS, FedEx, DHL.",
    },
    "shipment_method": {"type": "string", "maxLength": 200, "description": "e.g. Ground."},
    "tracking_url": {
        "type": "string",
        "maxLength": 2000,
        "description": "Order Desk guesses it from the carrier when left out.",
    },
    "weight": one_of_types("number", "string"),
    "cost": one_of_types("number", "string", description="The merchant's postage cost."),
    "status": {"type": "string", "maxLength": 200, "description": "Set by EasyPost webhooks."},
}
MAX_SHIPPED_LINES = 500
SHIPPED_ITEMS_ARG: dict[str, Any] = {
    "type": "array",
    "minItems": 1,
    "maxItems": MAX_SHIPPED_LINES,
    "items": {
        "type": "object",
        "properties": {
            "id": id_arg("The order line's id (from list_order_items), not an inventory id."),
            "code": {"type": "string", "minLength": 1, "maxLength": 200, "description": "SKU."},
            "quantity": {"type": "integer", "minimum": 1},
        },
        "required": ["quantity"],
        "additionalProperties": False,
    },
    "description": "Partial shipment: the lines in this parcel, each {id or code, quantity}. "
    "Not in Order Desk's documentation; sent the way integrations send it. Leave out when "
    "the whole order ships.",
}


def _shipped_items(entries: list[dict[str, Any]], where: str) -> list[dict[str, Any]]:
    """The partial-shipment lines as sent: ids as text, each naming its line by id or code."""
    shipped: list[dict[str, Any]] = []
    for index, entry in enumerate(entries):
        if entry.get("id") is None and not entry.get("code"):
            raise ToolInputError(
                f"{where}order_items[{index}] names no line: give its id (the order line's id "
                "from list_order_items) or its code (SKU), plus quantity. Nothing was written."
            )
        line: dict[str, Any] = {}
        if entry.get("id") is not None:
            line["id"] = id_text(entry["id"], f"{where}order_items[{index}].id")
        if entry.get("code"):
            line["code"] = entry["code"]
        line["quantity"] = entry["quantity"]
        shipped.append(line)
    return shipped


def _shipment_body(args: dict[str, Any], where: str = "") -> dict[str, Any]:
    body = {key: args[key] for key in SHIPMENT_FIELDS if args.get(key) is not None}
    if args.get("order_items"):
        body["order_items"] = _shipped_items(args["order_items"], where)
    return body


@tool(
    name="list_shipments",
    title="List an order's shipments",
    toolset="shipments",
    annotations=READ,
    description="""List the shipments of one order as Order Desk stores them: id,
    tracking_number, carrier_code, shipment_method, tracking_url, weight, cost, status,
    order_items (the lines of a partial shipment, or "" for the whole order), date_shipped and
    label fields. Several shipments mean a partial or multi-parcel fulfilment. Paged like
    every list (limit, offset, next_offset).""",
    input_schema=input_schema(
        {"order_id": ORDER_ID, "limit": LIMIT_ARG, "offset": OFFSET_ARG, "fields": FIELDS_ARG},
        ["order_id"],
    ),
    output_schema=list_output("shipments"),
)
def list_shipments(ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
    _ref, client = ctx.orderdesk()
    envelope = client.list_shipments(id_text(args["order_id"], "order_id"))
    return slice_page("shipments", records(envelope, "shipments"), args)


@tool(
    name="get_shipment",
    title="Get one shipment",
    toolset="shipments",
    annotations=READ,
    description="""Read one shipment of an order by its shipment id (fields as in
    list_shipments).""",
    input_schema=input_schema(
        {"order_id": ORDER_ID, "shipment_id": SHIPMENT_ID, "fields": FIELDS_ARG},
        ["order_id", "shipment_id"],
    ),
    output_schema=record_output("shipment"),
)
def get_shipment(ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
    _ref, client = ctx.orderdesk()
    envelope = client.get_shipment(
        id_text(args["order_id"], "order_id"), id_text(args["shipment_id"], "shipment_id")
    )
    return {"shipment": project(record(envelope, "shipment") or {}, args.get("fields"))}


def _newest_matching(client: OrderDeskClient, order_id: str, body: dict[str, Any]) -> Any:
    """Order Desk's reply carries no shipment: the newest shipment of the order with this
    tracking number and carrier is the one just added (an older one with the same number on
    another carrier is not)."""
    found = records(client.list_shipments(order_id, fresh=True), "shipments")
    carrier = body.get("carrier_code", "")
    alike = [
        shipment
        for shipment in found
        if shipment.get("tracking_number") == body["tracking_number"]
        and (shipment.get("carrier_code") or "") == carrier
    ]
    return max(alike, key=lambda shipment: as_int(shipment.get("id")), default=None)


@tool(
    name="add_shipment",
    title="Add a shipment to an order",
    toolset="shipments",
    annotations=CREATE,
    description="""Record a shipment (tracking number and carrier) on one order. Order Desk
    answers only "Shipment Added", without the shipment, so the tool then lists the order's
    shipments and returns the newest with this tracking_number and carrier_code (null if it
    cannot be found: check list_shipments). Order Desk refuses a shipment whose tracking
    number and carrier are already on the order ("Shipment Not Added"). date_shipped is set
    by Order Desk. For a partial shipment pass order_items (the lines in this parcel);
    Order Desk does not document this field, so check the result. This does not move the
    order: follow with move_orders if wanted (folder rules may notify the customer). For
    many orders at once use add_shipments_batch.""",
    input_schema=input_schema(
        {"order_id": ORDER_ID, **SHIPMENT_FIELDS, "order_items": SHIPPED_ITEMS_ARG},
        ["order_id", "tracking_number"],
    ),
    output_schema=output_schema(
        {"shipment": NULLABLE_RECORD, "message": {"type": "string"}}, ["shipment"]
    ),
)
def add_shipment(ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
    _ref, client = ctx.orderdesk()
    order_id = id_text(args["order_id"], "order_id")
    body = _shipment_body(args)
    envelope = client.add_shipment(order_id, body)
    added, message = written_record(
        envelope,
        "shipment",
        lambda: _newest_matching(client, order_id, body),
        what="new shipment",
        check=f"list_shipments(order_id={order_id})",
        missing=f"Order Desk reported success, but no shipment with tracking number "
        f"{body['tracking_number']!r} and this carrier is listed on order {order_id}: "
        "check list_shipments before adding it again",
    )
    return {"shipment": added, "message": message}


def batch_outcomes(entries: list[dict[str, Any]], envelope: Mapping[str, Any]) -> list[Any]:
    """One outcome per sent shipment, paired with Order Desk's results by position (results
    carry no order or shipment id). Only `"status": "success"` counts as added. When the
    results do not number the shipments, positions prove nothing (a result missing in the
    middle would shift every later one), so every shipment may or may not have landed."""
    raw = envelope.get("results")
    results = raw if isinstance(raw, list) else []
    if len(results) != len(entries):
        results = []
    outcomes: list[Any] = []
    for position, entry in enumerate(entries):
        outcome = {
            "position": position,
            "order_id": entry["order_id"],
            "tracking_number": entry["tracking_number"],
        }
        if position >= len(results):
            outcome.update(
                added=False,
                status=None,
                message="Order Desk's results do not match the shipments sent one for one, so "
                "this one may or may not have been added: check list_shipments for order "
                f"{entry['order_id']} before sending it again.",
            )
            outcomes.append(outcome)
            continue
        result = results[position]
        status = result.get("status") if isinstance(result, dict) else None
        said = result.get("message") if isinstance(result, dict) else None
        said = said if isinstance(said, str) else ""
        added = status == "success"
        if not added and not said:
            said = f"Order Desk did not report success (its result: {json.dumps(result)[:200]})"
        outcome.update(added=added, status=status if isinstance(status, str) else None)
        outcome["message"] = said
        outcomes.append(outcome)
    return outcomes


_BATCH_OUTCOME: dict[str, Any] = {
    "type": "object",
    "properties": {
        "position": {"type": "integer", "description": "Index in the shipments you sent."},
        "order_id": {"type": "string"},
        "tracking_number": {"type": "string"},
        "added": {"type": "boolean"},
        "status": one_of_types("string", "null", description="Order Desk's status, if any."),
        "message": {"type": "string", "description": "What Order Desk said."},
    },
    "required": ["position", "order_id", "tracking_number", "added", "message"],
}


@tool(
    name="add_shipments_batch",
    title="Add shipments to many orders",
    toolset="shipments",
    annotations=CREATE,
    description="""Record shipments on many orders in one Order Desk call (up to 100): each entry
    is an order_id plus the fields of add_shipment. Order Desk answers one result per shipment,
    in the order sent, with only a status and a message (no shipment id: use list_shipments).
    A shipment counts as added only when its result says "success". `failures` lists every
    other shipment by position with its order_id, tracking_number and what Order Desk said:
    fix and resend only those. A shipment Order Desk sent no result for may or may not have
    been added: check list_shipments for its order before resending, since a duplicate is
    refused ("Shipment Not Added"). order_items (partial shipments) is undocumented for this
    endpoint too.""",
    input_schema=input_schema(
        {
            "shipments": {
                "type": "array",
                "minItems": 1,
                "maxItems": 100,
                "items": {
                    "type": "object",
                    "properties": {
                        "order_id": ORDER_ID,
                        **SHIPMENT_FIELDS,
                        "order_items": SHIPPED_ITEMS_ARG,
                    },
                    "required": ["order_id", "tracking_number"],
                    "additionalProperties": False,
                },
            }
        },
        ["shipments"],
    ),
    output_schema=output_schema(
        {
            "results": {"type": "array", "items": _BATCH_OUTCOME},
            "failures": {"type": "array", "items": _BATCH_OUTCOME},
            "succeeded": {"type": "integer"},
            "failed": {"type": "integer"},
            "message": {"type": "string"},
        },
        ["results", "failures", "succeeded", "failed"],
    ),
)
def add_shipments_batch(ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
    _ref, client = ctx.orderdesk()
    batch = [
        {
            **_shipment_body(entry, f"shipments[{index}]."),
            "order_id": id_text(entry["order_id"], f"shipments[{index}].order_id"),
        }
        for index, entry in enumerate(args["shipments"])
    ]
    envelope = client.add_shipments_batch(batch)
    outcomes = batch_outcomes(batch, envelope)
    failures = [outcome for outcome in outcomes if not outcome["added"]]
    return {
        "results": outcomes,
        "failures": failures,
        "succeeded": len(outcomes) - len(failures),
        "failed": len(failures),
        "message": message_of(envelope),
    }


@tool(
    name="update_shipment",
    title="Update a shipment",
    toolset="shipments",
    annotations=OVERWRITE,
    description="""Correct one shipment: `changes` may set only the fields Order Desk documents
    as writable (tracking_number, carrier_code, shipment_method, weight, cost, status,
    tracking_url); any other field is refused and nothing is written. The current shipment is
    read, merged with `changes` and sent back whole, so fields Order Desk set (date_shipped,
    order_items, label fields) go back unchanged. expected_date_updated: the order's
    date_updated you saw (a shipment has none of its own); if the order changed since, nothing
    is written and its current date_updated and values are returned. Writing bumps the
    order's date_updated (1-second resolution). dry_run: true returns the merged shipment
    without writing.""",
    input_schema=order_part_update_schema("shipment_id", SHIPMENT_ID),
    output_schema=dry_run_output({"shipment": NULLABLE_RECORD, "message": {"type": "string"}}),
)
def update_shipment(ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
    _ref, client = ctx.orderdesk()
    order_id, shipment_id = (
        id_text(args["order_id"], "order_id"),
        id_text(args["shipment_id"], "shipment_id"),
    )
    return update_order_part(
        args,
        client,
        record_name="shipment",
        writable=WRITABLE_SHIPMENT_FIELDS,
        reasons=_WHY_NOT_WRITABLE,
        read_only_fields=_READ_ONLY_SHIPMENT_FIELDS,
        read=lambda: client.get_shipment(order_id, shipment_id, fresh=True),
        write=lambda body: client.update_shipment(order_id, shipment_id, body),
    )


@tool(
    name="delete_shipment",
    title="Delete a shipment",
    toolset="shipments",
    annotations=OVERWRITE,
    description="""Delete one shipment from an order (e.g. a wrong tracking number); the order
    stays in its folder. dry_run: true returns the shipment that would be deleted without
    deleting it.""",
    input_schema=input_schema(
        {"order_id": ORDER_ID, "shipment_id": SHIPMENT_ID, "dry_run": DRY_RUN_ARG},
        ["order_id", "shipment_id"],
    ),
    output_schema=deleted_output("shipment_id"),
)
def delete_shipment(ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
    _ref, client = ctx.orderdesk()
    order_id, shipment_id = (
        id_text(args["order_id"], "order_id"),
        id_text(args["shipment_id"], "shipment_id"),
    )
    return delete_or_preview(
        args,
        record_name="shipment",
        id_name="shipment_id",
        id_value=shipment_id,
        read=lambda: client.get_shipment(order_id, shipment_id, fresh=True),
        delete=lambda: client.delete_shipment(order_id, shipment_id),
    )


TOOLS = [
    list_shipments,
    get_shipment,
    add_shipment,
    add_shipments_batch,
    update_shipment,
    delete_shipment,
]
