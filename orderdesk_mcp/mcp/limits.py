"""Request limits on /mcp, kept by flask-limiter's storage (memory:// or e.g. redis://).

Two counters: requests per tenant API key (ORDERDESK_MCP_RATE_LIMIT), and failed
authentications per client address (a fixed AUTH_FAILURE_LIMIT), which throttles floods of
bad keys (guessing is hopeless anyway: secrets are 256-bit) without ever locking out a valid
key from the same address. The checks run inside the view, after authentication, because the
per-key counter needs to know the key; flask-limiter supplies the storage and window strategy.
"""

from __future__ import annotations

import math
import time

from flask import Flask
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from limits import RateLimitItem, parse_many

from orderdesk_mcp.config import Settings
from orderdesk_mcp.mcp.limit_storage import memory_uri_to_swept

AUTH_FAILURE_LIMIT = "20/minute"


class McpLimits:
    """Per-key and per-address counters; each check returns seconds to wait, or None."""

    def __init__(self, app: Flask, settings: Settings) -> None:
        self._limiter = Limiter(
            key_func=get_remote_address,
            storage_uri=memory_uri_to_swept(settings.rate_limit_storage),
            default_limits=[],
            strategy="moving-window",
            key_prefix="orderdesk-mcp",
        )
        # Bound to a Flask object of its own, not to `app`: no route carries a flask-limiter
        # limit (the checks below run in the view, once the key is known), so the before/
        # after/teardown hooks it would add to every request of `app` only cost time
        # (~80 us per request).
        self._limiter.init_app(Flask(f"{app.name}.limits"))
        self.per_key: list[RateLimitItem] = parse_many(settings.rate_limit)
        self.auth_failures: list[RateLimitItem] = parse_many(AUTH_FAILURE_LIMIT)

    def _retry_after(self, item: RateLimitItem, *identifiers: str) -> int:
        stats = self._limiter.limiter.get_window_stats(item, *identifiers)
        return max(1, math.ceil(stats.reset_time - time.time()))

    def hit_key(self, identity: str) -> int | None:
        """Count one request of a key; seconds to wait when it is over its limit."""
        for item in self.per_key:
            if not self._limiter.limiter.hit(item, "mcp-key", identity):
                return self._retry_after(item, "mcp-key", identity)
        return None

    def auth_blocked(self, address: str) -> int | None:
        """Seconds to wait when this address has failed authentication too often."""
        for item in self.auth_failures:
            if not self._limiter.limiter.test(item, "mcp-auth-failure", address):
                return self._retry_after(item, "mcp-auth-failure", address)
        return None

    def note_auth_failure(self, address: str) -> None:
        for item in self.auth_failures:
            self._limiter.limiter.hit(item, "mcp-auth-failure", address)
