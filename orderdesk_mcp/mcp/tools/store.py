"""Store tools: the tenant's stores, one store's settings and folders, a credential check."""

from __future__ import annotations

import re
from typing import Any

from orderdesk_mcp.mcp.tools._base import READ, ToolAnnotations, ToolContext, tool
from orderdesk_mcp.mcp.tools._common import (
    RECORD,
    as_int,
    input_schema,
    message_of,
    output_schema,
    record,
)
from orderdesk_mcp.orderdesk import OrderDeskClient

# Settings keys that could hold credentials never leave the server.
_SECRET_KEY = re.compile(r"api[_-]?key|secret|password|passwd|token|credential|private", re.I)

LIST_STORES_ANNOTATIONS = ToolAnnotations(
    read_only=True, destructive=False, idempotent=True, open_world=False
)


@tool(
    name="list_stores",
    title="List my Order Desk stores",
    toolset="store",
    annotations=LIST_STORES_ANNOTATIONS,
    description="""List the Order Desk stores registered for you: alias, Order Desk store id and
    which one is the default. Every other tool takes `store` (an alias or store id) and uses the
    default store when it is omitted. Pass `store` here to check what one name refers to.
    Does not contact Order Desk.""",
    input_schema=input_schema({}),
    output_schema=output_schema(
        {
            "stores": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "alias": {"type": "string"},
                        "store_id": {"type": "string"},
                        "is_default": {"type": "boolean"},
                    },
                    "required": ["alias", "store_id", "is_default"],
                },
            },
            "total_records": {"type": "integer"},
            "next_offset": {"type": "null"},
        },
        ["stores", "total_records", "next_offset"],
    ),
)
def list_stores(ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
    if args.get("store") is not None:
        chosen, _client = ctx.resolver.resolve(args["store"])
        stores = [chosen]
    else:
        stores = list(ctx.resolver.stores())
    listed = [
        {"alias": ref.alias, "store_id": ref.store_id, "is_default": ref.is_default}
        for ref in stores
    ]
    return {"stores": listed, "total_records": len(listed), "next_offset": None}


def folders_of(client: OrderDeskClient, *, fresh: bool = False) -> list[dict[str, Any]]:
    """The store's folders as `[{"id": int, "name": str}]`, in id order."""
    envelope = client.get_store(fresh=fresh)
    found = record(envelope, "store") or {}
    return _folder_list(found.get("folders"))


def _folder_list(folders: Any) -> list[dict[str, Any]]:
    if not isinstance(folders, dict):
        return []
    listed = [{"id": as_int(key), "name": str(name)} for key, name in folders.items()]
    return sorted(listed, key=lambda folder: folder["id"])


def _without_secrets(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            key: _without_secrets(item)
            for key, item in value.items()
            if not _SECRET_KEY.search(str(key))
        }
    if isinstance(value, list):
        return [_without_secrets(item) for item in value]
    return value


def store_summary(client: OrderDeskClient) -> dict[str, Any]:
    """Name, id, settings (without anything secret) and folders of one store."""
    found = record(client.get_store(), "store") or {}
    return {
        "id": str(found.get("id", "")),
        "name": str(found.get("name", "")),
        "folders": _folder_list(found.get("folders")),
        "settings": _without_secrets(found.get("settings") or {}),
    }


@tool(
    name="get_store",
    title="Get store settings and folders",
    toolset="store",
    annotations=READ,
    description="""Read one store's name, settings and folders (id and name of each folder).
    Use the folder ids or exact names with list_orders(folder=...) and move_orders(folder=...).
    Never returns API keys or other secrets.""",
    input_schema=input_schema({}),
    output_schema=output_schema(
        {
            "store": {
                "type": "object",
                "properties": {
                    "id": {"type": "string"},
                    "name": {"type": "string"},
                    "folders": {"type": "array", "items": RECORD},
                    "settings": RECORD,
                },
                "required": ["id", "name", "folders"],
            },
            "alias": {"type": "string"},
        },
        ["store"],
    ),
)
def get_store(ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
    ref, client = ctx.orderdesk()
    return {"store": store_summary(client), "alias": ref.alias}


@tool(
    name="test_connection",
    title="Test the Order Desk connection",
    toolset="store",
    annotations=READ,
    description="""Check that the stored Order Desk credentials for a store work (GET /test).
    Use it when other tools report an authentication problem.""",
    input_schema=input_schema({}),
    output_schema=output_schema(
        {
            "ok": {"type": "boolean"},
            "message": {"type": "string"},
            "current_date_time": {"type": "string"},
            "alias": {"type": "string"},
            "store_id": {"type": "string"},
        },
        ["ok", "alias", "store_id"],
    ),
)
def test_connection(ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
    ref, client = ctx.orderdesk()
    envelope = client.test_connection()
    return {
        "ok": True,
        "message": message_of(envelope),
        "current_date_time": str(envelope.get("current_date_time", "")),
        "alias": ref.alias,
        "store_id": ref.store_id,
    }


TOOLS = [list_stores, get_store, test_connection]
