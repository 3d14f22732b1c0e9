"""Per-key limits as real clients meet them: a call budget, a protocol bucket, DELETE always.

Issue 9: with one counter for every request, a user's third SDK session in a minute got 429s,
including its DELETE, which left the session open. Now tool calls (and other work) count in
ORDERDESK_MCP_RATE_LIMIT, session set-up and listing in ORDERDESK_MCP_PROTOCOL_RATE_LIMIT, and
a DELETE that ends a live session is never refused. No test here times anything.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

from mcp import Client

from orderdesk_mcp.config import Settings
from orderdesk_mcp.db.models import McpSession
from orderdesk_mcp.mcp.limits import is_protocol_message
from orderdesk_mcp.metrics import get_metrics
from orderdesk_mcp.vault import Vault
from scripts.bench.sdk_session import counted_session
from tests.conftest import McpServer, McpTenant, make_mcp_app
from tests.test_mcp_http import McpHttp, error_of

# What the SDK sends besides tool calls in one session: server/discover and four list
# methods at 2026-07-28 (its default since the server speaks it); a handshake session, as
# scripts/bench/sdk_session.py measured, adds initialize and notifications/initialized.
PROTOCOL_REQUESTS_PER_SESSION = 5
CALLS_PER_SESSION = 36


async def _long_session(client: Client) -> None:
    """An SDK session of about 40 requests, the size the issue reported."""
    await client.list_tools()
    await client.list_prompts()
    await client.list_resources()
    await client.list_resource_templates()
    await client.call_tool("get_store", {})
    listed = await client.call_tool("list_orders", {"limit": 2})
    assert listed.structured_content is not None
    order_id = listed.structured_content["orders"][0]["id"]
    await client.call_tool("get_order", {"order_id": order_id})
    for _ in range(CALLS_PER_SESSION - 3):
        await client.call_tool("list_stores", {})


def test_three_back_to_back_sdk_sessions_with_default_limits_get_no_429(
    mcp_server: McpServer,
) -> None:
    def session() -> Counter[str]:
        return asyncio.run(
            asyncio.wait_for(counted_session(mcp_server.url, mcp_server.token, _long_session), 60)
        )

    sessions = [session() for _ in range(3)]
    for counts in sessions:
        assert counts["POST tools/call 200"] == CALLS_PER_SESSION
        assert counts["POST server/discover 200"] == 1
        assert not [key for key in counts if key.startswith(("DELETE", "POST initialize"))]
        assert not [key for key in counts if key.endswith(" 429")], counts
    sent = sum(sum(counts.values()) for counts in sessions)
    # More than the old single limit (120/minute) allowed: the third session used to fail.
    assert sent > 120
    assert McpSession.select().where(McpSession.ended.is_null()).count() == 0
    exposition = get_metrics(mcp_server.app).exposition().decode()
    assert 'rate_limited_total{kind="api_key"}' not in exposition


def test_a_key_over_both_limits_still_ends_its_session(
    settings: Settings, db: Any, vault: Vault, mcp_tenant: McpTenant
) -> None:
    app = make_mcp_app(
        settings.replace(rate_limit="1/minute", protocol_rate_limit="3/minute"), db, vault
    )
    http = McpHttp(app.test_client(), mcp_tenant.token)
    http.initialize()  # two protocol requests of three
    assert http.call("list_stores").status_code == 200
    assert http.call("list_stores").status_code == 429
    assert http.request("ping").status_code == 200
    assert http.request("ping").status_code == 429
    assert http.session is not None
    ended = http.client.delete("/mcp", headers=http.headers())
    assert ended.status_code == 204
    assert McpSession.select().where(McpSession.ended.is_null()).count() == 0
    # A DELETE that ends nothing is counted, so a flood of them is still refused.
    again = http.client.delete("/mcp", headers=http.headers())
    assert again.status_code == 429
    assert int(again.headers["Retry-After"]) >= 1


def test_protocol_requests_do_not_consume_the_call_budget(
    settings: Settings, db: Any, vault: Vault, mcp_tenant: McpTenant
) -> None:
    app = make_mcp_app(settings.replace(rate_limit="2/minute"), db, vault)
    http = McpHttp(app.test_client(), mcp_tenant.token)
    for _ in range(5):
        http.initialize()
        for method in (
            "ping",
            "tools/list",
            "prompts/list",
            "resources/list",
            "resources/templates/list",
        ):
            assert http.request(method).status_code == 200, method
        assert http.request("logging/setLevel", {"level": "info"}).status_code == 200
        assert http.notify("notifications/cancelled", {"requestId": 1}).status_code == 202
    assert [http.call("list_stores").status_code for _ in range(3)] == [200, 200, 429]
    # resources/read and prompts/get are work too: the budget is spent.
    assert http.request("resources/read", {"uri": "orderdesk://demo/store"}).status_code == 429


def test_a_flood_of_protocol_requests_is_limited_at_the_default(
    mcp_app: Any, mcp_tenant: McpTenant
) -> None:
    http = McpHttp(mcp_app.test_client(), mcp_tenant.token)
    http.initialize()  # 2 of the default 600 a minute
    statuses = Counter(http.request("tools/list").status_code for _ in range(600))
    assert statuses == {200: 598, 429: 2}
    refused = http.request("ping")
    assert refused.status_code == 429
    assert "rate limit" in error_of(refused)["message"]
    # The call budget is a separate bucket: real work still goes through.
    assert http.call("list_stores").status_code == 200


def test_malformed_requests_count_against_the_call_budget(
    settings: Settings, db: Any, vault: Vault, mcp_tenant: McpTenant
) -> None:
    app = make_mcp_app(settings.replace(rate_limit="3/minute"), db, vault)
    http = McpHttp(app.test_client(), mcp_tenant.token)
    http.initialize()
    statuses = [http.post(None, raw=b"{not json").status_code for _ in range(4)]
    assert statuses == [400, 400, 400, 429]
    # An unknown method is not a protocol method either.
    assert http.request("ping").status_code == 200
    assert http.request("tools/unknown").status_code == 429


def test_which_messages_are_protocol_messages() -> None:
    protocol = [
        {"jsonrpc": "2.0", "id": 1, "method": "initialize"},
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
        {"jsonrpc": "2.0", "id": 1, "method": "server/discover"},
        {"jsonrpc": "2.0", "id": 1, "result": {}},
    ]
    calls = [
        {"jsonrpc": "2.0", "id": 1, "method": "tools/call"},
        {"jsonrpc": "2.0", "id": 1, "method": "completion/complete"},
        {"jsonrpc": "2.0", "id": 1, "method": 7},
        {"jsonrpc": "2.0", "id": 1},
        [],
        "ping",
        None,
    ]
    assert all(is_protocol_message(message) for message in protocol)
    assert not any(is_protocol_message(message) for message in calls)
