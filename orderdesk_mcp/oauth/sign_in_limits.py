"""Failed sign-in limits for the browser pages, kept in the rate-limit storage of /mcp.

Only failures count. Two moving windows: per (address, tenant name), which stops guessing
one tenant's password from one place, and per address, which stops spraying many tenant
names. Neither is keyed by the tenant alone, so failures from elsewhere never lock a tenant
out of its own sign-in.
"""

from __future__ import annotations

import math
import time

from limits import RateLimitItem, parse_many
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter

from orderdesk_mcp.mcp import limit_storage

PER_ADDRESS_AND_TENANT = "10/15 minutes"
PER_ADDRESS = "50/hour"
_NAMESPACE = "oauth-sign-in-failure"


class SignInLimits:
    def __init__(self, storage_uri: str) -> None:
        storage = storage_from_string(limit_storage.memory_uri_to_swept(storage_uri))
        self._limiter = MovingWindowRateLimiter(storage)
        self._per_pair: list[RateLimitItem] = parse_many(PER_ADDRESS_AND_TENANT)
        self._per_address: list[RateLimitItem] = parse_many(PER_ADDRESS)

    def _checks(self, address: str, tenant_name: str | None) -> list[tuple[RateLimitItem, str]]:
        checks = [(item, f"address:{address}") for item in self._per_address]
        if tenant_name:
            pair = f"pair:{address}:{tenant_name.lower()}"
            checks += [(item, pair) for item in self._per_pair]
        return checks

    def blocked(self, address: str, tenant_name: str | None) -> int | None:
        """Seconds to wait when this address (for this tenant name) failed too often."""
        waits = []
        for item, identity in self._checks(address, tenant_name):
            if not self._limiter.test(item, _NAMESPACE, identity):
                stats = self._limiter.get_window_stats(item, _NAMESPACE, identity)
                waits.append(max(1, math.ceil(stats.reset_time - time.time())))
        return max(waits) if waits else None

    def note_failure(self, address: str, tenant_name: str | None) -> None:
        for item, identity in self._checks(address, tenant_name):
            self._limiter.hit(item, _NAMESPACE, identity)
