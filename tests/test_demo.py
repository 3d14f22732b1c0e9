"""`orderdesk-mcp demo`, as `make demo` runs it: a real process an SDK client can use."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

from orderdesk_mcp.config import Settings
from orderdesk_mcp.db.connection import open_database
from orderdesk_mcp.db.models import Tenant
from orderdesk_mcp.demo import (
    client_configurations,
    demo_public_url,
    oauth_instructions,
    prepare_demo,
)
from orderdesk_mcp.passwords import verify_password


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _read_until_started(process: subprocess.Popen[str], deadline: float) -> str:
    """What the demo printed, up to the OAuth instructions' last line."""
    assert process.stdout is not None
    lines = []
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line)
        if "npx mcp-remote" in line:
            return "".join(lines)
    raise AssertionError("demo did not print how to connect:\n" + "".join(lines))


def _printed(pattern: str, text: str) -> str:
    match = re.search(pattern, text)
    assert match is not None, f"{pattern!r} not in:\n{text}"
    return match.group(1)


async def _list_and_read(url: str, key: str) -> tuple[int, int]:
    headers = {"Authorization": f"Bearer {key}"}
    async with (
        create_mcp_http_client(headers=headers) as http,
        Client(streamable_http_client(url, http_client=http), mode="legacy") as client,
    ):
        tools = (await client.list_tools()).tools
        result = await client.call_tool("list_orders", {"limit": 5})
        return len(tools), int(result.structured_content["total_records"])


@pytest.mark.slow
@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM])
def test_demo_serves_the_sandbox_store_and_stops_cleanly(
    tmp_path: Path, stop_signal: signal.Signals
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORDERDESK_")}
    env["TMPDIR"] = str(tmp_path)
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "orderdesk_mcp",
            "demo",
            "--port",
            str(_free_port()),
            "--sandbox-port",
            str(_free_port()),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        printed = _read_until_started(process, time.monotonic() + 30)
        url = _printed(r"MCP endpoint:\s+(\S+)", printed)
        key = _printed(r"API key \(tenant demo\): (odmcp_\S+)", printed)
        password = _printed(r"Sign-in password \(tenant demo\): (\S+)", printed)
        assert len(password) >= 12
        assert f"npx mcp-remote {url}" in printed
        tool_count, orders = asyncio.run(asyncio.wait_for(_list_and_read(url, key), 30))
        assert tool_count >= 28
        assert orders >= 250  # the demo seed's orders
    finally:
        process.send_signal(stop_signal)
        _, stderr = process.communicate(timeout=20)
    assert process.returncode == 0, stderr
    assert "Traceback" not in stderr
    # The throwaway data dir is gone.
    assert not list(tmp_path.glob("orderdesk-mcp-demo-*"))


def test_client_configurations_are_valid_json_snippets() -> None:
    text = client_configurations("http://127.0.0.1:8080/mcp", "odmcp_x")
    assert "claude mcp add --transport http orderdesk http://127.0.0.1:8080/mcp" in text
    assert '"Authorization": "Bearer odmcp_x"' in text
    blocks = re.findall(r"^  \{.*?^  \}", text, flags=re.M | re.S)
    assert len(blocks) == 2
    for block in blocks:
        json.loads(block)


def test_demo_tenant_signs_in_with_the_printed_password(settings: Settings) -> None:
    setup = prepare_demo(
        replace(settings, public_url=demo_public_url("127.0.0.1", 8080)),
        "http://127.0.0.1:8090",
        "sandbox_key",
    )
    assert setup.mcp_url == "http://127.0.0.1:8080/mcp"
    database = open_database(settings)
    try:
        tenant = Tenant.get(Tenant.name == "demo")
        assert verify_password(tenant.password_hash, setup.password)
        assert setup.password not in (tenant.password_hash or "")
    finally:
        database.close()
    assert "npx mcp-remote http://127.0.0.1:8080/mcp" in oauth_instructions(setup.mcp_url)
