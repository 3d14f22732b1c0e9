"""Order tools: search, read, summarise, create, update, delete, move, add history notes."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

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
    id_text,
    input_schema,
    list_output,
    message_of,
    names_its_zone,
    order_desk_time,
    output_schema,
    page,
    project,
    project_all,
    record,
    record_output,
    records,
    written_record,
)
from orderdesk_mcp.mcp.tools._common import (
    ORDER_ID_ARG as ORDER_ID,
)
from orderdesk_mcp.mcp.tools._folders import FOLDER_ARG, folder_names, resolve_folder
from orderdesk_mcp.mcp.tools._updates import (
    EXPECTED_DATE_UPDATED_ARG,
    refuse_fields,
    require_unchanged,
)
from orderdesk_mcp.orderdesk import Conflict, OrderDeskClient
from orderdesk_mcp.orderdesk.order_body import (
    ORDER_PUT_LEFT_OUT,
    ORDER_READ_ONLY_FIELDS,
    BadOrderLines,
    merge_order_changes,
)

# friendly argument -> Order Desk query parameter. Only the UTC parameters are sent: a zone-less
# argument is converted from the store's zone here, because search_*_local has no modified_*
# counterpart and whether Order Desk honours an offset in a parameter is undocumented.
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
    "customer_first_name",
    "customer_last_name",
    "customer_company",
    "customer_phone",
    "shipping_first_name",
    "shipping_last_name",
    "shipping_company",
    "shipping_phone",
)


def _text(description: str) -> dict[str, Any]:
    return {"type": "string", "minLength": 1, "maxLength": 200, "description": description}


_ZONE_RULE = (
    "A bare date or a time without an offset is the store's local time (get_store: "
    "settings.timezone); add Z or an offset (2026-03-01T09:00:00Z, ...-05:00) for another zone."
)
_DATE_ARGS = {
    "added_from": date_arg(f"Orders added at or after this time. {_ZONE_RULE}"),
    "added_to": date_arg(
        "Orders added at or before this time; a bare date means the end of that day "
        "(store's local time, as for added_from)."
    ),
    "modified_from": date_arg("Orders changed at or after this time (zones as added_from)."),
    "modified_to": date_arg(
        "Orders changed at or before this time; a bare date means the end of that day "
        "(zones as added_from)."
    ),
}
FOLDERS_ARG: dict[str, Any] = {
    "anyOf": [
        *FOLDER_ARG["anyOf"],
        {"type": "array", "items": FOLDER_ARG, "minItems": 1, "maxItems": 20},
    ],
    "description": 'A folder id or exact folder name (e.g. "New"), or a list of them for '
    "orders in any of those folders; get_store lists them.",
}


def store_zone(ctx: ToolContext) -> ZoneInfo:
    """The store's time zone (GET /store settings.timezone, cached like the folders)."""
    ref, client = ctx.orderdesk()
    found = record(client.get_store(), "store") or {}
    settings = found.get("settings")
    name = settings.get("timezone") if isinstance(settings, dict) else None
    if not isinstance(name, str) or not name.strip():
        raise ToolInputError(
            f"Store {ref.describe()} has no time zone setting, so a date without an offset is "
            "ambiguous; give it with Z or an offset (2026-03-01T00:00:00Z)."
        )
    try:
        return ZoneInfo(name.strip())
    except (ZoneInfoNotFoundError, ValueError):
        raise ToolInputError(
            f"Store {ref.describe()} has the time zone {name[:60]!r}, which this server does "
            "not know; give dates with Z or an offset (2026-03-01T00:00:00Z)."
        ) from None


