"""Issue 9, inventory: every inventory tool does what Order Desk will do, and says so.

Through execute_tool, a real OrderDeskClient and the real sandbox over HTTP. Upstream request
counts come from the sandbox's own per-store stats, so they are what Order Desk would serve.
"""

from __future__ import annotations

from typing import Any

import pytest
import requests
from hypothesis import given, settings
from hypothesis import strategies as st

from orderdesk_mcp.mcp.registry import StaticStoreResolver
from orderdesk_mcp.mcp.tools.inventory import MAX_URL_CHARS, code_batches
from orderdesk_mcp.orderdesk.urls import request_url
from orderdesk_mcp.sandbox import RunningSandbox
from tests import test_tools_sandbox as tools_sandbox
from tests.test_tools_sandbox import MAIN, failed, ok, writes

# test_tools_sandbox's fixtures: the demo and empty stores, a fresh cache, their resolver.
od_sandbox = tools_sandbox.od_sandbox
machinery = tools_sandbox.machinery
resolver = tools_sandbox.resolver


def stock_of(sandbox: RunningSandbox) -> dict[int, dict[str, Any]]:
    """The sandbox's own copy of the store's inventory, by id (what Order Desk holds)."""
    store = sandbox.store(MAIN.store_id)
    with store.lock:
        return {item_id: dict(item) for item_id, item in store.inventory.items()}


def served(sandbox: RunningSandbox) -> int:
    """Every request the sandbox served for the main store, reads and writes."""
    count: int = sandbox.stats(MAIN.store_id)["served"]
    return count


def served_by_endpoint(sandbox: RunningSandbox) -> dict[str, int]:
    found: dict[str, int] = sandbox.stats(MAIN.store_id)["by_endpoint"]
    return found


def bottomless_bucket(sandbox: RunningSandbox) -> None:
    """Tests that count requests should not wait on the 20-token bucket."""
    bucket = sandbox.store(MAIN.store_id).bucket
    bucket.capacity = bucket.refill_per_second = 10**9
    bucket.refill_completely()


# --- 1. changes cannot name another item ---------------------------------------------------


@pytest.mark.parametrize("field", ["id", "date_added", "date_updated"])
@pytest.mark.parametrize("tool", ["update_inventory_item", "update_inventory_items_batch"])
def test_changes_cannot_carry_read_only_fields(
    resolver: StaticStoreResolver, od_sandbox: RunningSandbox, tool: str, field: str
) -> None:
    before = stock_of(od_sandbox)
    first, second = sorted(before)[:2]
    # An id in a batch body used to write the first item's fields over the second.
    value: Any = second if field == "id" else "2020-01-01 00:00:00"
    entry = {"item_id": first, "changes": {field: value, "stock": 3}}
    batch = tool.endswith("_batch")
    text = failed(resolver, tool, {"items": [entry]} if batch else entry, "invalid_arguments")
    assert f"{'items[0].' if batch else ''}changes cannot include {field}" in text
    assert "Nothing was written" in text
    assert writes(od_sandbox) == 0
    assert stock_of(od_sandbox) == before


def test_update_writes_the_whole_merged_item_through_put(
    resolver: StaticStoreResolver, od_sandbox: RunningSandbox
) -> None:
    item_id = min(stock_of(od_sandbox))
    before = stock_of(od_sandbox)[item_id]
    done = ok(resolver, "update_inventory_item", {"item_id": item_id, "changes": {"stock": 9}})
    assert done["inventory_item"]["stock"] == 9
    after = stock_of(od_sandbox)[item_id]
    # PUT replaces the record: every other field survived because the whole item was sent.
    unchanged = {k: v for k, v in before.items() if k not in ("stock", "date_updated")}
    assert {k: after[k] for k in unchanged} == unchanged
    assert served_by_endpoint(od_sandbox).get("PUT /inventory-items/{id}") == 1


# --- 2. list_inventory_items sends only what Order Desk is known to honour ------------------


def test_the_sandbox_ignores_unevidenced_list_parameters(od_sandbox: RunningSandbox) -> None:
    everything = requests.get(
        f"{od_sandbox.base_url}/inventory-items",
        headers=od_sandbox.headers(MAIN.store_id),
        timeout=10,
    ).json()
    assert len(everything["inventory_items"]) == 60
    odd = requests.get(
        f"{od_sandbox.base_url}/inventory-items",
        params={"limit": 2, "offset": 5, "search": "no such thing"},
        headers=od_sandbox.headers(MAIN.store_id),
        timeout=10,
    ).json()
    assert odd["inventory_items"] == everything["inventory_items"]


