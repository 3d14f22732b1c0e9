"""Sandbox sub-resources over real HTTP: history, moves, items, shipments, inventory."""

from __future__ import annotations

from typing import Any

from orderdesk_mcp.sandbox import RunningSandbox
from tests.test_sandbox_api import DEMO, EMPTY, call, create, error, ok


def folders(sb: RunningSandbox, store: str = EMPTY) -> dict[str, int]:
    listing = ok(call(sb, "GET", "/store", store))["store"]["folders"]
    return {name: int(folder_id) for folder_id, name in listing.items()}


def test_history_note_is_appended_and_listed_with_get_order_history(
    sandbox: RunningSandbox,
) -> None:
    order = create(sandbox)
    path = f"/orders/{order['id']}/order-history"
    body = ok(call(sandbox, "POST", path, EMPTY, json={"note": "Called the customer"}))
    assert body["total_records"] == 1
    assert body["order"]["order_history"][-1]["note"] == "Called the customer"
    assert body["order"]["order_history"][-1]["source_name"] == "API"
    listed = ok(call(sandbox, "GET", "/orders", EMPTY, params={"get_order_history": 1}))
    assert listed["orders"][0]["order_history"][0]["note"] == "Called the customer"
    plain = ok(call(sandbox, "GET", "/orders", EMPTY))
    assert "order_history" not in plain["orders"][0]
    assert "note is required" in error(call(sandbox, "POST", path, EMPTY, json={}), 400)
    long_note = {"note": "x" * 1801}
    assert "too long" in error(call(sandbox, "POST", path, EMPTY, json=long_note), 400)


def test_move_orders_by_name_and_id_writes_history(sandbox: RunningSandbox) -> None:
    ids = folders(sandbox)
    order = create(sandbox)
    body = {"order_id_list": [int(order["id"]), "424242"], "destination_folder_name": "Prepared"}
    moved = ok(call(sandbox, "POST", "/move-orders", EMPTY, json=body))
    assert moved["message"] == "1 Orders Moved"
    # The documented shape: one entry per order moved, none for the unknown id.
    [first] = moved["results"]
    assert first == {
        "order_id": int(order["id"]),
        "message": "Order Moved to Prepared Folder",
        "original_folder_id": ids["New"],
    }
    got = ok(call(sandbox, "GET", f"/orders/{order['id']}", EMPTY))["order"]
    assert got["folder_id"] == ids["Prepared"]
    assert got["date_updated"] >= order["date_updated"]
    history = ok(call(sandbox, "GET", "/orders", EMPTY, params={"get_order_history": "1"}))[
        "orders"
    ][0]["order_history"]
    assert history[-1]["note"] == "Order moved from New to Prepared"
    by_id = {"order_id_list": [order["id"]], "destination_folder_id": ids["Closed"]}
    ok(call(sandbox, "POST", "/move-orders", EMPTY, json=by_id))
    both = {**by_id, "destination_folder_name": "New"}
    assert "exactly one" in error(call(sandbox, "POST", "/move-orders", EMPTY, json=both), 400)
    nowhere = {"order_id_list": [order["id"]], "destination_folder_name": "Archive"}
    assert "Archive" in error(call(sandbox, "POST", "/move-orders", EMPTY, json=nowhere), 400)


def test_order_items_round_trip_and_totals(sandbox: RunningSandbox) -> None:
    order = create(sandbox)
    base = f"/orders/{order['id']}/order-items"
    listed = ok(call(sandbox, "GET", base, EMPTY))
    assert listed["total_records"] == 2
    added = ok(call(sandbox, "POST", base, EMPTY, json={"name": "Extra", "price": 3}))
    assert added == {"status": "success", "message": "Order Item Added", **_timing(added)}
    items = ok(call(sandbox, "GET", base, EMPTY))["order_items"]
    new_id = items[-1]["id"]
    assert (
        ok(call(sandbox, "GET", f"/orders/{order['id']}", EMPTY))["order"]["order_total"] == 24.17
    )
    update = {"name": "Extra", "price": 3, "quantity": 2, "variation_list": {"Size": "L"}}
    assert ok(call(sandbox, "PUT", f"{base}/{new_id}", EMPTY, json=update))["message"] == (
        "Order Item Updated"
    )
    item = ok(call(sandbox, "GET", f"{base}/{new_id}", EMPTY))["order_item"]
    assert item["quantity"] == 2
    assert item["variation_list"] == {"Size": "L"}
    assert item["metadata"] == []
    deleted = ok(call(sandbox, "DELETE", f"{base}/{new_id}", EMPTY))
    assert deleted["message"] == f"Order Item {new_id} Deleted"
    assert (
        ok(call(sandbox, "GET", f"/orders/{order['id']}", EMPTY))["order"]["order_total"] == 21.17
    )
    error(call(sandbox, "GET", f"{base}/{new_id}", EMPTY), 404)
    bad = {"name": "x", "delivery_type": "teleport"}
    assert "delivery_type" in error(call(sandbox, "POST", base, EMPTY, json=bad), 400)
    error(call(sandbox, "POST", "/orders/1/order-items", EMPTY, json={"name": "x"}), 404)


