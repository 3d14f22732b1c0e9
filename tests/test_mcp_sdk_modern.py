"""The official MCP Python SDK client at revision 2026-07-28 against the real server.

Over HTTP (waitress on loopback, the sandbox behind it, a tenant key) and over stdio
(`orderdesk-mcp stdio`). Every /mcp request the server receives is recorded by a WSGI wrapper
(tests/mcp_wire.py), so the tests see the wire itself: no `initialize`, no session id sent or
minted, the revision's headers on every request, and no fallback round trip in auto mode.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from mcp import Client, StdioServerParameters
from mcp.shared.exceptions import MCPError
from mcp.types import PromptReference

from orderdesk_mcp.db.models import AuditEvent, McpSession
from orderdesk_mcp.mcp.registry import all_tools
from orderdesk_mcp.sandbox import RunningSandbox
from tests.conftest import SANDBOX_DEMO_STORE, McpServer
from tests.mcp_wire import WireLog
from tests.test_mcp_local import local_environ
from tests.test_mcp_sdk import connect, structured

MODERN = "2026-07-28"
LEGACY = "2025-11-25"
VERSION_KEY = "io.modelcontextprotocol/protocolVersion"
CLIENT_INFO_KEY = "io.modelcontextprotocol/clientInfo"
CAPABILITIES_KEY = "io.modelcontextprotocol/clientCapabilities"
SERVER_INFO_KEY = "io.modelcontextprotocol/serverInfo"
# Where the revision puts the name a request acts on, mirrored into Mcp-Name.
NAMED_METHODS = {"tools/call": "name", "prompts/get": "name", "resources/read": "uri"}


@pytest.fixture
def wire(mcp_app: Flask) -> WireLog:
    return WireLog.install(mcp_app)


def assert_stateless_2026(wire: WireLog) -> None:
    """Every exchange was a self-describing 2026-07-28 POST; no session anywhere."""
    assert wire.exchanges, "the client sent nothing"
    for exchange in wire.exchanges:
        method = exchange.rpc_method
        assert exchange.http_method == "POST", exchange
        assert method not in ("initialize", "notifications/initialized"), exchange
        assert "Mcp-Session-Id" not in exchange.headers, exchange
        assert exchange.minted_session is None, exchange
        # Errors have their HTTP status on this revision (-32602 is 400, as in the SDK's table).
        assert exchange.status in (200, 400, 404), exchange
        assert exchange.headers["MCP-Protocol-Version"] == MODERN
        assert exchange.headers["Mcp-Method"] == method
        if method in NAMED_METHODS:
            assert exchange.headers["Mcp-Name"] == exchange.body["params"][NAMED_METHODS[method]]
        assert exchange.meta[VERSION_KEY] == MODERN
        assert CAPABILITIES_KEY in exchange.meta
        assert exchange.meta[CLIENT_INFO_KEY]["name"]
    assert McpSession.select().count() == 0


def _tour() -> Any:
    """Lists, a cached get_order, resources, prompts and completion; what each returned."""

    async def work(client: Client) -> dict[str, Any]:
        tools = await client.list_tools()
        order_id = str(
            structured(await client.call_tool("list_orders", {"limit": 1}))["orders"][0]["id"]
        )
        first = structured(await client.call_tool("get_order", {"order_id": order_id}))
        again = structured(await client.call_tool("get_order", {"order_id": order_id}))
        resources = await client.list_resources()
        templates = await client.list_resource_templates()
        store = await client.read_resource("orderdesk://demo/store")
        prompts = await client.list_prompts()
        prompt = await client.get_prompt("fulfil_order", {"order_id": order_id, "store": "demo"})
        completion = await client.complete(
            PromptReference(type="ref/prompt", name="triage_new_orders"),
            {"name": "store", "value": "de"},
        )
        return {
            "version": client.protocol_version,
            "server": client.server_info.name if client.server_info else None,
            "tools": tools,
            "order_id": order_id,
            "orders": (first, again),
            "resources": resources,
            "templates": templates,
            "store": store,
            "prompts": prompts,
            "prompt_text": prompt.messages[0].content.text,  # type: ignore[union-attr]
            "completion": completion.completion.values,
        }

    return work


def assert_tour(seen: dict[str, Any]) -> None:
    assert seen["version"] == MODERN
    assert [tool.name for tool in seen["tools"].tools] == [tool.name for tool in all_tools()]
    first, again = seen["orders"]
    assert first == again
    assert str(first["order"]["id"]) == seen["order_id"]
    uris = [resource.uri for resource in seen["resources"].resources]
    assert uris == ["orderdesk://demo/store", "orderdesk://empty/store"]
    templates = [template.uri_template for template in seen["templates"].resource_templates]
    assert "orderdesk://{store}/orders/{order_id}" in templates
    assert json.loads(seen["store"].contents[0].text)["alias"] == "demo"
    assert {"triage_new_orders", "fulfil_order"} <= {p.name for p in seen["prompts"].prompts}
    assert seen["order_id"] in seen["prompt_text"]
    assert seen["completion"] == ["demo"]
    # The revision's cache hints: required on these five results; tenant data never public.
    for key in ("tools", "resources", "templates", "store", "prompts"):
        result = seen[key]
        assert result.result_type == "complete", key
        assert result.ttl_ms is not None, key
        assert result.ttl_ms >= 0, key
        assert result.cache_scope in ("public", "private"), key
    assert seen["resources"].cache_scope == "private"
    assert seen["store"].cache_scope == "private"


def assert_get_order_was_cached(server: McpServer) -> None:
    """The second get_order came from the server's cache: audited with no upstream call.

    (The first may be cached too: list_orders already fetched the record.)
    """
    calls = [
        event
        for event in AuditEvent.select().order_by(AuditEvent.id)
        if event.action == "tools/call get_order"
    ]
    assert len(calls) == 2
    assert calls[1].upstream_calls == 0
    assert all(event.tenant_id == server.tenant.tenant.id for event in calls)
    assert all(event.outcome == "ok" for event in calls)


# --- HTTP ----------------------------------------------------------------------------------


def test_pinned_2026_mode_over_http(mcp_server: McpServer, wire: WireLog) -> None:
    # No client-side cache, so every call reaches the server and shows on the wire.
    seen = connect(mcp_server, _tour(), mode=MODERN, cache=None)
    assert_tour(seen)
    assert_get_order_was_cached(mcp_server)
    assert_stateless_2026(wire)
    # Pinned: no probe either; each SDK call was exactly one POST.
    assert wire.rpc_methods() == [
        "tools/list",
        "tools/call",
        "tools/call",
        "tools/call",
        "resources/list",
        "resources/templates/list",
        "resources/read",
        "prompts/list",
        "prompts/get",
        "completion/complete",
    ]
    # serverInfo travels in every result's _meta instead of an initialize result.
    for result in (seen["tools"], seen["resources"], seen["store"], seen["prompts"]):
        assert result.meta[SERVER_INFO_KEY]["name"] == "orderdesk-mcp"


def test_auto_mode_adopts_2026_with_no_fallback_round_trip(
    mcp_server: McpServer, wire: WireLog
) -> None:
    seen = connect(mcp_server, _tour(), cache=None)  # mode="auto", the SDK's default
    assert_tour(seen)
    assert seen["server"] == "orderdesk-mcp"  # from server/discover's _meta
    assert_get_order_was_cached(mcp_server)
    assert_stateless_2026(wire)
    methods = wire.rpc_methods()
    assert methods[0] == "server/discover"
    assert methods.count("server/discover") == 1
    # One probe, then the ten calls of the tour: no initialize, nothing else.
    assert len(methods) == 1 + 10


def test_server_discover_describes_the_server(mcp_server: McpServer, wire: WireLog) -> None:
    async def work(client: Client) -> dict[str, Any]:
        return await client.session.send_discover(MODERN)

    raw = connect(mcp_server, work, mode=MODERN)
    assert MODERN in raw["supportedVersions"]
    assert {LEGACY, "2025-06-18", "2025-03-26"} <= set(raw["supportedVersions"])
    assert raw["resultType"] == "complete"
    assert raw["_meta"][SERVER_INFO_KEY]["name"] == "orderdesk-mcp"
    capabilities = raw["capabilities"]
    assert {"tools", "resources", "prompts"} <= set(capabilities)
    # No subscriptions/listen stream is offered, so nothing may promise change notifications.
    assert not capabilities["resources"].get("subscribe")
    assert_stateless_2026(wire)


def test_sdk_response_cache_honours_the_servers_ttl(mcp_server: McpServer, wire: WireLog) -> None:
    """With the SDK's default cache, a second tools/list inside ttlMs never reaches us."""

    async def work(client: Client) -> tuple[Any, Any]:
        return await client.list_tools(), await client.list_tools()

    first, second = connect(mcp_server, work, mode=MODERN)
    assert [tool.name for tool in second.tools] == [tool.name for tool in first.tools]
    listed = wire.rpc_methods().count("tools/list")
    assert listed == (1 if first.ttl_ms else 2)


