"""Graceful stop: requests in flight are answered, new connections are refused."""

from __future__ import annotations

import http.client
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import requests
from flask import Flask

from orderdesk_mcp.sandbox import RunningSandbox
from orderdesk_mcp.serving import GracefulServer
from tests.conftest import SANDBOX_DEMO_STORE, SANDBOX_KEYS


def _slow_app(started: threading.Event) -> Flask:
    app = Flask("slow")

    @app.get("/slow")
    def slow() -> str:
        started.set()
        time.sleep(1.0)
        return "finished"

    return app


def test_stop_finishes_the_request_in_flight_then_refuses_new_ones() -> None:
    started = threading.Event()
    graceful = GracefulServer(_slow_app(started), host="127.0.0.1", port=0, threads=2)
    port = graceful.port
    runner = threading.Thread(target=graceful.run)
    runner.start()
    replies: list[requests.Response] = []
    client = threading.Thread(
        target=lambda: replies.append(requests.get(f"http://127.0.0.1:{port}/slow", timeout=10))
    )
    client.start()
    assert started.wait(5)
    graceful.stop()
    client.join(10)
    runner.join(10)
    assert not runner.is_alive()
    assert [(r.status_code, r.text) for r in replies] == [(200, "finished")]
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0


def test_idle_keep_alive_connections_do_not_hold_the_stop() -> None:
    started = threading.Event()
    graceful = GracefulServer(
        _slow_app(started), host="127.0.0.1", port=0, threads=2, drain_seconds=60
    )
    runner = threading.Thread(target=graceful.run)
    runner.start()
    keep_alive = http.client.HTTPConnection("127.0.0.1", graceful.port, timeout=10)
    keep_alive.request("GET", "/missing")
    first = keep_alive.getresponse()
    first.read()
    assert first.status == 404
    assert keep_alive.sock is not None  # HTTP/1.1: the connection stays open, idle
    slow = threading.Thread(
        target=lambda: requests.get(f"http://127.0.0.1:{graceful.port}/slow", timeout=10)
    )
    slow.start()
    assert started.wait(5)
    graceful.stop()
    slow.join(10)
    # Without closing idle keep-alive connections the stop would wait the full 60 s drain.
    runner.join(10)
    assert not runner.is_alive()
    assert keep_alive.sock.recv(4096) == b""  # closed cleanly between requests
    keep_alive.close()


def test_an_idle_server_stops_at_once() -> None:
    graceful = GracefulServer(Flask("idle"), host="127.0.0.1", port=0, drain_seconds=5)
    runner = threading.Thread(target=graceful.run)
    runner.start()
    time.sleep(0.1)
    graceful.stop()
    runner.join(5)
    assert not runner.is_alive()


def _held_app(started: threading.Event, release: threading.Event) -> Flask:
    app = Flask("held")
    app.get("/")(lambda: "ok")

    @app.post("/write")
    def write() -> str:
        started.set()
        release.wait(15)  # bounded: the test releases it
        return "written"

    return app


def _wait_for(condition: Callable[[], bool], seconds: float = 10) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def test_during_the_drain_new_requests_get_503_json_and_the_write_in_flight_finishes() -> None:
    started, release = threading.Event(), threading.Event()
    graceful = GracefulServer(
        _held_app(started, release), host="127.0.0.1", port=0, threads=4, drain_seconds=30
    )
    base = f"http://127.0.0.1:{graceful.port}"
    runner = threading.Thread(target=graceful.run)
    runner.start()
    replies: list[requests.Response] = []
    writer = threading.Thread(
        target=lambda: replies.append(requests.post(f"{base}/write", timeout=20))
    )
    writer.start()
    try:
        assert started.wait(5)
        graceful.stop()
        assert _wait_for(lambda: graceful.gate.closed)
        plain = requests.get(f"{base}/", timeout=10)
        assert plain.status_code == 503
        assert plain.headers["Retry-After"].isdigit()
        assert plain.json()["status"] == 503
        mcp = requests.post(f"{base}/mcp", json={"jsonrpc": "2.0", "id": 7}, timeout=10)
        assert mcp.status_code == 503
        assert mcp.headers["Retry-After"].isdigit()
        assert mcp.json()["jsonrpc"] == "2.0"
        assert mcp.json()["error"]["code"] == -32000
        assert "restarting" in mcp.json()["error"]["message"]
    finally:
        release.set()
        writer.join(20)
        runner.join(20)
    assert not runner.is_alive()
    assert [(r.status_code, r.text) for r in replies] == [(200, "written")]


