"""One emulated Order Desk store: its data and the operations the API endpoints perform on it.

Every method runs under the store's lock, so concurrent requests see whole writes. Records are
stored as plain dicts (see records.py) and ids follow Order Desk's types: strings for orders,
items and shipments, integers for inventory items and folders.
"""

from __future__ import annotations

import copy
import hmac
import threading
import zlib
from collections import Counter
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from orderdesk_mcp.sandbox.clock import Clock
from orderdesk_mcp.sandbox.emulation_choices import (
    DUPLICATE_ORDER_KEY,
    DUPLICATE_SHIPMENT_KEY,
    HISTORY_MAX_ENTRIES,
    HISTORY_NOTE_MAX_CHARS,
    MOVE_HISTORY_SOURCE,
    MOVE_RESULT_ONLY_FOR_MOVED_ORDERS,
    PUT_ORDER_HONOURS_FOLDER_ID,
    PUT_ORDER_WITHOUT_ITEMS_KEEPS_ITEMS,
    SHIPMENT_DATE_SHIPPED_IS_SET_BY_ORDER_DESK,
    SHIPMENT_ORDER_ITEMS_MUST_NAME_LINES,
)
from orderdesk_mcp.sandbox.errors import ApiError, invalid, not_found
from orderdesk_mcp.sandbox.faults import FaultInjector, FaultSettings
from orderdesk_mcp.sandbox.fields import JsonObject, read_text, timestamp, utc_now
from orderdesk_mcp.sandbox.rate_limit import TokenBucket
from orderdesk_mcp.sandbox.records import (
    read_inventory_item,
    read_item,
    read_order_fields,
    read_order_items,
    read_shipment,
    recompute_totals,
)
from orderdesk_mcp.sandbox.stats import StoreStats

DEFAULT_FOLDER_NAMES = ("New", "Prepared", "Closed", "Canceled")
DEFAULT_SETTINGS: JsonObject = {
    "app_version": "sandbox",
    "locale_code": "en_US",
    "timezone": "America/New_York",
    "store_country": "US",
    "store_email": "orders@example.com",
    "admin_email": "admin@example.com",
    "normalize_capitalization": "1",
    "normalize_phone_numbers": "1",
    "date_format": "m/d/Y g:ia",
    "short_date_format": "m/d/Y",
    "orders_per_page": "50",
    "report_frequency": "daily",
    "dashboard_report_type": "orders",
    "store_url": "https://shop.example.com",
    "custom_css": "",
    "security_po_box_warn": "0",
    "security_different_address_warn": "1",
    "security_different_country_warn": "1",
    "security_quantity_warn": "10",
    "limit_address_field_char_length": "0",
    "country_name_format": "code",
    "all_orders_name": "All Orders",
    "all_orders_column_view": "default",
    "shipping_methods": ["Ground", "Priority", "Express", "International"],
    "default_checkout_data_fields": [],
    "smtp_port": "587",
    "smtp_host": "smtp.example.com",
    "smtp_username": "orders@example.com",
    "smtp_encryption": "tls",
    "smtp_headers": "",
    "auto_update_stock_count": "1",
    "auto_create_inventory_items": "0",
    "normalizeCapitalization": "1",
}
# The real API never returns these; the sandbox never stores them.
SECRET_SETTINGS = frozenset({"api_key", "smtp_password"})

WallClock = Callable[[], datetime]


def folder_ids_for(store_id: str) -> list[int]:
    """Large, store-specific folder ids (Order Desk's look like 21654), stable per store id."""
    base = 20_000 + zlib.crc32(store_id.encode()) % 900_000
    return [base + offset for offset in range(len(DEFAULT_FOLDER_NAMES))]


