"""WSGI layer in front of the Flask app: method override and injected faults.

Faults act before Flask sees the request, like a misbehaving proxy in front of Order Desk. A
dropped connection raises waitress's ClientDisconnected before anything is written: waitress
then closes the socket without a reply, which `requests` reports as a ConnectionError.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING

from waitress.channel import ClientDisconnected

from orderdesk_mcp.sandbox.api_context import API_PREFIX
from orderdesk_mcp.sandbox.emulation_choices import (
    METHOD_OVERRIDES_ACCEPTED,
    STATUS_INJECTED_FAULT,
    STATUS_RATE_LIMITED,
    TOO_MANY_REQUESTS_MESSAGE,
)
from orderdesk_mcp.sandbox.faults import Fault
from orderdesk_mcp.sandbox.state import SandboxState

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment


class InjectedDrop(ClientDisconnected):
    """Raised to make waitress close the connection without answering."""


def _reply(
    start_response: StartResponse, status: str, message: str, headers: list[tuple[str, str]]
) -> Iterable[bytes]:
    body = json.dumps({"status": "error", "message": message, "execution_time": "0.0001 seconds"})
    data = body.encode()
    start_response(
        status,
        [("Content-Type", "application/json"), ("Content-Length", str(len(data))), *headers],
    )
    return [data]


class SandboxMiddleware:
    def __init__(self, app: WSGIApplication, state: SandboxState) -> None:
        self.app = app
        self.state = state

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        override = str(environ.get("HTTP_X_HTTP_METHOD_OVERRIDE", "")).strip().upper()
        if environ.get("REQUEST_METHOD") == "POST" and override in METHOD_OVERRIDES_ACCEPTED:
            environ["REQUEST_METHOD"] = override
        if str(environ.get("PATH_INFO", "")).startswith(API_PREFIX):
            store_id = str(environ.get("HTTP_ORDERDESK_STORE_ID", "")).strip()
            store = self.state.stores.get(store_id)
            if store is not None:
                latency = store.faults.latency_s()
                if latency:
                    time.sleep(latency)
                fault = store.faults.draw()
                if fault is Fault.DROP:
                    raise InjectedDrop("injected fault: connection dropped")
                if fault is Fault.FORCE_429:
                    store.stats.record_rejected()
                    return _reply(
                        start_response,
                        f"{STATUS_RATE_LIMITED} Too Many Requests",
                        TOO_MANY_REQUESTS_MESSAGE,
                        [("X-Retry-After", "1"), ("X-Tokens-Remaining", str(store.bucket.peek()))],
                    )
                if fault is Fault.SERVER_ERROR:
                    return _reply(
                        start_response,
                        f"{STATUS_INJECTED_FAULT} Internal Server Error",
                        "Internal Server Error (injected fault)",
                        [("X-Tokens-Remaining", str(store.bucket.peek()))],
                    )
        return self.app(environ, start_response)
