"""The official MCP Python SDK client against the real server (waitress, real sandbox)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.shared.exceptions import MCPError
from mcp.types import PromptReference

from orderdesk_mcp.db.models import AuditEvent, McpSession
from orderdesk_mcp.mcp.registry import all_tools
from orderdesk_mcp.metrics import get_metrics
from tests.conftest import McpServer

T = TypeVar("T")


def connect(
    server: McpServer,
    work: Callable[[Client], Awaitable[T]],
    *,
    token: str | None = None,
    mode: str = "auto",
    headers: dict[str, str] | None = None,
    **options: Any,
) -> T:
    """Run `work` with an SDK client connected over streamable HTTP; returns its result.

    `options` go to `Client` as they are (`cache=None`, `log_level=...`, `prior_discover=...`).
    """

    async def run() -> T:
        auth = {"Authorization": f"Bearer {token or server.token}", **(headers or {})}
        async with create_mcp_http_client(headers=auth) as http_client:
            transport = streamable_http_client(server.url, http_client=http_client)
            async with Client(transport, mode=mode, **options) as client:
                return await work(client)

    return asyncio.run(asyncio.wait_for(run(), timeout=60))


def structured(result: Any) -> dict[str, Any]:
    assert result.is_error is False, result.content[0].text
    data: dict[str, Any] = result.structured_content
    assert json.loads(result.content[0].text) == data
    return data


def test_default_mode_probes_and_stays_on_2026_without_a_session(mcp_server: McpServer) -> None:
    async def work(client: Client) -> tuple[str, str | None]:
        await client.list_tools()
        info = client.server_info
        return client.protocol_version, info.name if info else None

    version, name = connect(mcp_server, work)
    assert version == "2026-07-28"
    assert name == "orderdesk-mcp"
    exposition = get_metrics(mcp_server.app).exposition().decode()
    assert 'method="server/discover"' in exposition  # the probe came, and was answered
    assert 'method="initialize"' not in exposition  # no fallback round trip
    assert McpSession.select().count() == 0


# The SDK warns that ping is gone in the 2026 revision; on a handshake-era session it works.
@pytest.mark.filterwarnings("ignore::mcp.shared.exceptions.MCPDeprecationWarning")
def test_legacy_mode_session_pings_and_ends_with_delete(mcp_server: McpServer) -> None:
    async def work(client: Client) -> str:
        await client.send_ping()
        return client.protocol_version

    assert connect(mcp_server, work, mode="legacy") == "2025-11-25"
    session = McpSession.get()
    assert session.protocol_version == "2025-11-25"
    assert session.ended is not None  # the client's DELETE on close ended it


def test_legacy_mode_connects_directly(mcp_server: McpServer) -> None:
    async def work(client: Client) -> str:
        return client.protocol_version

    assert connect(mcp_server, work, mode="legacy") == "2025-11-25"


def test_tools_list_is_the_whole_catalogue(mcp_server: McpServer) -> None:
    async def work(client: Client) -> list[Any]:
        return (await client.list_tools()).tools

    tools = connect(mcp_server, work)
    assert [tool.name for tool in tools] == [tool.name for tool in all_tools()]
    for tool in tools:
        assert tool.title
        assert tool.description
        assert tool.input_schema["type"] == "object"
        assert tool.output_schema is not None
        assert tool.annotations is not None


def _every_tool_once() -> Callable[[Client], Awaitable[dict[str, Any]]]:
    """Call all catalogue tools, reads and writes, mostly on the demo store."""

    async def work(client: Client) -> dict[str, Any]:
        called: dict[str, Any] = {}

        async def call(name: str, arguments: dict[str, Any] | None = None) -> dict[str, Any]:
            called[name] = data = structured(await client.call_tool(name, arguments or {}))
            return data

        await call("list_stores")
        folders = {f["name"]: f["id"] for f in (await call("get_store"))["store"]["folders"]}
        await call("test_connection", {"store": "empty"})
        orders = (await call("list_orders", {"folder": "New", "limit": 3}))["orders"]
        order_id = orders[0]["id"]
        await call("get_order", {"order_id": order_id, "fields": ["email"]})
        await call("summarize_orders", {})
        created = await call(
            "create_order",
            {
                "store": "empty",
                "order": {
                    "source_id": "SDK-1",
                    "email": "sdk@example.com",
                    "shipping": {"first_name": "Sam", "last_name": "Dee", "country": "US"},
                    "order_items": [{"name": "Mug", "code": "MUG", "price": 9, "quantity": 1}],
                },
            },
        )
        new_id = created["order"]["id"]
        await call(
            "update_order",
            {"store": "empty", "order_id": new_id, "changes": {"email": "b@example.com"}},
        )
        await call("add_order_note", {"order_id": order_id, "note": "checked by the SDK test"})
        await call("move_orders", {"order_ids": [orders[1]["id"]], "folder": "Prepared"})
        assert folders["Prepared"]

        lines = (await call("list_order_items", {"order_id": order_id}))["order_items"]
        await call("get_order_item", {"order_id": order_id, "item_id": lines[0]["id"]})
        line = (
            await call(
                "add_order_item",
                {"order_id": order_id, "item": {"name": "Wrap", "code": "WRAP", "price": 1}},
            )
        )["order_item"]
        item = {"order_id": order_id, "item_id": line["id"]}
        await call("update_order_item", {**item, "changes": {"quantity": 2}})
        await call("delete_order_item", item)

        await call("list_shipments", {"order_id": order_id})
        shipment = (
            await call(
                "add_shipment",
                {"order_id": order_id, "tracking_number": "1ZSDK", "carrier_code": "UPS"},
            )
        )["shipment"]
        ref = {"order_id": order_id, "shipment_id": shipment["id"]}
        await call("get_shipment", ref)
        await call("update_shipment", {**ref, "changes": {"carrier_code": "FedEx"}})
        await call("delete_shipment", ref)
        await call(
            "add_shipments_batch",
            {"shipments": [{"order_id": orders[2]["id"], "tracking_number": "9400SDK"}]},
        )

        stock = (await call("list_inventory_items", {"limit": 2}))["inventory_items"]
        await call("get_inventory_item", {"item_id": stock[0]["id"]})
        made = (
            await call(
                "create_inventory_item", {"item": {"name": "Pin", "code": "PIN-SDK", "price": 2}}
            )
        )["inventory_item"]
        await call("update_inventory_item", {"item_id": made["id"], "changes": {"stock": 5}})
        await call(
            "update_inventory_items_batch",
            {"items": [{"item_id": made["id"], "changes": {"price": 3}}]},
        )
        await call("delete_inventory_item", {"item_id": made["id"], "dry_run": True})
        await call("delete_inventory_item", {"item_id": made["id"]})
        await call("delete_order", {"store": "empty", "order_id": new_id, "dry_run": True})
        await call("delete_order", {"store": "empty", "order_id": new_id})
        return called

    return work


@pytest.mark.slow
def test_every_tool_through_the_sdk_is_audited(mcp_server: McpServer) -> None:
    called = connect(mcp_server, _every_tool_once())
    assert set(called) == {tool.name for tool in all_tools()}
    events = list(AuditEvent.select().order_by(AuditEvent.id))
    assert {event.action.removeprefix("tools/call ") for event in events} == set(called)
    assert all(event.outcome == "ok" for event in events)
    assert all(event.tenant_id == mcp_server.tenant.tenant.id for event in events)
    assert all(event.request_id for event in events)
    by_tool = {event.action.removeprefix("tools/call "): event for event in events}
    assert by_tool["list_stores"].upstream_calls == 0
    assert by_tool["list_stores"].store is None
    assert by_tool["create_order"].store == "empty"
    assert by_tool["create_order"].upstream_calls >= 1
    assert by_tool["get_order"].store == "demo"
    assert json.loads(by_tool["get_order"].arguments)["fields"] == ["email"]


@pytest.mark.filterwarnings("ignore::mcp.shared.exceptions.MCPDeprecationWarning")
@pytest.mark.parametrize(
    ("mode", "not_found"),
    # Resource-not-found is -32602 on 2026-07-28 (the revision renumbered it), -32002 before.
    [("legacy", -32002), ("2026-07-28", -32602)],
)
def test_resources_prompts_and_completion(mcp_server: McpServer, mode: str, not_found: int) -> None:
    async def work(client: Client) -> dict[str, Any]:
        resources = (await client.list_resources()).resources
        templates = (await client.list_resource_templates()).resource_templates
        store = await client.read_resource("orderdesk://demo/store")
        prompts = (await client.list_prompts()).prompts
        prompt = await client.get_prompt("fulfil_order", {"order_id": "123", "store": "demo"})
        completion = await client.complete(
            PromptReference(type="ref/prompt", name="triage_new_orders"),
            {"name": "store", "value": "de"},
        )
        with pytest.raises(MCPError) as missing:
            await client.read_resource("orderdesk://demo/orders/999999999")
        with pytest.raises(MCPError) as foreign:
            await client.read_resource("orderdesk://someone-else/store")
        with pytest.raises(MCPError) as no_prompt:
            await client.get_prompt("no_such_prompt")
        if mode == "legacy":  # 2026-07-28 moved the level into each request's _meta
            await client.set_logging_level("warning")
        return {
            "resources": [resource.uri for resource in resources],
            "templates": [template.uri_template for template in templates],
            "store": json.loads(store.contents[0].text),  # type: ignore[union-attr]
            "prompts": [prompt.name for prompt in prompts],
            "prompt_text": prompt.messages[0].content.text,  # type: ignore[union-attr]
            "completion": completion.completion.values,
            "errors": [
                missing.value.error.code,
                foreign.value.error.code,
                no_prompt.value.error.code,
            ],
        }

    seen = connect(mcp_server, work, mode=mode)
    assert seen["resources"] == ["orderdesk://demo/store", "orderdesk://empty/store"]
    assert "orderdesk://{store}/orders/{order_id}" in seen["templates"]
    assert seen["store"]["alias"] == "demo"
    assert {"triage_new_orders", "fulfil_order"} <= set(seen["prompts"])
    assert "123" in seen["prompt_text"]
    assert seen["completion"] == ["demo"]
    assert seen["errors"] == [not_found, not_found, -32602]


def test_read_only_key_sees_no_write_tools_and_cannot_call_them(mcp_server: McpServer) -> None:
    async def work(client: Client) -> tuple[list[str], int]:
        names = [tool.name for tool in (await client.list_tools()).tools]
        with pytest.raises(MCPError) as refused:
            await client.call_tool("delete_order", {"order_id": "1", "dry_run": True})
        assert "read-only" in refused.value.error.message
        return names, refused.value.error.code

    names, code = connect(mcp_server, work, token=mcp_server.tenant.read_only_token)
    reads = {tool.name for tool in all_tools() if tool.annotations.read_only}
    assert set(names) == reads
    assert code == -32602
    assert AuditEvent.select().count() == 0


def test_toolsets_header_narrows_the_catalogue(mcp_server: McpServer) -> None:
    async def work(client: Client) -> set[str]:
        with pytest.raises(MCPError):
            await client.call_tool("list_orders", {})
        return {tool.name for tool in (await client.list_tools()).tools}

    names = connect(mcp_server, work, headers={"X-MCP-Toolsets": "inventory,store"})
    wanted = {tool.name for tool in all_tools() if tool.toolset in {"inventory", "store"}}
    assert names == wanted
