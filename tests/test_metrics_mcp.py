"""/metrics counts real traffic: the SDK client against the served app and the sandbox."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

import peewee
import pytest
import requests
from flask import Flask
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

from orderdesk_mcp import metrics
from orderdesk_mcp.app import create_app
from orderdesk_mcp.config import Settings
from orderdesk_mcp.mcp import blueprint as mcp_blueprint
from orderdesk_mcp.mcp.audit import note_upstream_call
from orderdesk_mcp.orderdesk.machinery import UpstreamCall, UpstreamMachinery
from orderdesk_mcp.sandbox import RunningSandbox
from orderdesk_mcp.services import Services
from orderdesk_mcp.vault import Vault
from tests.conftest import McpTenant, ServedApp, make_mcp_tenant
from tests.test_metrics import parse_exposition, value

T = TypeVar("T")


def observe(call: UpstreamCall) -> None:
    """What app.py wires as the client's observer: the audit counter and the metrics."""
    note_upstream_call(call)
    metrics.observe_upstream(call)


def metered_app(settings: Settings, database: peewee.Database, vault: Vault) -> Flask:
    services = Services(settings=settings, database=database, vault=vault)
    machinery = UpstreamMachinery.from_settings(settings, observer=observe)
    services.machinery = machinery  # type: ignore[attr-defined,unused-ignore]
    app = create_app(settings, services)
    if mcp_blueprint.STATE_KEY not in app.extensions:
        mcp_blueprint.init_app(app)
    return app


@pytest.fixture
def served(
    settings: Settings, db: peewee.Database, vault: Vault, sandbox: RunningSandbox
) -> Iterator[tuple[str, McpTenant]]:
    app = metered_app(settings, db, vault)
    tenant = make_mcp_tenant("metered", vault, sandbox)
    server = ServedApp(app)
    try:
        yield f"http://127.0.0.1:{server.port}", tenant
    finally:
        server.stop()


def with_client(url: str, token: str, work: Callable[[Client], Awaitable[T]]) -> T:
    async def run() -> T:
        headers = {"Authorization": f"Bearer {token}"}
        async with create_mcp_http_client(headers=headers) as http_client:
            transport = streamable_http_client(url, http_client=http_client)
            async with Client(transport) as client:
                return await work(client)

    return asyncio.run(asyncio.wait_for(run(), timeout=60))


def test_tool_call_upstream_call_cache_hit_and_401_are_counted(
    served: tuple[str, McpTenant],
) -> None:
    base, tenant = served

    async def work(client: Client) -> str:
        # A history page caches no orders, so the first get_order reaches Order Desk.
        listed = await client.call_tool("list_orders", {"limit": 1, "include_history": True})
        order_id = str(listed.structured_content["orders"][0]["id"])
        for _ in range(2):  # the second read of the same order comes from the cache
            result = await client.call_tool("get_order", {"order_id": order_id})
            assert result.is_error is False
        return order_id

    with_client(f"{base}/mcp", tenant.token, work)
    refused = requests.post(
        f"{base}/mcp",
        headers={
            "Authorization": "Bearer odmcp_not_a_real_key",
            "Accept": "application/json, text/event-stream",
            "Content-Type": "application/json",
        },
        data=json.dumps({"jsonrpc": "2.0", "id": 1, "method": "ping"}),
        timeout=10,
    )
    assert refused.status_code == 401

    scraped = requests.get(f"{base}/metrics", timeout=10)
    assert scraped.status_code == 200
    samples = parse_exposition(scraped.text)
    get_order = {"tool": "get_order", "outcome": "ok"}
    assert value(samples, "orderdesk_mcp_tool_calls_total", **get_order) == 2
    assert value(samples, "orderdesk_mcp_tool_calls_total", tool="list_orders", outcome="ok") == 1
    assert value(samples, "orderdesk_mcp_mcp_requests_total", method="tools/call") == 3
    sent: dict[str, Any] = {"method": "GET", "endpoint": "/orders/{id}", "status": "200"}
    assert value(samples, "orderdesk_mcp_upstream_requests_total", **sent) == 1
    assert value(samples, "orderdesk_mcp_upstream_cache_lookups_total", result="hit") >= 1
    assert value(samples, "orderdesk_mcp_http_requests_total", route="/mcp", method="POST",
                 status="401") == 1  # fmt: skip
    assert value(samples, "orderdesk_mcp_auth_failures_total", reason="invalid") == 1
    assert value(samples, "orderdesk_mcp_active_sessions") >= 0
    # Labels are templates: no order id and no token ever becomes a label value.
    assert "odmcp_not_a_real_key" not in scraped.text
    assert tenant.token not in scraped.text
