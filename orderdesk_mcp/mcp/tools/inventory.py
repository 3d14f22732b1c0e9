"""Inventory tools: SKUs, stock and prices."""

from __future__ import annotations

from typing import Any

from orderdesk_mcp.mcp.tools._base import CREATE, OVERWRITE, READ, ToolContext, tool
from orderdesk_mcp.mcp.tools._common import (
    CHANGES_ARG,
    DEFAULT_LIMIT,
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
    page,
    project,
    project_all,
    record,
    record_output,
    records,
)
from orderdesk_mcp.orderdesk import deep_merge

ITEM_ID = id_arg("The inventory item's Order Desk id (find it by SKU with list_inventory_items).")
# The batch endpoint replaces whole records and each one is read first: keep it modest.
MAX_BATCH = 50
_READ_ONLY_FIELDS = ("date_added", "date_updated")

_ITEM_PROPERTIES: dict[str, Any] = {
    "name": {"type": "string", "minLength": 1},
    "code": {"type": "string", "minLength": 1, "description": "The SKU; unique in the store."},
    "price": {"type": "number"},
    "cost": {"type": "number"},
    "weight": {"type": "number", "minimum": 0},
    "stock": {"type": "integer"},
    "location": {"type": "string"},
    "manufacturer_sku": one_of_types("string", "null"),
    "update_source": {"type": "string"},
    "variation_list": {"type": "object"},
    "metadata": {"type": "object"},
}