def order_filters(ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
    """Order Desk's GET /orders parameters for the friendly filter arguments."""
    ref, client = ctx.orderdesk()
    filters: dict[str, Any] = {}
    folder = args.get("folder")
    if folder is not None:
        wanted = folder if isinstance(folder, list) else [folder]
        ids = [resolve_folder(client, ref, one)["id"] for one in wanted]
        filters["folder_id"] = list(dict.fromkeys(ids))
    for name in _PLAIN_FILTERS:
        if args.get(name) is not None:
            filters[name] = args[name]
    dates = {name: args[name] for name in _DATE_FILTERS if args.get(name) is not None}
    # GET /store only when a date needs the store's zone.
    zone = store_zone(ctx) if any(not names_its_zone(v) for v in dates.values()) else None
    for name, value in dates.items():
        param, end_of_day = _DATE_FILTERS[name]
        filters[param] = order_desk_time(value, end_of_day=end_of_day, zone=zone or UTC)
    return filters


@tool(
    name="list_orders",
    title="Search orders",
    toolset="orders",
    annotations=READ,
    description="""Search a store's orders, newest first by default. Filters combine with AND:
    folder (id or exact name, or a list of them: any of those folders), email, source_id (the
    cart's own order number: use it to find an order a customer quotes), source_name (e.g.
    Shopify), customer_id, customer_/shipping_ first_name, last_name, company and phone (billing
    or shipping address), added_from/added_to and modified_from/modified_to. Dates: a bare date
    or a time without an offset is the store's local time (get_store: settings.timezone); Z or
    an offset names another zone; they are sent to Order Desk in UTC. How Order Desk matches
    names and companies (exact or partial) is not documented.
    Pages: limit 1-100 (default 20) and offset; continue with next_offset until it is null.
    Full orders are large: pass `fields` (e.g. ["source_id","order_total"]) when you do not
    need everything; a get_order of an order just listed costs no extra Order
    Desk request. include_history adds each order's order_history (slow).""",
    input_schema=input_schema(
        {
            "limit": LIMIT_ARG,
            "offset": OFFSET_ARG,
            "folder": FOLDERS_ARG,
            "email": _text("Customer e-mail address (exact)."),
            "source_id": _text("The cart/marketplace order number (exact)."),
            "source_name": _text("Where the order came from, e.g. Shopify, Amazon, Order Desk."),
            "customer_id": _text("The customer's id in the source cart."),
            "customer_first_name": _text("First name on the billing (customer) address."),
            "customer_last_name": _text("Last name on the billing (customer) address."),
            "customer_company": _text("Company on the billing (customer) address."),
            "customer_phone": _text("Phone on the billing (customer) address."),
            "shipping_first_name": _text("First name on the shipping address."),
            "shipping_last_name": _text("Last name on the shipping address."),
            "shipping_company": _text("Company on the shipping address."),
            "shipping_phone": _text("Phone on the shipping address."),
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
    order_items, order_shipments, totals, folder_id, date_updated, checkout_data and notes. To
    find the internal id from the cart's order number, use list_orders(source_id=...). The
    order's history is not part of this reply: get it with list_orders(source_id=<its
    source_id>, include_history=true), or from add_order_note's reply.""",
    input_schema=input_schema({"order_id": ORDER_ID, "fields": FIELDS_ARG}, ["order_id"]),
    output_schema=record_output("order"),
)
def get_order(ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
    _ref, client = ctx.orderdesk()
    found = record(client.get_order(id_text(args["order_id"], "order_id")), "order") or {}
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
    Filters as in list_orders (added_from/added_to and modified_from/modified_to, in the store's
    local time unless given with Z or an offset; folder; source_name). Reads at most 1,000
    orders; `complete` is false (and `note` says so) when there
    were more, so narrow the date range to cover everything.""",
    input_schema=input_schema(
        {
            **_DATE_ARGS,
            "folder": FOLDERS_ARG,
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
    Order Desk. Order Desk documents no duplicate detection: an order identical to an existing
    one may be refused or stored twice. So after an uncertain failure (no answer, "may or may
    not have happened"), check with list_orders(source_id=...) before creating it again.
    Returns the stored order with its new id.""",
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


# Fields `changes` may not name: Order Desk computes or owns them, or another tool writes them.
_NOT_UPDATABLE = {
    **ORDER_READ_ONLY_FIELDS,
    "folder_id": "move orders with move_orders (it also runs the folder's rules)",
    "order_shipments": "change shipments with add_shipment/update_shipment/delete_shipment",
    "order_history": "add history with add_order_note",
}


@tool(
    name="update_order",
    title="Update an order",
    toolset="orders",
    annotations=OVERWRITE,
    description="""Change fields of one order: `changes` is a partial order deep-merged into the
    current one (e.g. {"shipping": {"address1": "1 Main St"}} changes only that field; null
    clears a field). order_items follow Order Desk's rule: an entry with an `id` changes that
    line (only the fields you give, e.g. {"order_items": [{"id": "123", "quantity": 3}]}), an
    entry without `id` adds a line, lines you do not name stay as they are; remove a line with
    delete_order_item. Order Desk replaces the whole order on write, so the order is read, merged
    and written back whole, without what Order Desk computes or owns (id, dates, totals,
    email_count, shipments, history; the card goes back as cc_number with its last four digits,
    folder_id unchanged). Not documented by Order Desk, so assumed: that it keeps a folder_id
    sent back unchanged and the card sent as cc_number. Pass expected_date_updated (the
    date_updated you read) to refuse if the order changed since; without it, a change made
    meanwhile by someone else is overwritten. Use move_orders to change folders. dry_run: true
    returns the merged order without writing.""",
    input_schema=input_schema(
        {
            "order_id": ORDER_ID,
            "changes": CHANGES_ARG,
            "expected_date_updated": EXPECTED_DATE_UPDATED_ARG,
            "dry_run": DRY_RUN_ARG,
        },
        ["order_id", "changes"],
    ),
    output_schema=dry_run_output({"order": NULLABLE_RECORD, "message": {"type": "string"}}),
)
def update_order(ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
    _ref, client = ctx.orderdesk()
    order_id = id_text(args["order_id"], "order_id")
    changes: dict[str, Any] = args["changes"]
    refuse_fields(changes, _NOT_UPDATABLE, "changes")
    expected = args.get("expected_date_updated")
    try:
        if args.get("dry_run"):
            return _preview_update(client, order_id, changes, expected)
        envelope = client.patch_order(order_id, changes, expected_date_updated=expected)
    except BadOrderLines as error:
        raise ToolInputError(f"changes.{error.message}. Nothing was written.") from None
    except Conflict as error:
        if expected is not None and error.current is not None:
            require_unchanged(
                expected, error.current, what="order", record=error.current, changes=changes
            )
        raise
    stored, message = written_record(
        envelope,
        "order",
        lambda: record(client.get_order(order_id, fresh=True), "order"),
        what="order",
        check=f"get_order(order_id={order_id})",
    )
    return {"dry_run": False, "order": stored, "message": message}


def _preview_update(
    client: OrderDeskClient, order_id: str, changes: dict[str, Any], expected: str | None
) -> dict[str, Any]:
    current = record(client.get_order(order_id, fresh=True), "order") or {}
    require_unchanged(expected, current, what="order", record=current, changes=changes)
    merged = merge_order_changes(current, changes)
    return {
        "dry_run": True,
        "would": {
            "action": "update",
            "order_id": order_id,
            "order": merged,
            "not_sent": sorted(key for key in merged if key in ORDER_PUT_LEFT_OUT),
        },
    }


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
    order_id = id_text(args["order_id"], "order_id")
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
    can e-mail customers or send orders to fulfilment, on every call: moving again fires them
    again, so do not repeat a move to be sure. Adds a history entry to each order. `moved` counts
    only the orders Order Desk reported as moved; `not_moved` lists requested ids it reported
    nothing for (unknown ids, for instance): they were not moved. dry_run: true resolves the
    folder and returns what would be moved without writing (orders are not read one by one).""",
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
            "dry_run": DRY_RUN_ARG,
        },
        ["order_ids", "folder"],
    ),
    output_schema=dry_run_output(
        {
            "folder": {
                "type": "object",
                "properties": {"id": {"type": "integer"}, "name": {"type": "string"}},
            },
            "moved": {"type": "integer"},
            "moved_order_ids": {"type": "array", "items": {"type": "string"}},
            "not_moved": {"type": "array", "items": {"type": "string"}},
            "message": {"type": "string"},
            "note": {"type": "string"},
            "results": {"type": "array", "items": RECORD},
        }
    ),
)
def move_orders(ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
    ref, client = ctx.orderdesk()
    folder = resolve_folder(client, ref, args["folder"])
    order_ids = list(
        dict.fromkeys(
            id_text(order_id, f"order_ids[{index}]")
            for index, order_id in enumerate(args["order_ids"])
        )
    )
    if args.get("dry_run"):
        return {
            "dry_run": True,
            "would": {
                "action": "move",
                "folder": folder,
                "order_ids": order_ids,
                "note": f"Each order would be moved to {folder['name']} and that folder's rules "
                "would run for it. The orders were not read: an unknown id would be reported "
                "as not moved.",
            },
        }
    envelope = client.move_orders(order_ids, folder_id=folder["id"])
    results = records(envelope, "results")
    # The documented result entry is {order_id, message, original_folder_id}: one per order
    # moved. No entry (or an undocumented error status) means not moved.
    reported = {
        str(entry["order_id"]).strip()  # Order Desk's reply: compared, never sent
        for entry in results
        if isinstance(entry.get("order_id"), str | int) and entry.get("status") != "error"
    }
    moved = [order_id for order_id in order_ids if order_id in reported]
    not_moved = [order_id for order_id in order_ids if order_id not in reported]
    outcome: dict[str, Any] = {
        "dry_run": False,
        "folder": folder,
        "moved": len(moved),
        "moved_order_ids": moved,
        "not_moved": not_moved,
        "message": message_of(envelope),
        "results": results,
    }
    if not_moved:
        outcome["note"] = (
            f"Order Desk reported no move for {len(not_moved)} of {len(order_ids)} orders "
            f"({', '.join(not_moved[:10])}): they were not moved. Check those ids with get_order."
        )
    return outcome


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
    order_id = id_text(args["order_id"], "order_id")
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