def test_a_call_longer_than_the_drain_is_named_in_the_log(
    caplog: pytest.LogCaptureFixture,
) -> None:
    started, release = threading.Event(), threading.Event()
    graceful = GracefulServer(
        _held_app(started, release), host="127.0.0.1", port=0, threads=2, drain_seconds=0.5
    )
    runner = threading.Thread(target=graceful.run)
    runner.start()
    outcome: list[object] = []

    def write() -> None:
        try:
            outcome.append(
                requests.post(
                    f"http://127.0.0.1:{graceful.port}/write",
                    headers={"X-Request-ID": "cut-call-1"},
                    timeout=20,
                )
            )
        except requests.ConnectionError as exc:
            outcome.append(exc)

    writer = threading.Thread(target=write)
    writer.start()
    caplog.set_level(logging.WARNING, logger="orderdesk_mcp.serving")
    try:
        assert started.wait(5)
        graceful.stop()
        assert _wait_for(lambda: "cut-call-1" in caplog.text), caplog.text
        writer.join(15)  # the cut closes the connection while the call still runs
    finally:
        release.set()
        writer.join(20)
        runner.join(20)
    assert not runner.is_alive()
    [line] = [r.getMessage() for r in caplog.records if "cut-call-1" in r.getMessage()]
    assert "POST /write" in line
    assert "running" in line
    assert len(outcome) == 1
    assert isinstance(outcome[0], requests.ConnectionError)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.mark.slow
def test_sigterm_to_serve_answers_the_tool_call_in_flight(
    tmp_path: Path, sandbox: RunningSandbox
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORDERDESK_")}
    env.update(
        {"ORDERDESK_MCP_DATA_DIR": str(tmp_path / "data"), "ORDERDESK_MCP_LOG_FORMAT": "text"}
    )
    cli = [sys.executable, "-m", "orderdesk_mcp"]

    def run(*args: str, stdin: str | None = None) -> str:
        done = subprocess.run(
            [*cli, *args], env=env, input=stdin, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    run("init")
    token = json.loads(run("tenant", "create", "acme", "--json"))["api_key"]
    run(
        "store",
        "add",
        "--tenant",
        "acme",
        "--store-id",
        SANDBOX_DEMO_STORE,
        "--api-key-stdin",
        "--base-url",
        sandbox.base_url,
        "--no-verify",
        stdin=SANDBOX_KEYS[SANDBOX_DEMO_STORE],
    )
    port = _free_port()
    server = subprocess.Popen(
        [*cli, "serve", "--port", str(port)], env=env, stderr=subprocess.PIPE, text=True
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except requests.ConnectionError:
                time.sleep(0.1)
        headers = {
            "Authorization": f"Bearer {token}",
            "Accept": "application/json, text/event-stream",
            "Content-Type": "application/json",
        }
        init = requests.post(
            f"{base}/mcp",
            headers=headers,
            json={
                "jsonrpc": "2.0",
                "id": 1,
                "method": "initialize",
                "params": {
                    "protocolVersion": "2025-11-25",
                    "capabilities": {},
                    "clientInfo": {"name": "test", "version": "1"},
                },
            },
            timeout=10,
        )
        headers["Mcp-Session-Id"] = init.headers["Mcp-Session-Id"]
        headers["MCP-Protocol-Version"] = "2025-11-25"
        # Held upstream long enough that the call is surely inside the app when the signal
        # comes (nothing outside the process shows that moment), and well within the drain.
        sandbox.set_faults(latency_ms=4000)
        replies: list[requests.Response] = []
        call = threading.Thread(
            target=lambda: replies.append(
                requests.post(
                    f"{base}/mcp",
                    headers=headers,
                    json={
                        "jsonrpc": "2.0",
                        "id": 2,
                        "method": "tools/call",
                        "params": {"name": "test_connection", "arguments": {}},
                    },
                    timeout=20,
                )
            )
        )
        call.start()
        time.sleep(1.5)
        server.send_signal(signal.SIGTERM)
        call.join(20)
        _, stderr = server.communicate(timeout=30)
    finally:
        if server.poll() is None:
            server.kill()
    assert server.returncode == 0, stderr
    assert len(replies) == 1
    assert replies[0].status_code == 200
    assert replies[0].json()["result"]["isError"] is False
    assert "Traceback" not in stderr
