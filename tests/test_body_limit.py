"""An oversized body gets the app's JSON answer from a real server, never waitress's text."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from flask import Flask

from orderdesk_mcp.app import MAX_REQUEST_BYTES
from orderdesk_mcp.body_limit import MAX_BODY_BYTES, SERVER_MAX_BODY_BYTES
from orderdesk_mcp.cli.serving import waitress_options
from orderdesk_mcp.config import Settings
from orderdesk_mcp.serving import GracefulServer

OVERSIZED = MAX_BODY_BYTES + MAX_BODY_BYTES // 2


@pytest.fixture
def base_url(mcp_app: Flask, settings: Settings) -> Iterator[str]:
    """The real app behind waitress with the options `orderdesk-mcp serve` gives it."""
    options = {**waitress_options(settings, MAX_REQUEST_BYTES), "port": 0, "threads": 2}
    server = GracefulServer(mcp_app, **options)
    serving = threading.Thread(target=server.run, daemon=True)
    serving.start()
    try:
        yield f"http://127.0.0.1:{server.port}"
    finally:
        server.stop()
        serving.join(30)


def _oversized_message() -> bytes:
    message = {"jsonrpc": "2.0", "id": 1, "method": "ping", "pad": "x" * OVERSIZED}
    return json.dumps(message).encode()


def _chunks(body: bytes) -> Iterator[bytes]:
    for start in range(0, len(body), 64 * 1024):
        yield body[start : start + 64 * 1024]


def _assert_json_rpc_413(reply: requests.Response) -> dict[str, Any]:
    assert reply.status_code == 413
    assert reply.headers["Content-Type"].startswith("application/json")
    body: dict[str, Any] = reply.json()
    assert body["jsonrpc"] == "2.0"
    assert body["id"] is None
    assert body["error"]["code"] == -32600
    assert str(MAX_BODY_BYTES) in body["error"]["message"]
    return body


def test_waitress_lets_an_oversized_body_through_to_the_app() -> None:
    assert MAX_REQUEST_BYTES > OVERSIZED > MAX_BODY_BYTES


def test_an_oversized_mcp_body_gets_a_json_rpc_413(base_url: str) -> None:
    headers = {"Content-Type": "application/json", "Authorization": "Bearer odmcp_nope"}
    reply = requests.post(f"{base_url}/mcp", data=_oversized_message(), headers=headers, timeout=30)
    _assert_json_rpc_413(reply)


def test_an_oversized_chunked_mcp_body_gets_a_json_rpc_413(base_url: str) -> None:
    # No Content-Length: the limit bites while the body is read.
    reply = requests.post(
        f"{base_url}/mcp",
        data=_chunks(_oversized_message()),
        headers={"Content-Type": "application/json"},
        timeout=30,
    )
    assert "Content-Length" not in reply.request.headers
    _assert_json_rpc_413(reply)


def test_an_oversized_body_elsewhere_gets_a_json_413(base_url: str) -> None:
    for path in ("/health/ready", "/no/such/path"):
        reply = requests.post(f"{base_url}{path}", data=b"x" * OVERSIZED, timeout=30)
        assert reply.status_code == 413, path
        assert reply.headers["Content-Type"].startswith("application/json")
        assert str(MAX_BODY_BYTES) in reply.json()["message"]


def _raw_exchange(base_url: str, head: bytes) -> tuple[str, dict[str, Any]]:
    """Send `head` on a raw socket; (status line, JSON body) of the reply."""
    host, port = base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as conn:
        conn.sendall(head)
        received = b""
        while chunk := conn.recv(65536):
            received += chunk
    status_line, _, rest = received.partition(b"\r\n")
    headers, _, body = rest.partition(b"\r\n\r\n")
    assert b"content-type: application/json" in headers.lower(), received[:300]
    parsed: dict[str, Any] = json.loads(body)
    return status_line.decode(), parsed


def test_a_body_over_waitress_own_ceiling_is_refused_in_json_rpc_on_mcp(base_url: str) -> None:
    """Past SERVER_MAX_BODY_BYTES waitress itself refuses, before the app: still JSON-RPC."""
    head = (
        b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        + f"Content-Length: {SERVER_MAX_BODY_BYTES + 1}\r\n\r\n".encode()
    )
    status, body = _raw_exchange(base_url, head)
    assert status.startswith("HTTP/1.1 413")
    assert body["jsonrpc"] == "2.0"
    assert body["id"] is None
    assert body["error"]["code"] == -32600


def test_waitress_own_refusals_elsewhere_are_json(base_url: str) -> None:
    head = (
        b"POST /health HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        + f"Content-Length: {SERVER_MAX_BODY_BYTES + 1}\r\n\r\n".encode()
    )
    status, body = _raw_exchange(base_url, head)
    assert status.startswith("HTTP/1.1 413")
    assert body["status"] == 413
    status, body = _raw_exchange(base_url, b"GET /health HTTP/1.1\r\nHost\r\n\r\n")
    assert " 400 " in status
    assert body["status"] == 400
