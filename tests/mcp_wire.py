"""What reaches the server on the wire: a WSGI wrapper that records every /mcp exchange.

Tests of real clients (the official SDKs) use it to see what the client sent and what the
server answered without touching either: no initialize, no session id, the headers the
2026-07-28 revision requires, how many round trips a connect costs.
"""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from flask import Flask

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

# Request headers worth keeping, as WSGI spells them.
RECORDED_HEADERS = {
    "HTTP_MCP_PROTOCOL_VERSION": "MCP-Protocol-Version",
    "HTTP_MCP_METHOD": "Mcp-Method",
    "HTTP_MCP_NAME": "Mcp-Name",
    "HTTP_MCP_SESSION_ID": "Mcp-Session-Id",
}


@dataclass
class Exchange:
    """One HTTP request to the MCP endpoint and the answer's status line and session header."""

    http_method: str
    body: Any
    headers: dict[str, str]
    status: int = 0
    minted_session: str | None = None

    @property
    def rpc_method(self) -> str | None:
        """The JSON-RPC method of a single-message body (None for responses and batches)."""
        if isinstance(self.body, dict):
            method = self.body.get("method")
            return method if isinstance(method, str) else None
        return None

    @property
    def meta(self) -> dict[str, Any]:
        if not isinstance(self.body, dict):
            return {}
        params = self.body.get("params")
        meta = params.get("_meta") if isinstance(params, dict) else None
        return meta if isinstance(meta, dict) else {}


@dataclass
class WireLog:
    """Wraps `app.wsgi_app`; `exchanges` lists every request to /mcp in arrival order."""

    exchanges: list[Exchange] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def install(cls, app: Flask) -> WireLog:
        log = cls()
        app.wsgi_app = log.wrap(app.wsgi_app)  # type: ignore[method-assign]
        return log

    def wrap(self, inner: WsgiApp) -> WsgiApp:
        def recorded(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
            if environ.get("PATH_INFO") != "/mcp":
                return inner(environ, start_response)
            exchange = self._record(environ)

            def start(status: str, headers: list[tuple[str, str]], *args: Any) -> Any:
                exchange.status = int(status.split(" ", 1)[0])
                for name, value in headers:
                    if name.lower() == "mcp-session-id":
                        exchange.minted_session = value
                return start_response(status, headers, *args)

            return inner(environ, start)

        return recorded

    def _record(self, environ: dict[str, Any]) -> Exchange:
        # Read the body and put it back, so the app sees the request unchanged.
        length = int(environ.get("CONTENT_LENGTH") or 0)
        raw = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(raw)
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw
        headers = {name: environ[key] for key, name in RECORDED_HEADERS.items() if key in environ}
        exchange = Exchange(environ["REQUEST_METHOD"], body, headers)
        with self._lock:
            self.exchanges.append(exchange)
        return exchange

    def rpc_methods(self) -> list[str | None]:
        with self._lock:
            return [exchange.rpc_method for exchange in self.exchanges]

    def clear(self) -> None:
        with self._lock:
            self.exchanges.clear()
