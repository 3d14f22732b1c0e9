"""Graceful stop: requests in flight are answered, new connections are refused."""

from __future__ import annotations

import socket
import threading
import time

import requests
from flask import Flask

from orderdesk_mcp.serving import GracefulServer


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


def test_an_idle_server_stops_at_once() -> None:
    graceful = GracefulServer(Flask("idle"), host="127.0.0.1", port=0, drain_seconds=5)
    runner = threading.Thread(target=graceful.run)
    runner.start()
    time.sleep(0.1)
    graceful.stop()
    runner.join(5)
    assert not runner.is_alive()