def test_read_only_key_and_toolsets_on_2026(mcp_server: McpServer, wire: WireLog) -> None:
    async def work(client: Client) -> tuple[set[str], int]:
        names = {tool.name for tool in (await client.list_tools()).tools}
        with pytest.raises(MCPError) as refused:
            await client.call_tool("delete_order", {"order_id": "1", "dry_run": True})
        assert "read-only" in refused.value.error.message
        return names, refused.value.error.code

    names, code = connect(
        mcp_server, work, token=mcp_server.tenant.read_only_token, mode=MODERN, cache=None
    )
    assert names == {tool.name for tool in all_tools() if tool.annotations.read_only}
    assert code == -32602

    async def listed(client: Client) -> set[str]:
        return {tool.name for tool in (await client.list_tools()).tools}

    narrowed = connect(
        mcp_server, listed, mode=MODERN, cache=None, headers={"X-MCP-Toolsets": "inventory"}
    )
    assert narrowed == {tool.name for tool in all_tools() if tool.toolset == "inventory"}
    assert_stateless_2026(wire)


def test_log_level_travels_in_meta(mcp_server: McpServer, wire: WireLog) -> None:
    """logging/setLevel is gone on 2026-07-28; the opt-in rides on each request instead."""

    async def work(client: Client) -> dict[str, Any]:
        return structured(await client.call_tool("list_stores", {}))

    stores = connect(mcp_server, work, mode=MODERN, log_level="warning", cache=None)
    assert {store["alias"] for store in stores["stores"]} == {"demo", "empty"}
    # The SDK lists tools before its first call (to mirror x-mcp-header arguments); both opt in.
    assert "tools/call" in wire.rpc_methods()
    for exchange in wire.exchanges:
        assert exchange.meta["io.modelcontextprotocol/logLevel"] == "warning"
    assert_stateless_2026(wire)


