"""The WSGI gate a graceful stop closes: requests in flight finish, new ones get 503.

While the server drains, a request that had not yet reached the app (a new connection, a
keep-alive connection's next request, or one queued for a worker) is answered 503 with
Retry-After, in JSON (JSON-RPC shaped on /mcp), so that no new write starts that the end of
the drain could cut. The gate also keeps the list of requests in the app, so the stop can
say which calls it cut.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from werkzeug.wsgi import ClosingIterator

from orderdesk_mcp.logging import request_id_from
from orderdesk_mcp.mcp.protocol import SERVER_ERROR, JsonRpcError, error_message

StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]

DRAINING_RETRY_AFTER_SECONDS = 5


@dataclass(frozen=True)
class InFlight:
    """A request the app is working on."""

    method: str
    path: str
    request_id: str
    started: float  # time.monotonic()

    def describe(self, now: float) -> str:
        running = now - self.started
        return f"{self.method} {self.path} (request id {self.request_id}, running {running:.1f} s)"


class DrainGate:
    """WSGI middleware: admits requests until `close()`, then answers 503."""

    def __init__(self, app: WsgiApp, *, mcp_path: str = "/mcp") -> None:
        self.app = app
        self.mcp_path = mcp_path
        self._closed = threading.Event()
        self._lock = threading.Lock()
        self._numbers = itertools.count()
        self._in_flight: dict[int, InFlight] = {}

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    def close(self) -> None:
        """From now on, new requests are refused (those in flight carry on)."""
        self._closed.set()

    def in_flight(self) -> list[InFlight]:
        with self._lock:
            return sorted(self._in_flight.values(), key=lambda call: call.started)

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if self._closed.is_set():
            return self._refuse(environ, start_response)
        # The id the app will log and echo; assigned here so the stop can name the call too.
        request_id = request_id_from(environ.get("HTTP_X_REQUEST_ID", ""))
        environ["HTTP_X_REQUEST_ID"] = request_id
        call = InFlight(
            environ.get("REQUEST_METHOD", "?"),
            environ.get("PATH_INFO", "") or "/",
            request_id,
            time.monotonic(),
        )
        number = next(self._numbers)
        with self._lock:
            self._in_flight[number] = call

        def finished() -> None:
            with self._lock:
                self._in_flight.pop(number, None)

        try:
            reply = self.app(environ, start_response)
        except BaseException:
            finished()
            raise
        # A streamed reply is in flight until waitress has written it and closes it.
        return ClosingIterator(reply, [finished])

    def _refuse(self, environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
        message = f"the server is restarting; retry in {DRAINING_RETRY_AFTER_SECONDS} seconds"
        body: dict[str, Any]
        if (environ.get("PATH_INFO") or "").rstrip("/") == self.mcp_path:
            body = error_message(None, JsonRpcError(SERVER_ERROR, message))
        else:
            body = {"error": "Service Unavailable", "message": message, "status": 503}
        payload = json.dumps(body).encode()
        start_response(
            "503 Service Unavailable",
            [
                ("Content-Type", "application/json"),
                ("Content-Length", str(len(payload))),
                ("Retry-After", str(DRAINING_RETRY_AFTER_SECONDS)),
            ],
        )
        return [payload]
