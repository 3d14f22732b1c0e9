"""Folder lookups shared by list_orders, summarize_orders and move_orders."""

from __future__ import annotations

from typing import Any

from orderdesk_mcp.mcp.tools._base import StoreRef, ToolInputError
from orderdesk_mcp.mcp.tools.store import folders_of
from orderdesk_mcp.orderdesk import OrderDeskClient
from orderdesk_mcp.orderdesk.arguments import is_order_desk_id

FOLDER_ARG: dict[str, Any] = {
    "anyOf": [
        {"type": "string", "minLength": 1, "maxLength": 200},
        {"type": "integer", "minimum": 1},
    ],
    "description": 'A folder id or an exact folder name (e.g. "New"); get_store lists them.',
}


def resolve_folder(client: OrderDeskClient, store: StoreRef, folder: str | int) -> dict[str, Any]:
    """`{"id": int, "name": str}` for a folder id or exact name; a clear error when unknown."""
    folders = folders_of(client)
    wanted = str(folder).strip()
    # Only a canonical id is taken as one: "007" or "１２" can only be a folder's name.
    if is_order_desk_id(wanted):
        chosen = [found for found in folders if found["id"] == int(wanted)]
    else:
        chosen = [found for found in folders if found["name"] == wanted]
        if not chosen:
            # Forgive case ("new" for "New") only when it is still unambiguous.
            chosen = [found for found in folders if found["name"].lower() == wanted.lower()]
    if len(chosen) == 1:
        return dict(chosen[0])
    listing = ", ".join(f"{found['name']} (id {found['id']})" for found in folders) or "none"
    raise ToolInputError(
        f"No folder {wanted!r} in store {store.describe()}. Use a folder id or exact name; "
        f"the folders are: {listing}."
    )


def folder_names(client: OrderDeskClient) -> dict[int, str]:
    return {found["id"]: found["name"] for found in folders_of(client)}
