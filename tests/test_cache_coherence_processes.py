"""Read-your-writes between real `serve` processes of one group sharing a real redis-server:
a write through process A is read at once through process B, whose in-memory front and
SQLite cache held the record before."""

from __future__ import annotations

import time
from collections.abc import Iterator
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


class Pair:
    """A writer and a reader process of one group; one order per store to write to."""

    def __init__(self, group: ServerGroup, sandbox: RunningSandbox) -> None:
        self.group = group
        self.sandbox = sandbox
        self.writer, self.reader = group.start(2)
        self.write_session = open_session(self.writer.url, group.token)
        self.read_session = open_session(self.reader.url, group.token)
        # One order in each store: two per-store rate limits pace the rounds, not one.
        self.targets = [
            ("demo", an_order(sandbox, SANDBOX_DEMO_STORE)),
            ("empty", an_order(sandbox, SANDBOX_EMPTY_STORE)),
        ]
        self.counts = {store: 0 for store, _ in self.targets}
        self.counts = {store: self.newest(store, order)[0] for store, order in self.targets}
        self.written = 0

    def newest(self, store: str, order_id: str) -> tuple[int, str | None]:
        """Through the reader: (the order's shipment count, the newest one's tracking)."""
        listed = tool(
            self.reader.url,
            self.group.token,
            self.read_session,
            "list_shipments",
            store=store,
            order_id=order_id,
            offset=max(0, self.counts[store] - 1),
            limit=1,
        )
        newest = listed["shipments"][-1]["tracking_number"] if listed["shipments"] else None
        return int(listed["total_records"]), newest

    def write_then_read(self) -> None:
        """A shipment added through the writer, then seen at once through the reader."""
        store, order_id = self.targets[self.written % 2]
        tracking = f"RYW{self.written:04d}"
        tool(
            self.writer.url,
            self.group.token,
            self.write_session,
            "add_shipment",
            store=store,
            order_id=order_id,
            tracking_number=tracking,
        )
        self.counts[store] += 1
        assert self.newest(store, order_id) == (self.counts[store], tracking), (
            f"round {self.written}:\n{self.writer.log_text()}\n{self.reader.log_text()}"
        )
        self.written += 1

    def reads_are_cached(self) -> bool:
        before = served(self.sandbox)
        for target in self.targets:
            self.newest(*target)
        return served(self.sandbox) == before


@pytest.fixture
def pair(
    tmp_path: Path, sandbox: RunningSandbox, redis_server: RedisServer, redis_prefix: str
) -> Iterator[Pair]:
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
        yield Pair(group, sandbox)
        for process in group.processes:
            assert "Traceback" not in process.log_text()
    finally:
        group.stop_all()


@pytest.mark.slow  # 400 Order Desk requests paced by the 3/s per-store limit
def test_a_write_through_one_process_is_read_at_once_through_another(pair: Pair) -> None:
    assert pair.reads_are_cached()
    for _ in range(ROUNDS):
        pair.write_then_read()


def test_with_redis_down_the_group_keeps_answering_and_never_reads_stale(
    pair: Pair, redis_server: RedisServer
) -> None:
    pair.reads_are_cached()  # fills the reader's caches
    redis_server.stop()
    try:
        for _ in range(6):
            pair.write_then_read()
    finally:
        redis_server.start()
    # Each process that saw the outage probes once a second and renews the epoch.
    deadline = time.monotonic() + 20
    while not all("Redis answers again" in p.log_text() for p in (pair.reader, pair.writer)):
        assert time.monotonic() < deadline, pair.reader.log_text() + pair.writer.log_text()
        time.sleep(0.1)
    for _ in range(4):
        pair.write_then_read()
    assert pair.reads_are_cached()
    assert pair.reader.log_text().count("Redis did not answer") == 1
    assert redis_server.password not in pair.reader.log_text() + pair.writer.log_text()
