"""Client parts that need no Order Desk: bucket, headers, merge, envelopes, cache keys, checks."""

from __future__ import annotations

import json
import logging
import socket
import threading
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from requests_cache.models.response import CachedResponse

from orderdesk_mcp.orderdesk import (
    AuthError,
    CacheTTLs,
    Conflict,
    InvalidRequest,
    NotFound,
    OrderDeskClient,
    OrderDeskError,
    RateLimited,
    RetryPolicy,
    UpstreamCall,
    UpstreamError,
    UpstreamMachinery,
    UpstreamUnavailable,
    deep_merge,
)
from orderdesk_mcp.orderdesk.arguments import (
    ORDER_LIST_FILTERS,
    checked_id,
    order_filter_params,
)
from orderdesk_mcp.orderdesk.cache import (
    ResponseCache,
    cache_key,
    listing_prefixes,
    record_prefixes,
)
from orderdesk_mcp.orderdesk.coalesce import SingleFlight
from orderdesk_mcp.orderdesk.envelope import interpret_reply
from orderdesk_mcp.orderdesk.ratelimit import (
    LeakyBucket,
    parse_retry_after,
    parse_tokens_remaining,
)

SECRET = "sk_live_DO_NOT_LEAK_123"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# --- leaky bucket ---------------------------------------------------------------------------


def test_bucket_serves_a_burst_of_capacity_then_paces_at_the_refill_rate() -> None:
    clock = FakeClock()
    bucket = LeakyBucket(20, 3.0, clock)
    assert [bucket.reserve(10.0) for _ in range(20)] == [0.0] * 20
    waits = [bucket.reserve(10.0) for _ in range(3)]
    assert waits == pytest.approx([1 / 3, 2 / 3, 1.0])
    clock.now += 1.0
    assert bucket.tokens() == pytest.approx(0.0)


def test_bucket_books_nothing_when_the_wait_exceeds_the_limit() -> None:
    clock = FakeClock()
    bucket = LeakyBucket(1, 3.0, clock)
    assert bucket.reserve(0.0) == 0.0
    assert bucket.reserve(0.1) is None
    assert bucket.wait_needed() == pytest.approx(1 / 3)
    assert bucket.reserve(0.5) == pytest.approx(1 / 3)


def test_bucket_believes_fewer_tokens_reported_but_never_more() -> None:
    clock = FakeClock()
    bucket = LeakyBucket(20, 3.0, clock)
    bucket.observe_remaining(2)
    assert bucket.tokens() == pytest.approx(2.0)
    bucket.observe_remaining(15)
    assert bucket.tokens() == pytest.approx(2.0)


@settings(max_examples=60, deadline=None)
@given(gaps=st.lists(st.floats(min_value=0, max_value=2), min_size=1, max_size=120))
def test_bucket_never_lets_more_than_capacity_plus_rate_times_window(gaps: list[float]) -> None:
    clock = FakeClock()
    bucket = LeakyBucket(20, 3.0, clock)
    sent: list[float] = []
    for gap in gaps:
        clock.now += gap
        wait = bucket.reserve(1e9)
        assert wait is not None
        sent.append(clock.now + wait)
    sent.sort()
    for i, start in enumerate(sent):
        for j in range(i, len(sent)):
            assert j - i + 1 <= 20 + 3.0 * (sent[j] - start) + 1e-6


# --- headers from outside -------------------------------------------------------------------


@given(st.text(max_size=40))
def test_header_parsers_never_fail_and_never_return_negative(raw: str) -> None:
    tokens = parse_tokens_remaining(raw)
    retry = parse_retry_after(raw)
    assert tokens is None or (isinstance(tokens, int) and tokens >= 0)
    assert retry is None or retry >= 0


@pytest.mark.parametrize(
    ("raw", "tokens", "retry"),
    [
        ("17", 17, 17.0),
        (" 3 ", 3, 3.0),
        ("2.5", 2, 2.5),
        ("0", 0, 0.0),
        (None, None, None),
        ("", None, None),
        ("-1", None, None),
        ("nan", None, None),
        ("inf", None, None),
        ("1e3", None, None),
        ("1_000", None, None),
        ("Wed, 21 Oct 2015 07:28:00 GMT", None, None),
        ("99999999999", None, None),
    ],
)
def test_header_parsers_known_values(
    raw: str | None, tokens: int | None, retry: float | None
) -> None:
    assert parse_tokens_remaining(raw) == tokens
    assert parse_retry_after(raw) == retry


