"""Result building: output bounding, projection, Order Desk quirks and date parsing."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orderdesk_mcp.mcp.results import MAX_RESULT_CHARS, bound, failure, success, to_json
from orderdesk_mcp.mcp.tools._base import ToolInputError
from orderdesk_mcp.mcp.tools._common import (
    _MAP_FIELDS as MAP_FIELDS,
)
from orderdesk_mcp.mcp.tools._common import (
    DATE_ARG_PATTERN,
    MAX_NORMALISE_DEPTH,
    as_int,
    normalise,
    order_desk_time,
    page,
    project,
)

ORDER_DESK_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}")


def big_orders(count: int, note_size: int = 2_000) -> list[dict[str, Any]]:
    return [{"id": str(n), "note": "x" * note_size, "items": [1, 2, 3]} for n in range(count)]


def test_small_results_pass_through_with_the_same_json_as_text() -> None:
    structured = {"order": {"id": "1", "email": "a@example.com"}}
    result = success(structured)
    assert result["structuredContent"] is structured
    assert result["content"] == [{"type": "text", "text": to_json(structured)}]
    assert result["isError"] is False
    assert failure("nope") == {"content": [{"type": "text", "text": "nope"}], "isError": True}


def test_a_long_list_is_cut_and_paging_continues_from_what_was_kept() -> None:
    listed = {**page("orders", big_orders(100), total=500, offset=200), "extra": 1}
    bounded = bound(listed)
    kept = len(bounded["orders"])
    assert 0 < kept < 100
    assert len(to_json(bounded)) <= MAX_RESULT_CHARS
    assert bounded["orders"] == listed["orders"][:kept]
    assert bounded["next_offset"] == 200 + kept
    assert bounded["total_records"] == 500
    assert bounded["truncated"]["cuts"] == [
        {"path": "orders", "kind": "list", "kept": kept, "total": 100}
    ]
    assert f"first {kept} orders" in bounded["truncated"]["message"]
    # Cutting keeps most of what fits, rather than halving.
    assert kept >= 30
    assert listed["orders"][0]["note"] == "x" * 2_000  # the input is left alone


def test_a_nested_list_in_one_record_is_cut() -> None:
    order = {"order": {"id": "7", "order_items": big_orders(80), "email": "a@example.com"}}
    bounded = bound(order)
    assert len(to_json(bounded)) <= MAX_RESULT_CHARS
    assert bounded["order"]["email"] == "a@example.com"
    cut = bounded["truncated"]["cuts"][0]
    assert cut["path"] == "order.order_items"
    assert "fields" in bounded["truncated"]["message"]


def test_a_huge_text_is_shortened() -> None:
    bounded = bound({"shipment": {"id": "1", "label_image": "A" * 300_000}})
    text = bounded["shipment"]["label_image"]
    assert text.endswith(" [...cut]")
    assert len(to_json(bounded)) <= MAX_RESULT_CHARS
    assert bounded["truncated"]["cuts"][0]["kind"] == "text"


RECORDS = st.lists(
    st.dictionaries(
        st.text(min_size=1, max_size=8),
        st.one_of(st.integers(), st.text(max_size=6_000), st.lists(st.text(max_size=500))),
        max_size=6,
    ),
    max_size=120,
)


@settings(max_examples=60, deadline=None)
@given(records=RECORDS, offset=st.integers(min_value=0, max_value=10_000))
def test_bound_always_fits_and_never_invents_records(
    records: list[dict[str, Any]], offset: int
) -> None:
    listed = page("orders", records, total=offset + len(records) + 5, offset=offset)
    bounded = bound(listed)
    assert len(to_json(bounded)) <= MAX_RESULT_CHARS
    assert json.loads(to_json(bounded)) == bounded
    if "truncated" not in bounded:
        assert bounded == listed
    else:
        assert len(bounded["orders"]) <= len(records)
        assert bounded["next_offset"] == offset + len(bounded["orders"])


def test_project_keeps_id_and_dotted_paths() -> None:
    order = {"id": "1", "email": "e", "shipping": {"city": "Boise", "state": "ID"}, "x": 1}
    assert project(order, ["shipping.city", "email", "missing.path"]) == {
        "id": "1",
        "shipping": {"city": "Boise"},
        "email": "e",
    }
    assert project(order, None) == order
    assert project(order, ["shipping.city.deeper"]) == {"id": "1"}


def test_order_desk_quirks_are_normalised() -> None:
    raw = {"checkout_data": [], "order_items": [{"variation_list": [], "metadata": []}], "tags": []}
    assert normalise(raw) == {
        "checkout_data": {},
        "order_items": [{"variation_list": {}, "metadata": {}}],
        "tags": [],
    }
    assert [as_int(v) for v in ("5", 5, "5.0", " 7 ", "x", None, True)] == [5, 5, 5, 7, 0, 0, 0]


def _normalised_copy(value: Any, depth: int = 0) -> Any:
    """The rule spelled out as a recursive copy: what the in-place `normalise` must match."""
    if depth >= MAX_NORMALISE_DEPTH:
        return value
    if isinstance(value, dict):
        return {
            key: {} if key in MAP_FIELDS and item == [] else _normalised_copy(item, depth + 1)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_normalised_copy(item, depth + 1) for item in value]
    return value


_KEYS = st.sampled_from([*sorted(MAP_FIELDS), "tags", "order_items", "x"])
_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.sampled_from([*sorted(MAP_FIELDS), "tags", "order_items", "x"]), inner, max_size=4
        )
    ),
    max_leaves=40,
)


@given(_json_values)
def test_normalise_in_place_matches_the_copying_rule(value: Any) -> None:
    expected = _normalised_copy(json.loads(json.dumps(value)))
    assert normalise(json.loads(json.dumps(value))) == expected


def test_normalise_leaves_values_below_its_depth_limit_as_they_are() -> None:
    deep: Any = {"metadata": []}
    for _ in range(5000):  # far deeper than any recursion limit
        deep = {"order_items": [deep]}
    assert normalise(deep) is deep
    bottom = deep
    while "order_items" in bottom:
        bottom = bottom["order_items"][0]
    assert bottom == {"metadata": []}


@pytest.mark.parametrize(
    ("given_text", "end_of_day", "expected"),
    [
        ("2026-03-01", False, "2026-03-01 00:00:00"),
        ("2026-03-01", True, "2026-03-01 23:59:59"),
        ("2026-03-01 10:30", True, "2026-03-01 10:30:00"),
        ("2026-03-01T10:30:15.123Z", False, "2026-03-01 10:30:15"),
        ("2026-03-01 10:30:15+00:00", False, "2026-03-01 10:30:15"),
    ],
)
def test_dates_become_order_desk_times(given_text: str, end_of_day: bool, expected: str) -> None:
    assert order_desk_time(given_text, end_of_day=end_of_day) == expected


@given(text=st.from_regex(DATE_ARG_PATTERN, fullmatch=True), end=st.booleans())
def test_every_date_the_schema_accepts_parses_or_is_named_impossible(text: str, end: bool) -> None:
    # The pattern cannot know month lengths: 2026-02-30 passes it and is refused here, never
    # sent on to Order Desk.
    assert_converted_or_impossible(text, end)


def assert_converted_or_impossible(text: str, end: bool) -> None:
    try:
        converted = order_desk_time(text, end_of_day=end)
    except ToolInputError as error:
        refused = str(error)
    else:
        assert ORDER_DESK_TIME.fullmatch(converted)
        return
    assert "is not a real date" in refused


@given(text=st.text(max_size=40), end=st.booleans())
def test_any_text_parses_or_says_what_a_date_looks_like(text: str, end: bool) -> None:
    if re.search(DATE_ARG_PATTERN, text) is None:
        with pytest.raises(ToolInputError, match="YYYY-MM-DD"):
            order_desk_time(text, end_of_day=end)
    else:
        assert_converted_or_impossible(text, end)