def _timing(body: dict[str, Any]) -> dict[str, Any]:
    return {"execution_time": body["execution_time"]}


def test_shipments_round_trip_and_duplicate_refused(sandbox: RunningSandbox) -> None:
    order = create(sandbox)
    base = f"/orders/{order['id']}/shipments"
    shipment = {"tracking_number": "1Z999", "carrier_code": "UPS", "shipment_method": "Ground"}
    added = ok(call(sandbox, "POST", base, EMPTY, json=shipment))
    # Documented reply: no shipment in it (SHIPMENT_CREATE_REPLY_INCLUDES_RECORD).
    assert set(added) == {"status", "message", "execution_time"}
    assert added["message"] == "Shipment Added"
    stored = ok(call(sandbox, "GET", base, EMPTY))["shipments"][0]
    assert isinstance(stored["id"], str)
    assert stored["order_id"] == order["id"]
    assert stored["tracking_url"].endswith("1Z999")
    assert stored["print_status"] == "0"
    assert stored["weight"] == "0"
    assert "Shipment Not Added" in error(call(sandbox, "POST", base, EMPTY, json=shipment), 400)
    missing = {"carrier_code": "UPS"}
    assert "tracking_number" in error(call(sandbox, "POST", base, EMPTY, json=missing), 400)
    listed = ok(call(sandbox, "GET", base, EMPTY))
    assert listed["total_records"] == 1
    one = f"{base}/{stored['id']}"
    changed = {**shipment, "tracking_number": "1Z000", "cost": "7.10"}
    ok(call(sandbox, "PUT", one, EMPTY, json=changed))
    got = ok(call(sandbox, "GET", one, EMPTY))["shipment"]
    assert got["tracking_number"] == "1Z000"
    assert got["cost"] == "7.1"
    assert got["date_shipped"] == stored["date_shipped"]  # Order Desk's own, kept on PUT
    in_order = ok(call(sandbox, "GET", f"/orders/{order['id']}", EMPTY))["order"]
    assert in_order["order_shipments"][0]["id"] == stored["id"]
    deleted = ok(call(sandbox, "DELETE", one, EMPTY))
    assert deleted["message"] == f"Shipment {stored['id']} Deleted"
    error(call(sandbox, "GET", one, EMPTY), 404)


def test_batch_shipments_report_each_entry(sandbox: RunningSandbox) -> None:
    order = create(sandbox)
    body = [
        {"order_id": int(order["id"]), "tracking_number": "9400A", "carrier_code": "USPS"},
        {"order_id": "999", "tracking_number": "9400B"},
        {"order_id": order["id"], "carrier_code": "USPS"},
        "nonsense",
    ]
    reply = ok(call(sandbox, "POST", "/batch-shipments", EMPTY, json=body))
    statuses = [result["status"] for result in reply["results"]]
    assert statuses == ["success", "error", "error", "error"]
    # Only what callers are seen reading; results pair with entries by position.
    assert all(set(result) == {"status", "message"} for result in reply["results"])
    assert "not found" in reply["results"][1]["message"]
    assert reply["message"] == "1 Shipments Added"
    wrapped = {"shipments": body}
    assert "array" in error(call(sandbox, "POST", "/batch-shipments", EMPTY, json=wrapped), 400)


def test_inventory_round_trip_and_quirks(sandbox: RunningSandbox) -> None:
    new = {"name": "Blue Mug", "code": "MUG-BLUE", "price": 12.5, "stock": 4}
    created = ok(call(sandbox, "POST", "/inventory-items", EMPTY, json=new))
    # The documented reply: a message, no record and no id.
    assert set(created) == {"status", "message", "execution_time"}
    assert created["message"] == "Inventory Item Added"
    by_code = ok(call(sandbox, "GET", "/inventory-items", EMPTY, params={"code": "MUG-BLUE"}))
    item = by_code["inventory_items"][0]
    assert isinstance(item["id"], int)
    assert item["metadata"] == []
    listed = ok(call(sandbox, "GET", "/inventory-items", EMPTY))
    assert listed["total_records"] == "1"
    assert listed["records_returned"] == 1
    one = f"/inventory-items/{item['id']}"
    got = ok(call(sandbox, "GET", one, EMPTY))
    assert got["records_returned"] == 1
    assert got["inventory_item"]["code"] == "MUG-BLUE"
    # PUT replaces the record: stock left out becomes 0.
    ok(call(sandbox, "PUT", one, EMPTY, json={"name": "Blue Mug", "code": "MUG-BLUE"}))
    assert ok(call(sandbox, "GET", one, EMPTY))["inventory_item"]["stock"] == 0
    duplicate = call(sandbox, "POST", "/inventory-items", EMPTY, json=new)
    assert "MUG-BLUE" in error(duplicate, 400)
    nameless = call(sandbox, "POST", "/inventory-items", EMPTY, json={"code": "X"})
    assert "name and code" in error(nameless, 400)
    deleted = ok(call(sandbox, "DELETE", one, EMPTY))
    assert deleted["message"] == f"Inventory Item {item['id']} Deleted"
    error(call(sandbox, "GET", one, EMPTY), 404)
    error(call(sandbox, "GET", "/inventory-items/abc", EMPTY), 404)


