"""Shipment tools: tracking numbers on one order, or on many orders at once."""

from __future__ import annotations

from typing import Any

from orderdesk_mcp.mcp.tools._base import CREATE, OVERWRITE, READ, ToolContext, tool
from orderdesk_mcp.mcp.tools._common import (
    CHANGES_ARG,
    DRY_RUN_ARG,
    FIELDS_ARG,
    LIMIT_ARG,
    NULLABLE_RECORD,
    OFFSET_ARG,
    RECORD,
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
)
from orderdesk_mcp.mcp.tools._updates import merge_or_preview
from orderdesk_mcp.orderdesk import OrderDeskClient

ORDER_ID = id_arg("Order Desk's internal order id (not the cart's order number).")
SHIPMENT_ID = id_arg("The shipment's id (from list_shipments or the order's order_shipments).")
_READ_ONLY_SHIPMENT_FIELDS = {
    "order_id": "a shipment belongs to its order: delete it and add it to the other order",
    "store_id": "store_id is set by Order Desk",
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
    "tracking_url": {"type": "string", "maxLength": 2000, "description": "Guessed when left out."},
    "weight": one_of_types("number", "string"),
    "cost": one_of_types("number", "string", description="The merchant's postage cost."),
    "status": {"type": "string", "maxLength": 200},
    "date_shipped": {"type": "string", "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"},
}


