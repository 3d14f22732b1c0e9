"""MCP resources: each store's settings and folders, and orders and inventory items by URI.

URIs: `orderdesk://{store}/store`, `orderdesk://{store}/orders/{order_id}` and
`orderdesk://{store}/inventory/{item_id}`, where {store} is a store alias (or store id).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, unquote, urlsplit

from orderdesk_mcp.mcp import results
from orderdesk_mcp.mcp.echo import clip, echo
from orderdesk_mcp.mcp.tools._base import StoreNotFound, StoreResolver
from orderdesk_mcp.mcp.tools._common import record
from orderdesk_mcp.mcp.tools.store import store_summary
from orderdesk_mcp.orderdesk.arguments import is_order_desk_id
from orderdesk_mcp.orderdesk.errors import AuthError, NotFound, OrderDeskError, RateLimited

SCHEME = "orderdesk"
MIME_TYPE = "application/json"


class ResourceNotFound(LookupError):
    """The URI is malformed, names another store, or the record does not exist (JSON-RPC -32002)."""


class ResourceUnavailable(RuntimeError):
    """Order Desk failed while reading the resource; the message says what to do."""


# Which toolset a kind of resource belongs to: a key or request narrowed to some toolsets
# reads only those resources, exactly as it calls only those tools.
RESOURCE_TOOLSETS = {"store": "store", "orders": "orders", "inventory": "inventory"}


def _enabled(kind: str, toolsets: frozenset[str] | None) -> bool:
    return toolsets is None or RESOURCE_TOOLSETS[kind] in toolsets


def store_uri(alias: str) -> str:
    return f"{SCHEME}://{quote(alias, safe='')}/store"


def list_resources(
    resolver: StoreResolver, toolsets: frozenset[str] | None = None
) -> list[dict[str, Any]]:
    """One settings-and-folders resource per store of the tenant."""
    if not _enabled("store", toolsets):
        return []
    return [
        {
            "uri": store_uri(ref.alias),
            "name": f"{ref.alias}-store",
            "title": f"Store {ref.alias} (Order Desk {ref.store_id}): settings and folders",
            "description": "The store's name, settings and folders (ids and names); no secrets.",
            "mimeType": MIME_TYPE,
        }
        for ref in resolver.stores()
    ]


def list_resource_templates(toolsets: frozenset[str] | None = None) -> list[dict[str, Any]]:
    templates = [
        {
            "uriTemplate": f"{SCHEME}://{{store}}/orders/{{order_id}}",
            "name": "order",
            "title": "An Order Desk order",
            "description": "One order by Order Desk's internal id; {store} is a store alias.",
            "mimeType": MIME_TYPE,
        },
        {
            "uriTemplate": f"{SCHEME}://{{store}}/inventory/{{item_id}}",
            "name": "inventory-item",
            "title": "An Order Desk inventory item",
            "description": "One inventory item by its Order Desk id; {store} is a store alias.",
            "mimeType": MIME_TYPE,
        },
    ]
    kinds = ("orders", "inventory")
    return [
        template
        for template, kind in zip(templates, kinds, strict=True)
        if _enabled(kind, toolsets)
    ]


def read_resource(
    uri: str, resolver: StoreResolver, toolsets: frozenset[str] | None = None
) -> dict[str, Any]:
    """The resources/read result for `uri`. Raises ResourceNotFound or ResourceUnavailable."""
    store, kind, record_id = _parse(uri)
    shown = clip(uri)  # what the messages below repeat of the URI
    if not _enabled(kind, toolsets):
        raise ResourceNotFound(
            f"{shown}: reading it needs the {RESOURCE_TOOLSETS[kind]!r} toolset, which this API "
            "key or the X-MCP-Toolsets header does not enable"
        )
    try:
        ref, client = resolver.resolve(store)
    except StoreNotFound as error:
        raise ResourceNotFound(f"{shown}: {error}") from None
    try:
        if kind == "store":
            content: dict[str, Any] = {"store": store_summary(client), "alias": ref.alias}
        elif kind == "orders":
            content = {"order": record(client.get_order(record_id), "order") or {}}
        else:
            found = record(client.get_inventory_item(record_id), "inventory_item") or {}
            content = {"inventory_item": found}
    except NotFound:
        raise ResourceNotFound(
            f"{shown}: no such record in store {ref.describe()}. Ids are Order Desk's internal "
            "ids; find an order by its cart number with the list_orders tool (source_id)."
        ) from None
    except OrderDeskError as error:
        raise ResourceUnavailable(_explain(shown, error)) from None
    text = results.to_json(results.bound(content))
    return {"contents": [{"uri": uri, "mimeType": MIME_TYPE, "text": text}]}


def _parse(uri: str) -> tuple[str, str, str]:
    """(store, kind, record id) of a resource URI; ResourceNotFound when it is not one of ours."""
    usage = (
        f"{echo(uri)} is not an Order Desk resource; use orderdesk://STORE/store, "
        "orderdesk://STORE/orders/ORDER_ID or orderdesk://STORE/inventory/ITEM_ID"
    )
    try:
        parts = urlsplit(uri)
    except ValueError:
        raise ResourceNotFound(usage) from None
    segments = [unquote(segment) for segment in parts.path.split("/")[1:]]
    store = unquote(parts.netloc)
    if parts.scheme != SCHEME or not store or parts.query or parts.fragment:
        raise ResourceNotFound(usage)
    if segments == ["store"]:
        return store, "store", ""
    if (
        len(segments) == 2
        and segments[0] in ("orders", "inventory")
        and is_order_desk_id(segments[1])
    ):
        return store, segments[0], segments[1]
    raise ResourceNotFound(usage)


def _explain(uri: str, error: OrderDeskError) -> str:
    if isinstance(error, AuthError):
        return (
            f"{uri}: Order Desk rejected the stored credentials; run `orderdesk-mcp store "
            "verify` and re-add the store with the right API key."
        )
    if isinstance(error, RateLimited):
        wait = max(1, round(error.retry_after))
        return f"{uri}: Order Desk's rate limit is exhausted; retry in {wait} seconds."
    return f"{uri}: Order Desk failed ({error.message}); retry later."


# How long (ms) a client may reuse a resources/read result (2026-07-28 `ttlMs`). A store's
# settings and folders change rarely, so the upstream cache's 5 minutes; orders and inventory
# are 0 (immediately stale): an agent that changes an order with a tool and reads it again
# must not be served the version from before its own write.
STORE_READ_TTL_MS = 300_000


def read_ttl_ms(uri: str) -> int:
    """The freshness hint for a resources/read of `uri` (one that was just read)."""
    try:
        _store, kind, _record_id = _parse(uri)
    except ResourceNotFound:
        return 0
    return STORE_READ_TTL_MS if kind == "store" else 0