@pytest.mark.filterwarnings("ignore::mcp.shared.exceptions.MCPDeprecationWarning")
def test_legacy_mode_keeps_the_2025_11_25_session(mcp_server: McpServer, wire: WireLog) -> None:
    """The handshake era beside the new one: initialize, a session, ping and setLevel work."""

    async def work(client: Client) -> tuple[str, dict[str, Any]]:
        await client.send_ping()
        await client.set_logging_level("warning")
        order_id = str(
            structured(await client.call_tool("list_orders", {"limit": 1}))["orders"][0]["id"]
        )
        order = structured(await client.call_tool("get_order", {"order_id": order_id}))
        return client.protocol_version, order

    version, order = connect(mcp_server, work, mode="legacy")
    assert version == LEGACY
    assert order["order"]["id"]
    methods = wire.rpc_methods()
    assert methods[0] == "initialize"
    assert "server/discover" not in methods
    minted = [exchange.minted_session for exchange in wire.exchanges if exchange.minted_session]
    assert len(minted) == 1
    session = McpSession.get()
    assert session.protocol_version == LEGACY
    assert session.ended is not None  # the client's DELETE on close ended it


def test_both_eras_side_by_side_on_one_key(mcp_server: McpServer, wire: WireLog) -> None:
    async def names(client: Client) -> list[str]:
        return [tool.name for tool in (await client.list_tools()).tools]

    with ThreadPoolExecutor(2) as pool:
        modern = pool.submit(connect, mcp_server, names, mode=MODERN)
        legacy = pool.submit(connect, mcp_server, names, mode="legacy")
        assert modern.result() == legacy.result()
    assert McpSession.select().count() == 1  # the legacy client's only


# --- stdio ---------------------------------------------------------------------------------


def stdio_params(tmp_path: Path, sandbox: RunningSandbox) -> StdioServerParameters:
    env = {**os.environ, **local_environ(tmp_path / "stdio", sandbox)}
    return StdioServerParameters(
        command=sys.executable, args=["-m", "orderdesk_mcp", "stdio"], env=env
    )


@pytest.mark.parametrize("mode", [MODERN, "auto"])
def test_sdk_client_over_stdio_at_2026(mode: str, tmp_path: Path, sandbox: RunningSandbox) -> None:
    """`orderdesk-mcp stdio` as a desktop client starts it; auto mode probes with discover."""

    async def run() -> dict[str, Any]:
        async with Client(stdio_params(tmp_path, sandbox), mode=mode, cache=None) as client:
            tools = await client.list_tools()
            store = structured(await client.call_tool("get_store", {}))
            missing = await client.call_tool("get_order", {"order_id": "999999999"})
            with pytest.raises(MCPError) as no_resource:
                await client.read_resource("orderdesk://nope/store")
            prompts = await client.list_prompts()
            return {
                "version": client.protocol_version,
                "server": client.server_info.name if client.server_info else None,
                "tools": tools,
                "store": store,
                "missing": missing.is_error,
                "resource_code": no_resource.value.error.code,
                "prompts": [prompt.name for prompt in prompts.prompts],
            }

    seen = asyncio.run(asyncio.wait_for(run(), timeout=60))
    assert seen["version"] == MODERN
    if mode == "auto":
        assert seen["server"] == "orderdesk-mcp"
    assert len(seen["tools"].tools) > 20
    assert seen["tools"].result_type == "complete"
    assert seen["tools"].ttl_ms is not None
    assert seen["store"]["store"]["id"] == SANDBOX_DEMO_STORE
    assert seen["missing"] is True
    assert seen["resource_code"] == -32602
    assert "fulfil_order" in seen["prompts"]
