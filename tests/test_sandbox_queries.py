"""GET /orders filters, sorting and paging against the sandbox; the date parser by property."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orderdesk_mcp.sandbox import RunningSandbox
from orderdesk_mcp.sandbox.errors import ApiError
from orderdesk_mcp.sandbox.order_query import parse_date
from tests.test_sandbox_api import DEMO, EMPTY, SAMPLE_ORDER, call, create, error, ok


def orders(sb: RunningSandbox, store: str = DEMO, **params: Any) -> dict[str, Any]:
    return ok(call(sb, "GET", "/orders", store, params=params))


def all_orders(sb: RunningSandbox) -> list[dict[str, Any]]:
    listed: list[dict[str, Any]] = orders(sb, limit=500)["orders"]
    return listed


def test_paging_echoes_and_defaults(sandbox: RunningSandbox) -> None:
    first = orders(sandbox)
    assert first["limit"] == 50
    assert first["offset"] == 0
    assert first["records_returned"] == 50
    assert first["total_records"] == 300
    assert isinstance(first["total_records"], int)
    assert first["message"].startswith("Execution took")
    seen: list[str] = []
    offset = 0
    while True:
        page = orders(sandbox, limit=120, offset=offset)
        seen += [order["id"] for order in page["orders"]]
        offset += 120
        if offset >= page["total_records"]:
            break
    assert len(seen) == len(set(seen)) == 300
    assert orders(sandbox, limit=9999)["limit"] == 500
    assert orders(sandbox, offset=1000)["records_returned"] == 0


def test_default_sort_is_newest_first_and_order_by_works(sandbox: RunningSandbox) -> None:
    dates = [order["date_added"] for order in all_orders(sandbox)]
    assert dates == sorted(dates, reverse=True)
    ascending = orders(sandbox, order_by="order_total", order="asc", limit=500)["orders"]
    totals = [order["order_total"] for order in ascending]
    assert totals == sorted(totals)
    by_name = orders(sandbox, order_by="shipping_last_name", order="ASC", limit=500)["orders"]
    names = [order["shipping"]["last_name"].lower() for order in by_name]
    assert names == sorted(names)
    assert "order_by" in error(call(sandbox, "GET", "/orders", params={"order_by": "nope"}), 400)
    assert "ASC or DESC" in error(call(sandbox, "GET", "/orders", params={"order": "up"}), 400)


def test_folder_filters(sandbox: RunningSandbox) -> None:
    folders = ok(call(sandbox, "GET", "/store"))["store"]["folders"]
    ids = {name: folder_id for folder_id, name in folders.items()}
    everything = all_orders(sandbox)
    new = orders(sandbox, folder_id=ids["New"], limit=500)
    assert new["total_records"] == sum(o["folder_id"] == int(ids["New"]) for o in everything)
    pair = orders(sandbox, folder_id=f"{ids['New']},{ids['Prepared']}", limit=500)
    wanted = {int(ids["New"]), int(ids["Prepared"])}
    assert pair["total_records"] == sum(o["folder_id"] in wanted for o in everything)
    by_name = orders(sandbox, folder_name="Closed", limit=500)
    assert {o["folder_id"] for o in by_name["orders"]} == {int(ids["Closed"])}
    assert orders(sandbox, folder_name="Nope")["total_records"] == 0
    assert "folder_id" in error(call(sandbox, "GET", "/orders", params={"folder_id": "a,b"}), 400)


def test_date_ranges_are_inclusive_in_all_three_formats(sandbox: RunningSandbox) -> None:
    everything = all_orders(sandbox)
    pivot = everything[100]["date_added"]
    start = orders(sandbox, search_start_date=pivot, limit=500)
    assert start["total_records"] == sum(o["date_added"] >= pivot for o in everything)
    end = orders(sandbox, search_end_date=pivot, limit=500)
    assert end["total_records"] == sum(o["date_added"] <= pivot for o in everything)
    iso = pivot.replace(" ", "T") + "Z"
    assert orders(sandbox, search_start_date=iso)["total_records"] == start["total_records"]
    day = pivot[:10]
    whole_day = orders(sandbox, search_start_date=day, search_end_date=day, limit=500)
    assert whole_day["total_records"] == sum(o["date_added"][:10] == day for o in everything)
    assert "bad date" in error(
        call(sandbox, "GET", "/orders", params={"search_start_date": "last tuesday"}), 400
    )


def test_modified_dates_follow_writes(sandbox: RunningSandbox) -> None:
    order = create(sandbox)
    later = (datetime.now(UTC) - timedelta(seconds=1)).strftime("%Y-%m-%d %H:%M:%S")
    found = orders(sandbox, EMPTY, modified_start_date=later)
    assert [o["id"] for o in found["orders"]] == [order["id"]]
    assert orders(sandbox, EMPTY, modified_end_date="2000-01-01")["total_records"] == 0


def test_local_dates_use_the_store_time_zone(sandbox: RunningSandbox) -> None:
    everything = all_orders(sandbox)
    pivot = datetime.strptime(everything[50]["date_added"], "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
    local = pivot.astimezone(ZoneInfo("America/New_York")).strftime("%Y-%m-%d %H:%M:%S")
    utc_count = orders(sandbox, search_start_date=pivot.strftime("%Y-%m-%d %H:%M:%S"))
    local_count = orders(sandbox, search_start_date_local=local)
    assert local_count["total_records"] == utc_count["total_records"]


def test_text_filters_combine_with_and(sandbox: RunningSandbox) -> None:
    everything = all_orders(sandbox)
    sample = next(o for o in everything if o["source_name"] == "Amazon")
    by_source = orders(sandbox, source_name="amazon", limit=500)
    assert by_source["total_records"] == sum(o["source_name"] == "Amazon" for o in everything)
    exact = orders(sandbox, source_id=sample["source_id"])
    assert [o["id"] for o in exact["orders"]] == [sample["id"]]
    both = orders(
        sandbox, email=sample["email"].upper(), shipping_last_name=sample["shipping"]["last_name"]
    )
    assert sample["id"] in [o["id"] for o in both["orders"]]
    contradiction = orders(sandbox, source_id=sample["source_id"], source_name="eBay")
    assert contradiction["total_records"] == 0
    customer = orders(sandbox, customer_first_name=sample["customer"]["first_name"], limit=500)
    assert all(
        o["customer"]["first_name"] == sample["customer"]["first_name"] for o in customer["orders"]
    )
    assert orders(sandbox, unknown_param="whatever")["total_records"] == 300


def test_cart_number_lookup_after_create(sandbox: RunningSandbox) -> None:
    order = create(sandbox)
    found = orders(sandbox, EMPTY, source_id=SAMPLE_ORDER["source_id"])
    assert [o["id"] for o in found["orders"]] == [order["id"]]


@pytest.mark.parametrize("bad", ["0", "-1", "ten"])
def test_bad_limits_are_400(sandbox: RunningSandbox, bad: str) -> None:
    assert "limit" in error(call(sandbox, "GET", "/orders", params={"limit": bad}), 400)


@given(st.text(max_size=40))
def test_parse_date_accepts_or_explains(text: str) -> None:
    status = 200
    try:
        moment = parse_date(text, end_of_range=False)
    except ApiError as problem:
        status = problem.status
    else:
        assert moment.tzinfo is not None
    assert status in (200, 400)


@given(st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2200, 1, 1)))
def test_parse_date_round_trips_every_format(moment: datetime) -> None:
    whole = moment.replace(microsecond=0)
    expected = whole.replace(tzinfo=UTC)
    assert parse_date(whole.strftime("%Y-%m-%d %H:%M:%S"), end_of_range=False) == expected
    assert parse_date(whole.strftime("%Y-%m-%dT%H:%M:%S.000Z"), end_of_range=False) == expected
    day_end = parse_date(whole.strftime("%Y-%m-%d"), end_of_range=True)
    assert day_end == expected.replace(hour=23, minute=59, second=59)
