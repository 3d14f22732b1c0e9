"""Talking to the sandbox directly (not through our server): order ids, stats, resets.

The harness needs order ids without spending our server's tokens or filling its cache, and it
reads the sandbox's own counters (requests served, 429s, when each was served) afterwards.
"""

from __future__ import annotations

import json
import urllib.request
from typing import Any

from orderdesk_mcp.sandbox import max_window_excess


def _call(url: str, method: str = "GET", headers: dict[str, str] | None = None) -> Any:
    data = b"{}" if method == "POST" else None
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def order_ids(base_url: str, store_id: str, api_key: str, count: int) -> list[str]:
    """The first `count` order ids of a store, read straight from the sandbox."""
    headers = {"ORDERDESK-STORE-ID": store_id, "ORDERDESK-API-KEY": api_key}
    ids: list[str] = []
    offset = 0
    while len(ids) < count:
        page = _call(f"{base_url}/orders?limit=100&offset={offset}", headers=headers)
        orders = page.get("orders", [])
        if not orders:
            break
        ids.extend(str(order["id"]) for order in orders)
        offset += len(orders)
    if len(ids) < count:
        raise RuntimeError(f"store {store_id} has {len(ids)} orders, {count} needed")
    return ids[:count]


def reset_store(admin_url: str, store_id: str) -> None:
    """Clear the store's counters and refill its bucket (admin endpoint, loopback only)."""
    body = json.dumps({"store_id": store_id}).encode()
    request = urllib.request.Request(f"{admin_url}/reset", data=body, method="POST")
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=30) as response:
        response.read()


def store_stats(admin_url: str, store_id: str) -> dict[str, Any]:
    stats: dict[str, Any] = _call(f"{admin_url}/stats?store_id={store_id}")["stats"]
    return stats


def bucket_excess(stats: dict[str, Any]) -> float:
    """How far the served log ever went over 20 + 3/s (<= 0: never)."""
    return max_window_excess(stats["served_at"])
