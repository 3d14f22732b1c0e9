"""Every tool through execute_tool, a real OrderDeskClient and the real sandbox over HTTP."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from orderdesk_mcp.mcp.registry import (
    StaticStoreResolver,
    StoreRef,
    ToolOutcome,
    execute_tool,
    find_tool,
)
from orderdesk_mcp.mcp.results import MAX_RESULT_CHARS
from orderdesk_mcp.mcp.tools import orders as orders_module
from orderdesk_mcp.orderdesk import OrderDeskClient, RetryPolicy, UpstreamMachinery
from orderdesk_mcp.sandbox import RunningSandbox, SandboxStoreSpec, start_sandbox

MAIN = StoreRef(alias="main", store_id="100001", is_default=True)
EMPTY = StoreRef(alias="empty", store_id="100002", is_default=False)
KEYS = {"100001": "sandbox-key-main", "100002": "sandbox-key-empty"}
# Tiny waits so fault tests stay fast; the sandbox is on loopback.
FAST_RETRY = RetryPolicy(
    max_retries=1, backoff_base=0.01, backoff_cap=0.02, max_429_retries=0, max_rate_limit_wait=5
)


def start_test_sandbox() -> RunningSandbox:
    return start_sandbox(
        [
            SandboxStoreSpec(MAIN.store_id, KEYS[MAIN.store_id], seed="demo"),
            SandboxStoreSpec(EMPTY.store_id, KEYS[EMPTY.store_id], seed="empty"),
        ],
        threads=4,
    )


def make_resolver(
    sandbox: RunningSandbox, machinery: UpstreamMachinery, keys: dict[str, str] | None = None
) -> StaticStoreResolver:
    """The two sandbox stores as one tenant's stores, `main` being the default."""
    chosen = keys or KEYS
    return StaticStoreResolver(
        [
            (ref, OrderDeskClient(ref.store_id, chosen[ref.store_id], sandbox.base_url, machinery))
            for ref in (MAIN, EMPTY)
        ]
    )


@pytest.fixture
def od_sandbox() -> Iterator[RunningSandbox]:
    with start_test_sandbox() as running:
        yield running


@pytest.fixture
def machinery(tmp_path: Path) -> Iterator[UpstreamMachinery]:
    upstream = UpstreamMachinery(tmp_path / "http-cache.sqlite", retry=FAST_RETRY)
    yield upstream
    upstream.close()


@pytest.fixture
def resolver(od_sandbox: RunningSandbox, machinery: UpstreamMachinery) -> StaticStoreResolver:
    return make_resolver(od_sandbox, machinery)


def run(resolver: StaticStoreResolver, name: str, arguments: Any = None) -> ToolOutcome:
    tool = find_tool(name)
    assert tool is not None
    return execute_tool(tool, arguments, resolver)


def ok(resolver: StaticStoreResolver, name: str, arguments: Any = None) -> dict[str, Any]:
    """Call a tool that must succeed; check the result against the MCP contract."""
    outcome = run(resolver, name, arguments)
    result = outcome.result
    assert result["isError"] is False, result["content"][0]["text"]
    assert outcome.outcome == "ok"
    structured: dict[str, Any] = result["structuredContent"]
    tool = find_tool(name)
    assert tool is not None
    errors = list(Draft202012Validator(tool.output_schema).iter_errors(structured))
    assert not errors, errors[0].message
    assert json.loads(result["content"][0]["text"]) == structured
    assert len(result["content"][0]["text"]) <= MAX_RESULT_CHARS
    return structured


def failed(resolver: StaticStoreResolver, name: str, arguments: Any, outcome: str) -> str:
    done = run(resolver, name, arguments)
    assert done.result["isError"] is True
    assert done.outcome == outcome, done.result["content"][0]["text"]
    assert "structuredContent" not in done.result
    text: str = done.result["content"][0]["text"]
    return text


def writes(sandbox: RunningSandbox, store_id: str = MAIN.store_id) -> int:
    """How many writes the sandbox served for a store."""
    served = sandbox.stats(store_id)["by_endpoint"]
    return sum(count for endpoint, count in served.items() if not endpoint.startswith("GET "))


