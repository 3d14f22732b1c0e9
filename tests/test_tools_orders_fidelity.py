"""Issue 9, orders: every order tool does what Order Desk will do, and says so.

Each test runs the tools through execute_tool, a real OrderDeskClient and the real sandbox
over HTTP; the sandbox's choices are in sandbox/emulation_choices.py, the evidence in
docs/ORDERDESK.md ("Orders").
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orderdesk_mcp.mcp.registry import StaticStoreResolver, find_tool
from orderdesk_mcp.mcp.tools._common import order_desk_time
from orderdesk_mcp.orderdesk import OrderDeskClient, UpstreamMachinery
from orderdesk_mcp.orderdesk.order_body import ORDER_PUT_LEFT_OUT, order_put_body
from orderdesk_mcp.sandbox import RunningSandbox
from tests.test_tools_sandbox import (  # the fixtures are shared, not copied
    KEYS,
    MAIN,
    failed,
    first_order,
    folder_ids,
    machinery,
    od_sandbox,
    ok,
    resolver,
    writes,
)

__all__ = ["machinery", "od_sandbox", "resolver"]  # fixtures pytest finds by name

STORE_ZONE = ZoneInfo("America/New_York")  # the sandbox's default settings.timezone


def served(sandbox: RunningSandbox, endpoint: str) -> int:
    count: int = sandbox.stats(MAIN.store_id)["by_endpoint"].get(endpoint, 0)
    return count


def two_line_order(resolver: StaticStoreResolver) -> dict[str, Any]:
    order = {
        "source_id": "FID-1",
        "source_name": "Tests",
        "email": "lee@example.com",
        "cc_number": "4111111111114242",
        "shipping": {"first_name": "Pat", "last_name": "Lee", "city": "Boise", "country": "US"},
        "order_items": [
            {"name": "Mug", "code": "MUG", "price": 10, "quantity": 1, "weight": 0.5},
            {"name": "Tea", "code": "TEA", "price": 4, "quantity": 2},
        ],
    }
    created: dict[str, Any] = ok(resolver, "create_order", {"order": order})["order"]
    return created


# --- 1. the PUT body -----------------------------------------------------------------------


def test_update_order_keeps_the_card_folder_and_dates(resolver: StaticStoreResolver) -> None:
    # Before: the read-back order went back whole, cc_number_masked and all; the card's write
    # field (cc_number) was missing, so Order Desk's "left out = blank" erased the card.
    before = first_order(resolver, folder="Prepared")
    assert before["cc_number_masked"]
    ok(resolver, "update_order", {"order_id": before["id"], "changes": {"tax_total": 1.25}})
    after = ok(resolver, "get_order", {"order_id": before["id"]})["order"]
    assert after["tax_total"] == pytest.approx(1.25)
    assert after["cc_number_masked"] == before["cc_number_masked"]
    assert after["folder_id"] == before["folder_id"]
    assert after["date_added"] == before["date_added"]
    assert after["order_shipments"] == before["order_shipments"]
    assert [line["id"] for line in after["order_items"]] == [
        line["id"] for line in before["order_items"]
    ]


def test_the_put_body_leaves_out_what_order_desk_owns() -> None:
    order = {
        "id": "7",
        "email": "a@example.com",
        "folder_id": 21,
        "date_added": "2026-01-01 00:00:00",
        "date_updated": "2026-01-02 00:00:00",
        "quantity_total": 2,
        "weight_total": 1,
        "product_total": 9,
        "discount_total": 0,
        "order_total": 9,
        "email_count": "3",
        "cc_number_masked": "xxxxxxxxxxxx4242",
        "order_items": [{"id": "55", "name": "Mug", "quantity": 2}],
        "order_shipments": [{"id": "9", "tracking_number": "1Z"}],
        "order_history": [{"note": "x"}],
        "order_notes": [{"content": "keep me"}],
    }
    body = order_put_body(order)
    assert not set(body) & ORDER_PUT_LEFT_OUT
    assert body == {
        "email": "a@example.com",
        "folder_id": 21,
        "cc_number": "4242",
        "order_items": [{"id": "55", "name": "Mug", "quantity": 2}],
        "order_notes": [{"content": "keep me"}],
    }
    assert "cc_number" not in order_put_body({"cc_number_masked": ""})


@pytest.mark.parametrize(
    "field",
    ["id", "date_added", "date_updated", "order_total", "email_count", "cc_number_masked"],
)
def test_read_only_fields_are_refused_in_changes(
    resolver: StaticStoreResolver, od_sandbox: RunningSandbox, field: str
) -> None:
    order_id = first_order(resolver)["id"]
    text = failed(
        resolver,
        "update_order",
        {"order_id": order_id, "changes": {field: "1"}},
        "invalid_arguments",
    )
    assert field in text
    assert "Nothing was written" in text
    assert writes(od_sandbox) == 0


# --- 2. order lines ------------------------------------------------------------------------


def test_a_quantity_change_updates_that_line_only(
    resolver: StaticStoreResolver, od_sandbox: RunningSandbox
) -> None:
    # Before: changes.order_items replaced the whole list, so this dropped the Tea line and
    # sent a Mug line without name or price.
    order = two_line_order(resolver)
    mug, tea = order["order_items"]
    change = {"order_items": [{"id": mug["id"], "quantity": 3}]}
    preview = ok(
        resolver, "update_order", {"order_id": order["id"], "changes": change, "dry_run": True}
    )
    assert [line["quantity"] for line in preview["would"]["order"]["order_items"]] == [3, 2]
    assert "order_total" in preview["would"]["not_sent"]
    ok(resolver, "update_order", {"order_id": order["id"], "changes": change})
    stored = ok(resolver, "get_order", {"order_id": order["id"]})["order"]
    lines = {line["id"]: line for line in stored["order_items"]}
    assert set(lines) == {mug["id"], tea["id"]}
    assert (lines[mug["id"]]["name"], lines[mug["id"]]["quantity"]) == ("Mug", 3)
    assert lines[mug["id"]]["price"] == mug["price"]
    assert lines[tea["id"]] == tea
    assert stored["order_total"] == pytest.approx(38.0)


def test_a_line_without_id_is_added_and_an_unknown_id_is_refused(
    resolver: StaticStoreResolver, od_sandbox: RunningSandbox
) -> None:
    order = two_line_order(resolver)
    extra = {"name": "Spoon", "code": "SPOON", "price": 2, "quantity": 1}
    ok(resolver, "update_order", {"order_id": order["id"], "changes": {"order_items": [extra]}})
    stored = ok(resolver, "get_order", {"order_id": order["id"]})["order"]
    assert [line["code"] for line in stored["order_items"]] == ["MUG", "TEA", "SPOON"]
    done = writes(od_sandbox)
    text = failed(
        resolver,
        "update_order",
        {"order_id": order["id"], "changes": {"order_items": [{"id": "1", "quantity": 2}]}},
        "invalid_arguments",
    )
    assert "not on this order" in text
    assert "leave id out to add" in text
    assert writes(od_sandbox) == done


# --- 3. expected_date_updated --------------------------------------------------------------


def test_expected_date_updated_refuses_a_changed_order(
    resolver: StaticStoreResolver, od_sandbox: RunningSandbox
) -> None:
    order = first_order(resolver)
    stale = "2001-01-01 00:00:00"
    change = {"shipping": {"city": "Bergen"}, "email": "new@example.com"}
    for dry_run in (True, False):
        text = failed(
            resolver,
            "update_order",
            {
                "order_id": order["id"],
                "changes": change,
                "expected_date_updated": stale,
                "dry_run": dry_run,
            },
            "conflict",
        )
        assert order["date_updated"] in text
        assert order["shipping"]["city"] in text
        assert order["email"] in text
    assert writes(od_sandbox) == 0
    current = {"order_id": order["id"], "changes": change}
    done = ok(resolver, "update_order", {**current, "expected_date_updated": order["date_updated"]})
    assert done["order"]["shipping"]["city"] == "Bergen"


def test_patch_order_reads_once_then_writes(
    resolver: StaticStoreResolver, od_sandbox: RunningSandbox
) -> None:
    order_id = first_order(resolver)["id"]
    reads = served(od_sandbox, "GET /orders/{id}")
    ok(resolver, "update_order", {"order_id": order_id, "changes": {"email": "x@example.com"}})
    assert served(od_sandbox, "GET /orders/{id}") == reads + 1
    assert served(od_sandbox, "PUT /orders/{id}") == 1


# --- 4. move_orders ------------------------------------------------------------------------


def test_move_orders_is_destructive_and_not_idempotent() -> None:
    tool = find_tool("move_orders")
    assert tool is not None
    hints = tool.to_mcp()["annotations"]
    assert hints["destructiveHint"] is True
    assert hints["idempotentHint"] is False
    assert "dry_run" in tool.input_schema["properties"]


def test_move_orders_dry_run_reads_no_orders_and_writes_nothing(
    resolver: StaticStoreResolver, od_sandbox: RunningSandbox
) -> None:
    folders = folder_ids(resolver)
    ids = [
        order["id"]
        for order in ok(resolver, "list_orders", {"folder": "New", "limit": 3})["orders"]
    ]
    reads = served(od_sandbox, "GET /orders/{id}")
    preview = ok(resolver, "move_orders", {"order_ids": ids, "folder": "Closed", "dry_run": True})
    assert preview["dry_run"] is True
    assert preview["would"]["folder"] == {"id": folders["Closed"], "name": "Closed"}
    assert preview["would"]["order_ids"] == ids
    assert writes(od_sandbox) == 0
    assert served(od_sandbox, "GET /orders/{id}") == reads


def test_move_orders_counts_only_what_order_desk_reports_moved(
    resolver: StaticStoreResolver, od_sandbox: RunningSandbox
) -> None:
    # Before: no result entries meant "all moved", so an unknown id was reported as moved.
    nothing = ok(resolver, "move_orders", {"order_ids": ["999"], "folder": "Closed"})
    assert nothing["moved"] == 0
    assert nothing["not_moved"] == ["999"]
    assert "999" in nothing["note"]
    known = first_order(resolver, folder="New")["id"]
    mixed = ok(resolver, "move_orders", {"order_ids": [known, "998"], "folder": "Closed"})
    assert (mixed["moved"], mixed["moved_order_ids"], mixed["not_moved"]) == (1, [known], ["998"])
    # The documented result entry, nothing more: {order_id, message, original_folder_id}.
    assert [set(entry) for entry in mixed["results"]] == [
        {"order_id", "message", "original_folder_id"}
    ]
    assert mixed["results"][0]["order_id"] == int(known)


# --- 5. dates and zones --------------------------------------------------------------------


def local_day(utc_text: str) -> str:
    moment = dt.datetime.strptime(utc_text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=dt.UTC)
    return moment.astimezone(STORE_ZONE).strftime("%Y-%m-%d")


def test_a_bare_date_is_the_stores_local_day(resolver: StaticStoreResolver) -> None:
    # An order added before 04:00 UTC belongs to the previous day in New York; before, a bare
    # date was taken as a UTC day and missed it.
    listed = ok(resolver, "list_orders", {"limit": 100, "fields": ["date_added"]})["orders"]
    early = next(order for order in listed if int(order["date_added"][11:13]) < 4)
    day = local_day(early["date_added"])
    assert day != early["date_added"][:10]
    found = ok(
        resolver,
        "list_orders",
        {"added_from": day, "added_to": day, "limit": 100, "fields": ["date_added"]},
    )["orders"]
    assert early["id"] in [order["id"] for order in found]
    assert {local_day(order["date_added"]) for order in found} == {day}
    utc_day = early["date_added"][:10]
    in_utc = ok(
        resolver,
        "list_orders",
        {
            "added_from": f"{utc_day}T00:00:00Z",
            "added_to": f"{utc_day}T23:59:59+00:00",
            "limit": 100,
            "fields": ["date_added"],
        },
    )["orders"]
    assert early["id"] in [order["id"] for order in in_utc]
    assert {order["date_added"][:10] for order in in_utc} == {utc_day}


def test_the_sandbox_reads_utc_and_local_search_dates(
    od_sandbox: RunningSandbox, machinery: UpstreamMachinery
) -> None:
    client = OrderDeskClient(MAIN.store_id, KEYS[MAIN.store_id], od_sandbox.base_url, machinery)
    in_utc = client.list_orders(
        search_start_date="2026-11-20 05:00:00", search_end_date="2026-11-21 04:59:59"
    )
    in_local = client.list_orders(
        search_start_date_local="2026-11-20 00:00:00", search_end_date_local="2026-11-20 23:59:59"
    )
    assert in_utc["total_records"] == in_local["total_records"] > 0
    modified = client.list_orders(modified_start_date="2026-11-21 05:00:00", limit=500)
    assert all(order["date_updated"] >= "2026-11-21 05:00:00" for order in modified["orders"])


@given(
    moment=st.datetimes(
        min_value=dt.datetime(1900, 1, 2),
        max_value=dt.datetime(2200, 1, 1),
        timezones=st.just(None),
    ),
    offset_minutes=st.integers(min_value=-14 * 60, max_value=14 * 60),
    separator=st.sampled_from(["T", " "]),
    end=st.booleans(),
)
def test_an_offset_is_honoured_and_sent_in_utc(
    moment: dt.datetime, offset_minutes: int, separator: str, end: bool
) -> None:
    zone = dt.timezone(dt.timedelta(minutes=offset_minutes))
    aware = moment.replace(microsecond=0, tzinfo=zone)
    text = aware.isoformat(sep=separator)
    expected = aware.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
    assert order_desk_time(text, end_of_day=end, zone=STORE_ZONE) == expected
    if offset_minutes == 0:
        zulu = moment.replace(microsecond=0).isoformat(sep=separator) + "Z"
        assert order_desk_time(zulu, end_of_day=end, zone=STORE_ZONE) == expected


@given(
    day=st.dates(min_value=dt.date(1900, 1, 2), max_value=dt.date(2200, 1, 1)),
    zone_name=st.sampled_from(["America/New_York", "Europe/Oslo", "Asia/Kolkata", "UTC"]),
)
def test_a_bare_date_covers_the_local_day(day: dt.date, zone_name: str) -> None:
    zone = ZoneInfo(zone_name)
    start = order_desk_time(day.isoformat(), end_of_day=False, zone=zone)
    end = order_desk_time(day.isoformat(), end_of_day=True, zone=zone)
    first = dt.datetime.combine(day, dt.time()).replace(tzinfo=zone).astimezone(dt.UTC)
    last = dt.datetime.combine(day, dt.time(23, 59, 59)).replace(tzinfo=zone).astimezone(dt.UTC)
    assert (start, end) == (
        first.strftime("%Y-%m-%d %H:%M:%S"),
        last.strftime("%Y-%m-%d %H:%M:%S"),
    )


# --- 6. descriptions that claim only what Order Desk does ------------------------------------


def test_descriptions_claim_no_duplicate_detection_and_say_where_history_is() -> None:
    create = find_tool("create_order")
    get = find_tool("get_order")
    assert create is not None
    assert get is not None
    assert "refuses a duplicate" not in create.description
    assert "list_orders(source_id=...)" in create.description
    assert "include_history=true" in get.description
    assert "add_order_note" in get.description


# --- 7. filters ----------------------------------------------------------------------------


def test_several_folders_and_address_filters(resolver: StaticStoreResolver) -> None:
    folders = folder_ids(resolver)
    new = ok(resolver, "list_orders", {"folder": "New", "limit": 1})["total_records"]
    prepared = ok(resolver, "list_orders", {"folder": folders["Prepared"], "limit": 1})
    both = ok(resolver, "list_orders", {"folder": ["New", folders["Prepared"]], "limit": 100})
    assert both["total_records"] == new + prepared["total_records"]
    assert {order["folder_id"] for order in both["orders"]} <= {folders["New"], folders["Prepared"]}
    listed = ok(resolver, "list_orders", {"limit": 100})["orders"]
    wanted = next(order for order in listed if order["shipping"]["company"])
    for name, value in (
        ("shipping_company", wanted["shipping"]["company"]),
        ("customer_company", wanted["customer"]["company"]),
        ("shipping_first_name", wanted["shipping"]["first_name"]),
        ("customer_first_name", wanted["customer"]["first_name"]),
        ("shipping_phone", wanted["shipping"]["phone"]),
        ("customer_phone", wanted["customer"]["phone"]),
    ):
        found = ok(resolver, "list_orders", {name: value, "limit": 100})["orders"]
        assert wanted["id"] in [order["id"] for order in found], name


# --- 8. a list page answers get_order ------------------------------------------------------


def test_a_listed_order_costs_no_second_request_until_it_is_written(
    resolver: StaticStoreResolver, od_sandbox: RunningSandbox
) -> None:
    listed = ok(resolver, "list_orders", {"folder": "New", "limit": 20})["orders"]
    reads = served(od_sandbox, "GET /orders/{id}")
    for order in listed:
        assert ok(resolver, "get_order", {"order_id": order["id"]})["order"] == order
    assert served(od_sandbox, "GET /orders/{id}") == reads
    changed = listed[0]["id"]
    ok(resolver, "update_order", {"order_id": changed, "changes": {"email": "w@example.com"}})
    reads = served(od_sandbox, "GET /orders/{id}")
    again = ok(resolver, "get_order", {"order_id": changed})["order"]
    assert again["email"] == "w@example.com"
    assert served(od_sandbox, "GET /orders/{id}") == reads + 1


def test_a_history_page_fills_no_order_entries(
    resolver: StaticStoreResolver, od_sandbox: RunningSandbox
) -> None:
    listed = ok(resolver, "list_orders", {"include_history": True, "limit": 2})["orders"]
    reads = served(od_sandbox, "GET /orders/{id}")
    found = ok(resolver, "get_order", {"order_id": listed[0]["id"]})["order"]
    assert "order_history" not in found
    assert served(od_sandbox, "GET /orders/{id}") == reads + 1
