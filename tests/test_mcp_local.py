"""Local mode (`serve --local`) and the stdio transport (`orderdesk-mcp stdio`)."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from flask import Flask
from mcp import Client, StdioServerParameters

from orderdesk_mcp.cli import cli
from orderdesk_mcp.config import Settings, load_settings
from orderdesk_mcp.mcp.dispatcher import Dispatcher
from orderdesk_mcp.mcp.local import (
    LOCAL_CALLER,
    LocalAccess,
    LocalModeError,
    LocalStore,
    create_local_app,
    local_store,
    require_loopback,
)
from orderdesk_mcp.mcp.stdio import StdioSession
from orderdesk_mcp.orderdesk.machinery import UpstreamMachinery
from orderdesk_mcp.sandbox import RunningSandbox
from tests.conftest import SANDBOX_DEMO_STORE, SANDBOX_KEYS, ServedApp
from tests.test_mcp_http import McpHttp


def local_environ(data_dir: Path, sandbox: RunningSandbox) -> dict[str, str]:
    return {
        "ORDERDESK_MCP_DATA_DIR": str(data_dir),
        "ORDERDESK_MCP_LOG_FORMAT": "text",
        "ORDERDESK_STORE_ID": SANDBOX_DEMO_STORE,
        "ORDERDESK_API_KEY": SANDBOX_KEYS[SANDBOX_DEMO_STORE],
        "ORDERDESK_API_BASE_URL": sandbox.base_url,
    }


@pytest.fixture
def local_settings(tmp_path: Path, sandbox: RunningSandbox) -> Settings:
    """Local-mode settings on a data dir with no master key and no tenants."""
    return load_settings(local_environ(tmp_path / "local", sandbox))


@pytest.fixture
def local_app(local_settings: Settings) -> Iterator[Flask]:
    app = create_local_app(local_settings)
    yield app
    app.extensions["orderdesk_mcp"].close()


# --- refusing to start -------------------------------------------------------------------


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost"])
def test_loopback_addresses_are_accepted(host: str) -> None:
    assert require_loopback(host) is None  # returns quietly instead of raising


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.10", "example.com"])
def test_anything_else_is_refused(host: str) -> None:
    with pytest.raises(LocalModeError, match="loopback"):
        require_loopback(host)


def test_missing_store_settings_are_named(tmp_path: Path) -> None:
    settings = load_settings({"ORDERDESK_MCP_DATA_DIR": str(tmp_path)})
    with pytest.raises(LocalModeError, match="ORDERDESK_STORE_ID and ORDERDESK_API_KEY"):
        local_store(settings)


def test_cli_refuses_with_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("ORDERDESK_"):
            monkeypatch.delenv(name)
    runner = CliRunner()
    args = ["--data-dir", str(tmp_path), "serve", "--local"]
    missing = runner.invoke(cli, args)
    assert missing.exit_code == 1
    assert "ORDERDESK_STORE_ID" in missing.output
    assert len(missing.output.strip().splitlines()) == 1
    monkeypatch.setenv("ORDERDESK_STORE_ID", "1")
    monkeypatch.setenv("ORDERDESK_API_KEY", "k")
    public = runner.invoke(cli, [*args, "--host", "0.0.0.0"])
    assert public.exit_code == 1
    assert "loopback" in public.output
    assert "Traceback" not in public.output
    stdio = runner.invoke(
        cli, ["--data-dir", str(tmp_path), "stdio"], env={"ORDERDESK_STORE_ID": ""}
    )
    assert stdio.exit_code == 1
    assert "ORDERDESK_STORE_ID" in stdio.output


# --- serve --local -----------------------------------------------------------------------


def test_local_mode_needs_no_token_and_serves_one_store(local_app: Flask) -> None:
    http = McpHttp(local_app.test_client(), None)
    http.initialize()
    stores = http.result("tools/call", {"name": "list_stores", "arguments": {}})
    assert stores["structuredContent"]["stores"] == [
        {"alias": SANDBOX_DEMO_STORE, "store_id": SANDBOX_DEMO_STORE, "is_default": True}
    ]
    orders = http.result("tools/call", {"name": "list_orders", "arguments": {"limit": 2}})
    assert len(orders["structuredContent"]["orders"]) == 2
    other = http.result("tools/call", {"name": "get_store", "arguments": {"store": "100002"}})
    assert other["isError"] is True
    # The transport's other checks still apply.
    reply = http.post({"jsonrpc": "2.0", "id": 1, "method": "ping"}, headers={"Host": "evil.test"})
    assert reply.status_code == 403
    http.session = "nope"
    assert http.request("ping").status_code == 404


def test_local_mode_with_the_sdk_client(local_app: Flask) -> None:
    served = ServedApp(local_app)

    async def run() -> tuple[str, list[str]]:
        async with Client(f"http://127.0.0.1:{served.port}/mcp") as client:
            tools = [tool.name for tool in (await client.list_tools()).tools]
            result = await client.call_tool("get_store", {})
            assert result.is_error is False
            return client.protocol_version, tools

    try:
        version, tools = asyncio.run(asyncio.wait_for(run(), timeout=60))
    finally:
        served.stop()
    assert version == "2026-07-28"  # the SDK's probe finds the stateless revision
    assert "update_order" in tools


# --- stdio ---------------------------------------------------------------------------------


@contextmanager
def local_stdio_session(settings: Settings) -> Iterator[StdioSession]:
    """What `orderdesk-mcp stdio` serves, without the pipes: feed it lines."""
    machinery = UpstreamMachinery.from_settings(settings)
    store = LocalStore(
        store_id=SANDBOX_DEMO_STORE,
        api_key=SANDBOX_KEYS[SANDBOX_DEMO_STORE],
        base_url=settings.orderdesk_api_base_url,
    )
    try:
        yield StdioSession(Dispatcher(), LocalAccess(store, machinery, 3600), LOCAL_CALLER)
    finally:
        machinery.close()


@pytest.fixture
def stdio_session(local_settings: Settings) -> Iterator[StdioSession]:
    with local_stdio_session(local_settings) as session:
        yield session


def line(session: StdioSession, message: Any) -> Any:
    reply = session.handle_line(json.dumps(message))
    return None if reply is None else json.loads(reply)


def test_stdio_session_lifecycle_and_errors(stdio_session: StdioSession) -> None:
    init = {"protocolVersion": "2025-03-26", "capabilities": {}, "clientInfo": {"name": "t"}}
    reply = line(stdio_session, {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": init})
    assert reply["result"]["protocolVersion"] == "2025-03-26"
    assert line(stdio_session, {"jsonrpc": "2.0", "method": "notifications/initialized"}) is None
    assert line(stdio_session, {"jsonrpc": "2.0", "id": 2, "method": "ping"})["result"] == {}
    batch = line(
        stdio_session,
        [{"jsonrpc": "2.0", "id": 3, "method": "ping"}, {"jsonrpc": "2.0", "id": 4, "method": "x"}],
    )
    assert [item["id"] for item in batch] == [3, 4]
    assert batch[1]["error"]["code"] == -32601
    parse = json.loads(stdio_session.handle_line("{not json") or "{}")
    assert parse["error"]["code"] == -32700
    assert parse["id"] is None
    invalid = line(stdio_session, {"jsonrpc": "2.0", "id": 5})
    assert invalid["error"]["code"] == -32600
    assert invalid["id"] == 5


def test_stdio_refuses_batches_on_newer_sessions(stdio_session: StdioSession) -> None:
    init = {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t"}}
    line(stdio_session, {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": init})
    reply = line(stdio_session, [{"jsonrpc": "2.0", "id": 2, "method": "ping"}])
    assert reply["error"]["code"] == -32600


def test_sdk_client_over_stdio_subprocess(tmp_path: Path, sandbox: RunningSandbox) -> None:
    """The real command as a desktop client starts it; stdout carries only JSON-RPC."""
    env = {**os.environ, **local_environ(tmp_path / "stdio", sandbox)}
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "orderdesk_mcp", "stdio"], env=env
    )

    async def run() -> dict[str, Any]:
        async with Client(params) as client:
            tools = (await client.list_tools()).tools
            store = await client.call_tool("get_store", {})
            missing = await client.call_tool("get_order", {"order_id": "999999999"})
            prompts = (await client.list_prompts()).prompts
            return {
                "version": client.protocol_version,
                "tools": len(tools),
                "store": store.structured_content,
                "missing": missing.is_error,
                "prompts": [prompt.name for prompt in prompts],
            }

    seen = asyncio.run(asyncio.wait_for(run(), timeout=60))
    assert seen["version"] == "2026-07-28"  # server/discover is the probe on stdio too
    assert seen["tools"] > 20
    assert seen["store"]["store"]["id"] == SANDBOX_DEMO_STORE
    assert seen["missing"] is True
    assert "fulfil_order" in seen["prompts"]


def test_local_mode_refuses_a_public_bind(local_settings: Settings) -> None:
    with pytest.raises(LocalModeError):
        create_local_app(local_settings.replace(host="0.0.0.0"))
