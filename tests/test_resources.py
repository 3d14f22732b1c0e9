"""MCP resources against the real sandbox: listing, templates, reading, bad URIs."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from orderdesk_mcp.mcp.registry import StaticStoreResolver
from orderdesk_mcp.mcp.resources import (
    ResourceNotFound,
    ResourceUnavailable,
    list_resource_templates,
    list_resources,
    read_resource,
)
from orderdesk_mcp.orderdesk import UpstreamMachinery
from orderdesk_mcp.sandbox import RunningSandbox
from tests.test_tools_sandbox import FAST_RETRY, KEYS, MAIN, make_resolver, start_test_sandbox


@pytest.fixture
def sandbox_and_resolver(tmp_path: Path) -> Iterator[tuple[RunningSandbox, StaticStoreResolver]]:
    with start_test_sandbox() as running:
        machinery = UpstreamMachinery(tmp_path / "http-cache.sqlite", retry=FAST_RETRY)
        yield running, make_resolver(running, machinery)
        machinery.close()


@pytest.fixture
def resolver(
    sandbox_and_resolver: tuple[RunningSandbox, StaticStoreResolver],
) -> StaticStoreResolver:
    return sandbox_and_resolver[1]


def read_json(uri: str, resolver: StaticStoreResolver) -> dict[str, object]:
    result = read_resource(uri, resolver)
    [content] = result["contents"]
    assert content["uri"] == uri
    assert content["mimeType"] == "application/json"
    loaded: dict[str, object] = json.loads(content["text"])
    return loaded


def test_one_store_resource_per_store(resolver: StaticStoreResolver) -> None:
    listed = list_resources(resolver)
    assert [entry["uri"] for entry in listed] == [
        "orderdesk://main/store",
        "orderdesk://empty/store",
    ]
    for entry in listed:
        assert entry["mimeType"] == "application/json"
        assert entry["name"]
        assert "100001" in listed[0]["title"]
    assert list_resources(StaticStoreResolver([])) == []


def test_templates() -> None:
    templates = {entry["name"]: entry["uriTemplate"] for entry in list_resource_templates()}
    assert templates == {
        "order": "orderdesk://{store}/orders/{order_id}",
        "inventory-item": "orderdesk://{store}/inventory/{item_id}",
    }


def test_read_store_order_and_inventory_item(resolver: StaticStoreResolver) -> None:
    store = read_json("orderdesk://main/store", resolver)
    assert store["alias"] == "main"
    text = json.dumps(store)
    assert '"name": "New"' in text
    assert KEYS[MAIN.store_id] not in text
    assert read_json("orderdesk://100002/store", resolver)["alias"] == "empty"

    order_id = "1000001"
    order = read_json(f"orderdesk://main/orders/{order_id}", resolver)["order"]
    assert isinstance(order, dict)
    assert order["id"] == order_id
    item = read_json("orderdesk://main/inventory/2001", resolver)["inventory_item"]
    assert isinstance(item, dict)
    assert item["id"] == 2001


@pytest.mark.parametrize(
    "uri",
    [
        "https://main/store",
        "orderdesk://main",
        "orderdesk://main/orders",
        "orderdesk://main/orders/abc",
        "orderdesk://main/orders/1/items",
        "orderdesk://main/store?x=1",
        "orderdesk:///store",
        "not a uri at all",
        "orderdesk://[bad/store",
    ],
)
def test_malformed_uris_say_what_a_uri_looks_like(uri: str, resolver: StaticStoreResolver) -> None:
    with pytest.raises(ResourceNotFound, match="orderdesk://STORE/orders/ORDER_ID"):
        read_resource(uri, resolver)


def test_unknown_store_or_record_is_not_found(resolver: StaticStoreResolver) -> None:
    with pytest.raises(ResourceNotFound, match="store add"):
        read_resource("orderdesk://elsewhere/store", resolver)
    with pytest.raises(ResourceNotFound, match="list_orders"):
        read_resource("orderdesk://main/orders/42", resolver)
    with pytest.raises(ResourceNotFound):
        read_resource("orderdesk://empty/inventory/2001", resolver)


def test_upstream_failure_is_unavailable_with_advice(
    sandbox_and_resolver: tuple[RunningSandbox, StaticStoreResolver],
) -> None:
    running, resolver = sandbox_and_resolver
    running.set_faults(MAIN.store_id, force_429=5)
    with pytest.raises(ResourceUnavailable, match="retry in"):
        read_resource("orderdesk://main/store", resolver)