class StoreState:
    """Data, credentials, bucket, faults and stats of one store."""

    def __init__(
        self,
        store_id: str,
        api_key: str,
        *,
        clock: Clock,
        wall_clock: WallClock = utc_now,
        name: str | None = None,
        faults: FaultSettings | None = None,
    ) -> None:
        self.store_id = store_id
        self._api_key = api_key
        self.lock = threading.RLock()
        self.bucket = TokenBucket(clock)
        self.faults = FaultInjector(seed=f"faults:{store_id}", settings=faults)
        self.stats = StoreStats()
        self._wall_clock = wall_clock
        self.name = name or f"Sandbox Store {store_id}"
        self.settings: JsonObject = copy.deepcopy(DEFAULT_SETTINGS)
        self.folders: dict[int, str] = dict(
            zip(folder_ids_for(store_id), DEFAULT_FOLDER_NAMES, strict=True)
        )
        self.orders: dict[str, JsonObject] = {}
        self.history: dict[str, list[JsonObject]] = {}
        self.inventory: dict[int, JsonObject] = {}
        self.next_order_id = 1_000_001
        self.next_item_id = 5_000_001
        self.next_shipment_id = 700_001
        self.next_inventory_id = 2_001

    def auth_headers(self) -> dict[str, str]:
        """The two headers a client sends to this store (for tests and the demo)."""
        return {"ORDERDESK-STORE-ID": self.store_id, "ORDERDESK-API-KEY": self._api_key}

    def key_matches(self, candidate: str) -> bool:
        return hmac.compare_digest(candidate.encode(), self._api_key.encode())

    # --- helpers -------------------------------------------------------------------------------

    def now_text(self) -> str:
        return timestamp(self._wall_clock())

    def today_text(self) -> str:
        return self._wall_clock().strftime("%Y-%m-%d")

    def _new_order_id(self) -> str:
        order_id = str(self.next_order_id)
        self.next_order_id += 1
        return order_id

    def _new_item_id(self) -> str:
        item_id = str(self.next_item_id)
        self.next_item_id += 1
        return item_id

    def get_order(self, order_id: str) -> JsonObject:
        order = self.orders.get(order_id)
        if order is None:
            raise not_found(f"Order {order_id} not found in store {self.store_id}")
        return order

    def email_counts(self) -> Counter[str]:
        return Counter(
            order["email"].casefold() for order in self.orders.values() if order["email"]
        )

    def email_count(self, order: Mapping[str, Any]) -> int:
        email = order["email"].casefold()
        if not email:
            return 0
        return sum(1 for other in self.orders.values() if other["email"].casefold() == email)

    def _touch(self, order: JsonObject) -> None:
        order["date_updated"] = self.now_text()

    def folder_name(self, folder_id: int) -> str:
        return self.folders.get(folder_id, str(folder_id))

    # --- orders --------------------------------------------------------------------------------

    def create_order(self, body: Mapping[str, Any], *, date_added: str | None = None) -> JsonObject:
        now = self.now_text()
        fields = read_order_fields(body, now)
        items = read_order_items(body)
        if not items:
            raise invalid("an order needs at least one entry in order_items")
        folder_id = self._folder_for_new_order(body)
        self._refuse_duplicate(fields)
        order_id = self._new_order_id()
        order: JsonObject = {
            "id": order_id,
            **fields,
            "folder_id": folder_id,
            "date_added": date_added or now,
            "date_updated": date_added or now,
            "order_items": [{"id": self._new_item_id(), **item} for _, item in items],
            "order_shipments": [],
        }
        order["source_id"] = order["source_id"] or order_id
        recompute_totals(order)
        if order["processor_balance"] is None:
            order["processor_balance"] = order["order_total"]
        self.orders[order_id] = order
        self.history[order_id] = []
        return order

    def _folder_for_new_order(self, body: Mapping[str, Any]) -> int:
        raw = body.get("folder_id")
        if raw in (None, "", 0, "0"):
            return next(iter(self.folders))
        try:
            folder_id = int(str(raw))
        except ValueError:
            raise invalid("folder_id must be a folder id from GET /store") from None
        if folder_id not in self.folders:
            raise invalid(f"folder_id {folder_id} is not a folder of this store (see GET /store)")
        return folder_id

    def _refuse_duplicate(self, fields: Mapping[str, Any]) -> None:
        key = tuple(fields[name] for name in DUPLICATE_ORDER_KEY)
        if not all(key):
            return
        for existing in self.orders.values():
            if tuple(existing[name] for name in DUPLICATE_ORDER_KEY) == key:
                raise invalid(
                    f"Duplicate order: order {existing['id']} already has source_id "
                    f"{key[0]!r} from {key[1]!r}"
                )

    def replace_order(self, order_id: str, body: Mapping[str, Any]) -> JsonObject:
        order = self.get_order(order_id)
        fields = read_order_fields(body, self.now_text())
        fields["source_id"] = fields["source_id"] or order_id
        if "order_items" in body or not PUT_ORDER_WITHOUT_ITEMS_KEEPS_ITEMS:
            items = self._merge_items(order, read_order_items(body))
            if not items:
                raise invalid(
                    "an order needs at least one entry in order_items (delete the order instead)"
                )
        else:
            items = order["order_items"]
        if PUT_ORDER_HONOURS_FOLDER_ID and body.get("folder_id") not in (None, ""):
            order["folder_id"] = self._folder_for_new_order(body)
        order.update(fields)
        order["order_items"] = items
        recompute_totals(order)
        if order["processor_balance"] is None:
            order["processor_balance"] = order["order_total"]
        self._touch(order)
        return order

    def _merge_items(
        self, order: Mapping[str, Any], pairs: list[tuple[str | None, JsonObject]]
    ) -> list[JsonObject]:
        """Items with an id update that line, without one are added, the rest are removed."""
        current = {item["id"] for item in order["order_items"]}
        merged = []
        for item_id, item in pairs:
            if item_id is not None and item_id not in current:
                raise invalid(f"order item {item_id} is not on order {order['id']}")
            merged.append({"id": item_id or self._new_item_id(), **item})
        return merged

    def delete_order(self, order_id: str) -> None:
        self.get_order(order_id)
        del self.orders[order_id]
        self.history.pop(order_id, None)

    def add_history(self, order_id: str, body: Mapping[str, Any]) -> JsonObject:
        order = self.get_order(order_id)
        note = read_text(body, "note").strip()
        if not note:
            raise invalid("note is required: the text of the history entry")
        if len(note) > HISTORY_NOTE_MAX_CHARS:
            raise invalid(f"note is too long: keep it to {HISTORY_NOTE_MAX_CHARS} characters")
        entries = self.history.setdefault(order_id, [])
        if len(entries) >= HISTORY_MAX_ENTRIES:
            raise invalid(f"order {order_id} already has {HISTORY_MAX_ENTRIES} history entries")
        entries.append(
            {
                "source_name": read_text(body, "source_name").strip() or "API",
                "note": note,
                "date_added": self.now_text(),
            }
        )
        self._touch(order)
        return order

    def move_orders(self, body: Mapping[str, Any]) -> tuple[int, list[JsonObject]]:
        destination = self._destination_folder(body)
        raw_ids = body.get("order_id_list")
        if not isinstance(raw_ids, list) or not raw_ids:
            raise invalid("order_id_list must be a non-empty array of order ids")
        results: list[JsonObject] = []
        moved = 0
        for raw in raw_ids:
            if isinstance(raw, bool) or not isinstance(raw, int | str):
                raise invalid("order_id_list must contain order ids (numbers or strings)")
            order = self.orders.get(str(raw).strip())
            if order is None:
                if not MOVE_RESULT_ONLY_FOR_MOVED_ORDERS:
                    results.append(
                        {"order_id": raw, "status": "error", "message": f"Order {raw} not found"}
                    )
                continue
            original = order["folder_id"]
            order["folder_id"] = destination
            self.history.setdefault(order["id"], []).append(
                {
                    "source_name": MOVE_HISTORY_SOURCE,
                    "note": f"Order moved from {self.folder_name(original)} to "
                    f"{self.folder_name(destination)}",
                    "date_added": self.now_text(),
                }
            )
            self._touch(order)
            moved += 1
            results.append(
                {
                    "order_id": int(order["id"]),
                    "message": f"Order Moved to {self.folder_name(destination)} Folder",
                    "original_folder_id": original,
                }
            )
        return moved, results

    def _destination_folder(self, body: Mapping[str, Any]) -> int:
        raw_id = body.get("destination_folder_id")
        raw_name = body.get("destination_folder_name")
        given_id = raw_id not in (None, "")
        given_name = raw_name not in (None, "")
        if given_id == given_name:
            raise invalid("send exactly one of destination_folder_id or destination_folder_name")
        if given_name:
            if not isinstance(raw_name, str):
                raise invalid("destination_folder_name must be a folder name string")
            for folder_id, name in self.folders.items():
                if name == raw_name:
                    return folder_id
            raise invalid(
                f"no folder named {raw_name[:60]!r}; folders: {', '.join(self.folders.values())}"
            )
        try:
            folder_id = int(str(raw_id))
        except ValueError:
            raise invalid("destination_folder_id must be a folder id from GET /store") from None
        if folder_id not in self.folders:
            raise invalid(f"destination_folder_id {folder_id} is not a folder of this store")
        return folder_id

    # --- order items ---------------------------------------------------------------------------

    def get_item(self, order_id: str, item_id: str) -> JsonObject:
        items: list[JsonObject] = self.get_order(order_id)["order_items"]
        for item in items:
            if item["id"] == item_id:
                return item
        raise not_found(f"Order item {item_id} not found on order {order_id}")

    def add_item(self, order_id: str, body: Any) -> JsonObject:
        order = self.get_order(order_id)
        item = {"id": self._new_item_id(), **read_item(body)}
        order["order_items"].append(item)
        recompute_totals(order)
        self._touch(order)
        return item

    def replace_item(self, order_id: str, item_id: str, body: Any) -> JsonObject:
        order = self.get_order(order_id)
        self.get_item(order_id, item_id)
        fields = read_item(body)
        items: list[JsonObject] = order["order_items"]
        index = next(i for i, item in enumerate(items) if item["id"] == item_id)
        items[index] = {"id": item_id, **fields}
        recompute_totals(order)
        self._touch(order)
        return items[index]

    def delete_item(self, order_id: str, item_id: str) -> None:
        order = self.get_order(order_id)
        self.get_item(order_id, item_id)
        order["order_items"] = [item for item in order["order_items"] if item["id"] != item_id]
        recompute_totals(order)
        self._touch(order)

    # --- shipments -----------------------------------------------------------------------------

    def get_shipment(self, order_id: str, shipment_id: str) -> JsonObject:
        shipments: list[JsonObject] = self.get_order(order_id)["order_shipments"]
        for shipment in shipments:
            if shipment["id"] == shipment_id:
                return shipment
        raise not_found(f"Shipment {shipment_id} not found on order {order_id}")

    def add_shipment(
        self, order_id: str, body: Any, where: str = "", date_added: str | None = None
    ) -> JsonObject:
        order = self.get_order(order_id)
        fields = read_shipment(body, where)
        _refuse_unknown_lines(order, fields["order_items"], where)
        key = tuple(fields[name] for name in DUPLICATE_SHIPMENT_KEY)
        for existing in order["order_shipments"]:
            if tuple(existing[name] for name in DUPLICATE_SHIPMENT_KEY) == key:
                raise invalid("Shipment Not Added")
        shipment = {
            "id": str(self.next_shipment_id),
            "order_id": order_id,
            "store_id": self.store_id,
            **fields,
            "date_shipped": self._date_shipped(body, where) or self.today_text(),
            "date_added": date_added or self.now_text(),
        }
        self.next_shipment_id += 1
        order["order_shipments"].append(shipment)
        self._touch(order)
        return shipment

    def replace_shipment(self, order_id: str, shipment_id: str, body: Any) -> JsonObject:
        order = self.get_order(order_id)
        shipment = self.get_shipment(order_id, shipment_id)
        fields = read_shipment(body, "")
        _refuse_unknown_lines(order, fields["order_items"], "")
        shipment.update(fields)
        shipment["date_shipped"] = self._date_shipped(body, "") or shipment["date_shipped"]
        self._touch(order)
        return shipment

    @staticmethod
    def _date_shipped(body: Any, where: str) -> str:
        """The body's date_shipped, or "" when Order Desk sets it itself."""
        if SHIPMENT_DATE_SHIPPED_IS_SET_BY_ORDER_DESK or not isinstance(body, dict):
            return ""
        return read_text(body, "date_shipped", where)

    def delete_shipment(self, order_id: str, shipment_id: str) -> None:
        order = self.get_order(order_id)
        self.get_shipment(order_id, shipment_id)
        order["order_shipments"] = [
            shipment for shipment in order["order_shipments"] if shipment["id"] != shipment_id
        ]
        self._touch(order)

    def batch_shipments(self, entries: list[Any]) -> list[JsonObject]:
        results: list[JsonObject] = []
        for index, raw in enumerate(entries):
            where = f"[{index}]."
            try:
                if not isinstance(raw, dict):
                    raise invalid(f"entry {index} must be a JSON object")
                order_id = read_text(raw, "order_id", where).strip()
                if not order_id:
                    raise invalid(f"{where}order_id is required")
                shipment = self.add_shipment(order_id, raw, where)
            except ApiError as error:
                results.append(
                    {"order_id": _echo(raw), "status": "error", "message": error.message}
                )
                continue
            results.append(
                {
                    "order_id": _echo(raw),
                    "status": "success",
                    "message": "Shipment Added",
                    "shipment_id": shipment["id"],
                }
            )
        return results

    # --- inventory -----------------------------------------------------------------------------

    def get_inventory_item(self, raw_id: str) -> JsonObject:
        try:
            item = self.inventory.get(int(raw_id))
        except ValueError:
            item = None
        if item is None:
            raise not_found(f"Inventory item {raw_id[:40]} not found in store {self.store_id}")
        return item

    def _refuse_duplicate_code(self, code: str, except_id: int | None = None) -> None:
        for item_id, item in self.inventory.items():
            if item["code"] == code and item_id != except_id:
                raise invalid(f"an inventory item with code {code!r} already exists (id {item_id})")

    def create_inventory_item(self, body: Any, *, date_added: str | None = None) -> JsonObject:
        fields = read_inventory_item(body)
        self._refuse_duplicate_code(fields["code"])
        now = date_added or self.now_text()
        item = {"id": self.next_inventory_id, **fields, "date_added": now, "date_updated": now}
        self.inventory[self.next_inventory_id] = item
        self.next_inventory_id += 1
        return item

    def replace_inventory_item(self, raw_id: str, body: Any, where: str = "") -> JsonObject:
        item = self.get_inventory_item(raw_id)
        fields = read_inventory_item(body, where)
        self._refuse_duplicate_code(fields["code"], except_id=item["id"])
        item.update(fields)
        item["date_updated"] = self.now_text()
        return item

    def batch_replace_inventory(self, entries: list[Any]) -> int:
        planned: list[tuple[JsonObject, JsonObject]] = []
        codes: dict[str, int] = {}
        for index, raw in enumerate(entries):
            where = f"[{index}]."
            if not isinstance(raw, dict):
                raise invalid(f"entry {index} must be a JSON object")
            raw_id = read_text(raw, "id", where).strip()
            if not raw_id:
                raise invalid(f"{where}id is required (the inventory item id)")
            item = self.get_inventory_item(raw_id)
            fields = read_inventory_item(raw, where)
            if codes.setdefault(fields["code"], item["id"]) != item["id"]:
                raise invalid(f"{where}code {fields['code']!r} appears twice in the batch")
            planned.append((item, fields))
        batch_ids = {item["id"] for item, _ in planned}
        for code, item_id in codes.items():
            for other_id, other in self.inventory.items():
                if other["code"] == code and other_id != item_id and other_id not in batch_ids:
                    raise invalid(
                        f"an inventory item with code {code!r} already exists (id {other_id})"
                    )
        now = self.now_text()
        for item, fields in planned:
            item.update(fields)
            item["date_updated"] = now
        return len(planned)

    def delete_inventory_item(self, raw_id: str) -> int:
        item = self.get_inventory_item(raw_id)
        del self.inventory[item["id"]]
        return int(item["id"])

    # --- store ---------------------------------------------------------------------------------

    def public_settings(self) -> JsonObject:
        return {k: copy.deepcopy(v) for k, v in self.settings.items() if k not in SECRET_SETTINGS}


def _refuse_unknown_lines(order: Mapping[str, Any], shipped: Any, where: str) -> None:
    """A partial shipment's line ids must be lines of its order."""
    if not SHIPMENT_ORDER_ITEMS_MUST_NAME_LINES or not isinstance(shipped, list):
        return
    lines = {item["id"] for item in order["order_items"]}
    for index, entry in enumerate(shipped):
        if entry.get("id") and entry["id"] not in lines:
            raise invalid(
                f"{where}order_items[{index}].id {entry['id']} is not a line of order "
                f"{order['id']} (its lines: {', '.join(sorted(lines))})"
            )


def _echo(raw: Any) -> Any:
    return raw.get("order_id") if isinstance(raw, dict) else None
