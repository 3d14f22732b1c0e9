"""Inventory tools: SKUs, stock and prices.

What Order Desk does here, with the evidence, is in docs/ORDERDESK.md ("Inventory items"): GET
/inventory-items filters only by `code` and is not paged; a PUT replaces the whole item; PUT
/batch-inventory-items takes an array of whole items and answers with one status and message;
POST /inventory-items answers without the new item.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import quote_plus

from orderdesk_mcp.mcp.tools._base import (
    CREATE,
    OVERWRITE,
    READ,
    RecordChanged,
    ToolContext,
    ToolInputError,
    tool,
)
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
    written_record,
)
from orderdesk_mcp.mcp.tools._updates import (
    EXPECTED_DATE_UPDATED_ARG,
    READ_ONLY_EVERYWHERE,
    merge_or_preview,
    refuse_fields,
    require_unchanged,
)
from orderdesk_mcp.orderdesk import NotFound, OrderDeskClient, deep_merge
from orderdesk_mcp.orderdesk.urls import request_url

ITEM_ID = id_arg("The inventory item's Order Desk id (find it by SKU with list_inventory_items).")
# Our limit, not Order Desk's (it documents none): one batch is one body and one reply.
MAX_BATCH = 50
# Servers and proxies commonly refuse URLs past ~2,000 characters; a code list is split to fit.
MAX_URL_CHARS = 2000
# Up to this many entries by item_id are read one GET each; more read the whole list once
# (GET /inventory-items returns every item, so one request replaces many).
FEW_IDS = 3
SEARCH_FIELDS = ("name", "code", "location")
_STAMPS = ("date_added", "date_updated")
_CODE_PATH = "/inventory-items"

_ITEM_PROPERTIES: dict[str, Any] = {
    "name": {"type": "string", "minLength": 1},
    "code": {"type": "string", "minLength": 1, "description": "The SKU."},
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
ENTRY_CODE: dict[str, Any] = {
    "type": "string",
    "minLength": 1,
    "maxLength": 200,
    "description": "The item's SKU, exactly as stored (instead of item_id); no commas.",
}


def code_batches(base_url: str, codes: Sequence[str]) -> list[list[str]]:
    """`codes` in order, cut into runs whose GET /inventory-items?code=a,b,c URL stays within
    MAX_URL_CHARS (a code too long to share a URL goes alone)."""
    room = MAX_URL_CHARS - len(request_url(base_url, _CODE_PATH, {"code": ""}))
    batches: list[list[str]] = []
    current: list[str] = []
    used = 0
    for code in codes:
        # urlencode quotes with quote_plus; each joining comma becomes %2C.
        size = len(quote_plus(code))
        if current and used + 3 + size > room:
            batches.append(current)
            current, used = [], 0
        used += size + (3 if current else 0)
        current.append(code)
    if current:
        batches.append(current)
    return batches


def items_by_codes(
    client: OrderDeskClient, codes: Sequence[str], *, fresh: bool
) -> list[dict[str, Any]]:
    """Every item Order Desk returns for `codes`, one GET per URL-sized run, each once."""
    found: dict[str, dict[str, Any]] = {}
    for batch in code_batches(client.base_url, codes):
        for item in records(
            client.list_inventory_items(code=batch, fresh=fresh), "inventory_items"
        ):
            found.setdefault(str(item.get("id")), item)
    return list(found.values())


def _codes_arg(raw: str | None) -> list[str] | None:
    if raw is None:
        return None
    codes = list(dict.fromkeys(code.strip() for code in raw.split(",") if code.strip()))
    if not codes:
        raise ToolInputError(
            f"code {raw!r} names no SKU; pass one SKU or several separated by commas, or leave "
            "code out to list every item."
        )
    return codes


def _matches(item: Mapping[str, Any], needle: str) -> bool:
    return any(needle in str(item.get(field) or "").casefold() for field in SEARCH_FIELDS)


@tool(
    name="list_inventory_items",
    title="Search inventory",
    toolset="inventory",
    annotations=READ,
    description="""List a store's inventory items: id, name, code (SKU), price, cost, weight,
    stock, location, date_updated. Order Desk returns every item in one reply and filters only
    by code: `code` takes one exact SKU or several comma-separated, and only those items are
    fetched. `search` is applied here, not by Order Desk: a case-insensitive substring of
    name, code or location, over the items fetched. limit (1-100, default 20) and offset page
    that result here; total_records counts it; next_offset is null on the last page. The
    fetched list is cached briefly, so later pages cost no extra request.""",
    input_schema=input_schema(
        {
            "code": {
                "type": "string",
                "minLength": 1,
                "maxLength": 2000,
                "description": "One SKU or several, comma-separated; Order Desk matches them.",
            },
            "search": {
                "type": "string",
                "minLength": 1,
                "maxLength": 200,
                "description": "Case-insensitive text in name, code or location; matched here "
                "over the items fetched.",
            },
            "limit": LIMIT_ARG,
            "offset": OFFSET_ARG,
            "fields": FIELDS_ARG,
        }
    ),
    output_schema=list_output("inventory_items"),
)
def list_inventory_items(ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
    _ref, client = ctx.orderdesk()
    codes = _codes_arg(args.get("code"))
    if codes is None:
        found = records(client.list_inventory_items(), "inventory_items")
    else:
        found = items_by_codes(client, codes, fresh=False)
    search = args.get("search")
    if search:
        needle = search.casefold()
        found = [item for item in found if _matches(item, needle)]
    # Counted here: Order Desk's total_records may not reflect a code filter.
    return slice_page("inventory_items", found, args)


@tool(
    name="get_inventory_item",
    title="Get one inventory item",
    toolset="inventory",
    annotations=READ,
    description="""Read one inventory item by its Order Desk id (find the id by SKU with
    list_inventory_items(code=...)). Reads are cached briefly; the update tools always read
    afresh before writing.""",
    input_schema=input_schema({"item_id": ITEM_ID, "fields": FIELDS_ARG}, ["item_id"]),
    output_schema=record_output("inventory_item"),
)
def get_inventory_item(ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
    _ref, client = ctx.orderdesk()
    found = (
        record(client.get_inventory_item(id_text(args["item_id"], "item_id")), "inventory_item")
        or {}
    )
    return {"inventory_item": project(found, args.get("fields"))}


@tool(
    name="create_inventory_item",
    title="Create an inventory item",
    toolset="inventory",
    annotations=CREATE,
    description="""Add a new inventory item. name and code (the SKU, as on incoming orders)
    are required; fields left out are empty. Order Desk does not document refusing a code
    already in use, so check first with list_inventory_items(code=...). Its reply carries
    only a message, no id: the new item is then looked up by its code, and inventory_item is
    the newest item with exactly that code, or null if Order Desk returns none.""",
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

    def newest_with_code() -> Any:
        # The documented reply is only status and message: look the new SKU up.
        alike = records(
            client.list_inventory_items(code=item["code"], fresh=True), "inventory_items"
        )
        exact = [found for found in alike if found.get("code") == item["code"]]
        return max(exact, key=lambda found: as_int(found.get("id")), default=None)

    stored, message = written_record(
        envelope,
        "inventory_item",
        newest_with_code,
        what="new item",
        check=f"list_inventory_items(code={item['code']!r})",
    )
    return {"inventory_item": stored, "message": message}


@tool(
    name="update_inventory_item",
    title="Update an inventory item",
    toolset="inventory",
    annotations=OVERWRITE,
    description="""Change fields of one inventory item, e.g. {"stock": 12} or {"price": 9.5}.
    Order Desk's PUT replaces the whole item and blanks fields left out, so the item is read
    afresh, `changes` is deep-merged into it and the whole item is written back. changes
    cannot include id, date_added or date_updated. expected_date_updated (optional): the
    date_updated you saw; if Order Desk's differs, nothing is written and the current
    date_updated and values are returned (our check just before the write; Order Desk has no
    such guard, and its stamp has 1-second resolution). Returns the item as read back.
    dry_run: true returns the merged item without writing.""",
    input_schema=input_schema(
        {
            "item_id": ITEM_ID,
            "changes": CHANGES_ARG,
            "expected_date_updated": EXPECTED_DATE_UPDATED_ARG,
            "dry_run": DRY_RUN_ARG,
        },
        ["item_id", "changes"],
    ),
    output_schema=dry_run_output(
        {"inventory_item": NULLABLE_RECORD, "message": {"type": "string"}}
    ),
)
def update_inventory_item(ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
    _ref, client = ctx.orderdesk()
    item_id = id_text(args["item_id"], "item_id")
    return merge_or_preview(
        args,
        record_name="inventory_item",
        read_only_fields={},
        read=lambda: client.get_inventory_item(item_id, fresh=True),
        write=lambda body: client.put_inventory_item(item_id, body),
    )


def _checked_entries(entries: Sequence[Mapping[str, Any]]) -> list[tuple[str, str]]:
    """Each entry's (kind, key): ("item_id", "2001") or ("code", "TEE-S"); refuses entries
    that name their item twice or not at all, read-only fields in changes, and repeats."""
    named: list[tuple[str, str]] = []
    seen: dict[tuple[str, str], int] = {}
    for index, entry in enumerate(entries):
        where = f"items[{index}]"
        has_id, has_code = "item_id" in entry, "code" in entry
        if has_id == has_code:
            said = "both item_id and code" if has_id else "neither item_id nor code"
            raise ToolInputError(
                f"{where} names {said}: name each item by exactly one of them. Nothing was written."
            )
        refuse_fields(entry["changes"], READ_ONLY_EVERYWHERE, f"{where}.changes")
        if has_code:
            key = ("code", str(entry["code"]))
            if "," in key[1]:
                raise ToolInputError(
                    f"{where}.code {key[1]!r} contains a comma, which Order Desk reads as a "
                    "list of codes: name this item by item_id instead. Nothing was written."
                )
        else:
            key = ("item_id", id_text(entry["item_id"], f"{where}.item_id"))
        if key in seen:
            raise ToolInputError(
                f"items[{seen[key]}] and {where} both name {key[0]} {key[1]!r}: put their "
                "changes in one entry. Nothing was written."
            )
        seen[key] = index
        named.append(key)
    return named


def _read_by_ids(client: OrderDeskClient, ids: Iterable[str]) -> dict[str, dict[str, Any]]:
    """Fresh records of `ids` that exist: one GET each for a few, else the whole list once
    (then single GETs for any it lacks, in case Order Desk ever caps that list)."""
    wanted = dict.fromkeys(ids)
    found: dict[str, dict[str, Any]] = {}
    if len(wanted) > FEW_IDS:
        for listed in records(client.list_inventory_items(fresh=True), "inventory_items"):
            if str(listed.get("id")) in wanted:
                found[str(listed.get("id"))] = listed
    for item_id in wanted:
        if item_id in found:
            continue
        try:
            single = record(client.get_inventory_item(item_id, fresh=True), "inventory_item")
        except NotFound:
            continue
        if single is not None:
            found[item_id] = single
    return found


def _resolve(
    client: OrderDeskClient, named: Sequence[tuple[str, str]], where: str
) -> list[dict[str, Any]]:
    """The current record of each entry, in order; refuses unknown names, codes several
    items share, and two entries that land on one item."""
    codes = list(dict.fromkeys(key for kind, key in named if kind == "code"))
    by_code: dict[str, list[dict[str, Any]]] = {code: [] for code in codes}
    if codes:
        for item in items_by_codes(client, codes, fresh=True):
            # Exact match: what Order Desk returns for a code is trusted only when it is equal.
            if str(item.get("code")) in by_code:
                by_code[str(item.get("code"))].append(item)
    by_id = _read_by_ids(client, (key for kind, key in named if kind == "item_id"))
    unknown: list[str] = []
    shared: list[str] = []
    current: list[dict[str, Any]] = []
    for index, (kind, key) in enumerate(named):
        label = f"items[{index}] {kind} {key!r}"
        matches = by_code[key] if kind == "code" else [by_id[key]] if key in by_id else []
        if not matches:
            unknown.append(label)
        elif len(matches) > 1:
            ids = ", ".join(str(item.get("id")) for item in matches)
            shared.append(f"{label} matches inventory items {ids}")
        else:
            current.append(matches[0])
    if unknown:
        raise ToolInputError(
            f"No inventory item in {where} has {'; '.join(unknown)}. Nothing was written: find "
            "items by SKU with list_inventory_items(code=...), then fix or drop those entries."
        )
    if shared:
        raise ToolInputError(
            f"{'; '.join(shared)}. Name the one you mean by item_id. Nothing was written."
        )
    first_entry: dict[str, int] = {}
    for index, item in enumerate(current):
        item_id = str(item.get("id"))
        if item_id in first_entry:
            raise ToolInputError(
                f"items[{first_entry[item_id]}] and items[{index}] both name inventory item "
                f"{item_id}: put their changes in one entry. Nothing was written."
            )
        first_entry[item_id] = index
    return current


def _require_all_unchanged(
    entries: Sequence[Mapping[str, Any]], current: Sequence[Mapping[str, Any]]
) -> None:
    """Check every entry's expected_date_updated before anything is written; one
    RecordChanged names every entry that moved."""
    moved: list[str] = []
    for index, (entry, item) in enumerate(zip(entries, current, strict=True)):
        try:
            require_unchanged(
                entry.get("expected_date_updated"),
                item,
                what=f"items[{index}] (inventory item {item.get('id')})",
                record=item,
                changes=entry["changes"],
            )
        except RecordChanged as changed:
            moved.append(str(changed))
    if moved:
        raise RecordChanged("\n".join(moved))


@tool(
    name="update_inventory_items_batch",
    title="Update many inventory items",
    toolset="inventory",
    annotations=OVERWRITE,
    description="""Change up to 50 inventory items in one write, e.g. a stock count. Each
    entry is {"code": SKU or "item_id": id, "changes": {...}, "expected_date_updated"?}:
    exactly one of code and item_id. All items are read afresh first (a couple of requests
    in all, not one per item), each is deep-merged with its changes, and all are sent as whole
    records in one PUT /batch-inventory-items (Order Desk replaces each record). Nothing is
    written if any entry names an unknown item, a code several items share, an item another
    entry names, or id/date_added/date_updated in changes, or if any expected_date_updated
    differs from Order Desk's (the current values are returned). Order Desk answers the batch
    with one status and message and no per-item results: inventory_items are the records as
    sent, without a new date_updated. dry_run: true returns the merged items, writing
    nothing.""",
    input_schema=input_schema(
        {
            "items": {
                "type": "array",
                "minItems": 1,
                "maxItems": MAX_BATCH,
                "items": {
                    "type": "object",
                    "properties": {
                        "item_id": ITEM_ID,
                        "code": ENTRY_CODE,
                        "changes": CHANGES_ARG,
                        "expected_date_updated": EXPECTED_DATE_UPDATED_ARG,
                    },
                    "required": ["changes"],
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
            "updated": {
                "type": "integer",
                "description": "Items in the batch Order Desk accepted.",
            },
            "message": {"type": "string"},
        }
    ),
)
def update_inventory_items_batch(ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
    ref, client = ctx.orderdesk()
    entries: list[Mapping[str, Any]] = args["items"]
    named = _checked_entries(entries)
    current = _resolve(client, named, ref.describe())
    _require_all_unchanged(entries, current)
    merged = [
        deep_merge(item, entry["changes"]) for item, entry in zip(current, entries, strict=True)
    ]
    if args.get("dry_run"):
        return {"dry_run": True, "would": {"action": "update", "inventory_items": merged}}
    # Whole records with their id; Order Desk sets the stamps.
    body = [{key: value for key, value in item.items() if key not in _STAMPS} for item in merged]
    envelope = client.update_inventory_items_batch(body)
    return {
        "dry_run": False,
        "inventory_items": body,
        "updated": len(body),
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
    item_id = id_text(args["item_id"], "item_id")
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
