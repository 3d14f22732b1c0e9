"""A write Order Desk reported done is never turned into an error, and never sent twice.

Real sandbox over HTTP, real client. Time is frozen for the client's rate-limit bucket, so
"the read-back after the write finds no token" is exact, not a race.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from orderdesk_mcp.mcp.registry import StaticStoreResolver, StoreRef, execute_tool, find_tool
from orderdesk_mcp.orderdesk import OrderDeskClient, RetryPolicy, UpstreamMachinery
from orderdesk_mcp.orderdesk.errors import UpstreamUnavailable
from orderdesk_mcp.orderdesk.machinery import UpstreamCall
from orderdesk_mcp.sandbox import RunningSandbox
from tests.conftest import SANDBOX_DEMO_STORE

FAST = RetryPolicy(max_retries=2, backoff_base=0.01, backoff_cap=0.02, max_429_retries=0)
DEMO = StoreRef(alias="demo", store_id=SANDBOX_DEMO_STORE, is_default=True)


@pytest.fixture
def calls() -> list[UpstreamCall]:
    return []


@pytest.fixture
def frozen(tmp_path: Path, calls: list[UpstreamCall]) -> Iterator[UpstreamMachinery]:
    """Machinery whose clock stands still: a bucket never refills by itself."""
    with UpstreamMachinery(
        tmp_path / "cache.sqlite", retry=FAST, clock=lambda: 1000.0, observer=calls.append
    ) as machinery:
        yield machinery


def resolver_for(client: OrderDeskClient) -> StaticStoreResolver:
    return StaticStoreResolver([(DEMO, client)])


def run(resolver: StaticStoreResolver, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    tool = find_tool(name)
    assert tool is not None
    outcome = execute_tool(tool, arguments, resolver)
    assert outcome.outcome == "ok", outcome.result["content"][0]["text"]
    structured: dict[str, Any] = outcome.result["structuredContent"]
    return structured


def posts(sandbox: RunningSandbox, endpoint: str) -> int:
    count: int = sandbox.stats(SANDBOX_DEMO_STORE)["by_endpoint"].get(f"POST {endpoint}", 0)
    return count


def some_order_id(sandbox: RunningSandbox) -> str:
    return sorted(sandbox.store(SANDBOX_DEMO_STORE).orders)[0]


@pytest.mark.parametrize(
    ("tool", "arguments", "endpoint", "check"),
    [
        (
            "add_shipment",
            {"tracking_number": "1ZREADBACK", "carrier_code": "UPS"},
            "/orders/{id}/shipments",
            "list_shipments",
        ),
        (
            "add_order_item",
            {"item": {"name": "Gift wrap", "code": "WRAP", "price": 5}},
            "/orders/{id}/order-items",
            "list_order_items",
        ),
        (
            "create_inventory_item",
            {"item": {"name": "Readback mug", "code": "READBACK-1"}},
            "/inventory-items",
            "list_inventory_items",
        ),
    ],
)
def test_a_failed_read_back_after_a_landed_write_is_no_error(
    sandbox: RunningSandbox,
    sandbox_keys: dict[str, str],
    frozen: UpstreamMachinery,
    tool: str,
    arguments: dict[str, Any],
    endpoint: str,
    check: str,
) -> None:
    client = OrderDeskClient(
        SANDBOX_DEMO_STORE, sandbox_keys[SANDBOX_DEMO_STORE], sandbox.base_url, frozen
    ).with_deadline(0)
    if tool != "create_inventory_item":
        arguments = {**arguments, "order_id": some_order_id(sandbox)}
    # One token left: the write takes it, the read-back after it finds none (and may not wait).
    frozen.buckets.for_store(SANDBOX_DEMO_STORE).observe_remaining(1)
    done = run(resolver_for(client), tool, arguments)
    assert posts(sandbox, endpoint) == 1
    record = next(value for key, value in done.items() if key != "message")
    assert record is None
    assert "Do not send the write again" in done["message"]
    assert check in done["message"]


def test_an_order_put_that_adds_a_line_is_never_resent(
    sandbox: RunningSandbox,
    sandbox_keys: dict[str, str],
    tmp_path: Path,
    calls: list[UpstreamCall],
) -> None:
    with UpstreamMachinery(tmp_path / "c.sqlite", retry=FAST, observer=calls.append) as machinery:
        client = OrderDeskClient(
            SANDBOX_DEMO_STORE, sandbox_keys[SANDBOX_DEMO_STORE], sandbox.base_url, machinery
        )
        order_id = some_order_id(sandbox)
        order = client.get_order(order_id, fresh=True)["order"]
        kept = [{"id": line["id"], "quantity": line["quantity"]} for line in order["order_items"]]
        sandbox.set_faults(SANDBOX_DEMO_STORE, error_rate=1.0)
        try:
            with pytest.raises(UpstreamUnavailable) as adding:
                client.put_order(order_id, {**order, "order_items": [*kept, {"name": "Wrap"}]})
            with pytest.raises(UpstreamUnavailable) as replacing:
                client.put_order(order_id, {**order, "order_items": kept})
        finally:
            sandbox.set_faults(SANDBOX_DEMO_STORE)
    puts = [call for call in calls if call.method == "PUT"]
    assert [call.retries for call in puts] == [0, FAST.max_retries]
    # Either may have landed on an attempt whose reply was lost: never "nothing changed".
    assert adding.value.write_may_have_happened
    assert replacing.value.write_may_have_happened
    assert "may or may not have happened" in str(adding.value)