# --- deep merge -----------------------------------------------------------------------------

json_leaf = st.one_of(
    st.none(), st.booleans(), st.integers(), st.text(max_size=5), st.floats(allow_nan=False)
)
json_value = st.recursive(
    json_leaf,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=12,
)
json_object = st.dictionaries(st.text(max_size=3), json_value, max_size=5)


def _without_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_none(v) for k, v in value.items() if v is not None}
    return value


@settings(max_examples=200)
@given(base=json_object, changes=json_object)
def test_deep_merge_properties(base: dict[str, Any], changes: dict[str, Any]) -> None:
    base_before = json.dumps(base, sort_keys=True)
    changes_before = json.dumps(changes, sort_keys=True)
    merged = deep_merge(base, changes)
    assert json.dumps(base, sort_keys=True) == base_before  # inputs untouched
    assert json.dumps(changes, sort_keys=True) == changes_before
    assert deep_merge(merged, changes) == merged  # applying twice changes nothing more
    assert deep_merge(base, {}) == base
    for key, value in changes.items():
        if value is None:
            assert key not in merged
        elif not isinstance(value, dict):
            assert merged[key] == value
    for key in base.keys() - changes.keys():
        assert merged[key] == base[key]


def test_deep_merge_nested_objects_null_clears_lists_replace_and_php_empty_maps() -> None:
    base = {
        "shipping": {"first_name": "Ann", "city": "Oslo", "address2": "Flat 2"},
        "order_items": [{"id": "1"}, {"id": "2"}],
        "checkout_data": [],
        "email": "a@example.com",
    }
    changes = {
        "shipping": {"city": "Bergen", "address2": None},
        "order_items": [{"id": "2"}],
        "checkout_data": {"Gift Message": "Hi"},
        "email": None,
    }
    assert deep_merge(base, changes) == {
        "shipping": {"first_name": "Ann", "city": "Bergen"},
        "order_items": [{"id": "2"}],
        "checkout_data": {"Gift Message": "Hi"},
    }


# --- envelopes and error mapping ------------------------------------------------------------


def _reply(status: int, body: Any, content_type: str = "application/json") -> dict[str, Any]:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return interpret_reply(
        status, content_type, raw, method="GET", endpoint="/orders/{id}", secrets=(SECRET,)
    )


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (401, AuthError),
        (403, AuthError),
        (404, NotFound),
        (400, InvalidRequest),
        (422, InvalidRequest),
        (409, Conflict),
        (429, RateLimited),
        (500, UpstreamUnavailable),
        (503, UpstreamUnavailable),
        (405, UpstreamError),
        (418, UpstreamError),
    ],
)
def test_status_codes_map_to_the_hierarchy(status: int, error: type[OrderDeskError]) -> None:
    with pytest.raises(error) as caught:
        _reply(status, {"status": "error", "message": "Nope"})
    assert caught.value.status == status
    assert caught.value.endpoint == "/orders/{id}"
    assert caught.value.message == "Nope"


@pytest.mark.parametrize(
    ("message", "error"),
    [
        ("Invalid API Key", AuthError),
        ("Order Not Found", NotFound),
        ("Shipment Not Added", InvalidRequest),
    ],
)
def test_status_error_in_a_200_is_still_an_error(message: str, error: type[OrderDeskError]) -> None:
    with pytest.raises(error):
        _reply(200, {"status": "error", "message": message})


def test_html_502_from_a_proxy_is_unavailable_with_a_clear_message() -> None:
    with pytest.raises(UpstreamUnavailable) as caught:
        _reply(502, b"<html><body>Bad Gateway</body></html>", "text/html")
    assert "not JSON" in caught.value.message
    assert "text/html" in caught.value.message


