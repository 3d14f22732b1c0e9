"""Endpoints 19-24 and 26: inventory items, their batch update, and the store."""

from __future__ import annotations

from flask import Response, request

from orderdesk_mcp.sandbox.api_context import (
    api,
    current_store,
    json_array_body,
    json_body,
    success,
)
from orderdesk_mcp.sandbox.emulation_choices import (
    BATCH_MAX_ENTRIES,
    INVENTORY_CREATE_REPLY_INCLUDES_RECORD,
    INVENTORY_LIST_TOTAL_RECORDS_IS_STRING,
)
from orderdesk_mcp.sandbox.errors import invalid
from orderdesk_mcp.sandbox.records import render_inventory_item


@api.get("/inventory-items")
def list_inventory_items() -> Response:
    store = current_store()
    # `code` (one SKU or a comma list) is the only evidenced filter; search, limit and offset
    # are ignored like any unknown parameter, and every matching item comes back.
    codes = {code.strip() for code in (request.args.get("code") or "").split(",") if code.strip()}
    with store.lock:
        matched = [
            render_inventory_item(item)
            for item in store.inventory.values()
            if not codes or item["code"] in codes
        ]
    total = str(len(matched)) if INVENTORY_LIST_TOTAL_RECORDS_IS_STRING else len(matched)
    return success(records_returned=len(matched), total_records=total, inventory_items=matched)


@api.get("/inventory-items/<inventory_id>")
def get_inventory_item(inventory_id: str) -> Response:
    store = current_store()
    with store.lock:
        item = render_inventory_item(store.get_inventory_item(inventory_id))
    return success(records_returned=1, inventory_item=item)


@api.post("/inventory-items")
def create_inventory_item() -> Response:
    store = current_store()
    body = json_body()
    with store.lock:
        item = render_inventory_item(store.create_inventory_item(body))
    if INVENTORY_CREATE_REPLY_INCLUDES_RECORD:
        return success(message="Inventory Item Added", inventory_item=item)
    return success(message="Inventory Item Added")


@api.put("/inventory-items/<inventory_id>")
def replace_inventory_item(inventory_id: str) -> Response:
    store = current_store()
    body = json_body()
    with store.lock:
        store.replace_inventory_item(inventory_id, body)
    return success(message="Inventory Item Updated")


@api.delete("/inventory-items/<inventory_id>")
def delete_inventory_item(inventory_id: str) -> Response:
    store = current_store()
    with store.lock:
        deleted = store.delete_inventory_item(inventory_id)
    return success(message=f"Inventory Item {deleted} Deleted")


@api.put("/batch-inventory-items")
def batch_inventory_items() -> Response:
    store = current_store()
    entries = json_array_body("inventory items, each with id, name and code", "inventory_items")
    if len(entries) > BATCH_MAX_ENTRIES:
        raise invalid(f"too many inventory items in one batch: send at most {BATCH_MAX_ENTRIES}")
    with store.lock:
        updated = store.batch_replace_inventory(entries)
    return success(message=f"{updated} Inventory Items Updated")


@api.get("/store")
def get_store() -> Response:
    store = current_store()
    with store.lock:
        payload = {
            "id": store.store_id,
            "name": store.name,
            "settings": store.public_settings(),
            "folders": {str(folder_id): name for folder_id, name in store.folders.items()},
        }
    return success(store=payload)
