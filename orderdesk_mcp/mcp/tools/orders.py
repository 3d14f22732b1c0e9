"""Order tools: search, read, summarise, create, update, delete, move, add history notes."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from orderdesk_mcp.mcp.tools._base import (
    CREATE,
    MOVE,
    OVERWRITE,
    READ,
    ToolContext,
    ToolInputError,
    tool,
)
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
    as_money,
    date_arg,
    delete_or_preview,
    deleted_output,
    dry_run_output,
    id_arg,
    id_text,
    input_schema,
    list_output,
    message_of,
    order_desk_time,
    output_schema,
    page,
    project,
    project_all,
    record,
    record_output,
    records,
)
from orderdesk_mcp.mcp.tools._folders import FOLDER_ARG, folder_names, resolve_folder
from orderdesk_mcp.orderdesk import deep_merge

ORDER_ID = id_arg("Order Desk's internal order id (not the cart's order number).")

# friendly argument -> Order Desk query parameter
_DATE_FILTERS = {
    "added_from": ("search_start_date", False),
    "added_to": ("search_end_date", True),
    "modified_from": ("modified_start_date", False),
    "modified_to": ("modified_end_date", True),
}
_PLAIN_FILTERS = (
    "email",
    "source_id",
    "source_name",
    "customer_id",
    "shipping_last_name",
    "customer_last_name",
)


def _text(description: str) -> dict[str, Any]:
    return {"type": "string", "minLength": 1, "maxLength": 200, "description": description}


_DATE_ARGS = {
    "added_from": date_arg("Orders added at or after this UTC time (YYYY-MM-DD[ HH:MM:SS])."),
    "added_to": date_arg("Orders added at or before this UTC time; a bare date means its end."),
    "modified_from": date_arg("Orders changed at or after this UTC time."),
    "modified_to": date_arg("Orders changed at or before this UTC time."),
}


def order_filters(ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
    """Order Desk's GET /orders parameters for the friendly filter arguments."""
    ref, client = ctx.orderdesk()
    filters: dict[str, Any] = {}
    if args.get("folder") is not None:
        filters["folder_id"] = resolve_folder(client, ref, args["folder"])["id"]
    for name in _PLAIN_FILTERS:
        if args.get(name) is not None:
            filters[name] = args[name]
    for name, (param, end_of_day) in _DATE_FILTERS.items():
        if args.get(name) is not None:
            filters[param] = order_desk_time(args[name], end_of_day=end_of_day)
    return filters


