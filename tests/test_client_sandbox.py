"""The client against the real sandbox over HTTP on a loopback port: every endpoint, errors,
patch merging and conflicts, the rate limit, the cache, faults and coalescing."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from orderdesk_mcp.orderdesk import (
    AuthError,
    Conflict,
    InvalidRequest,
    NotFound,
    OrderDeskClient,
    RateLimited,
    RetryPolicy,
    UpstreamCall,
    UpstreamMachinery,
    UpstreamUnavailable,
)
from orderdesk_mcp.sandbox import RunningSandbox, max_window_excess
from tests.conftest import SANDBOX_DEMO_STORE, SANDBOX_EMPTY_STORE

DEMO = SANDBOX_DEMO_STORE
EMPTY = SANDBOX_EMPTY_STORE
FAST_RETRIES = RetryPolicy(max_retries=6, backoff_base=0.01, backoff_cap=0.02)


class Calls(list[UpstreamCall]):
    """The observer: every UpstreamCall the machinery reported, in order."""

    def __call__(self, call: UpstreamCall) -> None:
        self.append(call)


@pytest.fixture
def calls() -> Calls:
    return Calls()


@pytest.fixture
def machinery(tmp_path: Path, calls: Calls) -> Iterator[UpstreamMachinery]:
    with UpstreamMachinery(
        tmp_path / "http-cache.sqlite",
        connect_timeout=2.0,
        read_timeout=5.0,
        retry=FAST_RETRIES,
        observer=calls,
    ) as shared:
        yield shared


@pytest.fixture
def demo(
    sandbox: RunningSandbox, sandbox_keys: dict[str, str], machinery: UpstreamMachinery
) -> OrderDeskClient:
    return OrderDeskClient(DEMO, sandbox_keys[DEMO], sandbox.base_url, machinery)


@pytest.fixture
def empty(
    sandbox: RunningSandbox, sandbox_keys: dict[str, str], machinery: UpstreamMachinery
) -> OrderDeskClient:
    return OrderDeskClient(EMPTY, sandbox_keys[EMPTY], sandbox.base_url, machinery)


def served(sandbox: RunningSandbox, endpoint: str, store: str = DEMO) -> int:
    count: int = sandbox.stats(store)["by_endpoint"].get(endpoint, 0)
    return count


def new_order(source_id: str = "T-1") -> dict[str, Any]:
    return {
        "source_id": source_id,
        "source_name": "Test Cart",
        "email": "ann@example.com",
        "shipping": {"first_name": "Ann", "last_name": "Lee", "city": "Oslo", "address2": "Flat 2"},
        "order_items": [{"name": "Mug", "code": "MUG", "price": 10, "quantity": 2}],
    }


def some_order_id(client: OrderDeskClient) -> str:
    # A history page caches no orders, so the order's first read still reaches Order Desk.
    order_id: str = client.list_orders(limit=1, get_order_history=True, offset=5)["orders"][0]["id"]
    return order_id


# --- every endpoint ---------------------------------------------------------------------------


def test_store_and_connection(demo: OrderDeskClient) -> None:
    assert demo.test_connection()["message"] == "Connection Successful"
    store = demo.get_store()["store"]
    assert store["id"] == DEMO
    assert sorted(store["folders"].values()) == ["Canceled", "Closed", "New", "Prepared"]
    assert all(isinstance(folder_id, str) for folder_id in store["folders"])
    assert "api_key" not in store["settings"]


def test_order_round_trip(demo: OrderDeskClient) -> None:
    created = demo.create_order(new_order())["order"]
    order_id = created["id"]
    assert isinstance(order_id, str)
    assert isinstance(created["folder_id"], int)
    assert created["order_total"] == 20
    assert demo.get_order(int(order_id))["order"]["source_id"] == "T-1"
    found = demo.list_orders(source_id="T-1", source_name="Test Cart")
    assert found["total_records"] == 1
    assert isinstance(found["total_records"], int)

    whole = demo.get_order(order_id)["order"]
    whole["email"] = "bo@example.com"
    assert demo.put_order(order_id, whole)["order"]["email"] == "bo@example.com"

    history = demo.add_order_history(order_id, "Called the customer", source_name="Tests")
    assert history["order"]["order_history"][-1]["note"] == "Called the customer"

    folders = demo.get_store()["store"]["folders"]
    prepared = next(fid for fid, name in folders.items() if name == "Prepared")
    moved = demo.move_orders([order_id], folder_name="Prepared")
    assert moved["results"][0]["order_id"] in (order_id, int(order_id))
    assert demo.get_order(order_id)["order"]["folder_id"] == int(prepared)
    demo.move_orders([int(order_id)], folder_id=next(iter(folders)))
    in_first = demo.list_orders(folder_id=[next(iter(folders))], source_id="T-1")
    assert in_first["total_records"] == 1

    demo.delete_order(order_id)
    with pytest.raises(NotFound):
        demo.get_order(order_id)


def test_order_items_round_trip(demo: OrderDeskClient) -> None:
    order_id = demo.create_order(new_order("T-items"))["order"]["id"]
    demo.add_order_item(order_id, {"name": "Tee", "code": "TEE", "price": 5, "quantity": 1})
    items = demo.list_order_items(order_id)["order_items"]
    assert [item["code"] for item in items] == ["MUG", "TEE"]
    tee = next(item for item in items if item["code"] == "TEE")
    assert demo.get_order_item(order_id, tee["id"])["order_item"]["name"] == "Tee"
    demo.update_order_item(order_id, tee["id"], {**tee, "quantity": 3})
    assert demo.get_order(order_id)["order"]["product_total"] == 20 + 15
    demo.delete_order_item(order_id, tee["id"])
    assert len(demo.list_order_items(order_id)["order_items"]) == 1


def test_shipments_round_trip(demo: OrderDeskClient) -> None:
    order_id = demo.create_order(new_order("T-ship"))["order"]["id"]
    other_id = demo.create_order(new_order("T-ship-2"))["order"]["id"]
    demo.add_shipment(order_id, {"tracking_number": "1Z999", "carrier_code": "UPS"})
    shipments = demo.list_shipments(order_id)["shipments"]
    assert len(shipments) == 1
    shipment_id = shipments[0]["id"]
    assert isinstance(shipment_id, str)
    assert demo.get_shipment(order_id, shipment_id)["shipment"]["tracking_number"] == "1Z999"
    demo.update_shipment(order_id, shipment_id, {"tracking_number": "1Z000", "carrier_code": "UPS"})
    assert demo.get_shipment(order_id, shipment_id)["shipment"]["tracking_number"] == "1Z000"
    with pytest.raises(InvalidRequest):  # an identical shipment: "Shipment Not Added"
        demo.add_shipment(order_id, {"tracking_number": "1Z000", "carrier_code": "UPS"})
    demo.delete_shipment(order_id, shipment_id)
    assert demo.list_shipments(order_id)["shipments"] == []

    batch = demo.add_shipments_batch(
        [
            {"order_id": order_id, "tracking_number": "A1"},
            {"order_id": int(other_id), "tracking_number": "B1"},
        ]
    )
    assert [result["status"] for result in batch["results"]] == ["success", "success"]
    assert len(demo.list_shipments(other_id)["shipments"]) == 1


def test_inventory_round_trip_and_quirks(demo: OrderDeskClient) -> None:
    listing = demo.list_inventory_items()
    assert isinstance(listing["total_records"], str)
    # Not paged: Order Desk returns every item (docs/ORDERDESK.md ("Inventory items")).
    assert len(listing["inventory_items"]) == int(listing["total_records"])
    first = listing["inventory_items"][0]
    assert isinstance(first["id"], int)
    assert demo.list_inventory_items(code=first["code"])["inventory_items"][0]["id"] == first["id"]

    demo.create_inventory_item({"name": "Mug", "code": "MUG-NEW", "price": 9, "stock": 4})
    item = demo.list_inventory_items(code="MUG-NEW")["inventory_items"][0]
    assert demo.get_inventory_item(str(item["id"]))["inventory_item"]["stock"] == 4
    demo.put_inventory_item(item["id"], {**item, "stock": 5})
    demo.patch_inventory_item(item["id"], {"price": 11})
    patched = demo.get_inventory_item(item["id"])["inventory_item"]
    assert (patched["stock"], patched["price"], patched["name"]) == (5, 11, "Mug")
    demo.update_inventory_items_batch([{**patched, "stock": 1}])
    assert demo.get_inventory_item(item["id"])["inventory_item"]["stock"] == 1
    demo.delete_inventory_item(item["id"])
    with pytest.raises(NotFound):
        demo.get_inventory_item(item["id"])


def test_envelope_quirks_pass_through_untouched(demo: OrderDeskClient) -> None:
    order = demo.get_order(some_order_id(demo))["order"]
    assert isinstance(order["email_count"], str)
    assert order["order_metadata"] == [] or isinstance(order["order_metadata"], dict)
    listing = demo.list_orders(limit=3, order_by="date_added", order="asc")
    assert listing["records_returned"] == 3
    dates = [o["date_added"] for o in listing["orders"]]
    assert dates == sorted(dates)


# --- patch_order ----------------------------------------------------------------------------


def test_patch_order_merges_nested_fields_and_clears_nulls(
    demo: OrderDeskClient, sandbox: RunningSandbox, calls: Calls
) -> None:
    order_id = demo.create_order(new_order("T-patch"))["order"]["id"]
    calls.clear()
    reply = demo.patch_order(order_id, {"shipping": {"city": "Bergen", "address2": None}})
    shipping = reply["order"]["shipping"]
    assert shipping["city"] == "Bergen"
    assert shipping["first_name"] == "Ann"
    assert shipping["address2"] == ""
    assert [(c.method, c.endpoint) for c in calls] == [
        ("GET", "/orders/{id}"),
        ("PUT", "/orders/{id}"),
    ]
    assert not any(c.cache_hit for c in calls)  # the read goes to Order Desk


def test_patch_order_refuses_when_date_updated_is_not_the_one_expected(
    demo: OrderDeskClient, sandbox: RunningSandbox
) -> None:
    order = demo.get_order(some_order_id(demo))["order"]
    with pytest.raises(Conflict, match="changed in Order Desk") as caught:
        demo.patch_order(
            order["id"], {"email": "overwrite@example.com"}, expected_date_updated="2001-01-01"
        )
    assert caught.value.current is not None
    assert caught.value.current["date_updated"] == order["date_updated"]
    assert served(sandbox, "PUT /orders/{id}") == 0
    demo.patch_order(
        order["id"], {"email": "ok@example.com"}, expected_date_updated=order["date_updated"]
    )
    assert demo.get_order(order["id"], fresh=True)["order"]["email"] == "ok@example.com"


# --- errors ---------------------------------------------------------------------------------


def test_bad_credentials_are_an_auth_error_without_the_key(
    sandbox: RunningSandbox, machinery: UpstreamMachinery
) -> None:
    wrong = OrderDeskClient(DEMO, "sk_wrong_key_42", sandbox.base_url, machinery)
    with pytest.raises(AuthError) as caught:
        wrong.test_connection()
    assert caught.value.status == 401
    assert "sk_wrong_key_42" not in str(caught.value)
    assert "sk_wrong_key_42" not in repr(caught.value)


def test_unknown_ids_invalid_bodies_and_duplicates(demo: OrderDeskClient) -> None:
    with pytest.raises(NotFound) as missing:
        demo.get_order(999)
    assert missing.value.endpoint == "/orders/{id}"
    with pytest.raises(NotFound):
        demo.list_shipments(999)
    with pytest.raises(InvalidRequest, match="order_items"):
        demo.create_order({**new_order("T-empty"), "order_items": []})
    first = demo.create_order(new_order("T-dup"))["order"]["id"]
    with pytest.raises(InvalidRequest, match=first) as duplicate:
        demo.create_order(new_order("T-dup"))
    assert duplicate.value.status == 400
    assert duplicate.value.method == "POST"


# --- rate limit -----------------------------------------------------------------------------


@pytest.mark.slow
def test_one_hundred_back_to_back_reads_never_see_a_429(
    demo: OrderDeskClient, sandbox: RunningSandbox, calls: Calls
) -> None:
    sandbox.reset_stats()
    for offset in range(100):  # distinct URLs: nothing comes from the cache
        demo.list_orders(limit=1, offset=offset)
    stats = sandbox.stats(DEMO)
    assert stats["served"] == 100
    assert stats["rejected_429"] == 0
    assert sum(call.rate_limited_waits for call in calls) == 0
    assert max_window_excess(stats["served_at"]) <= 0
    assert not any(call.cache_hit for call in calls)


def test_forced_429s_are_waited_out(
    demo: OrderDeskClient, sandbox: RunningSandbox, calls: Calls
) -> None:
    sandbox.set_faults(DEMO, force_429=2)
    assert demo.get_store()["store"]["id"] == DEMO
    assert calls[-1].rate_limited_waits == 2
    assert calls[-1].status == 200
    assert sandbox.stats(DEMO)["rejected_429"] == 2


def test_a_deadline_shorter_than_retry_after_raises_rate_limited(
    demo: OrderDeskClient, sandbox: RunningSandbox
) -> None:
    sandbox.set_faults(DEMO, force_429=5)
    with pytest.raises(RateLimited) as caught:
        demo.with_deadline(0.5).get_store()
    assert caught.value.retry_after == 1.0
    assert caught.value.status == 429


def test_a_deadline_shorter_than_the_bucket_wait_sends_nothing(
    sandbox: RunningSandbox, sandbox_keys: dict[str, str], tmp_path: Path
) -> None:
    with UpstreamMachinery(
        tmp_path / "c.sqlite", bucket_capacity=1, refill_per_second=0.1
    ) as slow_bucket:
        client = OrderDeskClient(DEMO, sandbox_keys[DEMO], sandbox.base_url, slow_bucket)
        client.test_connection()
        before = sandbox.stats(DEMO)["served"]
        with pytest.raises(RateLimited) as caught:
            client.with_deadline(0.5).test_connection()
    assert caught.value.retry_after == pytest.approx(10.0, abs=0.5)
    assert sandbox.stats(DEMO)["served"] == before


# --- cache ----------------------------------------------------------------------------------


def test_a_cache_hit_sends_no_request(
    demo: OrderDeskClient, sandbox: RunningSandbox, calls: Calls
) -> None:
    order_id = some_order_id(demo)
    first = demo.get_order(order_id)
    second = demo.get_order(order_id)
    assert first == second
    assert served(sandbox, "GET /orders/{id}") == 1
    assert [c.cache_hit for c in calls[-2:]] == [False, True]
    demo.get_order(order_id, fresh=True)
    assert served(sandbox, "GET /orders/{id}") == 2
    demo.test_connection()
    demo.test_connection()
    assert served(sandbox, "GET /test") == 2  # the credential check is never cached


def test_two_stores_asking_the_same_url_never_share_an_entry(
    demo: OrderDeskClient, empty: OrderDeskClient, sandbox: RunningSandbox
) -> None:
    assert demo.list_orders(limit=5)["total_records"] == 300
    assert empty.list_orders(limit=5)["total_records"] == 0
    assert demo.get_store()["store"]["id"] == DEMO
    assert empty.get_store()["store"]["id"] == EMPTY
    assert served(sandbox, "GET /orders", EMPTY) == 1


def test_a_wrong_key_is_never_served_the_owners_cached_reads(
    demo: OrderDeskClient,
    sandbox: RunningSandbox,
    machinery: UpstreamMachinery,
) -> None:
    order_id = some_order_id(demo)
    demo.get_order(order_id)
    guesser = OrderDeskClient(DEMO, "sk_guessed_wrong_key", sandbox.base_url, machinery)
    with pytest.raises(AuthError):
        guesser.get_order(order_id)
    with pytest.raises(AuthError):
        guesser.list_orders(limit=1, offset=5)
    # and a write by the owner clears the store's entries, whoever cached them
    demo.add_order_history(order_id, "owner writes")
    assert served(sandbox, "GET /orders/{id}") == 1
    demo.get_order(order_id)
    assert served(sandbox, "GET /orders/{id}") == 2


def test_a_write_invalidates_its_store_only(
    demo: OrderDeskClient, empty: OrderDeskClient, sandbox: RunningSandbox, calls: Calls
) -> None:
    order_id = some_order_id(demo)
    demo.get_order(order_id)
    demo.list_shipments(order_id)
    demo.list_orders(limit=5)
    empty.list_orders(limit=5)
    other_id = demo.list_orders(limit=1, offset=9)["orders"][0]["id"]
    demo.get_order(other_id)
    demo.list_inventory_items()

    demo.add_shipment(order_id, {"tracking_number": "9400", "carrier_code": "USPS"})
    calls.clear()
    assert len(demo.get_order(order_id)["order"]["order_shipments"]) >= 1
    assert len(demo.list_shipments(order_id)["shipments"]) >= 1
    demo.list_orders(limit=5)
    empty.list_orders(limit=5)
    demo.get_order(other_id)
    demo.list_inventory_items()
    hits = {(c.store_id, c.endpoint): c.cache_hit for c in calls}
    assert hits == {
        (DEMO, "/orders/{id}"): True,  # last one read was the other order: untouched
        (DEMO, "/orders/{id}/shipments"): False,
        (DEMO, "/orders"): False,
        (EMPTY, "/orders"): True,
        (DEMO, "/inventory-items"): True,
    }
    assert calls[0].cache_hit is False  # the written order itself was re-read


def test_the_cache_file_never_holds_an_api_key(
    demo: OrderDeskClient,
    empty: OrderDeskClient,
    machinery: UpstreamMachinery,
    sandbox_keys: dict[str, str],
    tmp_path: Path,
) -> None:
    order_id = some_order_id(demo)
    demo.get_store()
    demo.get_order(order_id)
    demo.list_order_items(order_id)
    demo.list_inventory_items(code="TEE-S")
    empty.get_store()
    demo.add_order_history(order_id, "cache secrecy check")
    demo.get_order(order_id)
    with pytest.raises(NotFound):
        demo.get_order(999)
    assert machinery.cache.count() == 4  # both stores, the order, the inventory list
    files = [p for p in tmp_path.iterdir() if p.name.startswith("http-cache.sqlite")]
    assert any(p.name.endswith("-wal") for p in files)
    raw = b"".join(p.read_bytes() for p in files)
    assert b"/orders/" in raw  # the cache really holds the replies we made
    for key in sandbox_keys.values():
        assert key.encode() not in raw
    assert b"REDACTED" in raw  # requests-cache kept the header name, not its value


# --- faults ---------------------------------------------------------------------------------


@pytest.mark.parametrize("fault", ["error_rate", "drop_rate"])
def test_reads_recover_from_5xx_and_dropped_connections(
    demo: OrderDeskClient, sandbox: RunningSandbox, calls: Calls, fault: str
) -> None:
    sandbox.set_faults(DEMO, **{fault: 0.5})
    for offset in range(8):
        assert demo.list_orders(limit=1, offset=offset, fresh=True)["records_returned"] == 1
    assert sum(call.retries for call in calls) > 0
    assert sandbox.stats(DEMO)["served"] == 8


def test_a_read_that_keeps_failing_is_unavailable(
    demo: OrderDeskClient, sandbox: RunningSandbox, calls: Calls
) -> None:
    sandbox.set_faults(DEMO, error_rate=1.0)
    with pytest.raises(UpstreamUnavailable) as caught:
        demo.get_store()
    assert caught.value.status == 500
    assert calls[-1].retries == FAST_RETRIES.max_retries


def test_a_post_under_a_5xx_is_not_retried(
    demo: OrderDeskClient, sandbox: RunningSandbox, calls: Calls
) -> None:
    order_id = some_order_id(demo)
    history_before = len(
        demo.list_orders(
            source_id=demo.get_order(order_id)["order"]["source_id"], get_order_history=True
        )["orders"][0]["order_history"]
    )
    sandbox.set_faults(DEMO, error_rate=1.0)
    calls.clear()
    with pytest.raises(UpstreamUnavailable) as caught:
        demo.add_order_history(order_id, "must not be sent twice")
    assert caught.value.write_may_have_happened is True
    assert "may or may not have happened" in caught.value.message
    assert [(c.method, c.retries) for c in calls] == [("POST", 0)]
    sandbox.set_faults(DEMO)
    order = demo.get_order(order_id)["order"]
    history = demo.list_orders(source_id=order["source_id"], get_order_history=True)
    assert len(history["orders"][0]["order_history"]) == history_before


# --- coalescing and threads -----------------------------------------------------------------


def test_twenty_concurrent_identical_reads_make_one_request(
    demo: OrderDeskClient, sandbox: RunningSandbox, calls: Calls
) -> None:
    order_id = some_order_id(demo)
    sandbox.set_faults(DEMO, latency_ms=400)  # keep the first request open while others join
    start = threading.Barrier(20)
    results: list[dict[str, Any]] = []
    errors: list[BaseException] = []

    def read() -> None:
        start.wait(5)
        try:
            results.append(demo.get_order(order_id))
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=read) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert errors == []
    assert len(results) == 20
    assert all(result == results[0] for result in results)
    assert served(sandbox, "GET /orders/{id}") == 1
    reads = [c for c in calls if c.endpoint == "/orders/{id}"]
    assert sum(1 for c in reads if not c.coalesced and not c.cache_hit) == 1


def test_many_threads_share_one_machinery(
    demo: OrderDeskClient, empty: OrderDeskClient, sandbox: RunningSandbox
) -> None:
    # A history page caches no orders, so each order below is fetched once.
    order_ids = [o["id"] for o in demo.list_orders(limit=16, get_order_history=True)["orders"]]
    errors: list[BaseException] = []

    def work(index: int) -> None:
        try:
            for order_id in order_ids[index::4]:
                assert demo.get_order(order_id)["order"]["id"] == order_id
            assert empty.list_orders(limit=1)["total_records"] == 0
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    assert served(sandbox, "GET /orders/{id}") == 16
    assert served(sandbox, "GET /orders", EMPTY) == 1
