"""What `serve` hands waitress: the settings become options, and the connection limit holds."""

from __future__ import annotations

import http.client
import threading
from pathlib import Path

import pytest
from flask import Flask

from orderdesk_mcp.cli.serving import WAITRESS_OWN_CHANNELS, waitress_options
from orderdesk_mcp.config import load_settings
from orderdesk_mcp.serving import GracefulServer


def test_settings_become_waitress_options(tmp_path: Path) -> None:
    settings = load_settings(
        {
            "ORDERDESK_MCP_DATA_DIR": str(tmp_path),
            "ORDERDESK_MCP_THREADS": "3",
            "ORDERDESK_MCP_CONNECTION_LIMIT": "7",
            "ORDERDESK_MCP_TRUSTED_PROXY": "127.0.0.1",
        }
    )
    options = waitress_options(settings, 1024)
    assert options["threads"] == 3
    assert options["connection_limit"] == 7 + WAITRESS_OWN_CHANNELS
    assert options["max_request_body_size"] == 1024
    assert options["trusted_proxy"] == "127.0.0.1"
    assert "trusted_proxy" not in waitress_options(
        load_settings({"ORDERDESK_MCP_DATA_DIR": str(tmp_path)}), 1024
    )
    assert load_settings({"ORDERDESK_MCP_DATA_DIR": str(tmp_path)}).connection_limit == 100


def test_a_connection_over_the_limit_waits_until_one_closes(tmp_path: Path) -> None:
    app = Flask("limited")
    app.get("/")(lambda: "ok")
    settings = load_settings(
        {"ORDERDESK_MCP_DATA_DIR": str(tmp_path), "ORDERDESK_MCP_CONNECTION_LIMIT": "1"}
    )
    options = {**waitress_options(settings, 1024), "port": 0, "threads": 2}
    graceful = GracefulServer(app, **options)
    serving = threading.Thread(target=graceful.run, daemon=True)
    serving.start()
    first = http.client.HTTPConnection("127.0.0.1", graceful.port, timeout=5)
    try:
        first.request("GET", "/")
        assert first.getresponse().read() == b"ok"  # and the connection stays open
        # The second connection is accepted by the kernel but not served while the first
        # holds the only slot: its request gets no answer within a second.
        second = http.client.HTTPConnection("127.0.0.1", graceful.port, timeout=1)
        second.request("GET", "/")
        with pytest.raises(TimeoutError):
            second.getresponse()
        second.close()
        first.close()  # frees the slot
        third = http.client.HTTPConnection("127.0.0.1", graceful.port, timeout=5)
        third.request("GET", "/")
        assert third.getresponse().read() == b"ok"
        third.close()
    finally:
        graceful.stop()
        serving.join(30)
