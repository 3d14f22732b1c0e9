"""Request limits on /mcp, kept by flask-limiter's storage (memory:// or e.g. redis://).

Three counters:

- calls per tenant API key (ORDERDESK_MCP_RATE_LIMIT): tools/call, resources/read,
  prompts/get, completion/complete (each may reach Order Desk), and anything the server cannot
  classify (unknown methods, malformed bodies), so junk never rides the generous budget;
- protocol requests per key (ORDERDESK_MCP_PROTOCOL_RATE_LIMIT): what a client sends to set
  up and keep a session (initialize, notifications, ping, the list methods, the stateless
  probe, logging/setLevel, its responses to us). These are answered from memory or one
  indexed row, and a real SDK session sends 7 of them besides its tool calls
  (scripts/bench/sdk_session.py); counted against the call budget, they made a user's third
  conversation in a minute fail. They get their own, larger bucket rather than none, so a
  flood of them stays bounded;
- failed authentications per client address (a fixed AUTH_FAILURE_LIMIT), which throttles
  floods of bad keys (guessing is hopeless anyway: secrets are 256-bit) without ever locking
  out a valid key from the same address.

Ending a live session (DELETE) is never counted or refused: refusing it leaves the session
open, which is the opposite of what a limit is for. The checks run inside the view, after
authentication, because the per-key counters need to know the key; flask-limiter supplies the
storage and window strategy.
"""

from __future__ import annotations

import math
import time
from typing import Any

from flask import Flask
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from limits import RateLimitItem, parse_many

from orderdesk_mcp.config import Settings
from orderdesk_mcp.mcp.limit_storage import limit_storage, window_limiter

AUTH_FAILURE_LIMIT = "20/minute"
# Requests that keep a session going; every other method counts as a call.
PROTOCOL_METHODS = frozenset(
    {
        "initialize",
        "ping",
        "server/discover",
        "tools/list",
        "resources/list",
        "resources/templates/list",
        "prompts/list",
        "logging/setLevel",
    }
)
NOTIFICATION_PREFIX = "notifications/"


def is_protocol_message(message: Any) -> bool:
    """Whether a decoded JSON-RPC message goes to the protocol bucket (not the call budget).

    Judged on the raw object, before validation: a malformed message claiming a protocol
    method gets its error from the protocol bucket, which is bounded too.
    """
    if not isinstance(message, dict):
        return False
    if "method" not in message:
        # A response to a server request (we send none, but clients may answer anyway).
        return "result" in message or "error" in message
    method = message["method"]
    return isinstance(method, str) and (
        method in PROTOCOL_METHODS or method.startswith(NOTIFICATION_PREFIX)
    )


class McpLimits:
    """Per-key and per-address counters; each check returns seconds to wait, or None."""

    def __init__(self, app: Flask, settings: Settings) -> None:
        storage = limit_storage(settings)
        self._limiter = Limiter(
            key_func=get_remote_address,
            storage_uri=storage.uri,
            storage_options=storage.options,
            default_limits=[],
            strategy="moving-window",
            key_prefix="orderdesk-mcp",
        )
        # Bound to a Flask object of its own, not to `app`: no route carries a flask-limiter
        # limit (the checks below run in the view, once the key is known), so the before/
        # after/teardown hooks it would add to every request of `app` only cost time
        # (~80 us per request).
        self._limiter.init_app(Flask(f"{app.name}.limits"))
        # Its limiter, or in a server group one that counts in memory while Redis is down
        # (flask-limiter's own fallback acts only in the request hooks we leave out).
        self._counts = window_limiter(storage, self._limiter.limiter)
        self.per_key: list[RateLimitItem] = parse_many(settings.rate_limit)
        self.per_key_protocol: list[RateLimitItem] = parse_many(settings.protocol_rate_limit)
        self.auth_failures: list[RateLimitItem] = parse_many(AUTH_FAILURE_LIMIT)

    def _retry_after(self, item: RateLimitItem, *identifiers: str) -> int:
        stats = self._counts.get_window_stats(item, *identifiers)
        return max(1, math.ceil(stats.reset_time - time.time()))

    def hit_key(self, identity: str, *, protocol: bool = False) -> int | None:
        """Count one request of a key in its bucket; seconds to wait when it is over."""
        items, namespace = (
            (self.per_key_protocol, "mcp-key-protocol") if protocol else (self.per_key, "mcp-key")
        )
        for item in items:
            if not self._counts.hit(item, namespace, identity):
                return self._retry_after(item, namespace, identity)
        return None

    def auth_blocked(self, address: str) -> int | None:
        """Seconds to wait when this address has failed authentication too often."""
        for item in self.auth_failures:
            if not self._counts.test(item, "mcp-auth-failure", address):
                return self._retry_after(item, "mcp-auth-failure", address)
        return None

    def note_auth_failure(self, address: str) -> None:
        for item in self.auth_failures:
            self._counts.hit(item, "mcp-auth-failure", address)