def folder_ids(resolver: StaticStoreResolver) -> dict[str, int]:
    found = ok(resolver, "get_store")["store"]["folders"]
    return {folder["name"]: folder["id"] for folder in found}


def first_order(resolver: StaticStoreResolver, **filters: Any) -> dict[str, Any]:
    found = ok(resolver, "list_orders", {"limit": 1, **filters})["orders"]
    assert found
    order: dict[str, Any] = found[0]
    return order


# --- store -------------------------------------------------------------------------------


def test_list_stores_needs_no_upstream(resolver: StaticStoreResolver) -> None:
    listed = ok(resolver, "list_stores")
    assert listed["stores"] == [
        {"alias": "main", "store_id": "100001", "is_default": True},
        {"alias": "empty", "store_id": "100002", "is_default": False},
    ]
    assert ok(resolver, "list_stores", {"store": "100002"})["stores"][0]["alias"] == "empty"
    assert "main (100001)" in failed(resolver, "list_stores", {"store": "x"}, "store_not_found")


def test_get_store_lists_folders_and_no_secrets(
    resolver: StaticStoreResolver, od_sandbox: RunningSandbox
) -> None:
    found = ok(resolver, "get_store")
    assert found["alias"] == "main"
    assert found["store"]["id"] == "100001"
    names = [folder["name"] for folder in found["store"]["folders"]]
    assert names[:2] == ["New", "Prepared"]
    assert all(isinstance(folder["id"], int) for folder in found["store"]["folders"])
    text = json.dumps(found).lower()
    assert KEYS["100001"] not in text
    assert "api_key" not in text
    assert ok(resolver, "get_store", {"store": "empty"})["store"]["id"] == "100002"


def test_test_connection(resolver: StaticStoreResolver) -> None:
    checked = ok(resolver, "test_connection", {"store": "empty"})
    assert checked["ok"] is True
    assert checked["store_id"] == "100002"
    assert checked["message"] == "Connection Successful"


# --- orders ------------------------------------------------------------------------------


def test_list_orders_pages_with_next_offset(resolver: StaticStoreResolver) -> None:
    first = ok(resolver, "list_orders")
    assert len(first["orders"]) == 20
    assert first["total_records"] == 300
    assert first["next_offset"] == 20
    last = ok(resolver, "list_orders", {"offset": 290, "limit": 50})
    assert len(last["orders"]) == 10
    assert last["next_offset"] is None
    empty = ok(resolver, "list_orders", {"store": "empty"})
    assert empty == {"orders": [], "total_records": 0, "offset": 0, "next_offset": None}


def test_list_orders_filters_map_to_order_desk(resolver: StaticStoreResolver) -> None:
    folders = folder_ids(resolver)
    by_name = ok(resolver, "list_orders", {"folder": "Prepared", "limit": 100})
    assert by_name["orders"]
    assert {order["folder_id"] for order in by_name["orders"]} == {folders["Prepared"]}
    by_id = ok(resolver, "list_orders", {"folder": str(folders["Prepared"]), "limit": 100})
    assert by_id["total_records"] == by_name["total_records"]
    wanted = first_order(resolver, folder="Closed")
    by_cart = ok(resolver, "list_orders", {"source_id": wanted["source_id"]})
    assert [order["id"] for order in by_cart["orders"]] == [wanted["id"]]
    day = wanted["date_added"][:10]
    # date_added is UTC; a bare date would be the store's local day (see the fidelity tests).
    utc_day = {"added_from": f"{day}T00:00:00Z", "added_to": f"{day}T23:59:59Z"}
    on_day = ok(resolver, "list_orders", {**utc_day, "limit": 100})
    assert on_day["orders"]
    assert all(order["date_added"].startswith(day) for order in on_day["orders"])
    oldest = ok(resolver, "list_orders", {"order": "asc", "order_by": "date_added", "limit": 2})
    assert oldest["orders"][0]["date_added"] <= oldest["orders"][1]["date_added"]
    history = ok(resolver, "list_orders", {"include_history": True, "limit": 1})
    assert isinstance(history["orders"][0]["order_history"], list)