@tool(
    name="list_orders",
    title="Search orders",
    toolset="orders",
    annotations=READ,
    description="""Search a store's orders, newest first by default. Filters combine with AND:
    folder (id or exact name), email, source_id (the cart's own order number: use it to find an
    order a customer quotes), source_name (e.g. Shopify), customer_id, shipping_last_name,
    customer_last_name, added_from/added_to and modified_from/modified_to (UTC).
    Pages: limit 1-100 (default 20) and offset; continue with next_offset until it is null.
    Full orders are large: pass `fields` (e.g. ["source_id","email","order_total","folder_id"])
    when you do not need everything. include_history adds each order's history (slow).""",
    input_schema=input_schema(
        {
            "limit": LIMIT_ARG,
            "offset": OFFSET_ARG,
            "folder": FOLDER_ARG,
            "email": _text("Customer e-mail address (exact)."),
            "source_id": _text("The cart/marketplace order number (exact)."),
            "source_name": _text("Where the order came from, e.g. Shopify, Amazon, Order Desk."),
            "customer_id": _text("The customer's id in the source cart."),
            "shipping_last_name": _text("Last name on the shipping address."),
            "customer_last_name": _text("Last name on the billing address."),
            **_DATE_ARGS,
            "order_by": {
                "type": "string",
                "pattern": "^[a-z_]{1,60}$",
                "description": "Field to sort by (default date_added), e.g. date_updated, "
                "order_total, shipping_last_name.",
            },
            "order": {
                "type": "string",
                "enum": ["asc", "desc", "ASC", "DESC"],
                "description": "Sort direction.",
            },
            "include_history": {
                "type": "boolean",
                "description": "Add each order's order_history (slow: use a small limit).",
            },
            "fields": FIELDS_ARG,
        }
    ),
    output_schema=list_output("orders"),
)
def list_orders(ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
    _ref, client = ctx.orderdesk()
    filters = order_filters(ctx, args)
    if args.get("order_by"):
        filters["order_by"] = args["order_by"]
    if args.get("order"):
        filters["order"] = str(args["order"]).upper()
    if args.get("include_history"):
        filters["get_order_history"] = 1
    limit = int(args.get("limit", DEFAULT_LIMIT))
    offset = int(args.get("offset", 0))
    envelope = client.list_orders(limit=limit, offset=offset, **filters)
    found = records(envelope, "orders")
    total = as_int(envelope.get("total_records"), default=offset + len(found))
    return page("orders", project_all(found, args.get("fields")), total, offset)


@tool(
    name="get_order",
    title="Get one order",
    toolset="orders",
    annotations=READ,
    description="""Read one order by Order Desk's internal id: customer and shipping addresses,
    order_items, order_shipments, totals, folder_id, checkout_data and notes. To find the
    internal id from the cart's order number, use list_orders(source_id=...).""",
    input_schema=input_schema({"order_id": ORDER_ID, "fields": FIELDS_ARG}, ["order_id"]),
    output_schema=record_output("order"),
)
def get_order(ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
    _ref, client = ctx.orderdesk()
    found = record(client.get_order(id_text(args["order_id"])), "order") or {}
    return {"order": project(found, args.get("fields"))}


SUMMARY_PAGE_SIZE = 100
SUMMARY_MAX_PAGES = 10
_BUCKET = {
    "type": "array",
    "items": {
        "type": "object",
        "properties": {
            "orders": {"type": "integer"},
            "order_total": {"type": "number"},
        },
    },
}


@tool(
    name="summarize_orders",
    title="Summarise orders",
    toolset="orders",
    annotations=READ,
    description="""Count and total orders for a period without reading them one by one: numbers
    of orders and order_total sums by folder (with names), by source and by payment status.
    Filters as in list_orders (added_from/added_to, modified_from/modified_to, folder,
    source_name). Reads at most 1,000 orders; `complete` is false (and `note` says so) when there
    were more, so narrow the date range to cover everything.""",
    input_schema=input_schema(
        {
            **_DATE_ARGS,
            "folder": FOLDER_ARG,
            "source_name": _text("Only orders from this source, e.g. Shopify."),
        }
    ),
    output_schema=output_schema(
        {
            "orders_counted": {"type": "integer"},
            "total_records": {"type": "integer"},
            "complete": {"type": "boolean"},
            "note": {"type": "string"},
            "order_total": {"type": "number"},
            "by_folder": _BUCKET,
            "by_source": _BUCKET,
            "by_payment_status": _BUCKET,
        },
        ["orders_counted", "total_records", "complete", "by_folder", "by_source"],
    ),
)
def summarize_orders(ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
    _ref, client = ctx.orderdesk()
    filters = order_filters(ctx, args)
    counted: list[dict[str, Any]] = []
    total = 0
    for page_number in range(SUMMARY_MAX_PAGES):
        envelope = client.list_orders(
            limit=SUMMARY_PAGE_SIZE, offset=page_number * SUMMARY_PAGE_SIZE, **filters
        )
        found = records(envelope, "orders")
        counted.extend(found)
        total = max(as_int(envelope.get("total_records"), default=len(counted)), len(counted))
        if len(found) < SUMMARY_PAGE_SIZE or len(counted) >= total:
            break
    complete = len(counted) >= total
    names = folder_names(client)
    by_folder: dict[Any, list[float]] = defaultdict(lambda: [0, 0.0])
    by_source: dict[Any, list[float]] = defaultdict(lambda: [0, 0.0])
    by_payment: dict[Any, list[float]] = defaultdict(lambda: [0, 0.0])
    grand_total = 0.0
    for order in counted:
        amount = as_money(order.get("order_total"))
        grand_total += amount
        keys = (
            (by_folder, as_int(order.get("folder_id"))),
            (by_source, str(order.get("source_name") or "")),
            (by_payment, str(order.get("payment_status") or "")),
        )
        for bucket, key in keys:
            bucket[key][0] += 1
            bucket[key][1] += amount
    summary: dict[str, Any] = {
        "orders_counted": len(counted),
        "total_records": total,
        "complete": complete,
        "order_total": round(grand_total, 2),
        "by_folder": [
            {"folder_id": key, "folder_name": names.get(key, ""), **_bucket(value)}
            for key, value in sorted(by_folder.items(), key=lambda entry: -entry[1][0])
        ],
        "by_source": [
            {"source_name": key, **_bucket(value)}
            for key, value in sorted(by_source.items(), key=lambda entry: -entry[1][0])
        ],
        "by_payment_status": [
            {"payment_status": key, **_bucket(value)}
            for key, value in sorted(by_payment.items(), key=lambda entry: -entry[1][0])
        ],
    }
    if not complete:
        summary["note"] = (
            f"Stopped after {len(counted)} of {total} orders (the limit is "
            f"{SUMMARY_PAGE_SIZE * SUMMARY_MAX_PAGES}); narrow added_from/added_to and "
            "summarise each part to cover the rest."
        )
    return summary


def _bucket(value: list[float]) -> dict[str, Any]:
    return {"orders": int(value[0]), "order_total": round(value[1], 2)}


@tool(
    name="create_order",
    title="Create an order",
    toolset="orders",
    annotations=CREATE,
    description="""Create an order in Order Desk. `order` needs at least one entry in order_items
    (name, code, price, quantity) and a first+last name or a company in `shipping` or `customer`
    (address fields: first_name, last_name, company, address1, address2, city, state,
    postal_code, country, phone). Optional: email, source_id, source_name, shipping_method,
    shipping_total, tax_total, payment_status, folder_id, checkout_data. Totals are computed by
    Order Desk. Order Desk refuses a duplicate (same source_id and source_name) and names the
    existing order. Returns the stored order with its new id.""",
    input_schema=input_schema(
        {
            "order": {
                "type": "object",
                "required": ["order_items"],
                "properties": {
                    "order_items": {"type": "array", "minItems": 1, "items": {"type": "object"}},
                    "shipping": {"type": "object"},
                    "customer": {"type": "object"},
                },
                "description": "The new order (see the tool description for its fields).",
            }
        },
        ["order"],
    ),
    output_schema=output_schema(
        {"order": NULLABLE_RECORD, "message": {"type": "string"}}, ["order"]
    ),
)
def create_order(ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
    _ref, client = ctx.orderdesk()
    envelope = client.create_order(args["order"])
    return {"order": record(envelope, "order"), "message": message_of(envelope)}


# Fields an update must not touch: they have their own tools or are Order Desk's own.
_NOT_UPDATABLE = {
    "id": "the order id cannot change",
    "folder_id": "move orders with move_orders (it also runs the folder's rules)",
    "order_shipments": "change shipments with add_shipment/update_shipment/delete_shipment",
    "order_history": "add history with add_order_note",
}


def _check_order_changes(changes: dict[str, Any]) -> None:
    refused = [f"{key}: {why}" for key, why in _NOT_UPDATABLE.items() if key in changes]
    if refused:
        raise ToolInputError("changes cannot include " + "; ".join(refused) + ".")


@tool(
    name="update_order",
    title="Update an order",
    toolset="orders",
    annotations=OVERWRITE,
    description="""Change fields of one order: `changes` is a partial order deep-merged into the
    current one (e.g. {"shipping": {"address1": "1 Main St"}} changes only that line; null
    clears a field; a list such as order_items replaces the whole list, and lines left out are
    removed). Reads the order, merges and writes it back, refusing if it changed meanwhile.
    Use move_orders to change folders. dry_run: true returns the merged order without writing.""",
    input_schema=input_schema(
        {"order_id": ORDER_ID, "changes": CHANGES_ARG, "dry_run": DRY_RUN_ARG},
        ["order_id", "changes"],
    ),
    output_schema=dry_run_output({"order": NULLABLE_RECORD, "message": {"type": "string"}}),
)
def update_order(ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
    _ref, client = ctx.orderdesk()
    order_id = id_text(args["order_id"])
    changes: dict[str, Any] = args["changes"]
    _check_order_changes(changes)
    if args.get("dry_run"):
        current = record(client.get_order(order_id, fresh=True), "order") or {}
        merged = deep_merge(current, changes)
        return {
            "dry_run": True,
            "would": {"action": "update", "order_id": order_id, "order": merged},
        }
    envelope = client.patch_order(order_id, changes)
    return {"dry_run": False, "order": record(envelope, "order"), "message": message_of(envelope)}


@tool(
    name="delete_order",
    title="Delete an order",
    toolset="orders",
    annotations=OVERWRITE,
    description="""Delete one order permanently (with its items, shipments and history); it cannot
    be undone. Prefer moving it to a Canceled folder with move_orders unless deletion is really
    wanted. Call with dry_run: true first to see the order that would be deleted.""",
    input_schema=input_schema({"order_id": ORDER_ID, "dry_run": DRY_RUN_ARG}, ["order_id"]),
    output_schema=deleted_output("order_id"),
)
def delete_order(ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
    _ref, client = ctx.orderdesk()
    order_id = id_text(args["order_id"])
    return delete_or_preview(
        args,
        record_name="order",
        id_name="order_id",
        id_value=order_id,
        read=lambda: client.get_order(order_id, fresh=True),
        delete=lambda: client.delete_order(order_id),
    )


@tool(
    name="move_orders",
    title="Move orders to a folder",
    toolset="orders",
    annotations=MOVE,
    description="""Move one or more orders (Order Desk internal ids) into a folder, given by id or
    exact name (get_store lists the folders). Moving runs the destination folder's rules, which
    can e-mail customers or send orders to fulfilment, and adds a history entry to each order.""",
    input_schema=input_schema(
        {
            "order_ids": {
                "type": "array",
                "items": ORDER_ID,
                "minItems": 1,
                "maxItems": 100,
                "uniqueItems": True,
                "description": "Internal order ids to move (1-100).",
            },
            "folder": FOLDER_ARG,
        },
        ["order_ids", "folder"],
    ),
    output_schema=output_schema(
        {
            "folder": {
                "type": "object",
                "properties": {"id": {"type": "integer"}, "name": {"type": "string"}},
            },
            "moved": {"type": "integer"},
            "message": {"type": "string"},
            "results": {"type": "array", "items": RECORD},
        },
        ["folder", "results"],
    ),
)
def move_orders(ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
    ref, client = ctx.orderdesk()
    folder = resolve_folder(client, ref, args["folder"])
    order_ids = [id_text(order_id) for order_id in args["order_ids"]]
    envelope = client.move_orders(order_ids, folder_id=folder["id"])
    results = records(envelope, "results")
    return {
        "folder": folder,
        "moved": len(results) if results else len(order_ids),
        "message": message_of(envelope),
        "results": results,
    }


@tool(
    name="add_order_note",
    title="Add a note to an order's history",
    toolset="orders",
    annotations=CREATE,
    description="""Append a note to an order's history (visible to the merchant in Order Desk).
    History is append-only (at most 250 entries per order): notes cannot be edited or removed,
    so write them only for real events. Keep a note under 1,800 characters.""",
    input_schema=input_schema(
        {
            "order_id": ORDER_ID,
            "note": {"type": "string", "minLength": 1, "maxLength": 1800},
            "source_name": {
                "type": "string",
                "minLength": 1,
                "maxLength": 100,
                "description": "Who wrote the note (Order Desk shows it; default API).",
            },
        },
        ["order_id", "note"],
    ),
    output_schema=output_schema(
        {
            "order_id": {"type": "string"},
            "message": {"type": "string"},
            "order_history": {"type": "array", "items": RECORD},
        },
        ["order_id", "order_history"],
    ),
)
def add_order_note(ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
    _ref, client = ctx.orderdesk()
    order_id = id_text(args["order_id"])
    envelope = client.add_order_history(order_id, args["note"], source_name=args.get("source_name"))
    order = record(envelope, "order") or {}
    history = order.get("order_history")
    return {
        "order_id": order_id,
        "message": message_of(envelope),
        "order_history": history if isinstance(history, list) else [],
    }


TOOLS = [
    list_orders,
    get_order,
    summarize_orders,
    create_order,
    update_order,
    delete_order,
    move_orders,
    add_order_note,
]