def test_html_200_is_an_upstream_error_pointing_at_the_base_url() -> None:
    with pytest.raises(UpstreamError) as caught:
        _reply(200, b"<html>login</html>", "text/html; charset=utf-8")
    assert "base URL" in caught.value.message


def test_success_envelope_is_returned_as_sent() -> None:
    body = {"status": "success", "total_records": "5", "inventory_items": [], "extra": [1]}
    assert _reply(200, body) == body


@settings(max_examples=300)
@given(
    status=st.integers(min_value=100, max_value=599),
    body=st.one_of(
        st.binary(max_size=200),
        json_value.map(lambda v: json.dumps(v).encode()),
        st.builds(
            lambda s, m: json.dumps({"status": s, "message": m}).encode(),
            st.sampled_from(["success", "error", "", None]),
            st.one_of(st.text(max_size=30), st.just(f"bad key {SECRET}"), st.integers()),
        ),
    ),
)
def test_any_reply_gives_a_dict_or_one_of_our_errors_never_the_secret(
    status: int, body: bytes
) -> None:
    error: OrderDeskError | None = None
    try:
        result = _reply(status, body)
    except OrderDeskError as exc:
        error = exc
    if error is not None:
        assert SECRET not in str(error)
        assert SECRET not in repr(error)
        assert len(error.message) <= 500
        return
    assert isinstance(result, dict)
    assert 200 <= status < 300
    assert result.get("status") != "error"


def test_errors_print_their_status_and_endpoint() -> None:
    err = NotFound("Order Not Found", status=404, endpoint="/orders/{id}", method="GET")
    assert str(err) == "Order Not Found (HTTP 404, GET /orders/{id})"
    assert isinstance(InvalidRequest("x"), ValueError)


# --- cache keys and invalidation ------------------------------------------------------------

BASE = "http://127.0.0.1:8090/api/v2"


def test_cache_keys_separate_stores_and_ignore_query_order() -> None:
    a = cache_key("100001", f"{BASE}/orders?limit=5&offset=10")
    assert a == cache_key("100001", f"{BASE}/orders?offset=10&limit=5")
    assert a != cache_key("100002", f"{BASE}/orders?limit=5&offset=10")
    assert a != cache_key("100001", f"{BASE}/orders?limit=6&offset=10")


def test_record_prefixes_cover_the_record_and_its_children_only() -> None:
    prefixes = record_prefixes("1", f"{BASE}/orders/42")
    covered = [
        cache_key("1", f"{BASE}/orders/42"),
        cache_key("1", f"{BASE}/orders/42/shipments"),
        cache_key("1", f"{BASE}/orders/42/order-items/7"),
    ]
    spared = [
        cache_key("1", f"{BASE}/orders/421"),
        cache_key("2", f"{BASE}/orders/42"),
        cache_key("1", f"{BASE}/orders?limit=5"),
    ]
    assert all(any(k.startswith(p) for p in prefixes) for k in covered)
    assert not any(k.startswith(p) for p in prefixes for k in spared)
    lists = listing_prefixes("1", f"{BASE}/orders")
    assert cache_key("1", f"{BASE}/orders?limit=5").startswith(lists[0])
    assert not cache_key("1", f"{BASE}/orders/42").startswith(lists[0])


def test_credentials_get_their_own_entries_and_writes_clear_them_all(tmp_path: Path) -> None:
    cache = ResponseCache(tmp_path / "c.sqlite")
    url = f"{BASE}/orders/42"
    owner = cache.key_for("1", "right-key", url)
    guesser = cache.key_for("1", "wrong-key", url)
    assert owner != guesser
    assert "right-key" not in owner
    assert cache.key_for("1", "right-key", url) == owner
    assert ResponseCache(tmp_path / "c.sqlite").key_for("1", "right-key", url) != owner  # new salt
    prefixes = record_prefixes("1", url)
    assert all(any(k.startswith(p) for p in prefixes) for k in (owner, guesser))
    cache.close()


def test_expired_entries_are_pruned(tmp_path: Path) -> None:
    import datetime as dt

    cache = ResponseCache(tmp_path / "c.sqlite")
    past = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=5)
    future = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=60)
    cache.backend.responses["old"] = CachedResponse(status_code=200, expires=past)
    cache.backend.responses["new"] = CachedResponse(status_code=200, expires=future)
    assert cache.prune_expired() == 1
    assert list(cache.backend.responses.keys()) == ["new"]
    cache.close()


