"""The background waitress server that the sandbox, the tests and the benchmarks run on."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

import pytest
import requests

from orderdesk_mcp.background_server import BackgroundServer


def _slow_app(started: threading.Event, seconds: float) -> Callable[..., Iterable[bytes]]:
    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        started.set()
        time.sleep(seconds)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"done"]

    return app


def test_stop_closes_the_port_ends_the_loop_and_is_idempotent() -> None:
    served = BackgroundServer(_slow_app(threading.Event(), 0), name="bg-test")
    assert requests.get(f"http://127.0.0.1:{served.port}/", timeout=5).text == "done"
    served.stop()
    served.stop()
    assert not served._thread.is_alive()
    assert served.server.trigger._closed
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", served.port), 1).close()


def test_workers_finish_before_the_wake_up_pipe_closes() -> None:
    """A reply finishing after stop() began pulls the wake-up pipe; it must still be open."""
    started = threading.Event()
    served = BackgroundServer(_slow_app(started, 0.3), name="bg-test")
    errors: list[BaseException] = []

    def call() -> None:
        try:
            requests.get(f"http://127.0.0.1:{served.port}/", timeout=5)
        except requests.RequestException:
            pass  # the connection is closed under it: expected
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    client = threading.Thread(target=call)
    client.start()
    assert started.wait(5)
    served.stop()
    client.join(5)
    assert errors == []
    assert served.server.task_dispatcher.threads == set()
    assert not served._thread.is_alive()