def test_unknown_folder_lists_the_folders(resolver: StaticStoreResolver) -> None:
    text = failed(resolver, "list_orders", {"folder": "Shipped"}, "invalid_arguments")
    assert "No folder 'Shipped'" in text
    assert "New (id " in text
    assert "Canceled" in text
    assert ok(resolver, "list_orders", {"folder": "new", "limit": 1})["orders"]


def test_fields_project_each_record(resolver: StaticStoreResolver) -> None:
    listed = ok(resolver, "list_orders", {"limit": 3, "fields": ["email", "shipping.city"]})
    for order in listed["orders"]:
        assert set(order) == {"id", "email", "shipping"}
        assert set(order["shipping"]) == {"city"}
    one = ok(resolver, "get_order", {"order_id": listed["orders"][0]["id"], "fields": ["nope"]})
    assert one["order"] == {"id": listed["orders"][0]["id"]}


def test_get_order_and_unknown_ids(resolver: StaticStoreResolver) -> None:
    wanted = first_order(resolver)
    found = ok(resolver, "get_order", {"order_id": int(wanted["id"])})["order"]
    assert found["id"] == wanted["id"]
    assert isinstance(found["checkout_data"], dict)
    text = failed(resolver, "get_order", {"order_id": "999"}, "not_found")
    assert "list_orders(source_id=...)" in text
    assert "'main' (Order Desk store 100001)" in text


def test_big_results_are_cut_with_a_marker(resolver: StaticStoreResolver) -> None:
    bounded = ok(resolver, "list_orders", {"limit": 100})
    marker = bounded["truncated"]
    kept = len(bounded["orders"])
    assert 0 < kept < 100
    assert bounded["next_offset"] == kept
    assert marker["cuts"] == [{"path": "orders", "kind": "list", "kept": kept, "total": 100}]
    assert "next_offset" in marker["message"]
    assert "fields" in marker["message"]
    slim = ok(resolver, "list_orders", {"limit": 100, "fields": ["order_total"]})
    assert "truncated" not in slim
    assert len(slim["orders"]) == 100


def test_summarize_orders_counts_everything(resolver: StaticStoreResolver) -> None:
    summary = ok(resolver, "summarize_orders")
    assert summary["complete"] is True
    assert summary["orders_counted"] == summary["total_records"] == 300
    assert sum(bucket["orders"] for bucket in summary["by_folder"]) == 300
    assert {bucket["folder_name"] for bucket in summary["by_folder"]} >= {"New", "Closed"}
    assert sum(bucket["orders"] for bucket in summary["by_source"]) == 300
    by_source = sum(bucket["order_total"] for bucket in summary["by_source"])
    assert by_source == pytest.approx(summary["order_total"], abs=0.05)
    new = ok(resolver, "summarize_orders", {"folder": "New"})
    assert [bucket["folder_name"] for bucket in new["by_folder"]] == ["New"]