@tool(
    name="list_inventory_items",
    title="Search inventory",
    toolset="inventory",
    annotations=READ,
    description="""List or search a store's inventory items: id, name, code (SKU), price, cost,
    weight, stock, location. code takes one SKU or several comma-separated; search is free text.
    Pages: limit 1-100 (default 20), offset, next_offset.""",
    input_schema=input_schema(
        {
            "code": {"type": "string", "minLength": 1, "maxLength": 2000},
            "search": {"type": "string", "minLength": 1, "maxLength": 200},
            "limit": LIMIT_ARG,
            "offset": OFFSET_ARG,
            "fields": FIELDS_ARG,
        }
    ),
    output_schema=list_output("inventory_items"),
)
def list_inventory_items(ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
    _ref, client = ctx.orderdesk()
    limit = int(args.get("limit", DEFAULT_LIMIT))
    offset = int(args.get("offset", 0))
    envelope = client.list_inventory_items(
        code=args.get("code"), search=args.get("search"), limit=limit, offset=offset
    )
    found = records(envelope, "inventory_items")
    # Order Desk sends this count as a string here ("5"), unlike on orders.
    total = as_int(envelope.get("total_records"), default=offset + len(found))
    return page("inventory_items", project_all(found, args.get("fields")), total, offset)


@tool(
    name="get_inventory_item",
    title="Get one inventory item",
    toolset="inventory",
    annotations=READ,
    description="Read one inventory item by its Order Desk id.",
    input_schema=input_schema({"item_id": ITEM_ID, "fields": FIELDS_ARG}, ["item_id"]),
    output_schema=record_output("inventory_item"),
)
def get_inventory_item(ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
    _ref, client = ctx.orderdesk()
    found = record(client.get_inventory_item(id_text(args["item_id"])), "inventory_item") or {}
    return {"inventory_item": project(found, args.get("fields"))}


@tool(
    name="create_inventory_item",
    title="Create an inventory item",
    toolset="inventory",
    annotations=CREATE,
    description="""Add a new inventory item (SKU). name and code are required; code must be
    unique and match the codes on incoming orders. Returns the stored item with its id.""",
    input_schema=input_schema(
        {
            "item": {
                "type": "object",
                "properties": _ITEM_PROPERTIES,
                "required": ["name", "code"],
            }
        },
        ["item"],
    ),
    output_schema=output_schema(
        {"inventory_item": NULLABLE_RECORD, "message": {"type": "string"}}, ["inventory_item"]
    ),
)
def create_inventory_item(ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
    _ref, client = ctx.orderdesk()
    item = args["item"]
    envelope = client.create_inventory_item(item)
    stored = record(envelope, "inventory_item")
    if stored is None:
        # Order Desk's reply may carry only a message: look the new SKU up.
        alike = records(
            client.list_inventory_items(code=item["code"], fresh=True), "inventory_items"
        )
        exact = [found for found in alike if found.get("code") == item["code"]]
        stored = max(exact, key=lambda found: as_int(found.get("id")), default=None)
    return {"inventory_item": stored, "message": message_of(envelope)}


@tool(
    name="update_inventory_item",
    title="Update an inventory item",
    toolset="inventory",
    annotations=OVERWRITE,
    description="""Change fields of one inventory item (e.g. {"stock": 12} or {"price": 9.5}):
    `changes` is deep-merged into the current item and written back, refusing if it changed
    meanwhile. dry_run: true returns the merged item without writing.""",
    input_schema=input_schema(
        {"item_id": ITEM_ID, "changes": CHANGES_ARG, "dry_run": DRY_RUN_ARG},
        ["item_id", "changes"],
    ),
    output_schema=dry_run_output(
        {"inventory_item": NULLABLE_RECORD, "message": {"type": "string"}}
    ),
)
def update_inventory_item(ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
    _ref, client = ctx.orderdesk()
    item_id = id_text(args["item_id"])
    if args.get("dry_run"):
        current = record(client.get_inventory_item(item_id, fresh=True), "inventory_item") or {}
        merged = deep_merge(current, args["changes"])
        return {"dry_run": True, "would": {"action": "update", "inventory_item": merged}}
    envelope = client.patch_inventory_item(item_id, args["changes"])
    stored = record(envelope, "inventory_item") or record(
        client.get_inventory_item(item_id, fresh=True), "inventory_item"
    )
    return {"dry_run": False, "inventory_item": stored, "message": message_of(envelope)}


@tool(
    name="update_inventory_items_batch",
    title="Update many inventory items",
    toolset="inventory",
    annotations=OVERWRITE,
    description="""Change several inventory items in one write (up to 50), e.g. a stock count:
    each entry is {"item_id": ..., "changes": {...}}. Each item is read first and merged, then
    all are written in one call. dry_run: true returns the merged items without writing.""",
    input_schema=input_schema(
        {
            "items": {
                "type": "array",
                "minItems": 1,
                "maxItems": MAX_BATCH,
                "items": {
                    "type": "object",
                    "properties": {"item_id": ITEM_ID, "changes": CHANGES_ARG},
                    "required": ["item_id", "changes"],
                    "additionalProperties": False,
                },
            },
            "dry_run": DRY_RUN_ARG,
        },
        ["items"],
    ),
    output_schema=dry_run_output(
        {
            "inventory_items": {"type": "array", "items": RECORD},
            "updated": {"type": "integer"},
            "message": {"type": "string"},
        }
    ),
)
def update_inventory_items_batch(ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
    _ref, client = ctx.orderdesk()
    merged_items = []
    for entry in args["items"]:
        current = record(
            client.get_inventory_item(id_text(entry["item_id"]), fresh=True), "inventory_item"
        )
        merged_items.append(deep_merge(current or {}, entry["changes"]))
    if args.get("dry_run"):
        return {"dry_run": True, "would": {"action": "update", "inventory_items": merged_items}}
    body = [
        {key: value for key, value in item.items() if key not in _READ_ONLY_FIELDS}
        for item in merged_items
    ]
    envelope = client.update_inventory_items_batch(body)
    return {
        "dry_run": False,
        "inventory_items": merged_items,
        "updated": len(merged_items),
        "message": message_of(envelope),
    }


@tool(
    name="delete_inventory_item",
    title="Delete an inventory item",
    toolset="inventory",
    annotations=OVERWRITE,
    description="""Delete one inventory item (SKU) permanently. Orders that carry the code are not
    changed. dry_run: true returns the item that would be deleted without deleting it.""",
    input_schema=input_schema({"item_id": ITEM_ID, "dry_run": DRY_RUN_ARG}, ["item_id"]),
    output_schema=deleted_output("item_id"),
)
def delete_inventory_item(ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
    _ref, client = ctx.orderdesk()
    item_id = id_text(args["item_id"])
    return delete_or_preview(
        args,
        record_name="inventory_item",
        id_name="item_id",
        id_value=item_id,
        read=lambda: client.get_inventory_item(item_id, fresh=True),
        delete=lambda: client.delete_inventory_item(item_id),
    )


TOOLS = [
    list_inventory_items,
    get_inventory_item,
    create_inventory_item,
    update_inventory_item,
    update_inventory_items_batch,
    delete_inventory_item,
]
