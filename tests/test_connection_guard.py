"""Slow and greedy clients reaching waitress directly: trickled requests are cut off, one
address cannot hold more than its share of connections, and everyone else is still served."""

from __future__ import annotations

import http.client
import json
import select
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from flask import Flask

from orderdesk_mcp.cli.serving import connection_limits
from orderdesk_mcp.config import load_settings
from orderdesk_mcp.connection_guard import ConnectionLimits
from orderdesk_mcp.serving import GracefulServer

# Safety nets only: each test ends as soon as its outcome is seen.
SAFETY_NET_SECONDS = 15.0


def _app() -> Flask:
    app = Flask("guarded")
    app.get("/")(lambda: "ok")

    @app.get("/slow")
    def slow() -> str:
        time.sleep(2.5)  # longer than the read deadline below: serving time does not count
        return "slow ok"

    return app


@contextmanager
def _serving(limits: ConnectionLimits, connection_limit: int = 100) -> Iterator[int]:
    graceful = GracefulServer(
        _app(),
        host="127.0.0.1",
        port=0,
        threads=4,
        drain_seconds=2,
        limits=limits,
        connection_limit=connection_limit + 2,  # waitress counts its listener and trigger
    )
    runner = threading.Thread(target=graceful.run, daemon=True)
    runner.start()
    try:
        yield graceful.port
    finally:
        graceful.stop()
        runner.join(30)


def _get(port: int, path: str = "/") -> tuple[int, bytes]:
    client = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        client.request("GET", path)
        reply = client.getresponse()
        return reply.status, reply.read()
    finally:
        client.close()


def _closed_by_server(sock: socket.socket, wait: float) -> bytes | None:
    """What the server sent before closing (b"" for a bare close), or None if still open."""
    readable, _, _ = select.select([sock], [], [], wait)
    if not readable:
        return None
    received = b""
    try:
        while chunk := sock.recv(4096):
            received += chunk
    except ConnectionResetError:
        pass
    return received


def test_a_request_trickled_past_the_deadline_is_closed_and_others_are_served() -> None:
    with _serving(ConnectionLimits(request_read_seconds=1)) as port:
        trickler = socket.create_connection(("127.0.0.1", port), timeout=5)
        trickler.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
        deadline = time.monotonic() + SAFETY_NET_SECONDS
        outcome: bytes | None = None
        line = 0
        # One header line every 0.2 s: waitress's idle timeout would never fire.
        while outcome is None and time.monotonic() < deadline:
            try:
                trickler.sendall(b"X-Trickle-%d: 1\r\n" % line)
            except (BrokenPipeError, ConnectionResetError):
                outcome = b""
                break
            line += 1
            outcome = _closed_by_server(trickler, 0.2)
        trickler.close()
        assert outcome is not None, "the trickling connection was still open"
        if outcome:  # the 408 reached us before the close
            assert outcome.startswith(b"HTTP/1.1 408 ")
            assert json.loads(outcome.split(b"\r\n\r\n", 1)[1])["status"] == 408
        assert _get(port) == (200, b"ok")


def test_a_connection_that_never_sends_is_closed() -> None:
    with _serving(ConnectionLimits(request_read_seconds=1)) as port:
        silent = socket.create_connection(("127.0.0.1", port), timeout=5)
        outcome = _closed_by_server(silent, SAFETY_NET_SECONDS)
        silent.close()
        assert outcome is not None, "the silent connection was still open"
        assert outcome == b"" or outcome.startswith(b"HTTP/1.1 408 ")


def test_a_flood_of_tricklers_from_one_address_leaves_room_for_others() -> None:
    # The reported attack, scaled down: more trickling connections than the whole pool.
    limits = ConnectionLimits(request_read_seconds=5, max_connections_per_address=4)
    with _serving(limits, connection_limit=8) as port:
        tricklers = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(12)]
        for trickler in tricklers:
            trickler.sendall(b"GET / HTTP/1.1\r\n")
        # Another address (all of 127/8 is loopback on Linux) is still served.
        other = http.client.HTTPConnection(
            "127.0.0.1", port, timeout=SAFETY_NET_SECONDS, source_address=("127.0.0.2", 0)
        )
        other.request("GET", "/")
        assert other.getresponse().read() == b"ok"
        other.close()
        for trickler in tricklers:
            trickler.close()


def test_idle_keep_alive_and_slow_replies_are_not_cut_by_the_read_deadline() -> None:
    with _serving(ConnectionLimits(request_read_seconds=1)) as port:
        client = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        client.request("GET", "/slow")  # served for longer than the deadline
        assert client.getresponse().read() == b"slow ok"
        time.sleep(2.5)  # idle between requests, longer than the deadline (and a sweep)
        client.request("GET", "/")
        assert client.getresponse().read() == b"ok"
        client.close()


def test_connections_over_the_per_address_cap_get_503_json() -> None:
    with _serving(ConnectionLimits(max_connections_per_address=2)) as port:
        held = [http.client.HTTPConnection("127.0.0.1", port, timeout=10) for _ in range(2)]
        for client in held:
            client.request("GET", "/")
            assert client.getresponse().read() == b"ok"  # and the connection stays open
        over = socket.create_connection(("127.0.0.1", port), timeout=5)
        over.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        reply = _closed_by_server(over, SAFETY_NET_SECONDS)
        over.close()
        assert reply is not None
        assert reply.startswith(b"HTTP/1.1 503 ")
        head, body = reply.split(b"\r\n\r\n", 1)
        assert b"Retry-After: " in head
        assert "too many connections" in json.loads(body)["message"]
        held.pop().close()
        # The freed slot is noticed when the server reads the close; a fresh client then
        # gets through (retried only until that has happened).
        deadline = time.monotonic() + SAFETY_NET_SECONDS
        while True:
            status, _ = _get(port)
            if status == 200 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert status == 200
        held[0].request("GET", "/")
        assert held[0].getresponse().read() == b"ok"
        held[0].close()


def test_the_trusted_proxy_is_exempt_from_the_cap() -> None:
    limits = ConnectionLimits(max_connections_per_address=1, trusted_proxy="127.0.0.1")
    with _serving(limits) as port:
        clients = [http.client.HTTPConnection("127.0.0.1", port, timeout=10) for _ in range(3)]
        for client in clients:
            client.request("GET", "/")
            assert client.getresponse().read() == b"ok"
        for client in clients:
            client.close()


def test_settings_become_connection_limits(tmp_path: Path) -> None:
    defaults = connection_limits(load_settings({"ORDERDESK_MCP_DATA_DIR": str(tmp_path)}))
    assert defaults == ConnectionLimits(
        request_read_seconds=30, max_connections_per_address=20, trusted_proxy=None
    )
    tuned = connection_limits(
        load_settings(
            {
                "ORDERDESK_MCP_DATA_DIR": str(tmp_path),
                "ORDERDESK_MCP_REQUEST_READ_SECONDS": "12.5",
                "ORDERDESK_MCP_MAX_CONNECTIONS_PER_ADDRESS": "0",
                "ORDERDESK_MCP_TRUSTED_PROXY": "127.0.0.1",
            }
        )
    )
    assert tuned == ConnectionLimits(12.5, None, "127.0.0.1")
    assert not tuned.caps("203.0.113.9")  # 0 switches the cap off