def test_summarize_orders_says_when_it_stopped_early(
    resolver: StaticStoreResolver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(orders_module, "SUMMARY_MAX_PAGES", 2)
    summary = ok(resolver, "summarize_orders")
    assert summary["complete"] is False
    assert summary["orders_counted"] == 200
    assert "Stopped after 200 of 300" in summary["note"]


def test_create_order_and_refused_duplicate(resolver: StaticStoreResolver) -> None:
    order = {
        "source_id": "TEST-1",
        "source_name": "Tests",
        "email": "pat@example.com",
        "shipping": {"first_name": "Pat", "last_name": "Lee", "city": "Boise", "country": "US"},
        "order_items": [{"name": "Mug", "code": "MUG-BLACK", "price": 18.5, "quantity": 2}],
    }
    created = ok(resolver, "create_order", {"order": order, "store": "empty"})["order"]
    assert created["id"]
    assert created["order_total"] == pytest.approx(37.0)
    again = ok(resolver, "get_order", {"order_id": created["id"], "store": "empty"})
    assert again["order"]["email"] == "pat@example.com"
    text = failed(resolver, "create_order", {"order": order, "store": "empty"}, "invalid_request")
    assert "Order Desk refused create_order" in text
    missing = failed(resolver, "create_order", {"order": {"email": "x"}}, "invalid_arguments")
    assert "order_items: required in order" in missing


def test_update_order_dry_run_then_for_real(
    resolver: StaticStoreResolver, od_sandbox: RunningSandbox
) -> None:
    order_id = first_order(resolver)["id"]
    change = {"order_id": order_id, "changes": {"shipping": {"address1": "1 New Rd"}}}
    before = writes(od_sandbox)
    preview = ok(resolver, "update_order", {**change, "dry_run": True})
    assert preview["dry_run"] is True
    merged = preview["would"]["order"]
    assert merged["shipping"]["address1"] == "1 New Rd"
    assert merged["shipping"]["city"]  # the rest of the address is kept
    assert writes(od_sandbox) == before
    done = ok(resolver, "update_order", change)
    assert done["dry_run"] is False
    assert writes(od_sandbox) == before + 1
    stored = ok(resolver, "get_order", {"order_id": order_id})["order"]
    assert stored["shipping"]["address1"] == "1 New Rd"
    assert stored["shipping"]["city"] == merged["shipping"]["city"]
    text = failed(
        resolver,
        "update_order",
        {"order_id": order_id, "changes": {"folder_id": 1}},
        "invalid_arguments",
    )
    assert "move_orders" in text


def test_delete_order_dry_run_then_for_real(
    resolver: StaticStoreResolver, od_sandbox: RunningSandbox
) -> None:
    order_id = first_order(resolver)["id"]
    preview = ok(resolver, "delete_order", {"order_id": order_id, "dry_run": True})
    assert preview["would"] == {"action": "delete", "order": preview["would"]["order"]}
    assert preview["would"]["order"]["id"] == order_id
    assert writes(od_sandbox) == 0
    done = ok(resolver, "delete_order", {"order_id": order_id})
    assert done["deleted"] is True
    assert done["order_id"] == order_id
    failed(resolver, "get_order", {"order_id": order_id}, "not_found")


def test_move_orders_by_folder_name(resolver: StaticStoreResolver) -> None:
    folders = folder_ids(resolver)
    listed = ok(resolver, "list_orders", {"folder": "New", "limit": 2, "fields": ["folder_id"]})
    ids = [order["id"] for order in listed["orders"]]
    moved = ok(resolver, "move_orders", {"order_ids": ids, "folder": "Prepared"})
    assert moved["folder"] == {"id": folders["Prepared"], "name": "Prepared"}
    assert moved["moved"] == 2
    for order_id in ids:
        order = ok(resolver, "get_order", {"order_id": order_id, "fields": ["folder_id"]})
        assert order["order"]["folder_id"] == folders["Prepared"]
    text = failed(resolver, "move_orders", {"order_ids": ids, "folder": 12}, "invalid_arguments")
    assert "No folder '12'" in text


def test_add_order_note(resolver: StaticStoreResolver) -> None:
    order_id = first_order(resolver)["id"]
    added = ok(
        resolver,
        "add_order_note",
        {"order_id": order_id, "note": "Called customer", "source_name": "Agent"},
    )
    assert added["order_id"] == order_id
    assert any(entry["note"] == "Called customer" for entry in added["order_history"])
    too_long = failed(
        resolver, "add_order_note", {"order_id": order_id, "note": "x" * 1801}, "invalid_arguments"
    )
    assert "note" in too_long


# --- items -------------------------------------------------------------------------------


def test_order_items_round_trip(resolver: StaticStoreResolver, od_sandbox: RunningSandbox) -> None:
    order_id = first_order(resolver)["id"]
    listed = ok(resolver, "list_order_items", {"order_id": order_id})
    assert listed["order_items"]
    assert listed["total_records"] == len(listed["order_items"])
    first_line = listed["order_items"][0]
    got = ok(resolver, "get_order_item", {"order_id": order_id, "item_id": first_line["id"]})
    assert got["order_item"] == first_line
    paged = ok(resolver, "list_order_items", {"order_id": order_id, "limit": 1, "fields": ["code"]})
    assert paged["order_items"] == [{"id": first_line["id"], "code": first_line["code"]}]

    added = ok(
        resolver,
        "add_order_item",
        {"order_id": order_id, "item": {"name": "Gift wrap", "code": "WRAP", "price": 3}},
    )["order_item"]
    assert added["code"] == "WRAP"
    item = {"order_id": order_id, "item_id": added["id"]}

    before = writes(od_sandbox)
    preview = ok(
        resolver, "update_order_item", {**item, "changes": {"quantity": 3}, "dry_run": True}
    )
    assert preview["would"]["order_item"]["quantity"] == 3
    assert preview["would"]["order_item"]["name"] == "Gift wrap"
    gone = ok(resolver, "delete_order_item", {**item, "dry_run": True})
    assert gone["would"]["order_item"]["id"] == added["id"]
    assert writes(od_sandbox) == before

    updated = ok(resolver, "update_order_item", {**item, "changes": {"quantity": 3}})
    assert updated["order_item"]["quantity"] == 3
    assert updated["order_item"]["name"] == "Gift wrap"
    assert ok(resolver, "delete_order_item", item)["deleted"] is True
    failed(resolver, "get_order_item", item, "not_found")


# --- shipments ---------------------------------------------------------------------------


def test_shipments_round_trip(resolver: StaticStoreResolver, od_sandbox: RunningSandbox) -> None:
    order_id = first_order(resolver, folder="New")["id"]
    assert ok(resolver, "list_shipments", {"order_id": order_id})["shipments"] == []
    added = ok(
        resolver,
        "add_shipment",
        {"order_id": order_id, "tracking_number": "1Z0001", "carrier_code": "UPS"},
    )["shipment"]
    assert added["tracking_number"] == "1Z0001"
    shipment = {"order_id": order_id, "shipment_id": added["id"]}
    assert ok(resolver, "get_shipment", shipment)["shipment"]["carrier_code"] == "UPS"
    text = failed(
        resolver,
        "add_shipment",
        {"order_id": order_id, "tracking_number": "1Z0001", "carrier_code": "UPS"},
        "invalid_request",
    )
    assert "Shipment Not Added" in text

    before = writes(od_sandbox)
    preview = ok(
        resolver,
        "update_shipment",
        {**shipment, "changes": {"carrier_code": "FedEx"}, "dry_run": True},
    )
    assert preview["would"]["shipment"]["carrier_code"] == "FedEx"
    assert preview["would"]["shipment"]["tracking_number"] == "1Z0001"
    assert ok(resolver, "delete_shipment", {**shipment, "dry_run": True})["would"]["shipment"]
    assert writes(od_sandbox) == before

    updated = ok(resolver, "update_shipment", {**shipment, "changes": {"carrier_code": "FedEx"}})
    assert updated["shipment"]["carrier_code"] == "FedEx"
    assert updated["shipment"]["tracking_number"] == "1Z0001"
    assert ok(resolver, "delete_shipment", shipment)["deleted"] is True
    assert ok(resolver, "list_shipments", {"order_id": order_id})["shipments"] == []


def test_add_shipments_batch_reports_each_entry(resolver: StaticStoreResolver) -> None:
    listed = ok(resolver, "list_orders", {"folder": "New", "limit": 2, "fields": ["id"]})
    ids = [order["id"] for order in listed["orders"]]
    batch = [
        {"order_id": ids[0], "tracking_number": "9400A", "carrier_code": "USPS"},
        {"order_id": int(ids[1]), "tracking_number": "9400B"},
    ]
    done = ok(resolver, "add_shipments_batch", {"shipments": batch})
    assert done["succeeded"] == 2
    assert done["failed"] == 0
    assert len(done["results"]) == 2
    shipped = ok(resolver, "list_shipments", {"order_id": ids[1]})["shipments"]
    assert [shipment["tracking_number"] for shipment in shipped] == ["9400B"]
    again = ok(resolver, "add_shipments_batch", {"shipments": batch[:1]})
    assert (again["succeeded"], again["failed"]) == (0, 1)
    assert again["failures"][0]["position"] == 0
    assert "Shipment Not Added" in again["failures"][0]["message"]


# --- inventory ---------------------------------------------------------------------------


def test_inventory_round_trip(resolver: StaticStoreResolver, od_sandbox: RunningSandbox) -> None:
    listed = ok(resolver, "list_inventory_items", {"limit": 5})
    assert listed["total_records"] == 60  # a string from Order Desk, an int for the model
    assert listed["next_offset"] == 5
    first = listed["inventory_items"][0]
    by_code = ok(resolver, "list_inventory_items", {"code": first["code"]})
    assert [item["id"] for item in by_code["inventory_items"]] == [first["id"]]
    assert ok(resolver, "get_inventory_item", {"item_id": first["id"]})["inventory_item"] == first

    created = ok(
        resolver,
        "create_inventory_item",
        {"item": {"name": "Sticker", "code": "STICK-1", "price": 2.5, "stock": 40}},
    )["inventory_item"]
    assert created["code"] == "STICK-1"
    item_id = created["id"]

    before = writes(od_sandbox)
    preview = ok(
        resolver,
        "update_inventory_item",
        {"item_id": item_id, "changes": {"stock": 7}, "dry_run": True},
    )
    assert preview["would"]["inventory_item"]["stock"] == 7
    batch = {"items": [{"item_id": item_id, "changes": {"price": 3}}], "dry_run": True}
    assert (
        ok(resolver, "update_inventory_items_batch", batch)["would"]["inventory_items"][0]["price"]
        == 3
    )
    assert ok(resolver, "delete_inventory_item", {"item_id": item_id, "dry_run": True})["would"]
    assert writes(od_sandbox) == before

    updated = ok(resolver, "update_inventory_item", {"item_id": item_id, "changes": {"stock": 7}})
    assert updated["inventory_item"]["stock"] == 7
    assert updated["inventory_item"]["code"] == "STICK-1"
    both = {
        "items": [
            {"item_id": item_id, "changes": {"price": 3}},
            {"item_id": first["id"], "changes": {"stock": 1}},
        ]
    }
    assert ok(resolver, "update_inventory_items_batch", both)["updated"] == 2
    again = ok(resolver, "get_inventory_item", {"item_id": item_id})["inventory_item"]
    assert (again["price"], again["stock"], again["name"]) == (3, 7, "Sticker")
    assert (
        ok(resolver, "get_inventory_item", {"item_id": first["id"]})["inventory_item"]["stock"] == 1
    )
    assert ok(resolver, "delete_inventory_item", {"item_id": item_id})["deleted"] is True
    text = failed(resolver, "get_inventory_item", {"item_id": item_id}, "not_found")
    assert "list_inventory_items(code=...)" in text


# --- upstream failures become actionable tool errors -------------------------------------


def test_bad_stored_credentials_say_which_command_fixes_them(
    od_sandbox: RunningSandbox, machinery: UpstreamMachinery
) -> None:
    wrong = make_resolver(od_sandbox, machinery, {"100001": "wrong-key-1", "100002": "wrong-key-2"})
    text = failed(wrong, "test_connection", {}, "auth_error")
    assert "orderdesk-mcp store verify" in text
    assert "wrong-key-1" not in text


def test_rate_limited_says_how_long_to_wait(
    resolver: StaticStoreResolver, od_sandbox: RunningSandbox
) -> None:
    od_sandbox.set_faults(MAIN.store_id, force_429=5)
    text = failed(resolver, "get_store", {}, "rate_limited")
    assert "wait" in text
    assert "seconds" in text


def test_unavailable_upstream_on_a_write_warns_it_may_have_happened(
    resolver: StaticStoreResolver, od_sandbox: RunningSandbox
) -> None:
    # Listed with history so the order is not cached from the page (get_order must go out).
    order_id = first_order(resolver, include_history=True)["id"]
    od_sandbox.set_faults(MAIN.store_id, error_rate=1.0)
    read = failed(resolver, "get_order", {"order_id": order_id}, "upstream_unavailable")
    assert "nothing was changed" in read
    note = {"order_id": order_id, "note": "hello"}
    write = failed(resolver, "add_order_note", note, "upstream_unavailable")
    assert "may or may not have happened" in write
