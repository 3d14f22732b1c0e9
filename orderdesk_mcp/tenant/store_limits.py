"""Limits on the live connection tests of the stores page, in the rate-limit storage of /mcp.

Every test (adding a store, replacing its key) sends Order Desk a request with a key the
merchant typed, so the page could otherwise be used to try keys against Order Desk or to
spend a store's upstream rate limit. Each test counts, success or not: per tenant, which bounds
one signed-in tenant wherever it comes from, and per address, which bounds many tenants
signed in from one place.
"""

from __future__ import annotations

from limits import RateLimitItem, parse_many

from orderdesk_mcp.config import Settings
from orderdesk_mcp.mcp.limit_storage import WindowCounters

# A merchant connects a few stores and sometimes mistypes a key: ten tries are plenty.
PER_TENANT = "10/10 minutes"
PER_ADDRESS = "30/10 minutes"


class ConnectionTestLimits:
    def __init__(self, storage: str | Settings) -> None:
        # A storage URI, or the settings' choice (the server group's Redis when set).
        self._counters = WindowCounters(storage, "tenant-store-connection-test")
        self._per_tenant: list[RateLimitItem] = parse_many(PER_TENANT)
        self._per_address: list[RateLimitItem] = parse_many(PER_ADDRESS)

    def _checks(self, tenant_id: int, address: str) -> list[tuple[RateLimitItem, str]]:
        return [(item, f"tenant:{tenant_id}") for item in self._per_tenant] + [
            (item, f"address:{address}") for item in self._per_address
        ]

    def hit(self, tenant_id: int, address: str) -> int | None:
        """Count one connection test; when a limit is reached, the seconds to wait instead.

        Counted first, never tested then counted (WindowCounters.hit), so requests at the
        same moment cannot all pass. A test refused by one limit has been counted by the
        limits checked before it (the tenant's first), never by the ones after.
        """
        return self._counters.hit(self._checks(tenant_id, address))
