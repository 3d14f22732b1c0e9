"""`--state FILE`: the stores' data as JSON, loaded at start and written atomically at stop.

Credentials are never written: they come from the store specs at every start.
"""

from __future__ import annotations

import copy
import json
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from orderdesk_mcp.sandbox.store import SECRET_SETTINGS, StoreState

STATE_FORMAT_VERSION = 1


class StateFileError(ValueError):
    """The state file cannot be read back; the message names the file and the problem."""


def dump_store(store: StoreState) -> dict[str, Any]:
    with store.lock:
        return copy.deepcopy(
            {
                "name": store.name,
                "settings": {k: v for k, v in store.settings.items() if k not in SECRET_SETTINGS},
                "folders": {str(fid): name for fid, name in store.folders.items()},
                "orders": list(store.orders.values()),
                "history": store.history,
                "inventory": list(store.inventory.values()),
                "next_ids": {
                    "order": store.next_order_id,
                    "item": store.next_item_id,
                    "shipment": store.next_shipment_id,
                    "inventory": store.next_inventory_id,
                },
            }
        )


def load_store(store: StoreState, data: dict[str, Any]) -> None:
    with store.lock:
        store.name = str(data["name"])
        store.settings = dict(data["settings"])
        store.folders = {int(fid): str(name) for fid, name in data["folders"].items()}
        store.orders = {str(order["id"]): order for order in data["orders"]}
        store.history = {str(oid): list(entries) for oid, entries in data["history"].items()}
        store.inventory = {int(item["id"]): item for item in data["inventory"]}
        next_ids = data["next_ids"]
        store.next_order_id = int(next_ids["order"])
        store.next_item_id = int(next_ids["item"])
        store.next_shipment_id = int(next_ids["shipment"])
        store.next_inventory_id = int(next_ids["inventory"])


def read_state_file(path: Path) -> dict[str, dict[str, Any]]:
    """Store id -> saved data; an absent file means "nothing saved yet"."""
    if not path.exists():
        return {}
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        if document.get("version") != STATE_FORMAT_VERSION:
            raise StateFileError(
                f"{path}: unsupported state format {document.get('version')!r}; "
                f"expected {STATE_FORMAT_VERSION} (delete the file to start fresh)"
            )
        stores = document["stores"]
        if not isinstance(stores, dict):
            raise TypeError("stores must be an object")
        return stores
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
        if isinstance(error, StateFileError):
            raise
        raise StateFileError(
            f"{path}: not a sandbox state file ({error}); delete it to start fresh"
        ) from None


def write_state_file(path: Path, stores: Iterable[StoreState]) -> None:
    """Write to a temporary file in the same directory, fsync, then rename over the old one."""
    document = {
        "version": STATE_FORMAT_VERSION,
        "stores": {store.store_id: dump_store(store) for store in stores},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            json.dump(document, out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