def test_a_key_that_could_break_sql_is_hashed() -> None:
    key = cache_key("1", "http://x/o'rders")
    assert "'" not in key
    assert key.startswith("unsafe|")


def test_delete_prefixes_removes_exactly_the_matching_entries(tmp_path: Path) -> None:
    cache = ResponseCache(tmp_path / "c.sqlite")
    keys = [
        cache_key("1", f"{BASE}/orders/42"),
        cache_key("1", f"{BASE}/orders/42/shipments"),
        cache_key("1", f"{BASE}/orders/421"),
        cache_key("2", f"{BASE}/orders/42"),
        cache_key("1", f"{BASE}/orders?limit=5"),
    ]
    for key in keys:
        cache.backend.responses[key] = CachedResponse(status_code=200)
    deleted = cache.delete_prefixes(record_prefixes("1", f"{BASE}/orders/42"))
    assert deleted == 2
    assert set(cache.backend.responses.keys()) == set(keys[2:])
    cache.close()


def test_ttls_per_endpoint_and_test_is_never_cached() -> None:
    ttls = CacheTTLs(store=300, orders=30, inventory=10)
    assert ttls.for_endpoint("/store") == 300
    assert ttls.for_endpoint("/orders/{id}/shipments") == 30
    assert ttls.for_endpoint("/inventory-items") == 10
    assert ttls.for_endpoint("/test") == 0


# --- coalescing and observer ----------------------------------------------------------------


def test_single_flight_runs_once_for_concurrent_callers() -> None:
    flights: SingleFlight[int] = SingleFlight()
    release = threading.Event()
    calls: list[int] = []
    arrived: list[int] = []
    results: list[tuple[int, bool]] = []

    def work() -> int:
        calls.append(1)
        release.wait(5)
        return 7

    def caller() -> None:
        arrived.append(1)
        results.append(flights.run("k", work))

    threads = [threading.Thread(target=caller) for _ in range(8)]
    for thread in threads:
        thread.start()
    while len(arrived) < 8:
        release.wait(0.01)
    release.wait(0.2)  # let the last arrivals reach run() while the leader still works
    release.set()
    for thread in threads:
        thread.join(5)
    assert len(calls) == 1
    assert [r for r, _ in results] == [7] * 8
    assert sum(1 for _, shared in results if not shared) == 1


