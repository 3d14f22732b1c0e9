"""Failed sign-in limits for the browser pages, kept in the rate-limit storage of /mcp.

Only failures count. Two moving windows: per (address, tenant name), which stops guessing
one tenant's password from one place, and per address, which stops spraying many tenant
names. Neither is keyed by the tenant alone, so failures from elsewhere never lock a tenant
out of its own sign-in.
"""

from __future__ import annotations

from limits import RateLimitItem, parse_many

from orderdesk_mcp.config import Settings
from orderdesk_mcp.mcp.limit_storage import WindowCounters

PER_ADDRESS_AND_TENANT = "10/15 minutes"
PER_ADDRESS = "50/hour"


class SignInLimits:
    def __init__(self, storage: str | Settings) -> None:
        # A storage URI, or the settings' choice (the server group's Redis when set).
        self._counters = WindowCounters(storage, "oauth-sign-in-failure")
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
        return self._counters.blocked(self._checks(address, tenant_name))

    def note_failure(self, address: str, tenant_name: str | None) -> None:
        self._counters.note(self._checks(address, tenant_name))
