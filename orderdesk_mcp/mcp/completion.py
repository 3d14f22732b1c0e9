"""completion/complete: suggestions for prompt and resource-template arguments.

Store aliases for any `store` argument, the store's folder names for `folder`, common carrier
codes for `carrier_code`; nothing for anything else.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from orderdesk_mcp.mcp.tools._base import StoreNotFound, StoreResolver
from orderdesk_mcp.mcp.tools.store import folders_of
from orderdesk_mcp.orderdesk.errors import OrderDeskError

MAX_VALUES = 100
CARRIER_CODES = (
    "USPS",
    "UPS",
    "FedEx",
    "DHL",
    "DHL Express",
    "Canada Post",
    "Royal Mail",
    "Australia Post",
    "OnTrac",
    "LaserShip",
    "Purolator",
    "Parcelforce",
    "Deutsche Post",
    "PostNL",
    "La Poste",
    "Other",
)


def complete(
    ref: Mapping[str, Any],
    argument: Mapping[str, Any],
    context_arguments: Mapping[str, Any] | None,
    resolver: StoreResolver,
    toolsets: frozenset[str] | None = None,
) -> dict[str, Any]:
    """The completion/complete result for one argument of a prompt or resource template."""
    name = str(argument.get("name", ""))
    typed = str(argument.get("value") or "")
    context = dict(context_arguments or {})
    if ref.get("type") not in ("ref/prompt", "ref/resource"):
        candidates: list[str] = []
    elif name == "store":
        candidates = _stores(resolver)
    elif name == "folder" and (toolsets is None or toolsets & {"store", "orders"}):
        # Folder names come from GET /store: only for keys that may read stores or orders.
        candidates = _folders(resolver, context.get("store"))
    elif name == "carrier_code":
        candidates = list(CARRIER_CODES)
    else:
        candidates = []
    matches = [value for value in candidates if value.lower().startswith(typed.lower())]
    return {
        "completion": {
            "values": matches[:MAX_VALUES],
            "total": len(matches),
            "hasMore": len(matches) > MAX_VALUES,
        }
    }


def _stores(resolver: StoreResolver) -> list[str]:
    found: list[str] = []
    for ref in resolver.stores():
        found.append(ref.alias)
    for ref in resolver.stores():
        if ref.store_id not in found:
            found.append(ref.store_id)
    return found


def _folders(resolver: StoreResolver, store: Any) -> list[str]:
    """The folder names of the chosen store; none when the store is unknown or unreachable."""
    try:
        _ref, client = resolver.resolve(str(store) if store else None)
        return [folder["name"] for folder in folders_of(client)]
    except (StoreNotFound, OrderDeskError):
        return []