def test_a_failing_observer_is_logged_and_never_breaks_the_call(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    def observer(call: UpstreamCall) -> None:
        raise RuntimeError("metrics are down")

    with UpstreamMachinery(tmp_path / "c.sqlite", observer=observer) as machinery:
        call = UpstreamCall("1", "GET", "/test", 200, 1.0, False, 0, 19, False, 0)
        with caplog.at_level(logging.ERROR):
            machinery.report(call)
    assert "observer failed" in caplog.text


def test_backoff_is_jittered_and_bounded() -> None:
    import random

    policy = RetryPolicy(backoff_base=0.5, backoff_cap=4.0)
    rng = random.Random(1)
    for attempt in range(1, 10):
        ceiling = min(4.0, 0.5 * 2 ** (attempt - 1))
        assert ceiling / 2 <= policy.backoff(attempt, rng) <= ceiling


# --- input checks before any request --------------------------------------------------------


@settings(max_examples=200)
@given(
    filters=st.dictionaries(
        st.one_of(st.sampled_from(sorted(ORDER_LIST_FILTERS)), st.text(max_size=8)),
        json_value,
        max_size=4,
    )
)
def test_order_filters_from_outside_give_params_or_one_clear_error(filters: dict[str, Any]) -> None:
    refusal = ""
    try:
        params = order_filter_params(filters)
    except InvalidRequest as exc:
        refusal = str(exc)
    if refusal:
        return
    assert all(isinstance(v, str) for v in params.values())
    assert set(params) <= ORDER_LIST_FILTERS


@given(st.one_of(st.text(max_size=30), st.integers(), st.floats(), st.none(), st.booleans()))
def test_ids_from_outside_are_digits_or_refused(value: Any) -> None:
    try:
        checked = checked_id(value, "order_id")
    except InvalidRequest:
        return
    assert checked.isascii()
    assert checked.isdigit()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.fixture
def offline(tmp_path: Path) -> tuple[OrderDeskClient, list[UpstreamCall]]:
    calls: list[UpstreamCall] = []
    machinery = UpstreamMachinery(
        tmp_path / "cache.sqlite",
        connect_timeout=1.0,
        read_timeout=1.0,
        retry=RetryPolicy(max_retries=2, backoff_base=0.001, backoff_cap=0.002),
        observer=calls.append,
    )
    base = f"http://127.0.0.1:{_closed_port()}/api/v2"
    yield OrderDeskClient("100001", SECRET, base, machinery), calls
    machinery.close()


@pytest.mark.parametrize("bad", ["12/../34", "abc", "", "1 2", -1, 1.5, True, None, "１２"])
def test_bad_ids_are_refused_before_any_request(offline: Any, bad: Any) -> None:
    client, calls = offline
    with pytest.raises(InvalidRequest) as caught:
        client.get_order(bad)
    assert "order_id" in str(caught.value)
    assert calls == []


def test_unknown_filters_and_bad_paging_are_refused(offline: Any) -> None:
    client, calls = offline
    with pytest.raises(InvalidRequest, match="unknown order filter 'colour'"):
        client.list_orders(colour="red")
    with pytest.raises(InvalidRequest, match="limit"):
        client.list_orders(limit=501)
    with pytest.raises(InvalidRequest, match="order must be"):
        client.list_orders(order="sideways")
    with pytest.raises(InvalidRequest, match="exactly one"):
        client.move_orders([1], folder_id=2, folder_name="New")
    with pytest.raises(InvalidRequest, match="JSON"):
        client.create_order({"when": object()})
    assert calls == []


def test_constructor_checks_and_repr_hides_the_key(tmp_path: Path) -> None:
    with UpstreamMachinery(tmp_path / "c.sqlite") as machinery:
        client = OrderDeskClient("100001", SECRET, BASE + "/", machinery)
        assert SECRET not in repr(client)
        assert client.base_url == BASE
        assert client.with_deadline(2.5).deadline == 2.5
        assert client.deadline is None
        for bad_base in ["ftp://x/api", "http://x/api?key=1", "http://x/a'b", "not a url"]:
            with pytest.raises(InvalidRequest, match="base_url"):
                OrderDeskClient("100001", SECRET, bad_base, machinery)
        with pytest.raises(InvalidRequest, match="store_id"):
            OrderDeskClient("abc", SECRET, BASE, machinery)
        with pytest.raises(InvalidRequest) as caught:
            OrderDeskClient("100001", SECRET + "\r\nX: y", BASE, machinery)
        assert SECRET not in str(caught.value)


def test_unreachable_get_is_retried_then_unavailable(offline: Any) -> None:
    client, calls = offline
    with pytest.raises(UpstreamUnavailable) as caught:
        client.get_order(1)
    assert "refused" in caught.value.message
    assert caught.value.write_may_have_happened is False
    assert calls[-1].retries == 2
    assert calls[-1].status is None
    assert SECRET not in str(caught.value)


def test_post_that_never_connected_says_nothing_was_written(offline: Any) -> None:
    client, calls = offline
    with pytest.raises(UpstreamUnavailable) as caught:
        client.add_order_history(1, "hello")
    assert caught.value.write_may_have_happened is False
    assert calls[-1].method == "POST"


def test_deep_merge_copes_with_records_nested_deeper_than_the_recursion_limit() -> None:
    from orderdesk_mcp.orderdesk.merge import deep_merge

    deep: Any = "leaf"
    for _ in range(5000):
        deep = {"metadata": deep, "list": [1, {"x": 2}]}
    merged = deep_merge({"order_metadata": deep, "email": "a@b.c"}, {"email": "d@e.f"})
    assert merged["email"] == "d@e.f"
    assert merged["order_metadata"] is not deep
    assert merged["order_metadata"]["list"] == [1, {"x": 2}]
