"""Arbitrary query strings and bodies never make the sandbox answer 5xx or non-JSON."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orderdesk_mcp.sandbox import RunningSandbox, SandboxStoreSpec, start_sandbox

STORE = "500001"

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**15), max_value=10**15)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=5)
    ),
    max_leaves=12,
)
order_like = st.fixed_dictionaries(
    {},
    optional={
        "order_items": json_values,
        "shipping": json_values,
        "customer": json_values,
        "source_id": json_values,
        "shipping_total": json_values,
        "discount_list": json_values,
        "checkout_data": json_values,
        "folder_id": json_values,
        "email": json_values,
    },
)
query_keys = st.sampled_from(
    [
        "limit",
        "offset",
        "order_by",
        "order",
        "folder_id",
        "folder_name",
        "search_start_date",
        "modified_end_date",
        "search_end_date_local",
        "email",
        "code",
        "search",
        "get_order_history",
        "anything",
    ]
)
queries = st.dictionaries(query_keys, st.text(max_size=25), max_size=5)


@pytest.fixture(scope="module")
def fuzz_sandbox() -> Iterator[RunningSandbox]:
    # A huge bucket: the fuzzer sends far more requests than Order Desk's limit allows.
    with start_sandbox([SandboxStoreSpec(STORE, "sk_fuzz", seed="demo")]) as running:
        bucket = running.store(STORE).bucket
        bucket.capacity = bucket.refill_per_second = 10**9
        bucket.refill_completely()
        yield running


def assert_json_envelope(response: requests.Response) -> None:
    assert response.status_code < 500, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.json()["status"] in ("success", "error")


FUZZ = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@FUZZ
@given(params=queries, path=st.sampled_from(["/orders", "/inventory-items"]))
def test_list_queries(fuzz_sandbox: RunningSandbox, params: dict[str, str], path: str) -> None:
    response = requests.get(
        f"{fuzz_sandbox.base_url}{path}",
        params=params,
        headers=fuzz_sandbox.headers(STORE),
        timeout=10,
    )
    assert_json_envelope(response)


@FUZZ
@given(body=order_like | json_values)
def test_order_bodies(fuzz_sandbox: RunningSandbox, body: Any) -> None:
    response = requests.post(
        f"{fuzz_sandbox.base_url}/orders",
        json=body,
        headers=fuzz_sandbox.headers(STORE),
        timeout=10,
    )
    assert_json_envelope(response)


@FUZZ
@given(
    body=json_values,
    path=st.sampled_from(
        [
            "/orders/1000001/order-items",
            "/orders/1000001/shipments",
            "/orders/1000001/order-history",
            "/move-orders",
            "/batch-shipments",
            "/inventory-items",
        ]
    ),
)
def test_write_bodies(fuzz_sandbox: RunningSandbox, body: Any, path: str) -> None:
    response = requests.post(
        f"{fuzz_sandbox.base_url}{path}", json=body, headers=fuzz_sandbox.headers(STORE), timeout=10
    )
    assert_json_envelope(response)


@FUZZ
@given(raw=st.binary(max_size=60), path=st.sampled_from(["/orders", "/batch-inventory-items"]))
def test_raw_bytes(fuzz_sandbox: RunningSandbox, raw: bytes, path: str) -> None:
    method = "PUT" if "batch" in path else "POST"
    response = requests.request(
        method,
        f"{fuzz_sandbox.base_url}{path}",
        data=raw,
        headers=fuzz_sandbox.headers(STORE),
        timeout=10,
    )
    assert_json_envelope(response)