@tool(
    name="list_shipments",
    title="List an order's shipments",
    toolset="shipments",
    annotations=READ,
    description="""List the shipments of one order: id, tracking_number, carrier_code,
    shipment_method, tracking_url, date_shipped. Several shipments mean a partial or
    multi-parcel fulfilment. Paged like every list.""",
    input_schema=input_schema(
        {"order_id": ORDER_ID, "limit": LIMIT_ARG, "offset": OFFSET_ARG, "fields": FIELDS_ARG},
        ["order_id"],
    ),
    output_schema=list_output("shipments"),
)
def list_shipments(ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
    _ref, client = ctx.orderdesk()
    envelope = client.list_shipments(id_text(args["order_id"]))
    return slice_page("shipments", records(envelope, "shipments"), args)


@tool(
    name="get_shipment",
    title="Get one shipment",
    toolset="shipments",
    annotations=READ,
    description="Read one shipment of an order by its shipment id.",
    input_schema=input_schema(
        {"order_id": ORDER_ID, "shipment_id": SHIPMENT_ID, "fields": FIELDS_ARG},
        ["order_id", "shipment_id"],
    ),
    output_schema=record_output("shipment"),
)
def get_shipment(ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
    _ref, client = ctx.orderdesk()
    envelope = client.get_shipment(id_text(args["order_id"]), id_text(args["shipment_id"]))
    return {"shipment": project(record(envelope, "shipment") or {}, args.get("fields"))}


def _shipment_body(args: dict[str, Any]) -> dict[str, Any]:
    return {key: args[key] for key in SHIPMENT_FIELDS if args.get(key) is not None}


def _newest_with_tracking(client: OrderDeskClient, order_id: str, tracking: str) -> Any:
    """Order Desk's reply carries no shipment id, so find the newest one with this number."""
    found = records(client.list_shipments(order_id, fresh=True), "shipments")
    alike = [shipment for shipment in found if shipment.get("tracking_number") == tracking]
    return max(alike, key=lambda shipment: as_int(shipment.get("id")), default=None)


@tool(
    name="add_shipment",
    title="Add a shipment to an order",
    toolset="shipments",
    annotations=CREATE,
    description="""Record a shipment (tracking number and carrier) on one order. This does not
    move the order: follow with move_orders (e.g. to a Closed or Shipped folder) if wanted, which
    may notify the customer through folder rules. Order Desk refuses an identical shipment
    ("Shipment Not Added"). For many orders at once use add_shipments_batch.""",
    input_schema=input_schema(
        {"order_id": ORDER_ID, **SHIPMENT_FIELDS}, ["order_id", "tracking_number"]
    ),
    output_schema=output_schema(
        {"shipment": NULLABLE_RECORD, "message": {"type": "string"}}, ["shipment"]
    ),
)
def add_shipment(ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
    _ref, client = ctx.orderdesk()
    order_id = id_text(args["order_id"])
    envelope = client.add_shipment(order_id, _shipment_body(args))
    added = record(envelope, "shipment") or _newest_with_tracking(
        client, order_id, args["tracking_number"]
    )
    return {"shipment": added, "message": message_of(envelope)}


@tool(
    name="add_shipments_batch",
    title="Add shipments to many orders",
    toolset="shipments",
    annotations=CREATE,
    description="""Record shipments on many orders in one Order Desk call (up to 100): each entry
    is an order_id plus the shipment fields of add_shipment. Each entry succeeds or fails on its
    own: check `results` (same order as the input) and `failed`.""",
    input_schema=input_schema(
        {
            "shipments": {
                "type": "array",
                "minItems": 1,
                "maxItems": 100,
                "items": {
                    "type": "object",
                    "properties": {"order_id": ORDER_ID, **SHIPMENT_FIELDS},
                    "required": ["order_id", "tracking_number"],
                    "additionalProperties": False,
                },
            }
        },
        ["shipments"],
    ),
    output_schema=output_schema(
        {
            "results": {"type": "array", "items": RECORD},
            "succeeded": {"type": "integer"},
            "failed": {"type": "integer"},
            "message": {"type": "string"},
        },
        ["results", "succeeded", "failed"],
    ),
)
def add_shipments_batch(ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
    _ref, client = ctx.orderdesk()
    batch = [
        {**_shipment_body(entry), "order_id": id_text(entry["order_id"])}
        for entry in args["shipments"]
    ]
    envelope = client.add_shipments_batch(batch)
    results = records(envelope, "results")
    failed = sum(1 for result in results if str(result.get("status", "success")) == "error")
    return {
        "results": results,
        "succeeded": len(results) - failed,
        "failed": failed,
        "message": message_of(envelope),
    }


@tool(
    name="update_shipment",
    title="Update a shipment",
    toolset="shipments",
    annotations=OVERWRITE,
    description="""Change fields of one shipment (e.g. a corrected tracking_number or
    carrier_code): `changes` is merged into the current shipment and written back.
    dry_run: true returns the merged shipment without writing.""",
    input_schema=input_schema(
        {
            "order_id": ORDER_ID,
            "shipment_id": SHIPMENT_ID,
            "changes": CHANGES_ARG,
            "dry_run": DRY_RUN_ARG,
        },
        ["order_id", "shipment_id", "changes"],
    ),
    output_schema=dry_run_output({"shipment": NULLABLE_RECORD, "message": {"type": "string"}}),
)
def update_shipment(ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
    _ref, client = ctx.orderdesk()
    order_id, shipment_id = id_text(args["order_id"]), id_text(args["shipment_id"])
    return merge_or_preview(
        args,
        record_name="shipment",
        read_only_fields=_READ_ONLY_SHIPMENT_FIELDS,
        read=lambda: client.get_shipment(order_id, shipment_id, fresh=True),
        write=lambda body: client.update_shipment(order_id, shipment_id, body),
    )


@tool(
    name="delete_shipment",
    title="Delete a shipment",
    toolset="shipments",
    annotations=OVERWRITE,
    description="""Delete one shipment from an order (e.g. a wrong tracking number).
    dry_run: true returns the shipment that would be deleted without deleting it.""",
    input_schema=input_schema(
        {"order_id": ORDER_ID, "shipment_id": SHIPMENT_ID, "dry_run": DRY_RUN_ARG},
        ["order_id", "shipment_id"],
    ),
    output_schema=deleted_output("shipment_id"),
)
def delete_shipment(ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
    _ref, client = ctx.orderdesk()
    order_id, shipment_id = id_text(args["order_id"]), id_text(args["shipment_id"])
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
