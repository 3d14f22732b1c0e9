"""Order item tools: the line items of one order."""

from __future__ import annotations

from typing import Any

from orderdesk_mcp.mcp.tools._base import CREATE, OVERWRITE, READ, ToolContext, tool
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

ITEM_ID = id_arg("The order line's id (from list_order_items or the order's order_items).")
# The order-line fields Order Desk documents (sparkweb/slate source/includes/_order_items.md,
# Properties); `id` is marked read-only there.
WRITABLE_ITEM_FIELDS = (
    "name",
    "code",
    "price",
    "quantity",
    "weight",
    "delivery_type",
    "category_code",
    "variation_list",
    "metadata",
)
# Left out of the PUT body as well as refused.
_READ_ONLY_ITEM_FIELDS = {
    "order_id": "a line belongs to its order: delete it and add it to the other order instead",
    "store_id": "store_id is set by Order Desk",
}
_WHY_NOT_WRITABLE = {
    **_READ_ONLY_ITEM_FIELDS,
    # Not in the documented properties; apps set it. It is sent back unchanged on a write.
    "fulfillment_method": "not among Order Desk's documented order-line fields; fulfilment "
    "apps set it",
}


@tool(
    name="list_order_items",
    title="List an order's items",
    toolset="items",
    annotations=READ,
    description="""List the line items of one order: id (the line id the other item tools and
    partial shipments take), name, code (SKU), price, quantity, weight, delivery_type,
    category_code, fulfillment_method, variation_list and metadata. Paged like every list
    (limit, offset, next_offset).""",
    input_schema=input_schema(
        {"order_id": ORDER_ID, "limit": LIMIT_ARG, "offset": OFFSET_ARG, "fields": FIELDS_ARG},
        ["order_id"],
    ),
    output_schema=list_output("order_items"),
)
def list_order_items(ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
    _ref, client = ctx.orderdesk()
    envelope = client.list_order_items(id_text(args["order_id"], "order_id"))
    return slice_page("order_items", records(envelope, "order_items"), args)


@tool(
    name="get_order_item",
    title="Get one order item",
    toolset="items",
    annotations=READ,
    description="Read one line item of an order by its line id (fields as in list_order_items).",
    input_schema=input_schema(
        {"order_id": ORDER_ID, "item_id": ITEM_ID, "fields": FIELDS_ARG}, ["order_id", "item_id"]
    ),
    output_schema=record_output("order_item"),
)
def get_order_item(ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
    _ref, client = ctx.orderdesk()
    envelope = client.get_order_item(
        id_text(args["order_id"], "order_id"), id_text(args["item_id"], "item_id")
    )
    return {"order_item": project(record(envelope, "order_item") or {}, args.get("fields"))}


def _newest_matching(client: OrderDeskClient, order_id: str, item: dict[str, Any]) -> Any:
    """The line just added: Order Desk's reply has no id, so find the newest line like it."""
    lines = records(client.list_order_items(order_id, fresh=True), "order_items")
    alike = [
        line
        for line in lines
        if all(line.get(key) == item[key] for key in ("code", "name") if key in item)
    ]
    return max(alike, key=lambda line: as_int(line.get("id")), default=None)


@tool(
    name="add_order_item",
    title="Add an item to an order",
    toolset="items",
    annotations=CREATE,
    description="""Add a line item to an order: name, code (SKU), price, quantity (default 1),
    weight, delivery_type (ship, noship, download, future; default ship), category_code,
    variation_list (e.g. {"Size": "L"}), metadata. Order Desk recalculates the order's totals
    and bumps its date_updated. Order Desk answers only "Order Item Added", without the line
    or its id, so the tool then lists the order's lines and returns the newest with the same
    code and name (null if none is found: check list_order_items before adding it again).""",
    input_schema=input_schema(
        {
            "order_id": ORDER_ID,
            "item": {
                "type": "object",
                "required": ["name"],
                "properties": {
                    "name": {"type": "string", "minLength": 1},
                    "code": {"type": "string"},
                    "price": {"type": "number"},
                    "quantity": {"type": "integer", "minimum": 1},
                    "weight": {"type": "number", "minimum": 0},
                    "delivery_type": {
                        "type": "string",
                        "enum": ["ship", "noship", "download", "future"],
                    },
                    "category_code": {"type": "string"},
                    "variation_list": {"type": "object"},
                    "metadata": {"type": "object"},
                },
                "additionalProperties": False,
            },
        },
        ["order_id", "item"],
    ),
    output_schema=output_schema(
        {"order_item": NULLABLE_RECORD, "message": {"type": "string"}}, ["order_item"]
    ),
)
def add_order_item(ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
    _ref, client = ctx.orderdesk()
    order_id = id_text(args["order_id"], "order_id")
    envelope = client.add_order_item(order_id, args["item"])
    added, message = written_record(
        envelope,
        "order_item",
        lambda: _newest_matching(client, order_id, args["item"]),
        what="new line",
        check=f"list_order_items(order_id={order_id})",
        missing=f"Order Desk reported success, but no line like it is listed on order "
        f"{order_id}: check list_order_items before adding it again",
    )
    return {"order_item": added, "message": message}


@tool(
    name="update_order_item",
    title="Update an order item",
    toolset="items",
    annotations=OVERWRITE,
    description="""Change fields of one line item: `changes` (e.g. {"quantity": 2}) may set the
    fields Order Desk documents for a line (name, code, price, quantity, weight,
    delivery_type, category_code, variation_list, metadata); any other field (id, order_id,
    fulfillment_method, ...) is refused and nothing is written. The current line is read,
    merged with `changes` and sent back whole, so unchanged fields (fulfillment_method
    included) go back as they were. Order Desk recalculates the order's totals.
    expected_date_updated: the order's date_updated you saw (a line has none of its own); if
    the order changed since, nothing is written and its current date_updated and the line's
    current values are returned. Writing bumps the order's date_updated (1-second
    resolution). dry_run: true returns the merged line without writing.""",
    input_schema=order_part_update_schema("item_id", ITEM_ID),
    output_schema=dry_run_output({"order_item": NULLABLE_RECORD, "message": {"type": "string"}}),
)
def update_order_item(ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
    _ref, client = ctx.orderdesk()
    order_id, item_id = id_text(args["order_id"], "order_id"), id_text(args["item_id"], "item_id")
    return update_order_part(
        args,
        client,
        record_name="order_item",
        writable=WRITABLE_ITEM_FIELDS,
        reasons=_WHY_NOT_WRITABLE,
        read_only_fields=_READ_ONLY_ITEM_FIELDS,
        read=lambda: client.get_order_item(order_id, item_id, fresh=True),
        write=lambda body: client.update_order_item(order_id, item_id, body),
    )


@tool(
    name="delete_order_item",
    title="Remove an item from an order",
    toolset="items",
    annotations=OVERWRITE,
    description="""Remove one line item from an order; Order Desk recalculates the totals and
    bumps the order's date_updated.
    dry_run: true returns the line that would be removed without removing it.""",
    input_schema=input_schema(
        {"order_id": ORDER_ID, "item_id": ITEM_ID, "dry_run": DRY_RUN_ARG},
        ["order_id", "item_id"],
    ),
    output_schema=deleted_output("item_id"),
)
def delete_order_item(ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
    _ref, client = ctx.orderdesk()
    order_id, item_id = id_text(args["order_id"], "order_id"), id_text(args["item_id"], "item_id")
    return delete_or_preview(
        args,
        record_name="order_item",
        id_name="item_id",
        id_value=item_id,
        read=lambda: client.get_order_item(order_id, item_id, fresh=True),
        delete=lambda: client.delete_order_item(order_id, item_id),
    )


TOOLS = [list_order_items, get_order_item, add_order_item, update_order_item, delete_order_item]