def test_batch_inventory_is_all_or_nothing(sandbox: RunningSandbox) -> None:
    listed = ok(call(sandbox, "GET", "/inventory-items", DEMO))
    first, second = listed["inventory_items"][:2]
    body = [{**first, "stock": 500}, {**second, "stock": 600}]
    reply = ok(call(sandbox, "PUT", "/batch-inventory-items", DEMO, json=body))
    assert reply["message"] == "2 Inventory Items Updated"
    got = ok(call(sandbox, "GET", f"/inventory-items/{second['id']}", DEMO))
    assert got["inventory_item"]["stock"] == 600
    broken = [{**first, "stock": 1}, {"id": second["id"], "name": "no code"}]
    assert "[1]" in error(call(sandbox, "PUT", "/batch-inventory-items", DEMO, json=broken), 400)
    unchanged = ok(call(sandbox, "GET", f"/inventory-items/{first['id']}", DEMO))
    assert unchanged["inventory_item"]["stock"] == 500


def test_inventory_filters_only_by_code_and_is_not_paged(sandbox: RunningSandbox) -> None:
    everything = ok(call(sandbox, "GET", "/inventory-items", DEMO))
    total = int(everything["total_records"])
    assert 55 <= total <= 65
    assert everything["records_returned"] == len(everything["inventory_items"]) == total
    codes = [item["code"] for item in everything["inventory_items"][:2]]
    by_code = ok(call(sandbox, "GET", "/inventory-items", DEMO, params={"code": ",".join(codes)}))
    assert sorted(item["code"] for item in by_code["inventory_items"]) == sorted(codes)
    # search, limit and offset are only in a generated spec: ignored like unknown parameters.
    ignored = {"search": "mug", "limit": 5, "offset": 5}
    same = ok(call(sandbox, "GET", "/inventory-items", DEMO, params=ignored))
    assert same["inventory_items"] == everything["inventory_items"]
    assert same["total_records"] == str(total)


def test_shipment_date_shipped_and_partial_lines(sandbox: RunningSandbox) -> None:
    order = create(sandbox)
    base = f"/orders/{order['id']}/shipments"
    line_id = order["order_items"][0]["id"]
    body = {
        "tracking_number": "P1",
        "date_shipped": "2001-02-03",
        "order_items": [{"id": int(line_id), "quantity": 1}, {"code": "SKU", "quantity": "2"}],
    }
    ok(call(sandbox, "POST", base, EMPTY, json=body))
    stored = ok(call(sandbox, "GET", base, EMPTY))["shipments"][0]
    assert stored["date_shipped"] != "2001-02-03"  # not writable: Order Desk sets it
    assert stored["order_items"] == [{"id": line_id, "quantity": 1}, {"code": "SKU", "quantity": 2}]
    for lines, says in (
        ([{"id": "1", "quantity": 1}], "not a line of order"),
        ([{"quantity": 1}], "id (the order line's id) or a code"),
        ([{"code": "SKU", "quantity": 0}], "quantity must be 1 or more"),
        ({"code": "SKU"}, "must be an array"),
    ):
        refused = {"tracking_number": "P2", "order_items": lines}
        assert says in error(call(sandbox, "POST", base, EMPTY, json=refused), 400)


def test_batch_shipments_short_results_fault(sandbox: RunningSandbox) -> None:
    order = create(sandbox)
    sandbox.set_faults(EMPTY, short_batch_results=1)
    body = [
        {"order_id": order["id"], "tracking_number": "S1"},
        {"order_id": order["id"], "tracking_number": "S2"},
    ]
    reply = ok(call(sandbox, "POST", "/batch-shipments", EMPTY, json=body))
    assert [result["status"] for result in reply["results"]] == ["success"]
    assert reply["message"] == "2 Shipments Added"
    again = [{"order_id": order["id"], "tracking_number": "S3"}]
    assert len(ok(call(sandbox, "POST", "/batch-shipments", EMPTY, json=again))["results"]) == 1
