"""Rate limits on the OAuth endpoints, kept in flask-limiter's storage like /mcp's.

Token and revocation requests count per client id; registration has no client id yet, so it
counts per address. Every request also counts in a generous per-address bucket: Claude and
ChatGPT reach us from a few shared addresses, so that bucket only stops floods (nginx's
per-address limit sits in front of it, see nginx/).
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

PER_CLIENT_LIMIT = "60/minute"
# Registration has no client id yet; Claude's and ChatGPT's users share a few addresses.
REGISTRATIONS_PER_ADDRESS_LIMIT = "120/minute"
PER_ADDRESS_LIMIT = "600/minute"


class OAuthLimits:
    def __init__(self, app: Flask, settings: Settings) -> None:
        self._limiter = Limiter(
            key_func=get_remote_address,
            storage_uri=memory_uri_to_swept(settings.rate_limit_storage),
            default_limits=[],
            strategy="moving-window",
            key_prefix="orderdesk-mcp",
        )
        # Its own Flask object, as in mcp/limits.py: the checks run inside the views.
        self._limiter.init_app(Flask(f"{app.name}.oauth-limits"))
        self.per_client = parse_many(PER_CLIENT_LIMIT)
        self.registrations = parse_many(REGISTRATIONS_PER_ADDRESS_LIMIT)
        self.per_address = parse_many(PER_ADDRESS_LIMIT)

    def _hit(self, items: list[RateLimitItem], namespace: str, identity: str) -> int | None:
        for item in items:
            if not self._limiter.limiter.hit(item, namespace, identity):
                stats = self._limiter.limiter.get_window_stats(item, namespace, identity)
                return max(1, math.ceil(stats.reset_time - time.time()))
        return None

    def hit(self, endpoint: str, address: str, client_id: str | None) -> int | None:
        """Count one request; seconds to wait when a bucket is full, else None."""
        waited = self._hit(self.per_address, "oauth-address", address)
        if waited is not None:
            return waited
        if client_id is None:
            return self._hit(self.registrations, f"oauth-{endpoint}-address", address)
        return self._hit(self.per_client, f"oauth-{endpoint}-client", client_id[:200])