def test_list_pages_over_what_was_fetched_once(
    resolver: StaticStoreResolver, od_sandbox: RunningSandbox
) -> None:
    seen: list[int] = []
    offset: int | None = 0
    pages = 0
    while offset is not None:
        listed = ok(resolver, "list_inventory_items", {"limit": 25, "offset": offset})
        assert listed["total_records"] == 60
        assert listed["offset"] == offset
        seen.extend(item["id"] for item in listed["inventory_items"])
        offset = listed["next_offset"]
        pages += 1
    assert pages == 3
    assert len(seen) == len(set(seen)) == 60
    # One upstream read served all three pages (the list is cached like every read).
    assert served_by_endpoint(od_sandbox) == {"GET /inventory-items": 1}
    past_the_end = ok(resolver, "list_inventory_items", {"offset": 60})
    assert past_the_end["inventory_items"] == []
    assert past_the_end["next_offset"] is None


def test_list_search_is_local_and_counted_honestly(
    resolver: StaticStoreResolver, od_sandbox: RunningSandbox
) -> None:
    everything = stock_of(od_sandbox).values()
    wanted = sorted(
        item["id"]
        for item in everything
        if any("tee" in str(item[field]).casefold() for field in ("name", "code", "location"))
    )
    assert 0 < len(wanted) < 60
    listed = ok(resolver, "list_inventory_items", {"search": "TEE", "limit": 100})
    assert sorted(item["id"] for item in listed["inventory_items"]) == wanted
    assert listed["total_records"] == len(wanted)
    assert listed["next_offset"] is None


def test_list_by_codes_counts_what_came_back(
    resolver: StaticStoreResolver, od_sandbox: RunningSandbox
) -> None:
    codes = sorted(item["code"] for item in stock_of(od_sandbox).values())[:3]
    listed = ok(resolver, "list_inventory_items", {"code": f" {codes[0]} , {codes[1]},{codes[2]}"})
    assert sorted(item["code"] for item in listed["inventory_items"]) == codes
    assert listed["total_records"] == 3
    nothing = ok(resolver, "list_inventory_items", {"code": "NO-SUCH-SKU"})
    assert (nothing["inventory_items"], nothing["total_records"]) == ([], 0)
    text = failed(resolver, "list_inventory_items", {"code": " , "}, "invalid_arguments")
    assert "code" in text


# --- 3. batch entries by item_id or code, read economically ---------------------------------


def stock_count(sandbox: RunningSandbox, by: str, how_many: int = 50) -> list[dict[str, Any]]:
    chosen = sorted(stock_of(sandbox).values(), key=lambda item: item["id"])[:how_many]
    return [
        {
            ("item_id" if by == "item_id" else "code"): item["id" if by == "item_id" else "code"],
            "changes": {"stock": 1000 + index},
        }
        for index, item in enumerate(chosen)
    ]


@pytest.mark.parametrize("by", ["code", "item_id"])
def test_a_50_item_stock_count_costs_two_requests(
    resolver: StaticStoreResolver, od_sandbox: RunningSandbox, by: str
) -> None:
    bottomless_bucket(od_sandbox)
    entries = stock_count(od_sandbox, by)
    done = ok(resolver, "update_inventory_items_batch", {"items": entries})
    assert done["updated"] == 50
    # One read of every entry, one write: before issue 9 this was 50 GETs and one PUT.
    assert served(od_sandbox) == 2
    assert served_by_endpoint(od_sandbox) == {
        "GET /inventory-items": 1,
        "PUT /batch-inventory-items": 1,
    }
    after = sorted(stock_of(od_sandbox).values(), key=lambda item: item["id"])
    assert [item["stock"] for item in after[:50]] == [1000 + index for index in range(50)]


def test_a_few_entries_by_item_id_read_each_item(
    resolver: StaticStoreResolver, od_sandbox: RunningSandbox
) -> None:
    entries = stock_count(od_sandbox, "item_id", how_many=2)
    ok(resolver, "update_inventory_items_batch", {"items": entries})
    assert served_by_endpoint(od_sandbox) == {
        "GET /inventory-items/{id}": 2,
        "PUT /batch-inventory-items": 1,
    }


