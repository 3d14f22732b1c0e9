"""Read-your-writes between real `serve` processes of one group sharing a real redis-server:
a write through process A is read at once through process B, whose in-memory front and
SQLite cache held the record before."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import requests

from orderdesk_mcp.sandbox import RunningSandbox
from tests.conftest import SANDBOX_DEMO_STORE, SANDBOX_EMPTY_STORE
from tests.real_servers import RedisServer
from tests.server_group import ServerGroup, call_tool, open_session

ROUNDS = 200


def tool(url: str, token: str, session: str, name: str, **arguments: Any) -> dict[str, Any]:
    reply = call_tool(url, token, session, name, arguments)
    result = reply.get("result")
    assert isinstance(result, dict), reply
    assert not result.get("isError"), reply
    content: dict[str, Any] = result["structuredContent"]
    return content


def served(sandbox: RunningSandbox) -> int:
    return sum(sandbox.stats(s)["served"] for s in (SANDBOX_DEMO_STORE, SANDBOX_EMPTY_STORE))


def an_order(sandbox: RunningSandbox, store_id: str) -> str:
    """An order of the store (one is created in the empty store)."""
    base, headers = sandbox.base_url, sandbox.headers(store_id)
    orders = requests.get(f"{base}/orders", headers=headers, timeout=10).json()["orders"]
    if orders:
        return str(orders[0]["id"])
    body = {
        "source_id": "COHERENCE-1",
        "email": "coherence@example.com",
        "shipping": {"first_name": "Jane", "last_name": "Doe", "address1": "1 Main St"},
        "order_items": [{"name": "Widget", "code": "W-1", "price": 2.5, "quantity": 1}],
    }
    created = requests.post(f"{base}/orders", headers=headers, json=body, timeout=10).json()
    assert created.get("status") == "success", created
    return str(created["order"]["id"])


@pytest.mark.slow  # 400 Order Desk requests paced by the 3/s per-store limit
def test_a_write_through_one_process_is_read_at_once_through_another(
    tmp_path: Path, sandbox: RunningSandbox, redis_server: RedisServer, redis_prefix: str
) -> None:
    group = ServerGroup.prepare(
        tmp_path,
        sandbox,
        env={
            "ORDERDESK_MCP_REDIS_URL": redis_server.url,
            "ORDERDESK_MCP_REDIS_PREFIX": redis_prefix,
            "ORDERDESK_MCP_RATE_LIMIT": "100000/minute",
            # Far longer than the test: only the shared versions can make B's copies stale.
            "ORDERDESK_MCP_CACHE_MEMORY_SECONDS": "60",
            "ORDERDESK_MCP_CACHE_TTL_ORDERS": "600",
            "ORDERDESK_MCP_UPSTREAM_WAIT_SECONDS": "30",
        },
    )
    try:
        writer, reader = group.start(2)
        token = group.token
        write_session = open_session(writer.url, token)
        read_session = open_session(reader.url, token)
        # One order in each store: two per-store rate limits pace the rounds, not one.
        targets = [("demo", an_order(sandbox, SANDBOX_DEMO_STORE))]
        targets.append(("empty", an_order(sandbox, SANDBOX_EMPTY_STORE)))

        def newest_shipment(store: str, order_id: str) -> tuple[int, str | None]:
            """(how many shipments the order has, the newest one's tracking number)."""
            listed = tool(
                reader.url,
                token,
                read_session,
                "list_shipments",
                store=store,
                order_id=order_id,
                offset=max(0, counts[store] - 1),
                limit=1,
            )
            newest = listed["shipments"][-1]["tracking_number"] if listed["shipments"] else None
            return int(listed["total_records"]), newest

        counts = {store: 0 for store, _ in targets}
        counts.update({store: newest_shipment(store, order)[0] for store, order in targets})
        expected = {store: newest_shipment(store, order) for store, order in targets}
        before = served(sandbox)
        for target in targets:
            assert newest_shipment(*target) == expected[target[0]]
        assert served(sandbox) == before, "the reader answers from its caches"

        for round_ in range(ROUNDS):
            store, order_id = targets[round_ % 2]
            tracking = f"RYW{round_:04d}"
            tool(
                writer.url,
                token,
                write_session,
                "add_shipment",
                store=store,
                order_id=order_id,
                tracking_number=tracking,
            )
            counts[store] += 1
            assert newest_shipment(store, order_id) == (counts[store], tracking), (
                f"round {round_}:\n{writer.log_text()}\n{reader.log_text()}"
            )
        for served_process in (writer, reader):
            assert "Traceback" not in served_process.log_text()
    finally:
        group.stop_all()
