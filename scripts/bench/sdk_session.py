"""How many HTTP requests a real MCP client session sends: the figures behind the rate limits.

    .venv/bin/python -m scripts.bench.sdk_session

Starts the sandbox (demo seed) and our server (`orderdesk-mcp serve`, default settings:
the limits under test are the shipped ones), then drives the official `mcp` SDK client
through two scenarios and counts every HTTP request it sends, by JSON-RPC method and status:

- "session": connect (the SDK's default mode: a server/discover probe, then initialize),
  list tools, prompts, resources and resource templates, ten tool calls, close.
- "busy minute": one session that triages the New folder as an agent would when it goes
  flat out: list_orders (20), get_order for each, move_orders of them, one note.

Each scenario runs three times back to back on one API key, as a user opening three
conversations does. Nothing is timed; the counts do not depend on the machine.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import tempfile
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

from scripts.bench.processes import ManagedProcess, start_our_server, start_sandbox
from scripts.bench.stack import StoreRef, add_tenants, init_data_dir

STORE = StoreRef("400101", f"sk_bench_{secrets.token_hex(6)}", "demo")
SessionWork = Callable[[Client], Awaitable[None]]


def _jsonrpc_method(body: bytes) -> str:
    try:
        message = json.loads(body or b"null")
    except ValueError:
        return "(not JSON)"
    if isinstance(message, dict):
        return str(message.get("method", "(response)"))
    return "(batch)" if isinstance(message, list) else "(none)"


async def counted_session(url: str, token: str, work: SessionWork) -> Counter[str]:
    """Run `work` in one SDK session; count its requests as 'HTTP-method json-method status'."""
    seen: Counter[str] = Counter()

    async def on_response(response: Any) -> None:
        request = response.request
        method = _jsonrpc_method(request.content) if request.method == "POST" else ""
        seen[f"{request.method} {method} {response.status_code}".replace("  ", " ")] += 1

    async with create_mcp_http_client(headers={"Authorization": f"Bearer {token}"}) as http:
        http.event_hooks = {"request": [], "response": [on_response]}
        async with Client(streamable_http_client(url, http_client=http)) as client:
            await work(client)
    return seen


async def ordinary_session(client: Client) -> None:
    await client.list_tools()
    await client.list_prompts()
    await client.list_resources()
    await client.list_resource_templates()
    orders = (await client.call_tool("list_orders", {"limit": 5})).structured_content
    assert orders is not None
    ids = [order["id"] for order in orders["orders"]]
    await client.call_tool("get_store", {})
    for order_id in ids[:5]:
        await client.call_tool("get_order", {"order_id": order_id})
    await client.call_tool("list_order_items", {"order_id": ids[0]})
    await client.call_tool("list_shipments", {"order_id": ids[0]})
    await client.call_tool("list_inventory_items", {"limit": 5})


async def busy_minute(client: Client) -> None:
    await client.list_tools()
    listed = (await client.call_tool("list_orders", {"limit": 20})).structured_content
    assert listed is not None
    ids = [order["id"] for order in listed["orders"]]
    for order_id in ids:
        await client.call_tool("get_order", {"order_id": order_id})
    await client.call_tool("move_orders", {"order_ids": ids, "folder": "Prepared"})
    await client.call_tool("add_order_note", {"order_id": ids[0], "note": "triaged"})


def summarise(counts: list[Counter[str]]) -> dict[str, Any]:
    total: Counter[str] = Counter()
    for count in counts:
        total.update(count)
    calls = sum(n for key, n in total.items() if " tools/call " in key)
    refused = sum(n for key, n in total.items() if key.endswith(" 429"))
    return {
        "requests_per_session": [sum(count.values()) for count in counts],
        "tool_calls_per_session": [
            sum(n for key, n in count.items() if " tools/call " in key) for count in counts
        ],
        "by_request": dict(sorted(total.items())),
        "tool_calls": calls,
        "refused_429": refused,
    }


def run() -> dict[str, Any]:
    results: dict[str, Any] = {}
    running: list[ManagedProcess] = []
    with tempfile.TemporaryDirectory(prefix="orderdesk-session-") as temp:
        work = Path(temp)
        try:
            sandbox, base_url, _admin = start_sandbox(
                [(STORE.store_id, STORE.api_key, "demo")], work
            )
            running.append(sandbox)
            for name, scenario in (("session", ordinary_session), ("busy minute", busy_minute)):
                # A fresh server per scenario: each starts with an empty limiter.
                data_dir = work / name.replace(" ", "-")
                init_data_dir(data_dir)
                (tenant,) = add_tenants(data_dir, [("bench", [STORE])], base_url)
                server, url, _startup = start_our_server(
                    data_dir, work, {"ORDERDESK_MCP_LOG_LEVEL": "WARNING"}, name=name
                )
                running.append(server)
                counts = [
                    asyncio.run(counted_session(url, tenant.token, scenario)) for _ in range(3)
                ]
                results[name] = summarise(counts)
                server.stop()
                running.remove(server)
        finally:
            for process in reversed(running):
                process.stop()
    return results


def main() -> None:
    print(json.dumps(run(), indent=2))


if __name__ == "__main__":
    main()