def test_mixed_entries_and_their_results(
    resolver: StaticStoreResolver, od_sandbox: RunningSandbox
) -> None:
    first, second = sorted(stock_of(od_sandbox).values(), key=lambda item: item["id"])[:2]
    entries = [
        {"code": second["code"], "changes": {"stock": 4}},
        {"item_id": str(first["id"]), "changes": {"price": 1.5}},
    ]
    done = ok(resolver, "update_inventory_items_batch", {"items": entries})
    assert [item["id"] for item in done["inventory_items"]] == [second["id"], first["id"]]
    # What was sent, not a re-read: Order Desk's batch reply has no records and no new stamp.
    assert all("date_updated" not in item for item in done["inventory_items"])
    now = stock_of(od_sandbox)
    assert (now[second["id"]]["stock"], now[first["id"]]["price"]) == (4, 1.5)
    assert now[first["id"]]["stock"] == first["stock"]


def test_unknown_codes_and_ids_are_named_and_nothing_is_written(
    resolver: StaticStoreResolver, od_sandbox: RunningSandbox
) -> None:
    before = stock_of(od_sandbox)
    known = min(before)
    entries = [
        {"item_id": known, "changes": {"stock": 1}},
        {"code": "NO-SUCH-SKU", "changes": {"stock": 1}},
        {"item_id": 999999, "changes": {"stock": 1}},
    ]
    text = failed(resolver, "update_inventory_items_batch", {"items": entries}, "invalid_arguments")
    assert "'NO-SUCH-SKU'" in text
    assert "999999" in text
    assert "items[1]" in text
    assert "items[2]" in text
    assert "Nothing was written" in text
    assert writes(od_sandbox) == 0
    assert stock_of(od_sandbox) == before


def test_a_code_held_by_several_items_is_refused(
    resolver: StaticStoreResolver, od_sandbox: RunningSandbox
) -> None:
    # Order Desk's docs do not say codes are unique; plant a twin the way a CSV import might.
    store = od_sandbox.store(MAIN.store_id)
    with store.lock:
        original = store.inventory[min(store.inventory)]
        twin_id = store.next_inventory_id
        store.inventory[twin_id] = {**original, "id": twin_id}
        store.next_inventory_id += 1
    entry = {"code": original["code"], "changes": {"stock": 1}}
    text = failed(resolver, "update_inventory_items_batch", {"items": [entry]}, "invalid_arguments")
    assert str(original["id"]) in text
    assert str(twin_id) in text
    assert "item_id" in text
    assert writes(od_sandbox) == 0


@pytest.mark.parametrize(
    ("entry", "said"),
    [
        ({"changes": {"stock": 1}}, "neither"),
        ({"item_id": 2001, "code": "TEE-S", "changes": {"stock": 1}}, "both"),
        ({"code": "A,B", "changes": {"stock": 1}}, "comma"),
    ],
)
def test_each_entry_names_its_item_exactly_once(
    resolver: StaticStoreResolver, od_sandbox: RunningSandbox, entry: dict[str, Any], said: str
) -> None:
    text = failed(resolver, "update_inventory_items_batch", {"items": [entry]}, "invalid_arguments")
    assert said in text
    assert served(od_sandbox) == 0


def test_two_entries_for_one_item_are_refused(
    resolver: StaticStoreResolver, od_sandbox: RunningSandbox
) -> None:
    item = stock_of(od_sandbox)[min(stock_of(od_sandbox))]
    entries = [
        {"item_id": item["id"], "changes": {"stock": 1}},
        {"code": item["code"], "changes": {"stock": 2}},
    ]
    text = failed(resolver, "update_inventory_items_batch", {"items": entries}, "invalid_arguments")
    assert "items[0]" in text
    assert "items[1]" in text
    assert str(item["id"]) in text
    assert writes(od_sandbox) == 0


