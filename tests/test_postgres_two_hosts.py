"""Two "hosts" on one PostgreSQL and one Redis behave as one service.

Each host is a serve process on its own loopback address (127.0.0.2, 127.0.0.3) with its own
data dir holding a copy of the same master key file, as two VPSs would; they share only
ORDERDESK_MCP_DATABASE_URL and ORDERDESK_MCP_REDIS_URL.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from orderdesk_mcp.config import load_settings
from orderdesk_mcp.db.connection import close_database, open_database
from orderdesk_mcp.db.models import AuditEvent
from orderdesk_mcp.sandbox import RunningSandbox
from tests.real_servers import PostgresServer, RedisServer
from tests.server_group import ServerGroup, base_env, call_tool, open_session, run_cli

HOST_A, HOST_B = "127.0.0.2", "127.0.0.3"


@pytest.fixture
def group(
    tmp_path: Path,
    sandbox: RunningSandbox,
    postgres_server: PostgresServer,
    redis_server: RedisServer,
    redis_prefix: str,
) -> Iterator[ServerGroup]:
    shared = {
        "ORDERDESK_MCP_DATABASE_URL": postgres_server.create_database(),
        "ORDERDESK_MCP_REDIS_URL": redis_server.url,
        "ORDERDESK_MCP_REDIS_PREFIX": redis_prefix,
        # Behind nginx each host would see the public name; here clients use the addresses.
        "ORDERDESK_MCP_PUBLIC_HOSTS": f"{HOST_A},{HOST_B}",
        # Cached replies live long on each host, so only the shared versions can make a
        # write on one host visible on the other at once.
        "ORDERDESK_MCP_CACHE_MEMORY_SECONDS": "60",
        "ORDERDESK_MCP_CACHE_TTL_ORDERS": "600",
    }
    prepared = ServerGroup.prepare(tmp_path, sandbox, env=shared)
    yield prepared
    prepared.stop_all()


def second_host_dir(group: ServerGroup) -> Path:
    """Host B's own data dir: only the master key file is copied over."""
    data_dir = group.tmp / "host-b"
    data_dir.mkdir(mode=0o700)
    shutil.copy2(group.data_dir / "master.key", data_dir / "master.key")
    return data_dir


def _tool_calls_in_audit(group: ServerGroup) -> int:
    database = open_database(load_settings(dict(group.env)))
    try:
        return int(AuditEvent.select().where(AuditEvent.action == "tools/call list_orders").count())
    finally:
        close_database(database)


def test_two_hosts_share_sessions_keys_and_audit(group: ServerGroup) -> None:
    b_dir = second_host_dir(group)
    b_env = base_env(b_dir, {k: v for k, v in group.env.items() if k.startswith("ORDERDESK_")})
    b_env["ORDERDESK_MCP_DATA_DIR"] = str(b_dir)

    host_a = group.start_one(host=HOST_A)
    host_b = group.start_one(host=HOST_B, env={"ORDERDESK_MCP_DATA_DIR": str(b_dir)})

    # A session opened on host A is used on host B, and back.
    session = open_session(host_a.url, group.token)
    on_b = call_tool(host_b.url, group.token, session, "list_orders", {"limit": 2}, 2)
    assert not on_b["result"].get("isError"), on_b
    on_a = call_tool(host_a.url, group.token, session, "list_orders", {"limit": 2}, 3)
    assert on_a["result"]["structuredContent"] == on_b["result"]["structuredContent"]

    # A key made with host B's configuration works on host A at once.
    made = json.loads(run_cli(b_env, "key", "create", "--tenant", "acme", "--json"))
    new_token = made["api_key"]
    other_session = open_session(host_a.url, new_token)
    reply = call_tool(host_a.url, new_token, other_session, "list_orders", {"limit": 1}, 4)
    assert not reply["result"].get("isError"), reply

    # Its revocation on host A is seen by host B.
    run_cli(group.env, "key", "revoke", made["key_id"])
    refused = call_tool(host_b.url, new_token, other_session, "list_orders", {"limit": 1}, 5)
    assert "error" in refused or refused["result"].get("isError"), refused

    # Read-your-writes across hosts, whose reply caches are separate files: host B reads an
    # order's shipments (cached, with a long memory front), host A adds one, host B sees it.
    order_id = str(on_b["result"]["structuredContent"]["orders"][0]["id"])
    listing = {"order_id": order_id, "limit": 50}
    for round_number in range(3):
        before = call_tool(host_b.url, group.token, session, "list_shipments", listing, 10)
        count = int(before["result"]["structuredContent"]["total_records"])
        tracking = f"HOSTS{round_number}"
        added = call_tool(
            host_a.url,
            group.token,
            session,
            "add_shipment",
            {"order_id": order_id, "tracking_number": tracking},
            11,
        )
        assert not added["result"].get("isError"), added
        after = call_tool(host_b.url, group.token, session, "list_shipments", listing, 12)
        shipments = after["result"]["structuredContent"]["shipments"]
        assert int(after["result"]["structuredContent"]["total_records"]) == count + 1
        assert tracking in [shipment["tracking_number"] for shipment in shipments]

    # Every call of both hosts is in the one audit table.
    assert _tool_calls_in_audit(group) == 3
    # Neither host wrote a SQLite database of its own.
    assert not (group.data_dir / "orderdesk-mcp.db").exists()
    assert not (b_dir / "orderdesk-mcp.db").exists()