def test_long_codes_are_read_in_several_urls_under_the_limit(
    resolver: StaticStoreResolver, od_sandbox: RunningSandbox
) -> None:
    bottomless_bucket(od_sandbox)
    store = od_sandbox.store(MAIN.store_id)
    codes = [f"LONG-{index:02d}-" + "X" * 80 for index in range(50)]
    with store.lock:
        for code in codes:
            new_id = store.next_inventory_id
            store.inventory[new_id] = {**store.inventory[2001], "id": new_id, "code": code}
            store.next_inventory_id += 1
    entries = [{"code": code, "changes": {"stock": 7}} for code in codes]
    assert ok(resolver, "update_inventory_items_batch", {"items": entries})["updated"] == 50
    reads = served_by_endpoint(od_sandbox)["GET /inventory-items"]
    assert 2 <= reads <= 4  # ~4,300 characters of codes, at most ~2,000 per URL
    assert all(
        item["stock"] == 7 for item in stock_of(od_sandbox).values() if item["code"] in codes
    )


@settings(max_examples=200, deadline=None)
@given(
    codes=st.lists(
        st.text(
            st.characters(blacklist_characters=",", blacklist_categories=["Cs"]),
            min_size=1,
            max_size=200,
        ),
        min_size=1,
        max_size=60,
    )
)
def test_code_batches_keep_every_url_short_and_every_code(codes: list[str]) -> None:
    base = "https://app.orderdesk.me/api/v2"
    batches = code_batches(base, codes)
    assert [code for batch in batches for code in batch] == codes
    for batch in batches:
        assert batch
        url = request_url(base, "/inventory-items", {"code": ",".join(batch)})
        # Only a code too long to share a URL may stand alone past the limit.
        assert len(url) <= MAX_URL_CHARS or len(batch) == 1


# --- 4. expected_date_updated -----------------------------------------------------------------


def test_update_refuses_a_stale_read_and_shows_the_current_values(
    resolver: StaticStoreResolver, od_sandbox: RunningSandbox
) -> None:
    item = stock_of(od_sandbox)[min(stock_of(od_sandbox))]
    arguments = {
        "item_id": item["id"],
        "changes": {"stock": 3},
        "expected_date_updated": "2001-01-01 00:00:00",
    }
    text = failed(resolver, "update_inventory_item", arguments, "conflict")
    assert item["date_updated"] in text
    assert f'"stock": {item["stock"]}' in text
    assert writes(od_sandbox) == 0
    fresh = {**arguments, "expected_date_updated": item["date_updated"]}
    assert ok(resolver, "update_inventory_item", fresh)["inventory_item"]["stock"] == 3


def test_batch_checks_every_stamp_before_writing_any(
    resolver: StaticStoreResolver, od_sandbox: RunningSandbox
) -> None:
    before = stock_of(od_sandbox)
    first, second = (before[item_id] for item_id in sorted(before)[:2])
    entries = [
        {
            "item_id": first["id"],
            "changes": {"stock": 1},
            "expected_date_updated": first["date_updated"],
        },
        {
            "code": second["code"],
            "changes": {"price": 2},
            "expected_date_updated": "2001-01-01 00:00:00",
        },
    ]
    text = failed(resolver, "update_inventory_items_batch", {"items": entries}, "conflict")
    assert "items[1]" in text
    assert second["date_updated"] in text
    assert f'"price": {second["price"]}' in text
    assert "items[0]" not in text
    assert writes(od_sandbox) == 0
    assert stock_of(od_sandbox) == before
    entries[1]["expected_date_updated"] = second["date_updated"]
    assert ok(resolver, "update_inventory_items_batch", {"items": entries})["updated"] == 2


# --- 5. create's documented reply carries no record ------------------------------------------


def test_create_finds_the_new_item_by_its_code(
    resolver: StaticStoreResolver, od_sandbox: RunningSandbox
) -> None:
    raw = requests.post(
        f"{od_sandbox.base_url}/inventory-items",
        json={"name": "Raw", "code": "RAW-1"},
        headers=od_sandbox.headers(MAIN.store_id),
        timeout=10,
    ).json()
    assert set(raw) == {"status", "message", "execution_time"}
    od_sandbox.reset_stats()
    made = ok(
        resolver,
        "create_inventory_item",
        {"item": {"name": "Badge", "code": "BADGE-1", "stock": 3}},
    )
    assert made["inventory_item"]["code"] == "BADGE-1"
    assert made["inventory_item"]["id"] in stock_of(od_sandbox)
    assert made["message"] == "Inventory Item Added"
    # The reply had no record, so the item was looked up by its code.
    assert served_by_endpoint(od_sandbox) == {
        "POST /inventory-items": 1,
        "GET /inventory-items": 1,
    }
